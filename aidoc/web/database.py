"""The web app's database: every marketplace event the indexer has followed, and the indexer's own
state. SQLite by default (AIDOC_DB_URL, a file under AIDOC_HOME), PostgreSQL or any other
SQLAlchemy URL otherwise.

One table holds the events as the chain emitted them (decoded arguments as JSON), with the ids the
pages look them up by (record, request, model) in their own indexed columns, and one table maps
every address an event names to it, with the argument's name as its role. Everything a page shows
is a query over these two: a patient's audit trail is the events of her records, a doctor's
request list the DiagnosisRequested events naming him with the latest status event of each. What
the chain holds is public already (CIDs, hashes, addresses, amounts); no plaintext, key or
plaintext-derived value is ever written here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    select,
)

metadata = MetaData()

events = Table(
    "chain_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("timestamp", BigInteger, nullable=True),
    Column("contract", String(32), nullable=False),
    Column("name", String(48), nullable=False),
    Column("args", JSON, nullable=False),
    Column("record_id", BigInteger, nullable=True),
    Column("request_id", BigInteger, nullable=True),
    Column("model_id", BigInteger, nullable=True),
    UniqueConstraint("block_hash", "tx_hash", "log_index", name="uq_event_position"),
    Index("ix_events_record", "record_id", "id"),
    Index("ix_events_request", "request_id", "id"),
    Index("ix_events_model", "model_id", "id"),
    Index("ix_events_name", "name", "id"),
    Index("ix_events_block", "block_number"),
    Index("ix_events_tx", "tx_hash"),
)

event_addresses = Table(
    "event_addresses", metadata,
    Column("event_id", Integer, ForeignKey("chain_events.id", ondelete="CASCADE"), nullable=False),
    Column("address", String(42), nullable=False),  # lower-case hex
    Column("role", String(32), nullable=False),  # the event argument that names it: owner, requester, node, ...
    Index("ix_addresses_address", "address", "role", "event_id"),
    Index("ix_addresses_event", "event_id"),
)

index_state = Table(
    "index_state", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", String(80), nullable=False),
)

# The ids the pages look events up by, from the arguments that carry them.
ID_COLUMNS = {"recordId": "record_id", "requestId": "request_id", "modelId": "model_id"}
SQL_INT_MAX = 2**63 - 1


@dataclass(frozen=True)
class EventRow:
    """One decoded event, ready to store."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]
    timestamp: int | None = None

    @property
    def key(self) -> str:
        return f"{self.block_hash}:{self.tx_hash}:{self.log_index}"

    @property
    def job(self) -> "EventRow":
        return self

    def ids(self) -> dict[str, int | None]:
        found: dict[str, int | None] = {column: None for column in ID_COLUMNS.values()}
        for arg, column in ID_COLUMNS.items():
            value = self.args.get(arg)
            if value is None and isinstance(self.args.get("request"), dict):
                value = self.args["request"].get(arg)  # DiagnosisRequested carries the record and model in its terms
            if value is not None and 0 <= int(value) <= SQL_INT_MAX:
                found[column] = int(value)
        return found

    def addresses(self) -> Iterable[tuple[str, str]]:
        """(address, role) for every address among the arguments, nested terms included."""
        for role, value in self.args.items():
            if isinstance(value, dict):
                for inner_role, inner in value.items():
                    if is_address(inner):
                        yield inner.lower(), inner_role
            elif is_address(value):
                yield value.lower(), role


def is_address(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 42 and value.startswith("0x") and value != "0x" + "0" * 40


def open_database(url: str) -> Engine:
    """The engine for `url`, its tables created if missing. SQLite gets WAL and foreign keys, so
    that the API reads while the indexer writes."""
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):  # noqa: ANN001 - SQLAlchemy's callback signature
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    metadata.create_all(engine)
    return engine


def store_events(engine: Engine, rows: list[EventRow]) -> int:
    """Writes `rows` (not seen before) in one transaction; returns how many it wrote."""
    if not rows:
        return 0
    with engine.begin() as connection:
        for row in rows:
            event_id = connection.execute(insert(events).values(
                block_number=row.block_number, block_hash=row.block_hash, tx_hash=row.tx_hash,
                log_index=row.log_index, timestamp=row.timestamp, contract=row.contract, name=row.name,
                args=row.args, **row.ids(),
            )).inserted_primary_key[0]
            named = [{"event_id": event_id, "address": address, "role": role} for address, role in row.addresses()]
            if named:
                connection.execute(insert(event_addresses), named)
    return len(rows)


def known_keys(engine: Engine, keys: list[str]) -> set[str]:
    """Which of `keys` (block hash:tx hash:log index) are stored."""
    if not keys:
        return set()
    block_hashes = {key.split(":")[0] for key in keys}
    with engine.connect() as connection:
        stored = connection.execute(
            select(events.c.block_hash, events.c.tx_hash, events.c.log_index).where(events.c.block_hash.in_(block_hashes))
        )
        return {f"{block}:{tx}:{index}" for block, tx, index in stored} & set(keys)


def drop_orphans(engine: Engine, from_block: int, to_block: int, keys: list[str]) -> int:
    """Deletes the stored events in [from_block, to_block] that the chain no longer has (a reorg
    moved or dropped them); returns how many."""
    live = set(keys)
    with engine.begin() as connection:
        stored = connection.execute(
            select(events.c.id, events.c.block_hash, events.c.tx_hash, events.c.log_index)
            .where(events.c.block_number.between(from_block, to_block))
        ).all()
        orphans = [row.id for row in stored if f"{row.block_hash}:{row.tx_hash}:{row.log_index}" not in live]
        if orphans:
            connection.execute(delete(event_addresses).where(event_addresses.c.event_id.in_(orphans)))
            connection.execute(delete(events).where(events.c.id.in_(orphans)))
    return len(orphans)


def read_state(engine: Engine, key: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(index_state.c.value).where(index_state.c.key == key)).scalar()


def write_state(engine: Engine, key: str, value: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(index_state).where(index_state.c.key == key))
        connection.execute(insert(index_state).values(key=key, value=value))


def clear(engine: Engine) -> int:
    """Forgets every event and the checkpoint (a restarted chain); returns how many events."""
    with engine.begin() as connection:
        connection.execute(delete(event_addresses))
        count = connection.execute(delete(events)).rowcount
        connection.execute(delete(index_state))
    return count


def as_json(value: Any) -> Any:
    """An event argument as JSON: bytes as 0x-hex, integers beyond JavaScript's safe range as
    decimal strings, tuples as lists."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 - 1 else str(value)
    if isinstance(value, dict):
        return {key: as_json(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_json(inner) for inner in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(as_json(value), separators=(",", ":"))
