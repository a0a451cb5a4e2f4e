"""The marketplace's data flow, one module per step, as a patient, a provider, a node and a doctor
drive it (the CLI and the demo call these):

record (encrypt, store, register) -> consent (grant, revoke, list) -> model and node registration
-> request (escrow a diagnosis) -> [oracle: oracles/ and workers/] -> result (fetch, decrypt,
verify the commitment) -> payment and audit (who was paid, who used my data)."""
