"""The Celery application of a node's workers: `celery -A aidoc.workers.app worker`.

Redis is the broker. Tasks are acknowledged late (after they finish), so a task whose worker dies
is redelivered; Redis redelivers only after its visibility timeout, which the settings keep longer
than the task time limit so that a slow task is never run twice at once. A worker that starts takes
back at once what a killed predecessor on its node's queue left unacknowledged (aidoc.workers.recovery)."""

from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_after_setup

from aidoc.config import OracleSettings, ServiceSettings
from aidoc.node.messages import DIAGNOSIS_QUEUE


def make_app(services: ServiceSettings | None = None, oracle: OracleSettings | None = None) -> Celery:
    services = services or ServiceSettings()
    oracle = oracle or OracleSettings()
    app = Celery("aidoc", broker=services.redis_url, include=["aidoc.workers.tasks", "aidoc.workers.training"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,  # a killed worker's task goes back to the queue
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": oracle.visibility_timeout},
        broker_connection_retry_on_startup=True,
        task_time_limit=oracle.task_time_limit,
        # The soft limit raises inside the task, which then reports an internal failure (a refund)
        # instead of leaving the request to its deadline.
        task_soft_time_limit=max(1, oracle.task_time_limit - 10),
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=DIAGNOSIS_QUEUE,
        worker_concurrency=oracle.worker_concurrency,
    )
    return app


app = make_app()


@celeryd_after_setup.connect
def _restore_predecessors_tasks(sender: str, instance, **_: object) -> None:
    """Before this worker consumes anything (its -Q queues are set by now)."""
    from aidoc.workers.recovery import restore_for_worker

    restore_for_worker(instance.app, list(instance.app.amqp.queues.consume_from or {}))
