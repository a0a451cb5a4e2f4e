"""The chain-facing side of a compute node (installed as aidoc.oracles): the watcher turns
DiagnosisRequested logs into worker tasks; the sender turns finished work into fulfilBatch,
reportFailure and training transactions; its publisher puts results on IPFS once final, with the
spool on disk as the copy a Redis loss cannot take."""
