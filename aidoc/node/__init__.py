"""What a compute node's two sides share: the chain side (aidoc.oracles: the watcher that turns
DiagnosisRequested logs into tasks, the sender that turns results into transactions, the publisher
that puts their ciphertexts on IPFS) and the compute side (aidoc.workers: the Celery app and its
tasks).

- `messages`: the tasks, jobs and results that pass between them, task names, queues, `dispatch()`;
- `runtime`: one process's identity, marketplace, store, Redis and outbox (NodeRuntime);
- `namespace`: where a node keeps its state in Redis, per chain (genesis block) and market;
- `outbox`: the reliable queues in Redis from the workers to the sender;
- `stages`: where a diagnosis spends its time (carried with the work, for `make bench`);
- `retry`: which failures are transient (worth retrying) and which are the input's fault;
- `service`: how the node's processes start, log and stop."""
