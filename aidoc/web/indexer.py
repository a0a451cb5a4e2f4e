"""The web app's indexer: follows every event of the marketplace's contracts into the database.

It is the node's watcher (aidoc.oracles.watcher.Watcher) with another source and another state:
the same confirmations, the same rescan of `reorg_depth` blocks below the checkpoint on each pass,
the same backfill in bounded eth_getLogs ranges after a restart, the same full rescan when the
chain's head falls below the checkpoint. Two things an index needs that a node does not: an event
a reorg dropped is deleted when its blocks are rescanned (`settle`), and a new genesis block or a
new deployment (a restarted development chain) clears the index before it follows the new one."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine
from web3.contract import Contract

from aidoc.chain.contracts import Marketplace, block_time, decode_event, event_topic, rpc_batch, rpc_request
from aidoc.chain.heads import HeadSubscription
from aidoc.config import OracleSettings
from aidoc.oracles.watcher import Watcher
from aidoc.web import database
from aidoc.web.database import EventRow, as_json

log = logging.getLogger("aidoc.indexer")

CONTRACT_LABELS = {  # Marketplace attribute -> the contract's name in the API
    "token": "AIDToken", "consents": "ConsentRegistry", "models": "ModelRegistry", "nodes": "NodeRegistry",
    "market": "DiagnosisMarket", "training": "TrainingMarket", "rounds": "FederatedRounds",
}
INDEX_BATCH = 256  # events per database transaction


class MarketplaceLogSource:
    """Every event of the seven marketplace contracts, decoded, with its block's timestamp."""

    def __init__(self, marketplace: Marketplace):
        self.w3 = marketplace.w3
        self.addresses = [getattr(marketplace, attr).address for attr in CONTRACT_LABELS]
        self.decoders: dict[tuple[str, bytes], tuple[str, Contract, dict]] = {}
        for attr, label in CONTRACT_LABELS.items():
            contract = getattr(marketplace, attr)
            for item in contract.abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    self.decoders[(contract.address.lower(), event_topic(contract, item["name"]))] = (label, contract, item)

    def head(self) -> int:
        return int(rpc_request(self.w3, "eth_blockNumber", []), 16)

    def block_time(self) -> float:
        return block_time(self.w3)

    def logs(self, from_block: int, to_block: int) -> list[EventRow]:
        raw_logs = rpc_request(self.w3, "eth_getLogs", [
            {"address": self.addresses, "fromBlock": hex(from_block), "toBlock": hex(to_block)}
        ])
        rows = []
        for raw in raw_logs:
            if raw.get("removed") or not raw["topics"]:
                continue
            decoder = self.decoders.get((raw["address"].lower(), bytes.fromhex(raw["topics"][0][2:])))
            if decoder is None:
                continue
            label, contract, item = decoder
            args = decode_event(contract, item["name"], raw)
            if args is None:
                continue
            rows.append(EventRow(
                block_number=int(raw["blockNumber"], 16), block_hash=raw["blockHash"], tx_hash=raw["transactionHash"],
                log_index=int(raw["logIndex"], 16), contract=label, name=item["name"], args=named_args(item, args),
            ))
        return self._with_timestamps(rows)

    def _with_timestamps(self, rows: list[EventRow]) -> list[EventRow]:
        blocks = sorted({row.block_number for row in rows})
        if not blocks:
            return rows
        headers = rpc_batch(self.w3, "eth_getBlockByNumber", [[hex(number), False] for number in blocks])
        stamps = {number: int(header["timestamp"], 16) for number, header in zip(blocks, headers) if header}
        return [replace(row, timestamp=stamps.get(row.block_number)) for row in rows]


def named_args(item: dict, args: dict[str, Any]) -> dict[str, Any]:
    """The decoded arguments as JSON values, a struct (DiagnosisRequested's terms) as an object."""
    named = {}
    for spec in item["inputs"]:
        value = args[spec["name"]]
        if spec["type"] == "tuple" and isinstance(value, (list, tuple)):
            value = {component["name"]: inner for component, inner in zip(spec["components"], value)}
        named[spec["name"]] = as_json(value)
    return named


class IndexState:
    """The watcher's FollowerState in the web app's database: the checkpoint in `index_state`, the
    logs seen being the events stored."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def checkpoint(self) -> int | None:
        value = database.read_state(self.engine, "checkpoint")
        return None if value is None else int(value)

    def set_checkpoint(self, block: int) -> None:
        database.write_state(self.engine, "checkpoint", str(block))

    def first_sightings(self, keys: list[str]) -> list[bool]:
        stored = database.known_keys(self.engine, keys)
        return [key not in stored for key in keys]

    def forget(self, keys: list[str]) -> None:
        """Nothing to undo: a batch that failed to store was rolled back with its transaction."""

    def settle(self, from_block: int, to_block: int, keys: list[str]) -> None:
        dropped = database.drop_orphans(self.engine, from_block, to_block, keys)
        if dropped:
            log.warning("a reorg dropped %d indexed event(s) in blocks %d-%d: deleted", dropped, from_block, to_block)

    def reset(self) -> int:
        return database.clear(self.engine)


def chain_identity(marketplace: Marketplace) -> str:
    """What the index belongs to: the genesis block and the market's address."""
    genesis = rpc_request(marketplace.w3, "eth_getBlockByNumber", ["0x0", False])["hash"]
    return f"{genesis}:{marketplace.market.address.lower()}"


class Indexer:
    """Follows the marketplace into `engine`, in a thread of the web server or on its own."""

    def __init__(self, marketplace: Marketplace, engine: Engine, settings: OracleSettings | None = None,
                 ws_url: str = ""):
        settings = settings or OracleSettings()
        self.marketplace = marketplace
        self.engine = engine
        self.state = IndexState(engine)
        self.follower = Watcher(
            MarketplaceLogSource(marketplace), self.state, lambda rows: database.store_events(engine, rows),
            replace(settings, task_batch=INDEX_BATCH), start_block=marketplace.deployment.block_number,
            heads=HeadSubscription(ws_url or settings.ws_url) if (ws_url or settings.ws_url) else None,
        )
        self.thread: threading.Thread | None = None

    def prepare(self) -> None:
        """Clears the index when it belongs to another chain or deployment."""
        identity = chain_identity(self.marketplace)
        previous = database.read_state(self.engine, "chain")
        if previous is not None and previous != identity:
            cleared = database.clear(self.engine)
            log.warning("the index belonged to another chain or deployment (%s): cleared %d event(s) and "
                        "indexing this one from block %d", previous, cleared, self.marketplace.deployment.block_number)
        database.write_state(self.engine, "chain", identity)

    def catch_up(self) -> int:
        """One pass to the head; how many events it stored."""
        return self.follower.poll_once()

    def indexed_block(self) -> int | None:
        return self.state.checkpoint()

    def start(self) -> None:
        self.prepare()
        self.thread = threading.Thread(target=self.follower.run, name="aidoc-indexer", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.follower.stop()
        if self.thread is not None:
            self.thread.join(timeout=20)
