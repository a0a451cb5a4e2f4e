"""The local IPFS daemon: js-ipfs (npm ipfs@0.66.1, installed in tools/ipfs by `make ipfs`).

No Kubo binary can be installed on the project's machines; js-ipfs serves the same HTTP RPC
(`/api/v0/add`, `/cat`, `/block/get`, `/pin/*`) and builds the same UnixFS DAGs. It runs offline
(no swarm, no bootstrap peers): content lives in its repo and is served to local processes only.
On Node 20 it needs a Promise.withResolvers polyfill (tools/ipfs/polyfill.cjs, loaded through
NODE_OPTIONS) and the @multiformats/mafmt override in tools/ipfs/package.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from aidoc.config import child_environment, project_dir
from aidoc.stack.process import ManagedProcess, ServiceStartError, free_port, port_open


def tools_dir() -> Path:
    """Where `make ipfs` installed js-ipfs: tools/ipfs in the project directory."""
    return project_dir() / "tools" / "ipfs"


def jsipfs() -> Path:
    return tools_dir() / "node_modules" / ".bin" / "jsipfs"


def jsipfs_env(repo_dir: Path) -> dict[str, str]:
    """Environment for any jsipfs command on the repo in `repo_dir`."""
    polyfill = tools_dir() / "polyfill.cjs"
    node_options = f"{os.environ.get('NODE_OPTIONS', '')} --require {polyfill}".strip()
    return {"IPFS_PATH": str(Path(repo_dir).resolve()), "NODE_OPTIONS": node_options}


def init_repo(repo_dir: Path, api_port: int, gateway_port: int, rpc_port: int) -> None:
    """Creates the js-ipfs repo in `repo_dir` unless it exists (profile `test`: no bootstrap peers,
    no discovery), then points its API, gateway and gRPC addresses at the given local ports and
    drops its swarm listeners, so several daemons coexist with each other and other services."""
    _require_jsipfs()
    config_path = Path(repo_dir) / "config"
    if not config_path.exists():
        Path(repo_dir).mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(jsipfs()), "init", "--emptyRepo", "--profile=test"],
            env=child_environment(jsipfs_env(repo_dir), inherit_aidoc=False),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ServiceStartError(f"jsipfs init failed in {repo_dir}: {detail[0]}")
    config = json.loads(config_path.read_text())
    config["Addresses"].update(
        API=f"/ip4/127.0.0.1/tcp/{api_port}",
        Gateway=f"/ip4/127.0.0.1/tcp/{gateway_port}",
        RPC=f"/ip4/127.0.0.1/tcp/{rpc_port}",
        Swarm=[],
    )
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, config_path)


def ipfs_daemon(
    run_dir: Path,
    repo_dir: Path,
    api_port: int,
    gateway_port: int | None = None,
    rpc_port: int | None = None,
    startup_timeout: float = 60.0,
) -> ManagedProcess:
    """An offline js-ipfs daemon on 127.0.0.1:`api_port` (not started yet: call `.start()` or use it as a
    context manager), with its repo in `repo_dir` (initialised here if needed) and log/pid in `run_dir`.
    It counts as ready when `/api/v0/version` answers and the daemon has written its `api` file to
    the repo (js-ipfs writes it just after its API starts answering; until then a second start on
    the repo could not tell that a daemon serves it)."""
    clear_stale_lock(repo_dir)
    init_repo(repo_dir, api_port, gateway_port or free_port(), rpc_port or free_port())
    return ManagedProcess(
        name="ipfs",
        command=[str(jsipfs()), "daemon", "--offline"],
        run_dir=Path(run_dir),
        port=api_port,
        env=jsipfs_env(repo_dir),
        ready=lambda: api_answers(f"http://127.0.0.1:{api_port}") and (Path(repo_dir) / "api").exists(),
        startup_timeout=startup_timeout,
    )


def clear_stale_lock(repo_dir: Path) -> None:
    """Removes the repo lock a killed daemon left behind (js-ipfs then refuses to start, and exits 0);
    ServiceStartError when a live daemon still serves this repo."""
    api_file, lock = Path(repo_dir) / "api", Path(repo_dir) / "repo.lock"
    if api_file.exists():
        parts = api_file.read_text().strip().split("/")  # /ip4/127.0.0.1/tcp/<port>/http
        # A listening port is enough: a daemon busy enough to answer slowly is still alive, and
        # taking its lock would start a second daemon on its repo.
        if len(parts) > 4 and parts[4].isdigit() and port_open(parts[2], int(parts[4])):
            raise ServiceStartError(
                f"an IPFS daemon already serves the repo {repo_dir} on port {parts[4]}; stop it (aidoc down) first"
            )
        api_file.unlink(missing_ok=True)
    if lock.is_dir():
        for entry in lock.iterdir():
            entry.unlink()
        lock.rmdir()
    else:
        lock.unlink(missing_ok=True)


def api_answers(api_url: str) -> bool:
    """Whether an IPFS HTTP RPC answers `/api/v0/version` at `api_url`."""
    try:
        return httpx.post(f"{api_url}/api/v0/version", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _require_jsipfs() -> None:
    if not jsipfs().exists():
        raise ServiceStartError(f"js-ipfs is not installed ({jsipfs()} is missing); run `make ipfs` in the project "
                                "directory, or set AIDOC_PROJECT_DIR to it")
