"""`aidoc web`: the web app's ASGI server (Starlette on uvicorn).

It serves the built front-end (build/web, web/static) under a strict Content-Security-Policy (no
third-party request of any kind: the page talks to this origin and to the user's own wallet), and a
read-only JSON API over the indexer's database:

    GET  /api/status                               chain, contracts and ABIs, indexed block
    GET  /api/patients/{address}/records|consents|audit|royalties
    GET  /api/grantees/{address}/records           records consented to an address
    GET  /api/requesters/{address}/requests        a requester's requests and their status
    GET  /api/requests/{id}
    GET  /api/models   /api/nodes
    GET  /api/events?address=&tx=&block=           the explorer
    GET  /api/search?q=                            a tx hash, an address, a request or record id
    GET  /api/ipfs/{cid}                           ciphertext (records, envelopes, sealed results)
    POST /api/ipfs?kind=record|envelope|weights    ciphertext (or public weights) to the configured IPFS

Lists take ?offset=&limit= (at most 200). Errors answer {"error": "<one line>"}. The server holds
no user key: signed consent changes go to the relayer (AIDOC_RELAYER_URL) through /relay/."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from aidoc.chain.contracts import Marketplace
from aidoc.crypto.envelope import RECORD_MAGIC
from aidoc.errors import AidocError, one_line
from aidoc.storage import parse_cid
from aidoc.storage.base import ContentStore
from aidoc.web import queries
from aidoc.web.indexer import Indexer
from aidoc.web.queries import Page

log = logging.getLogger("aidoc.web")

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"}
PAGES = ("patient", "doctor", "provider", "node", "explorer", "market")


class BadQuery(AidocError):
    """A request to the API with a malformed address, id, page or body."""

    status = 400


def address_of(request: Request) -> str:
    address = request.path_params["address"]
    if not ADDRESS.match(address):
        raise BadQuery(f"{address[:50]!r} is not an address (0x and 40 hex digits)")
    return address


def page_of(request: Request) -> Page:
    try:
        return Page(int(request.query_params.get("offset", 0)), int(request.query_params.get("limit", queries.DEFAULT_LIMIT)))
    except ValueError:
        raise BadQuery(f"offset must be 0 or more and limit between 1 and {queries.MAX_LIMIT}") from None


def check_upload(kind: str, body: bytes) -> None:
    """Refuses anything that is not ciphertext, a key envelope or model weights: the server never
    relays a plaintext record to IPFS, even by mistake."""
    if kind == "record":
        if not body.startswith(RECORD_MAGIC):
            raise BadQuery("a record upload must be an AIDoc record ciphertext (encrypt it in the page first)")
    elif kind == "envelope":
        try:
            envelope = json.loads(body)
            recipients = envelope["recipients"]
            valid = envelope["version"] == 1 and isinstance(recipients, dict) and recipients and all(
                re.fullmatch(r"[0-9a-f]{64}", key) and isinstance(box, str) and len(box) < 200
                for key, box in recipients.items())
        except (ValueError, KeyError, TypeError, RecursionError):
            valid = False
        if not valid:
            raise BadQuery("a key envelope upload must be {version: 1, recipients: {x25519 key hex: sealed box}}")
    elif kind == "weights":
        header_length = int.from_bytes(body[:8], "little") if len(body) >= 8 else 0
        if not 2 <= header_length <= len(body) - 8 or body[8:9] != b"{":
            raise BadQuery("model weights must be a safetensors file")
    else:
        raise BadQuery("kind must be record, envelope or weights")


def web_app(marketplace: Marketplace, engine: Engine, store: ContentStore, *, indexer: Indexer | None = None,
            static_dirs: tuple[Path, ...] = (), relayer_url: str = "", max_upload: int = 16 * 1024 * 1024) -> Starlette:
    """The app; `indexer`, when given, is started and stopped with it."""

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                answer = await run_in_threadpool(handler, request)
            except BadQuery as mistake:
                return JSONResponse({"error": one_line(mistake)}, status_code=400, headers=SECURITY_HEADERS)
            except AidocError as failure:
                return JSONResponse({"error": one_line(failure)}, status_code=502, headers=SECURITY_HEADERS)
            except Exception:  # noqa: BLE001 - a bug here must not take the page down with a traceback
                log.exception("the API failed %s", request.url.path)
                return JSONResponse({"error": "the server failed this query; its log says why"}, status_code=500,
                                    headers=SECURITY_HEADERS)
            if answer is None:
                return JSONResponse({"error": "not found"}, status_code=404, headers=SECURITY_HEADERS)
            return JSONResponse(answer, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
        return endpoint

    contracts = {label: {"address": getattr(marketplace, attr).address, "abi": getattr(marketplace, attr).abi}
                 for attr, label in (("token", "AIDToken"), ("consents", "ConsentRegistry"), ("models", "ModelRegistry"),
                                     ("nodes", "NodeRegistry"), ("market", "DiagnosisMarket"))}

    def status(_: Request) -> dict:
        return {"chainId": marketplace.chain_id, "indexedBlock": indexer.indexed_block() if indexer else None,
                "deploymentBlock": marketplace.deployment.block_number, "contracts": contracts,
                "relayer": bool(relayer_url)}

    def patient(view: str) -> Callable[[Request], Any]:
        def handler(request: Request) -> Any:
            address = address_of(request)
            if view == "royalties":
                return queries.royalties_of(engine, address)
            return {"records": queries.records_of, "consents": queries.consents_of,
                    "audit": queries.audit_trail}[view](engine, address, page_of(request))
        return handler

    def request_detail(request: Request) -> Any:
        value = request.path_params["request_id"]
        if not value.isdigit() or len(value) > 18:
            raise BadQuery(f"{value[:30]!r} is not a request id")
        return queries.request_detail(engine, int(value))

    def explorer(request: Request) -> Any:
        params = request.query_params
        address, tx, block = params.get("address"), params.get("tx"), params.get("block")
        if address and not ADDRESS.match(address):
            raise BadQuery("address must be 0x and 40 hex digits")
        if tx and not TX_HASH.match(tx):
            raise BadQuery("tx must be 0x and 64 hex digits")
        if block and not block.isdigit():
            raise BadQuery("block must be a block number")
        return queries.latest_events(engine, page_of(request), address=address, tx=tx,
                                     block=int(block) if block else None)

    def search(request: Request) -> Any:
        q = request.query_params.get("q", "").strip()
        if TX_HASH.match(q):
            return {"kind": "transaction", "events": queries.latest_events(engine, Page(), tx=q)}
        if ADDRESS.match(q):
            return {"kind": "address", "address": q, "roles": queries.roles_of(engine, q),
                    "events": queries.latest_events(engine, Page(), address=q)}
        if q.isdigit() and len(q) <= 18:
            return {"kind": "id", "request": queries.request_detail(engine, int(q)), "record": _record(int(q))}
        raise BadQuery("search for a transaction hash, an address, or a request or record id")

    def _record(record_id: int) -> Any:
        return queries.record_events(engine, record_id) or None

    def fetch(request: Request) -> Response:
        cid = request.path_params["cid"]
        try:
            parse_cid(cid)
        except (AidocError, ValueError):
            raise BadQuery(f"{cid[:60]!r} is not a CID") from None
        return Response(store.cat(cid, max_size=max_upload), media_type="application/octet-stream",
                        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"})

    async def fetch_endpoint(request: Request) -> Response:
        try:
            return await run_in_threadpool(fetch, request)
        except BadQuery as mistake:
            return JSONResponse({"error": one_line(mistake)}, status_code=400, headers=SECURITY_HEADERS)
        except AidocError as failure:
            return JSONResponse({"error": one_line(failure)}, status_code=404, headers=SECURITY_HEADERS)

    async def upload(request: Request) -> Response:
        kind = request.query_params.get("kind", "")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_upload):
            return JSONResponse({"error": f"the upload is over {max_upload} bytes"}, status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload:
                return JSONResponse({"error": f"the upload is over {max_upload} bytes"}, status_code=413)
        try:
            check_upload(kind, body)
            cid = await run_in_threadpool(store.add, body)
        except BadQuery as mistake:
            return JSONResponse({"error": one_line(mistake)}, status_code=400, headers=SECURITY_HEADERS)
        except AidocError as failure:
            return JSONResponse({"error": one_line(failure)}, status_code=502, headers=SECURITY_HEADERS)
        return JSONResponse({"cid": cid, "size": len(body)}, headers=SECURITY_HEADERS)

    async def relay(request: Request) -> Response:
        if not relayer_url:
            return JSONResponse({"error": "this server has no relayer (AIDOC_RELAYER_URL): send the consent "
                                          "change as a transaction from your wallet"}, status_code=503)
        path = request.path_params["path"]
        if path not in ("v1/status", "v1/consent/grant", "v1/consent/revoke"):
            return JSONResponse({"error": "not a relayer endpoint"}, status_code=404)
        body = await request.body() if request.method == "POST" else None
        try:
            async with httpx.AsyncClient(timeout=120) as client:
                answer = await client.request(request.method, f"{relayer_url}/{path}", content=body,
                                              headers={"content-type": "application/json"})
            return Response(answer.content, status_code=answer.status_code, media_type="application/json",
                            headers=SECURITY_HEADERS)
        except httpx.HTTPError:
            return JSONResponse({"error": "the relayer does not answer; try again later or send a transaction"},
                                status_code=502)

    def static(name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(_: Request) -> Response:
            for folder in static_dirs:
                path = folder / name
                if path.is_file():
                    return FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
            return JSONResponse({"error": f"{name} is not built: run `make web-build`"}, status_code=404)
        return endpoint

    routes = [
        Route("/api/status", api(status)),
        *[Route(f"/api/patients/{{address}}/{view}", api(patient(view)))
          for view in ("records", "consents", "audit", "royalties")],
        Route("/api/grantees/{address}/records",
              api(lambda r: queries.consented_to(engine, address_of(r), page_of(r)))),
        Route("/api/requesters/{address}/requests",
              api(lambda r: queries.requests_of(engine, address_of(r), page_of(r)))),
        Route("/api/requests/{request_id}", api(request_detail)),
        Route("/api/models", api(lambda r: queries.models(engine, page_of(r)))),
        Route("/api/nodes", api(lambda r: queries.nodes(engine, page_of(r)))),
        Route("/api/events", api(explorer)),
        Route("/api/search", api(search)),
        Route("/api/ipfs/{cid}", fetch_endpoint, methods=["GET"]),
        Route("/api/ipfs", upload, methods=["POST"]),
        Route("/relay/{path:path}", relay, methods=["GET", "POST"]),
        Route("/", static("index.html")),
        *[Route(f"/{page}", static("index.html")) for page in PAGES],
        *[Route(f"/{name}", static(name)) for name in ("app.js", "app.js.map", "app.css")],
    ]

    async def lifespan(_: Starlette):
        if indexer is not None:
            indexer.start()
        yield
        if indexer is not None:
            indexer.stop()

    return Starlette(routes=routes, lifespan=lifespan)
