"""A worker that starts takes back the tasks its predecessor had taken and never acknowledged.

Tasks are acknowledged late, so a worker that is SIGKILLed (by the OOM killer, by an operator, by
the fault soak) leaves the tasks it held, running or waiting for a retry's countdown, in the Redis
transport's `unacked` hash. Redis hands them out again only after the visibility timeout (900 s by
default, longer than `aidoc diagnose` waits). A node's queue has one consumer, its own worker
(`aidoc node run` starts one per node), so whatever of that queue is unacknowledged when the worker
starts, before it consumes anything, was left by a worker that is gone: it goes back to the front of
the queue at once. The tasks are idempotent (a claim per request, and an on-chain re-read), so a
restored task that had in fact finished costs a re-read and nothing more."""

from __future__ import annotations

import base64
import json
import logging

import redis
from celery import Celery

from aidoc.node.messages import DIAGNOSE_TASK, is_node_queue

log = logging.getLogger(__name__)

UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag -> [message, exchange, routing key]


def restore_unacknowledged(app: Celery, queues: set[str]) -> int:
    """Puts the unacknowledged tasks of `queues` back on their queue; returns how many."""
    restored = 0
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for tag, raw in channel.client.hgetall(channel.unacked_key).items():
            try:
                _, exchange, routing_key = json.loads(raw)
            except (TypeError, ValueError):
                continue  # not a kombu delivery; not ours to touch
            if routing_key in queues or exchange in queues:
                channel.qos.restore_by_tag(tag, leftmost=True)
                restored += 1
    return restored


def restore_for_worker(app: Celery, consumed: list[str]) -> int:
    """At a worker's start: restores what a previous worker of the node queues it consumes left."""
    queues = {name for name in consumed if is_node_queue(name)}
    if not queues:
        return 0
    try:
        restored = restore_unacknowledged(app, queues)
    except Exception as error:  # noqa: BLE001 - Redis not there yet: the visibility timeout still redelivers
        log.warning("could not restore a previous worker's unacknowledged tasks (%s: %s); Redis redelivers them "
                    "after the visibility timeout", type(error).__name__, error)
        return 0
    if restored:
        log.warning("restored %d task(s) that a previous worker of this node had taken and not finished "
                    "(it stopped without acknowledging them)", restored)
    return restored


def unacknowledged_requests(client: redis.Redis, queue: str) -> list[int]:
    """The request ids in the diagnosis tasks of `queue` that a worker has taken and not yet
    acknowledged (running, or held for a retry's countdown): what a SIGKILL would leave behind."""
    ids: list[int] = []
    for raw in client.hvals(UNACKED_KEY):
        try:
            message, exchange, routing_key = json.loads(raw)
            if queue not in (routing_key, exchange) or message["headers"].get("task") != DIAGNOSE_TASK:
                continue
            args = json.loads(base64.b64decode(message["body"]))[0]
            ids += [int(job["request_id"]) for job in args[0]]
        except (TypeError, ValueError, KeyError, IndexError):
            continue
    return sorted(set(ids))
