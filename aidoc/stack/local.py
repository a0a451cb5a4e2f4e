"""`aidoc up`, `aidoc down` and `aidoc node run`: the local stack, from the settings' URLs; and the
throwaway stack the demos run on (`throwaway_stack`)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from aidoc.config import ENV_PREFIX, OracleSettings, ServiceSettings, is_set
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, ServiceStartError, free_port, port_open, stop_recorded
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
    return {**services.to_env(), ENV_PREFIX + "NODE_PRIVATE_KEY": identity.account.key.hex()}


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


@contextlib.contextmanager
def throwaway_stack(run_dir: Path) -> Iterator[tuple[ServiceSettings, contextlib.ExitStack]]:
    """A stack of its own in `run_dir` (emptied first): anvil on 8545 or a free port (unless
    AIDOC_RPC_URL names a chain), Redis on a free port, the embedded IPFS store in `run_dir` (or
    AIDOC_IPFS_API), keystores and logs in `run_dir`. Nothing of this process's environment changes:
    the settings it yields say where everything is, and are what the caller passes on. All of it
    stops on exit, with whatever the caller adds to the ExitStack (the marketplace is not deployed:
    `aidoc.chain.deployments.deploy_marketplace`)."""
    from aidoc.stack.services import anvil, redis_server

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    settings = ServiceSettings()
    rpc_url = settings.rpc_url if is_set("RPC_URL") else (
        f"http://127.0.0.1:{8545 if not port_open('127.0.0.1', 8545) else free_port()}")
    redis_port = free_port()
    services = replace(settings, rpc_url=rpc_url, redis_url=f"redis://127.0.0.1:{redis_port}/0",
                       store_dir=run_dir / "ipfs", keystore_dir=run_dir / "keystores", run_dir=run_dir)
    with contextlib.ExitStack() as stack:
        if not is_set("RPC_URL"):
            stack.enter_context(anvil(run_dir, _host_port(rpc_url, 8545)[1]))
        stack.enter_context(redis_server(run_dir, redis_port))
        yield services, stack
