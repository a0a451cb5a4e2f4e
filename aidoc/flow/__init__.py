"""The marketplace's data flow, one module per step, as a patient, a provider, a node and a doctor
drive it (the CLI and the demos call these):

record (encrypt, store, register) -> consent (grant, revoke, list) -> model and node registration
-> request (escrow a diagnosis) -> [the node: aidoc.oracles and aidoc.workers, sharing aidoc.node]
-> result (fetch, decrypt, verify the commitment) -> payment and audit (who was paid, who used my
data); training (a compute-to-data job or a federated training, and its provenance)."""
