"""The relayer's HTTP API, an ASGI app (Starlette) served by `aidoc relayer run` and mountable in
the web app:

    GET  /v1/status               the relayer's address, chain, registry, ETH balance, signer limit
    POST /v1/consent/grant        {recordId, grantee, purposes, expiry, deadline, signature}
    POST /v1/consent/revoke       {recordId, grantee, purposes, deadline, signature}

A relayed change answers 200 {signer, transactionHash, blockNumber}; a refusal answers its status
(400 a bad or wrong signature or a change the registry refuses, 429 the signer's limit, 502 the
RPC endpoint, 503 the relayer out of ETH) with {"error": "<one line that says what to do>"}."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aidoc.errors import one_line
from aidoc.relayer.service import Relayer, RelayRefused, SignedConsentChange

MAX_BODY_BYTES = 4096


def relayer_app(relayer: Relayer) -> Starlette:
    async def status(_: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(relayer.status))

    async def relay(request: Request, *, grant: bool) -> JSONResponse:
        body = await request.body()
        try:
            if len(body) > MAX_BODY_BYTES:
                raise RelayRefused(413, f"the body is over {MAX_BODY_BYTES} bytes")
            try:
                parsed = json.loads(body)
            except ValueError:
                raise RelayRefused(400, "the body is not JSON") from None
            change = SignedConsentChange.parse(parsed, grant=grant)
            return JSONResponse(await run_in_threadpool(relayer.relay, change))
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
