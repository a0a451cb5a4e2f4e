"""What the web app's API answers, as queries over the indexed events (aidoc.web.database).

Every list is paged (`Page`: offset and limit, at most MAX_LIMIT items) and newest first. Only what
the chain made public is returned: ids, CIDs, hashes, addresses, amounts and statuses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Engine, and_, func, select

from aidoc.web.database import event_addresses, events

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# The events that end a request, and the status each gives it.
REQUEST_OUTCOMES = {"DiagnosisFulfilled": "fulfilled", "DiagnosisFailed": "failed", "DiagnosisCancelled": "cancelled"}
RECORD_TRAIL = ("RecordRegistered", "ConsentGranted", "ConsentRevoked", "RecordAccessed", "RecordRetired",
                "KeyEnvelopeUpdated", "RoyaltyUpdated", "EpsilonLimitSet", "RecordUsedForTraining")
NODE_EVENTS = ("NodeRegistered", "StakeAdded", "NodeUpdated", "UnbondingStarted", "StakeWithdrawn", "NodeSlashed",
               "NodeEarningsWithdrawn", "ReputationSynced")


@dataclass(frozen=True)
class Page:
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.offset < 0 or not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"offset must be 0 or more and limit between 1 and {MAX_LIMIT}")

    def answer(self, items: list[Any], total: int) -> dict[str, Any]:
        following = self.offset + len(items)
        return {"items": items, "total": total, "offset": self.offset,
                "next": following if following < total else None}


def event_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "block": row.block_number, "tx": row.tx_hash, "logIndex": row.log_index,
            "time": row.timestamp, "contract": row.contract, "name": row.name, "args": row.args}


def _named_by(address: str, role: str, name: str):
    """The ids of the events called `name` that name `address` as `role`."""
    return (select(event_addresses.c.event_id)
            .join(events, events.c.id == event_addresses.c.event_id)
            .where(event_addresses.c.address == address.lower(), event_addresses.c.role == role, events.c.name == name))


def _records_of(owner: str):
    return select(events.c.record_id).where(events.c.id.in_(_named_by(owner, "owner", "RecordRegistered")))


def _count(connection, query) -> int:
    return connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()


def _by_record(connection, record_ids: Iterable[int], names: Iterable[str]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    ids = list(record_ids)
    if ids:
        for row in connection.execute(select(events).where(events.c.record_id.in_(ids), events.c.name.in_(tuple(names)))
                                      .order_by(events.c.id)):
            found[row.record_id].append(row)
    return found


def records_of(engine: Engine, owner: str, page: Page) -> dict[str, Any]:
    """A patient's records with their current consents, newest first."""
    query = select(events).where(events.c.id.in_(_named_by(owner, "owner", "RecordRegistered")))
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
        history = _by_record(connection, [row.record_id for row in rows], RECORD_TRAIL)
    items = []
    for row in rows:
        trail = history.get(row.record_id, [])
        items.append({
            "recordId": row.record_id, "dataType": row.args["dataType"], "ciphertextCid": row.args["ciphertextCid"],
            "keyEnvelopeCid": _latest(trail, "KeyEnvelopeUpdated", "keyEnvelopeCid", row.args["keyEnvelopeCid"]),
            "royalty": _latest(trail, "RoyaltyUpdated", "royalty", row.args["royalty"]),
            "retired": any(event.name == "RecordRetired" for event in trail),
            "registered": {"block": row.block_number, "tx": row.tx_hash, "time": row.timestamp},
            "consents": consent_state(trail),
            "accesses": sum(1 for event in trail if event.name == "RecordAccessed"),
        })
    return page.answer(items, total)


def _latest(trail: list[Any], name: str, arg: str, default: Any) -> Any:
    values = [event.args[arg] for event in trail if event.name == name]
    return values[-1] if values else default


