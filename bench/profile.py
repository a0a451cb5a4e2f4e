"""Where the node's processes spend their CPU under load: py-spy samples the worker (one Celery
child), the sender and the watcher during a 600-request run on a fresh chain, and this prints the
frames that hold the most samples. `python -m bench.profile` (py-spy needs ptrace: root, or
kernel.yama.ptrace_scope=0); raw samples go to reports/profile-<process>.txt."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from aidoc.config import ENV_PREFIX, models_dir, project_dir
from aidoc.stack import local
from aidoc.stack.testbed import testbed
from bench import e2e

REPORTS = project_dir() / "reports"
SECONDS = 12
WATCHED = ("web3", "eth_abi", "celery", "kombu", "redis", "requests", "torch", "nacl", "aidoc", "workers", "oracles")


def profiled_start_node(spies: list[subprocess.Popen]):
    def start(*args, **kwargs):
        processes = local.start_node(*args, **kwargs)
        time.sleep(0.5)  # the worker forks its children once it is ready
        worker = processes[0].process.pid
        child = int(Path(f"/proc/{worker}/task/{worker}/children").read_text().split()[0])
        for name, pid in (("worker", child), ("sender", processes[1].process.pid),
                          ("watcher", processes[2].process.pid)):
            spies.append(subprocess.Popen(
                [shutil.which("py-spy") or "py-spy", "record", "-p", str(pid), "-o", str(REPORTS / f"profile-{name}.txt"),
                 "-f", "raw", "-d", str(SECONDS), "-r", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return processes

    return start


def summary(path: Path, top: int = 12) -> list[tuple[float, str]]:
    """(share of samples, frame) for the frames of watched packages present in the most samples."""
    total, inclusive = 0, collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        frames = {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}
        for frame in frames:
            inclusive[frame] += int(count)
    # Frames in (nearly) every sample are the process's main loop, not where the time goes.
    watched = [(n / total, f) for f, n in inclusive.most_common()
               if n / total < 0.9 and any(f"{p}/" in f for p in WATCHED)]
    return watched[:top]


def main() -> None:
    import sys

    if "--summary" in sys.argv:  # only re-read the last samples
        return print_summaries()
    REPORTS.mkdir(exist_ok=True)
    spies: list[subprocess.Popen] = []
    e2e.start_node = profiled_start_node(spies)
    with tempfile.TemporaryDirectory(prefix="aidoc-profile-") as run_dir:
        settings = {ENV_PREFIX + "BATCH_WAIT": "0.02", ENV_PREFIX + "POLL_INTERVAL": "0.02"}
        with testbed(Path(run_dir), ipfs_daemon=False, settings=settings) as bed:
            result = e2e.run(bed, e2e.prepare(bed, models_dir()), models_dir(), 600, concurrency=2, batch_size=16)
    for spy in spies:
        spy.wait()
    print(f"{result['throughput_per_s']} diagnoses/s while profiled")
    print_summaries()


def print_summaries() -> None:
    for name in ("worker", "sender", "watcher"):
        print(f"\n{name}: share of samples in which a frame appears")
        for share, frame in summary(REPORTS / f"profile-{name}.txt"):
            print(f"  {share:6.1%}  {frame[:140]}")


if __name__ == "__main__":
    main()
