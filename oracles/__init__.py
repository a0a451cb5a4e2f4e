"""A node's bridge to the chain: the watcher turns DiagnosisRequested logs into worker tasks, and
the sender turns finished work into fulfilBatch and reportFailure transactions."""
