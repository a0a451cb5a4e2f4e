"""A server process the local stack starts and stops: anvil, Redis, the IPFS daemon, a Celery worker.

Each one writes its output to a log file under the run directory, records its pid there (so that
`aidoc down` in another shell can stop it), and counts as ready once its TCP port accepts
connections or a readiness check passes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aidoc.config import child_environment
from aidoc.errors import AidocError


class ServiceStartError(AidocError):
    """A local service did not come up."""


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port that nothing listens on right now (for tests that start their own servers)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ManagedProcess:
    """One server process: `start()` launches and waits until ready, `stop()` ends it."""

    name: str
    command: list[str]
    run_dir: Path
    port: int | None = None
    host: str = "127.0.0.1"
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready: Callable[[], bool] | None = None
    startup_timeout: float = 60.0
    # Our own processes (worker, watcher, sender) inherit the AIDOC_ settings; servers do not.
    inherit_aidoc: bool = False
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def is_ready(self) -> bool:
        if self.ready is not None:
            return self.ready()
        if self.port is not None:
            return port_open(self.host, self.port)
        return self.process is not None and self.process.poll() is None

    def start(self) -> "ManagedProcess":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.port is not None and port_open(self.host, self.port):
            raise ServiceStartError(
                f"{self.name}: port {self.port} is already taken; stop what listens there (aidoc down) and retry"
            )
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_environment(self.env, self.inherit_aidoc),
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so stop() reaches its children
            )
        except FileNotFoundError:
            raise ServiceStartError(f"{self.name}: {self.command[0]} is not installed; run `make install`") from None
        finally:
            log.close()
        self.pid_path.write_text(str(self.process.pid))
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.pid_path.unlink(missing_ok=True)
                raise ServiceStartError(
                    f"{self.name} exited with status {self.process.returncode} while starting; see {self.log_path}"
                )
            if self.is_ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServiceStartError(f"{self.name} was not ready after {self.startup_timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            stop_recorded(self.pid_path, timeout)
            return
        _terminate_group(self.process.pid, timeout, self.process)
        self.process = None
        self.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the process group at once (fault injection in tests)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self.process = None
            self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> "ManagedProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _terminate_group(pid: int, timeout: float, process: subprocess.Popen | None = None, group: bool = True) -> None:
    """SIGTERM to the process group `pid` leads (or with `group` False, to the process alone), then
    SIGKILL after `timeout` s."""
    kill = os.killpg if group else os.kill
    try:
        kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        elif not _alive(pid):
            break
        time.sleep(0.05)
    else:
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if process is not None:
        process.wait()


def _alive(pid: int) -> bool:
    """Whether `pid` still runs: an exited process that its parent has not reaped yet (a zombie)
    has stopped, although it still answers signal 0."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def recorded_pid(pid_path: Path) -> int | None:
    """The pid in `pid_path` when that process still runs, else None."""
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # it runs, as another user
    return pid


def stop_recorded(pid_path: Path, timeout: float = 10.0, group: bool = True) -> bool:
    """Stops the process (with `group`, its process group) whose pid a previous start recorded;
    False when none was running."""
    try:
        pid = int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    _terminate_group(pid, timeout, group=group)
    pid_path.unlink(missing_ok=True)
    return True
