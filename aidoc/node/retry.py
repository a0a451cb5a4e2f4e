"""Which failures are worth retrying: services that are down, slow or busy (IPFS, the RPC endpoint,
Redis), as opposed to bad input, which ends a request with a reason code."""

from __future__ import annotations

import redis
import requests
from web3.exceptions import BadResponseFormat, TimeExhausted, Web3RPCError

from aidoc.errors import TransientError

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,  # includes StorageUnavailable and ContentUnreachable
    requests.exceptions.RequestException,  # the RPC endpoint unreachable or timing out
    Web3RPCError,  # JSON-RPC errors: rate limits, "header not found" behind a load balancer, ...
    BadResponseFormat,
    TimeExhausted,  # no receipt in time
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
