"""The relayer's HTTP API, an ASGI app (Starlette) served by `aidoc relayer run` and mountable in
the web app:

    GET  /v1/status               the relayer's address, chain, registry, ETH balance, signer limit
    POST /v1/consent/grant        {recordId, grantee, purposes, expiry, deadline, signature}
    POST /v1/consent/revoke       {recordId, grantee, purposes, deadline, signature}

A relayed change answers 200 {signer, transactionHash, blockNumber}; a refusal answers its status
(400 a bad or wrong signature or a change the registry refuses, 409 another change of the same
owner in flight, 413 a body over 4 KiB, 429 the signer's limit, 502 the RPC endpoint, 503 the
relayer out of ETH or busy) with {"error": "<one line that says what to do>"}. At most
MAX_IN_FLIGHT changes are checked and sent at once; more answer 503 at once rather than queue."""

from __future__ import annotations

import json
import threading

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aidoc.errors import one_line
from aidoc.relayer.service import Relayer, RelayRefused, SignedConsentChange

MAX_BODY_BYTES = 4096
MAX_IN_FLIGHT = 8  # relays checked and sent at once (each holds a thread while its transaction mines)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 past `limit` bytes before more than that is read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RelayRefused(413, f"the body is over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RelayRefused(413, f"the body is over {limit} bytes")
    return body


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested a few thousand deep
        raise RelayRefused(400, "the body is not JSON") from None


def relayer_app(relayer: Relayer) -> Starlette:
    async def status(_: Request) -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(relayer.status))
        except RelayRefused as refused:
            return JSONResponse({"error": one_line(refused)}, status_code=refused.status)

    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)

    async def relay(request: Request, *, grant: bool) -> JSONResponse:
        try:
            change = SignedConsentChange.parse(parse_json(await read_body(request, MAX_BODY_BYTES)), grant=grant)
            if not slots.acquire(blocking=False):
                raise RelayRefused(503, f"the relayer is busy with {MAX_IN_FLIGHT} changes; try again in a few seconds")
            try:
                return JSONResponse(await run_in_threadpool(relayer.relay, change))
            finally:
                slots.release()
        except RelayRefused as refused:
            return JSONResponse({"error": one_line(refused)}, status_code=refused.status)

    async def grant(request: Request) -> JSONResponse:
        return await relay(request, grant=True)

    async def revoke(request: Request) -> JSONResponse:
        return await relay(request, grant=False)

    return Starlette(routes=[
        Route("/v1/status", status, methods=["GET"]),
        Route("/v1/consent/grant", grant, methods=["POST"]),
        Route("/v1/consent/revoke", revoke, methods=["POST"]),
    ])