def consent_state(trail: list[Any]) -> list[dict[str, Any]]:
    """The consents in force after `trail` (one record's events, oldest first): per grantee, the
    purposes granted and not revoked, and the expiry of the last grant."""
    granted: dict[str, dict[str, Any]] = {}
    for event in trail:
        grantee = event.args.get("grantee")
        if event.name == "ConsentGranted":
            granted[grantee] = {"grantee": grantee, "purposes": int(event.args["purposes"]),
                                "expiry": int(event.args["expiry"]), "since": event.timestamp}
        elif event.name == "ConsentRevoked" and grantee in granted:
            granted[grantee]["purposes"] &= ~int(event.args["purposes"])
            if not granted[grantee]["purposes"]:
                del granted[grantee]
    return list(granted.values())


def consents_of(engine: Engine, owner: str, page: Page) -> dict[str, Any]:
    """The consents in force on a patient's records, one item per record and grantee."""
    with engine.connect() as connection:
        record_ids = [row[0] for row in connection.execute(_records_of(owner).order_by(events.c.record_id.desc()))]
        history = _by_record(connection, record_ids, ("ConsentGranted", "ConsentRevoked"))
    items = [{"recordId": record_id, **consent} for record_id in record_ids for consent in consent_state(history[record_id])]
    return page.answer(items[page.offset:page.offset + page.limit], len(items))


def audit_trail(engine: Engine, owner: str, page: Page) -> dict[str, Any]:
    """Everything that happened to a patient's records, newest first: registered, consent granted
    and revoked, accessed (by whom, through which node, for which request), retired."""
    query = select(events).where(events.c.record_id.in_(_records_of(owner)), events.c.name.in_(RECORD_TRAIL))
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
    return page.answer([event_json(row) for row in rows], total)


def royalties_of(engine: Engine, owner: str) -> dict[str, Any]:
    """What a patient's records earned: the royalty of every fulfilled request on them."""
    with engine.connect() as connection:
        requested = connection.execute(
            select(events.c.request_id, events.c.args).where(events.c.id.in_(_named_by(owner, "dataOwner", "DiagnosisRequested")))
        ).all()
        fulfilled = _outcomes(connection, [row.request_id for row in requested])
    earned = sum(int(row.args["request"]["royalty"]) for row in requested
                 if fulfilled.get(row.request_id, {}).get("status") == "fulfilled")
    return {"earned": str(earned), "fulfilledRequests": sum(1 for o in fulfilled.values() if o["status"] == "fulfilled")}


