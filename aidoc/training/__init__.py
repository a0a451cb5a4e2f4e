"""Training without taking the data: DP-SGD on a consented cohort inside a node's worker
(compute-to-data jobs, TrainingMarket) and federated averaging across institutions' nodes
(FederatedRounds). Only model weights and metrics ever leave the worker.

- `private.py`: DP-SGD (opacus) of the panel MLP within an (epsilon, delta) budget;
- `federated.py`: local rounds, FedAvg weighted by samples, and its verification from the updates;
- `cohort.py`: the cohort a job may use (consent, data type, each record's epsilon budget), its salted
  commitment and `verify_cohort` for auditors; a federated round's checks and its verified updates;
- `data.py`: the Wisconsin diagnostic panels split across institutions, non-IID, for the demo and tests.
"""
