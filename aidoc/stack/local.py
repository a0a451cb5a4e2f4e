"""`aidoc up`, `aidoc down` and `aidoc node run`: the local stack, from the settings' URLs."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from aidoc.config import ENV_PREFIX, OracleSettings, ServiceSettings
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, ServiceStartError, port_open, stop_recorded
from aidoc.stack.services import anvil, node_processes, redis_server


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def start_stack(services: ServiceSettings, start_chain: bool = True) -> Iterator[str]:
    """Starts anvil and Redis where the settings point, unless something already answers there."""
    host, port = _host_port(services.rpc_url, 8545)
    if port_open(host, port):
        yield f"chain: using {services.rpc_url}"
    elif start_chain and host in ("127.0.0.1", "localhost"):
        anvil(services.run_dir, port).start()
        yield f"chain: anvil on {services.rpc_url}"
    else:
        yield f"chain: nothing answers at {services.rpc_url} (set AIDOC_RPC_URL)"
    host, port = _host_port(services.redis_url, 6379)
    if port_open(host, port):
        yield f"redis: using {services.redis_url}"
    else:
        redis_server(services.run_dir, port, persistent=True).start()
        yield f"redis: started on {services.redis_url}"
    yield f"ipfs: {services.ipfs_api or f'embedded store in {services.store_dir}'}"


def stop_stack(services: ServiceSettings) -> Iterator[str]:
    for pid_file in sorted(services.run_dir.glob("*.pid")):
        if stop_recorded(pid_file):
            yield f"stopped {pid_file.stem}"


def node_environment(services: ServiceSettings, identity: Identity) -> dict[str, str]:
    """What a node's child processes need on top of the (secret-free) AIDOC_ settings inherited from
    here: the settings in effect and the node's key, which is the one secret they get."""
    return {
        ENV_PREFIX + "RPC_URL": services.rpc_url,
        ENV_PREFIX + "REDIS_URL": services.redis_url,
        ENV_PREFIX + "IPFS_API": services.ipfs_api,
        ENV_PREFIX + "STORE_DIR": str(services.store_dir),
        ENV_PREFIX + "DEPLOYMENTS_DIR": str(services.deployments_dir),
        ENV_PREFIX + "BUILD_DIR": str(services.build_dir),
        ENV_PREFIX + "NODE_PRIVATE_KEY": identity.account.key.hex(),
    }


def start_node(services: ServiceSettings, identity: Identity, concurrency: int | None = None, *,
               run_dir: Path | None = None, settings: dict[str, str] | None = None) -> list[ManagedProcess]:
    """Starts the node's worker, sender and watcher (logs and pids in `run_dir`, by default the
    settings' run dir: give each node its own when several run on one machine; `settings` adds
    AIDOC_ variables for this node only); stops those already started if one fails."""
    concurrency = concurrency or OracleSettings().worker_concurrency
    environment = {**node_environment(services, identity), **(settings or {})}
    started: list[ManagedProcess] = []
    try:
        for process in node_processes(run_dir or services.run_dir, environment, identity.address, concurrency):
            started.append(process.start())
    except BaseException:
        for process in reversed(started):
            process.stop()
        raise
    return started


class NodeSupervisor(threading.Thread):
    """Starts again any of a node's processes that exits, as systemd's Restart=always would: a
    worker killed by the OOM killer, or a Celery consumer that kombu lets die when Redis restarts
    under it (its restore of unacknowledged messages meets a closed connection)."""

    def __init__(self, processes: list[ManagedProcess], say: Callable[[str], None], interval: float = 1.0):
        super().__init__(name="node-supervisor", daemon=True)
        self.processes = processes
        self.say = say
        self.interval = interval
        self.restarts: dict[str, int] = {}
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            for process in self.processes:
                if process.process is None or process.process.poll() is None:
                    continue
                self.say(f"{process.name} exited with status {process.process.returncode}; starting it again "
                         f"(see {process.log_path})")
                process.process = None
                try:
                    process.start()
                    self.restarts[process.name] = self.restarts.get(process.name, 0) + 1
                except ServiceStartError as error:
                    self.say(f"{process.name} did not start again ({error}); retrying")

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def run_node(services: ServiceSettings, identity: Identity, concurrency: int, say: Callable[[str], None]) -> None:
    processes = start_node(services, identity, concurrency)
    say(f"node {identity.address}: worker, sender and watcher running (logs in {services.run_dir}); Ctrl-C stops")
    supervisor = NodeSupervisor(processes, say)
    supervisor.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        for process in reversed(processes):
            process.stop()
        say("node stopped")
