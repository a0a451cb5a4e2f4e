"""Celery tasks. `diagnose` takes a batch of requests (what the watcher saw in one pass, up to
AIDOC_TASK_BATCH): their chain reads go in one JSON-RPC batch and their outcomes into the outbox in
one Redis transaction, so the per-task costs (a round trip, Redis commands, Celery's bookkeeping)
are paid once per batch rather than once per request.

It is idempotent. A claim in Redis per request keeps two deliveries from both working on it: a
redelivery of the same task after its worker died keeps the claim and goes on; once a request's
outcome is in the outbox its claim says so, in the same transaction, and no delivery redoes it.
Each request is also re-read on-chain first, and what is no longer pending is skipped."""

from __future__ import annotations

import logging
import time

import redis

from aidoc.constants import FailureReason
from aidoc.node.messages import DIAGNOSE_TASK, DiagnosisJob, OutboxItem
from aidoc.node.retry import TRANSIENT_ERRORS
from aidoc.node.stages import Stages
from aidoc.workers.app import app
from aidoc.workers.diagnosis import Diagnosed, Outcome, read_chain, run_diagnosis
from aidoc.workers.runtime import WorkerState, worker_state

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60
HANDLED = b"handled"  # a claim's value once the request's outcome is in the outbox


@app.task(bind=True, name=DIAGNOSE_TASK, acks_late=True, reject_on_worker_lost=True)
def diagnose(self, jobs_data: list[dict]) -> dict[str, int]:
    jobs = list({job.request_id: job for job in map(DiagnosisJob.from_json, jobs_data)}.values())
    state = worker_state()
    runtime = state.runtime
    ttl = runtime.oracle.visibility_timeout
    claims = {job.request_id: runtime.namespace.claim(job.request_id) for job in jobs}
    held, ended = _claim(runtime.redis, jobs, claims, self.request.id, ttl)
    outcomes, retry, last_error = _run(state, held, self.request.retries)
    for job, diagnosed in outcomes:
        ended[job.request_id] = diagnosed.outcome
    pipe = runtime.redis.pipeline(transaction=True)  # the outcomes and the claims that record them: all or nothing
    runtime.outbox.push_many([diagnosed.item for _, diagnosed in outcomes if diagnosed.item], pipe)
    for job, _ in outcomes:
        pipe.set(claims[job.request_id], HANDLED, ex=ttl)
    pipe.execute()
    for request_id, outcome in ended.items():
        log.info("request %d: %s", request_id, outcome.value)
    if retry:
        retries = self.request.retries
        countdown = min(MAX_BACKOFF_S, 2**retries)
        log.warning("%d request(s) (%s): %s; retrying in %d s", len(retry), ", ".join(str(j.request_id) for j in retry),
                    last_error, countdown)
        raise self.retry(args=[[job.to_json() for job in retry]], exc=last_error, countdown=countdown,
                         max_retries=runtime.oracle.task_max_retries + 1)
    summary: dict[str, int] = {}
    for outcome in ended.values():
        summary[outcome.value] = summary.get(outcome.value, 0) + 1
    return summary


def _run(state: WorkerState, jobs: list[DiagnosisJob],
         retries: int) -> tuple[list[tuple[DiagnosisJob, Diagnosed]], list[DiagnosisJob], Exception | None]:
    """Each job's outcome, and the jobs to retry after a transient error (with the last such error).
    A job that has used up its retries, or that hits a bug, ends as an internal failure: a refund
    now rather than an escrow left to time out."""
    runtime = state.runtime
    give_up = retries >= runtime.oracle.task_max_retries
    outcomes: list[tuple[DiagnosisJob, Diagnosed]] = []
    retry: list[DiagnosisJob] = []
    last_error: Exception | None = None

    def failed(job: DiagnosisJob) -> None:
        outcomes.append((job, Diagnosed(Outcome.FAILURE_QUEUED, OutboxItem.failure(
            job.request_id, job.request, FailureReason.INTERNAL_ERROR))))

    def transient(job: DiagnosisJob, error: Exception) -> None:
        nonlocal last_error
        if give_up:
            log.error("request %d: giving up after %d retries (%s); reporting a failure", job.request_id, retries,
                      error)
            failed(job)
        else:
            retry.append(job)
            last_error = error

    started = time.perf_counter()
    try:
        views = read_chain(runtime.marketplace, jobs)
    except TRANSIENT_ERRORS as error:
        for job in jobs:
            transient(job, error)
        return outcomes, retry, last_error
    except Exception:  # noqa: BLE001 - a bug, not the input's fault
        log.exception("requests %s: unexpected error reading the chain; reporting internal failures",
                      [job.request_id for job in jobs])
        for job in jobs:
            failed(job)
        return outcomes, retry, last_error
    chain_ms = (time.perf_counter() - started) * 1000 / max(1, len(jobs))  # the batch's time, shared out
    for job, view in zip(jobs, views):
        stages = Stages()
        if job.dispatched_at:
            stages.add("queue", max(0.0, (time.time() - job.dispatched_at) * 1000))
        stages.add("chain", chain_ms)
        try:
            outcomes.append((job, run_diagnosis(state, job, view, stages)))
        except TRANSIENT_ERRORS as error:
            transient(job, error)
        except Exception:  # noqa: BLE001 - a bug, not the input's fault
            log.exception("request %d: unexpected error; reporting an internal failure", job.request_id)
            failed(job)
    return outcomes, retry, last_error


def _claim(client: redis.Redis, jobs: list[DiagnosisJob], claims: dict[int, str], task_id: str,
           ttl: int) -> tuple[list[DiagnosisJob], dict[int, Outcome]]:
    """The jobs this task holds (or now takes) the claim of, and how the others ended here."""
    pipe = client.pipeline(transaction=False)
    for job in jobs:
        pipe.set(claims[job.request_id], task_id, nx=True, ex=ttl)
        pipe.get(claims[job.request_id])
    holders = pipe.execute()[1::2]
    held: list[DiagnosisJob] = []
    ended: dict[int, Outcome] = {}
    for job, holder in zip(jobs, holders):
        if holder is not None and holder.decode() == task_id:
            held.append(job)
        else:
            ended[job.request_id] = Outcome.ALREADY_HANDLED if holder == HANDLED else Outcome.DUPLICATE
    return held, ended
