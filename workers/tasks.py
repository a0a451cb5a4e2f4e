"""Celery tasks. `diagnose` is idempotent: it re-reads the request on-chain first and skips what is
no longer pending, and a claim in Redis keeps two deliveries of one request from both working on it
(a redelivery of the same task after its worker died keeps the claim and goes on)."""

from __future__ import annotations

import logging

import redis

from aidoc.constants import FailureReason
from aidoc.market import DiagnosisJob
from aidoc.outbox import OutboxItem
from aidoc.transient import TRANSIENT_ERRORS
from workers.app import DIAGNOSE_TASK, app
from workers.diagnosis import Outcome, run_diagnosis
from workers.runtime import worker_state

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60


@app.task(bind=True, name=DIAGNOSE_TASK, acks_late=True, reject_on_worker_lost=True)
def diagnose(self, job_data: dict) -> str:
    job = DiagnosisJob.from_json(job_data)
    state = worker_state()
    runtime = state.runtime
    claim_key = f"aidoc:{runtime.address.lower()}:claim:{job.request_id}"
    try:
        if _claim(runtime.redis, claim_key, self.request.id, runtime.oracle.visibility_timeout):
            outcome = run_diagnosis(state, job)
        else:
            outcome = Outcome.DUPLICATE
    except TRANSIENT_ERRORS as error:
        retries = self.request.retries
        if retries >= runtime.oracle.task_max_retries:
            log.error("request %d: giving up after %d retries (%s); reporting a failure", job.request_id, retries,
                      error)
            runtime.outbox.push(OutboxItem.failure(job.request_id, job.request, FailureReason.INTERNAL_ERROR))
            return Outcome.FAILURE_QUEUED.value
        countdown = min(MAX_BACKOFF_S, 2**retries)
        log.warning("request %d: %s; retrying in %d s", job.request_id, error, countdown)
        raise self.retry(exc=error, countdown=countdown, max_retries=runtime.oracle.task_max_retries + 1)
    except Exception:  # a bug, not the input's fault: refund now rather than leave the escrow to time out
        log.exception("request %d: unexpected error; reporting an internal failure", job.request_id)
        runtime.outbox.push(OutboxItem.failure(job.request_id, job.request, FailureReason.INTERNAL_ERROR))
        return Outcome.FAILURE_QUEUED.value
    log.info("request %d: %s", job.request_id, outcome.value)
    return outcome.value


def _claim(client: redis.Redis, key: str, task_id: str, ttl: int) -> bool:
    """True when this task holds (or now takes) the request's claim."""
    if client.set(key, task_id, nx=True, ex=ttl):
        return True
    holder = client.get(key)
    return holder is not None and holder.decode() == task_id