def _outcomes(connection, request_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The outcome of each request that has one: status, and the result's CID and commitment, the
    failure's reason code or the refund's cause."""
    outcomes: dict[int, dict[str, Any]] = {}
    if not request_ids:
        return outcomes
    rows = connection.execute(select(events).where(events.c.request_id.in_(request_ids),
                                                   events.c.name.in_(tuple(REQUEST_OUTCOMES))).order_by(events.c.id))
    for row in rows:
        outcome = {"status": REQUEST_OUTCOMES[row.name], "block": row.block_number, "tx": row.tx_hash, "time": row.timestamp}
        if row.name == "DiagnosisFulfilled":
            outcome.update(resultCid=row.args["resultCid"], resultCommitment=row.args["resultCommitment"])
        elif row.name == "DiagnosisFailed":
            outcome.update(reason=int(row.args["reason"]))
        else:
            outcome.update(timedOut=bool(row.args["timedOut"]))
        outcomes[row.request_id] = outcome
    return outcomes


def request_json(row: Any, outcome: dict[str, Any] | None) -> dict[str, Any]:
    terms = row.args["request"]
    return {"requestId": row.request_id, "recordId": int(terms["recordId"]), "modelId": int(terms["modelId"]),
            "requester": terms["requester"], "node": terms["node"], "provider": terms["provider"],
            "dataOwner": terms["dataOwner"], "modelFee": str(terms["modelFee"]), "royalty": str(terms["royalty"]),
            "nodeFee": str(terms["nodeFee"]), "deadline": int(terms["deadline"]), "resultKey": row.args["resultKey"],
            "requested": {"block": row.block_number, "tx": row.tx_hash, "time": row.timestamp},
            "status": outcome["status"] if outcome else "pending", "outcome": outcome}


def requests_of(engine: Engine, requester: str, page: Page) -> dict[str, Any]:
    """A requester's diagnosis requests with their status, newest first."""
    query = select(events).where(events.c.id.in_(_named_by(requester, "requester", "DiagnosisRequested")))
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
        outcomes = _outcomes(connection, [row.request_id for row in rows])
    return page.answer([request_json(row, outcomes.get(row.request_id)) for row in rows], total)


def request_detail(engine: Engine, request_id: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(select(events).where(events.c.request_id == request_id,
                                                      events.c.name == "DiagnosisRequested")).first()
        if row is None:
            return None
        outcome = _outcomes(connection, [request_id]).get(request_id)
        trail = connection.execute(select(events).where(events.c.request_id == request_id).order_by(events.c.id)).all()
    return {**request_json(row, outcome), "events": [event_json(event) for event in trail]}


def consented_to(engine: Engine, grantee: str, page: Page) -> dict[str, Any]:
    """The records whose owners granted `grantee` a consent still in force (by the events; the
    chain checks expiry and retirement again when a request is made)."""
    with engine.connect() as connection:
        record_ids = [row[0] for row in connection.execute(
            select(events.c.record_id).where(events.c.id.in_(_named_by(grantee, "grantee", "ConsentGranted")))
            .distinct().order_by(events.c.record_id.desc()))]
        history = _by_record(connection, record_ids, RECORD_TRAIL)
    items = []
    for record_id in record_ids:
        trail = history[record_id]
        mine = [c for c in consent_state(trail) if c["grantee"].lower() == grantee.lower()]
        registered = next((event for event in trail if event.name == "RecordRegistered"), None)
        if mine and registered is not None and not any(event.name == "RecordRetired" for event in trail):
            items.append({"recordId": record_id, "owner": registered.args["owner"],
                          "dataType": registered.args["dataType"], **mine[0]})
    return page.answer(items[page.offset:page.offset + page.limit], len(items))


def models(engine: Engine, page: Page) -> dict[str, Any]:
    """Every model with its price, input type, ratings, usage and suspension history."""
    query = select(events).where(events.c.name == "ModelRegistered")
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
        ids = [row.model_id for row in rows]
        history: dict[int, list[Any]] = defaultdict(list)
        usage: dict[int, int] = {}
        if ids:
            for event in connection.execute(select(events).where(
                    events.c.model_id.in_(ids), events.c.name != "DiagnosisRequested").order_by(events.c.id)):
                history[event.model_id].append(event)
            usage = dict(connection.execute(select(events.c.model_id, func.count()).where(
                events.c.model_id.in_(ids), events.c.name == "DiagnosisRequested").group_by(events.c.model_id)).all())
    return page.answer([model_json(row, history[row.model_id], usage.get(row.model_id, 0)) for row in rows], total)


def model_json(row: Any, trail: list[Any], usage: int) -> dict[str, Any]:
    ratings = [int(event.args["score"]) for event in trail if event.name == "ModelRated"]
    audits = [{"action": event.name.removeprefix("Model").lower(), "auditor": event.args.get("auditor"),
               "reason": event.args.get("reason"), "time": event.timestamp, "tx": event.tx_hash}
              for event in trail if event.name in ("ModelSuspended", "ModelReinstated")]
    args = row.args
    return {"modelId": row.model_id, "provider": args["provider"], "name": args["name"], "version": args["version"],
            "weightsCid": args["weightsCid"], "weightsSha256": args["weightsSha256"], "inputType": args["inputType"],
            "price": str(_latest(trail, "ModelPriceUpdated", "price", args["price"])),
            "priceHistory": [{"price": str(e.args["price"]), "time": e.timestamp} for e in trail if e.name == "ModelPriceUpdated"],
            "rating": round(sum(ratings) / len(ratings), 2) if ratings else None, "ratings": len(ratings),
            "usage": usage, "suspended": bool(audits) and audits[-1]["action"] == "suspended",
            "deactivated": any(e.name == "ModelDeactivated" for e in trail), "auditorActions": audits,
            "registered": {"block": row.block_number, "tx": row.tx_hash, "time": row.timestamp}}


def nodes(engine: Engine, page: Page) -> dict[str, Any]:
    """Every registered node: stake, fee, capabilities, unbonding, slashing, work done."""
    query = select(events).where(events.c.name == "NodeRegistered")
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
        addresses = [row.args["node"].lower() for row in rows]
        trail: dict[str, list[Any]] = defaultdict(list)
        work: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        if addresses:
            for event in connection.execute(
                    select(event_addresses.c.address, events).join(events, events.c.id == event_addresses.c.event_id)
                    .where(event_addresses.c.address.in_(addresses), event_addresses.c.role == "node").order_by(events.c.id)):
                address = event.address
                if event.name in NODE_EVENTS:
                    trail[address].append(event)
                elif event.name in ("DiagnosisRequested", "DiagnosisFailed"):
                    work[address][event.name] += 1
                if event.name == "DiagnosisRequested":
                    work[address]["last_request"] = max(work[address]["last_request"], event.timestamp or 0)
    return page.answer([node_json(row, trail[row.args["node"].lower()], work[row.args["node"].lower()]) for row in rows],
                       total)


def node_json(row: Any, trail: list[Any], work: dict[str, int]) -> dict[str, Any]:
    stake, fee, inputs, gpu, key = (row.args["stake"], row.args["fee"], row.args["inputTypes"], row.args["gpu"],
                                    row.args["encryptionKey"])
    unbonding_end, slashed = None, []
    for event in trail:
        if event.name in ("StakeAdded", "UnbondingStarted"):
            stake = event.args["stake"]
        if event.name == "UnbondingStarted":
            unbonding_end = event.args["unbondingEnd"]
        if event.name == "NodeUpdated":
            fee, inputs, gpu, key = event.args["fee"], event.args["inputTypes"], event.args["gpu"], event.args["encryptionKey"]
        if event.name == "StakeWithdrawn":
            stake = 0
        if event.name == "NodeSlashed":
            stake = int(stake) - int(event.args["amount"])
            slashed.append({"amount": str(event.args["amount"]), "reason": event.args["reason"], "time": event.timestamp})
    return {"node": row.args["node"], "stake": str(stake), "fee": str(fee), "inputTypes": inputs, "gpu": gpu,
            "encryptionKey": key, "unbondingEnd": unbonding_end, "slashed": slashed,
            "requests": work.get("DiagnosisRequested", 0), "failures": work.get("DiagnosisFailed", 0),
            "lastRequest": work.get("last_request") or None,
            "registered": {"block": row.block_number, "tx": row.tx_hash, "time": row.timestamp}}


def record_events(engine: Engine, record_id: int) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(events).where(events.c.record_id == record_id).order_by(events.c.id)).all()
    return [event_json(row) for row in rows]


def latest_events(engine: Engine, page: Page, address: str | None = None, tx: str | None = None,
                  block: int | None = None) -> dict[str, Any]:
    """The explorer's list: the newest events, of one address, transaction or block if given."""
    query = select(events)
    if address:
        query = query.where(events.c.id.in_(select(event_addresses.c.event_id).where(
            event_addresses.c.address == address.lower())))
    if tx:
        query = query.where(events.c.tx_hash == tx.lower())
    if block is not None:
        query = query.where(events.c.block_number == block)
    with engine.connect() as connection:
        total = _count(connection, query)
        rows = connection.execute(query.order_by(events.c.id.desc()).offset(page.offset).limit(page.limit)).all()
    return page.answer([event_json(row) for row in rows], total)


def roles_of(engine: Engine, address: str) -> list[str]:
    """What an address is in the marketplace: patient, requester, provider, node, grantee."""
    role_names = {("owner", "RecordRegistered"): "patient", ("requester", "DiagnosisRequested"): "requester",
                  ("provider", "ModelRegistered"): "provider", ("node", "NodeRegistered"): "node",
                  ("grantee", "ConsentGranted"): "grantee"}
    with engine.connect() as connection:
        found = connection.execute(
            select(event_addresses.c.role, events.c.name).join(events, events.c.id == event_addresses.c.event_id)
            .where(event_addresses.c.address == address.lower(),
                   and_(event_addresses.c.role.in_([r for r, _ in role_names]),
                        events.c.name.in_([n for _, n in role_names]))).distinct()).all()
    return sorted({role_names[(role, name)] for role, name in found if (role, name) in role_names})
