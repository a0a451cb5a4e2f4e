"""`aidoc up`, `aidoc down` and `aidoc node run`: the local stack, from the settings' URLs; and the
throwaway stack the demos run on (`throwaway_stack`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

from aidoc.config import ENV_PREFIX, OracleSettings, ServiceSettings, is_set
from aidoc.identity import Identity
from aidoc.stack.process import ManagedProcess, ServiceStartError, free_port, port_open, recorded_pid, stop_recorded
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
    """Stops what `aidoc up` and `aidoc node run` started: the node's supervisor first (it stops its
    own processes, and would otherwise start them again), then every other recorded process."""
    node = services.run_dir / NODE_PID_FILE
    if stop_recorded(node, timeout=60.0, group=False):
        yield "stopped node"
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


NODE_PID_FILE = "node.pid"  # `aidoc node run` itself, stopped first by `aidoc down`


def exit_cause(status: int) -> str:
    """`status 1`, or `signal 9 (SIGKILL)` for a process a signal ended."""
    if status < 0:
        try:
            return f"signal {-status} ({signal.Signals(-status).name})"
        except ValueError:
            return f"signal {-status}"
    return f"status {status}"


def last_log_line(path: Path, tail_bytes: int = 4096) -> str | None:
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - tail_bytes))
            lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    return lines[-1][:200] if lines else None


class NodeSupervisor(threading.Thread):
    """Starts again any of a node's processes that exits, as systemd's Restart=always would: a
    worker killed by the OOM killer, or a Celery consumer that kombu lets die when Redis restarts
    under it (its restore of unacknowledged messages meets a closed connection).

    Restarts back off exponentially (`backoff`: the first delay and the cap), per process: one that
    keeps dying (a chain that stays down, a bad setting) is tried again after 1, 2, 4, ... 60 s, not
    in a tight loop, and starts from the first delay again once it has run `stable_after` s. Each
    restart is said once, with its cause: the exit status and the last line of the process's log."""

    def __init__(self, processes: list[ManagedProcess], say: Callable[[str], None], interval: float = 1.0, *,
                 backoff: tuple[float, float] = (1.0, 60.0), stable_after: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(name="node-supervisor", daemon=True)
        self.processes = processes
        self.say = say
        self.interval = interval
        self.backoff = backoff
        self.stable_after = stable_after
        self.clock = clock
        self.restarts: dict[str, int] = {}
        self.delays: dict[str, list[float]] = {}  # every delay chosen, per process (what the tests read)
        self._quick_exits: dict[str, int] = {}  # exits in a row, each within stable_after of its start
        self._due: dict[str, float] = {}  # when each process waiting to start again is started
        self._started_at = {process.name: clock() for process in processes}
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.check()

    def check(self) -> None:
        """One round: notes the processes that exited and starts those whose delay has passed."""
        for process in self.processes:
            if self._stopping.is_set():
                return
            if process.name in self._due:
                if self.clock() >= self._due[process.name]:
                    self._start_again(process)
            elif process.process is not None and process.process.poll() is not None:
                status = process.process.returncode
                process.process = None
                if self.clock() - self._started_at.get(process.name, 0.0) >= self.stable_after:
                    self._quick_exits[process.name] = 0
                line = last_log_line(process.log_path)
                self._schedule(process, f"exited with {exit_cause(status)}" + (f" (its log ends: {line})" if line else ""))

    def _start_again(self, process: ManagedProcess) -> None:
        del self._due[process.name]
        try:
            process.start()
        except ServiceStartError as error:
            self._schedule(process, f"did not start again ({error})")
            return
        self._started_at[process.name] = self.clock()
        self.restarts[process.name] = self.restarts.get(process.name, 0) + 1

    def _schedule(self, process: ManagedProcess, cause: str) -> None:
        first, cap = self.backoff
        exits = self._quick_exits.get(process.name, 0)
        self._quick_exits[process.name] = exits + 1
        delay = min(cap, first * 2**min(exits, 32))
        self.delays.setdefault(process.name, []).append(delay)
        self._due[process.name] = self.clock() + delay
        self.say(f"{process.name} {cause}; starting it again in {delay:g} s (see {process.log_path})")

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join()


def run_node(services: ServiceSettings, identity: Identity, concurrency: int, say: Callable[[str], None]) -> None:
    """`aidoc node run`: the node's processes under a NodeSupervisor until Ctrl-C or SIGTERM (which
    `aidoc down` sends it first, through its pid file, so that it stops its children rather than
    starting them again)."""
    pid_path = services.run_dir / NODE_PID_FILE
    running = recorded_pid(pid_path)
    if running is not None:
        raise ServiceStartError(f"a node already runs from {services.run_dir} (pid {running}); stop it (aidoc down) "
                                f"or give this one its own {ENV_PREFIX}RUN_DIR")
    services.run_dir.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(str(os.getpid()))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        processes = start_node(services, identity, concurrency)
        say(f"node {identity.address}: worker, sender and watcher running (logs in {services.run_dir}); Ctrl-C stops")
        supervisor = NodeSupervisor(processes, say)
        supervisor.start()
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
    finally:
        pid_path.unlink(missing_ok=True)


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
