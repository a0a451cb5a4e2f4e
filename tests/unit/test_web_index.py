"""The web app's indexer state on a real SQLite database, driven by the watcher's own follow loop
over a scripted chain: events are stored once, a reorg's dropped events are deleted when their
blocks are rescanned, a chain reset clears the index, and the queries page and filter as the API
promises."""

from __future__ import annotations

import pytest

from aidoc.config import OracleSettings
from aidoc.oracles.watcher import Watcher
from aidoc.web import database, queries
from aidoc.web.database import EventRow
from aidoc.web.indexer import IndexState

PATIENT, DOCTOR, NODE = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def registered(record_id: int, block: int, fork: str = "a") -> EventRow:
    return EventRow(block, f"0x{fork}{block:063x}", f"0x{record_id:064x}", 0, "ConsentRegistry", "RecordRegistered",
                    {"recordId": record_id, "owner": PATIENT, "dataType": 1, "ciphertextCid": f"bafy{record_id}",
                     "ciphertextHash": "0x" + "00" * 32, "keyEnvelopeCid": f"bafk{record_id}", "royalty": "1000"}, 1_700_000_000)


def granted(record_id: int, block: int, purposes: int = 1) -> EventRow:
    return EventRow(block, f"0xa{block:063x}", f"0x{record_id + 500:064x}", 1, "ConsentRegistry", "ConsentGranted",
                    {"recordId": record_id, "grantee": DOCTOR, "purposes": purposes, "expiry": 1_900_000_000})


def revoked(record_id: int, block: int, purposes: int = 1) -> EventRow:
    return EventRow(block, f"0xa{block:063x}", f"0x{record_id + 900:064x}", 2, "ConsentRegistry", "ConsentRevoked",
                    {"recordId": record_id, "grantee": DOCTOR, "purposes": purposes})


class ScriptedChain:
    def __init__(self, head: int, mined: list[EventRow]):
        self.head_block, self.mined = head, mined

    def head(self) -> int:
        return self.head_block

    def block_time(self) -> float:
        return 0.0

    def logs(self, from_block: int, to_block: int) -> list[EventRow]:
        return [row for row in self.mined if from_block <= row.block_number <= to_block]


@pytest.fixture
def engine(tmp_path):
    return database.open_database(f"sqlite:///{tmp_path / 'index.sqlite'}")


def follower(chain: ScriptedChain, engine) -> Watcher:
    return Watcher(chain, IndexState(engine), lambda rows: database.store_events(engine, rows),
                   OracleSettings(confirmations=0, reorg_depth=3, log_range=100), start_block=1)


def test_events_are_stored_once_and_a_reorg_drops_what_the_chain_lost(engine):
    chain = ScriptedChain(10, [registered(1, 5), granted(1, 9, 1)])
    indexer = follower(chain, engine)
    assert indexer.poll_once() == 2
    assert indexer.poll_once() == 0  # nothing new
    chain.head_block = 11
    assert indexer.poll_once() == 0  # the rescan of blocks 8-11 sees the grant again: not stored twice
    records = queries.records_of(engine, PATIENT, queries.Page())
    assert [c["grantee"] for c in records["items"][0]["consents"]] == [DOCTOR]

    chain.mined = [registered(1, 5)]  # a reorg dropped block 9's grant
    chain.head_block = 12
    indexer.poll_once()
    assert queries.records_of(engine, PATIENT, queries.Page())["items"][0]["consents"] == []
    trail = queries.audit_trail(engine, PATIENT, queries.Page())
    assert [event["name"] for event in trail["items"]] == ["RecordRegistered"]


def test_a_chain_reset_clears_the_index(engine):
    chain = ScriptedChain(20, [registered(1, 5), registered(2, 15)])
    indexer = follower(chain, engine)
    indexer.poll_once()
    assert queries.records_of(engine, PATIENT, queries.Page())["total"] == 2
    chain.head_block, chain.mined = 8, [registered(7, 6, fork="b")]  # restarted under the same genesis
    indexer.poll_once()
    assert [r["recordId"] for r in queries.records_of(engine, PATIENT, queries.Page())["items"]] == [7]


def test_consents_fold_grants_and_revocations_and_lists_page(engine):
    rows = [registered(i, i) for i in range(1, 8)] + [granted(1, 20, 3), revoked(1, 21, 1), granted(2, 22), revoked(2, 23)]
    database.store_events(engine, rows)
    consents = queries.consents_of(engine, PATIENT, queries.Page())["items"]
    assert [(c["recordId"], c["purposes"]) for c in consents] == [(1, 2)]  # research left on record 1; record 2 revoked
    first = queries.records_of(engine, PATIENT, queries.Page(0, 3))
    second = queries.records_of(engine, PATIENT, queries.Page(first["next"], 3))
    last = queries.records_of(engine, PATIENT, queries.Page(second["next"], 3))
    ids = [r["recordId"] for page in (first, second, last) for r in page["items"]]
    assert ids == [7, 6, 5, 4, 3, 2, 1] and last["next"] is None and first["total"] == 7
    assert queries.consented_to(engine, DOCTOR, queries.Page())["items"][0]["recordId"] == 1
    assert queries.roles_of(engine, PATIENT) == ["patient"] and queries.roles_of(engine, DOCTOR) == ["grantee"]
    with pytest.raises(ValueError):
        queries.Page(0, queries.MAX_LIMIT + 1)
