"""The compute side of a compute node (installed as aidoc.workers): the Celery app and its tasks,
which take a diagnosis request from event to sealed result (diagnosis) and run training jobs and
federated rounds (training). They hand what they produce to the sender through the node's outbox."""
