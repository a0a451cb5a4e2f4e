"""`make bench`: gas against Chainlink's Operator and an ERC-20 transfer, the oracle end to end under
load, what the node costs a rate-limited hosted RPC endpoint, and batched inference; a table on
stdout and reports/bench.json.

    python -m bench.run [--quick] [--n 500 2000 10000]

--quick (what `make test` runs) takes a few small measurements, only to prove the harness works;
its figures mean nothing."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path

import torch
from web3 import Web3

from aidoc.chain.brownie_runner import run_script
from aidoc.config import ENV_PREFIX, child_environment, models_dir, project_dir
from aidoc.stack.testbed import testbed
from bench import chainlink_gas, e2e, inference, rpc_load

REPORT = project_dir() / "reports" / "bench.json"
# The node's watcher polls and its sender batches every 20 ms (the defaults are 500 and 200 ms).
NODE_SETTINGS = {ENV_PREFIX + "BATCH_WAIT": "0.02", ENV_PREFIX + "POLL_INTERVAL": "0.02"}
# Batch sizes are upper bounds: the sender takes what has arrived within AIDOC_BATCH_WAIT, so a large
# bound costs nothing at low load and lets one fulfilBatch carry a backlog at high load.
SWEEP = [(concurrency, batch) for concurrency in (1, 2) for batch in (32, 128)]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__}


def our_gas(rpc_url: str) -> dict[str, int]:
    """scripts/gas_report.py (Brownie) on the bench chain: steady-state gas per operation. (Brownie
    used to take a transaction anvil had just mined for a dropped one on a busy machine; the runner
    now waits out anvil's index lag: aidoc.chain.brownie_runner.tolerate_transaction_index_lag.)"""
    result = run_script("scripts/gas_report.py",
                        child_environment({ENV_PREFIX + "RPC_URL": rpc_url}, inherit_aidoc=True), capture=True)
    if result.returncode != 0:
        raise RuntimeError("gas report failed:\n" + result.stdout[-2000:] + result.stderr[-2000:])
    return json.loads((project_dir() / "reports" / "gas.json").read_text())["gas"]


@contextlib.contextmanager
def fresh_chain():
    """A new testbed (anvil, Redis, the marketplace) for each measurement: anvil slows down as its
    chain grows (its per-block state history), so runs on one chain would not be comparable."""
    with tempfile.TemporaryDirectory(prefix="aidoc-bench-") as run_dir:
        with testbed(Path(run_dir), ipfs_daemon=False, settings=NODE_SETTINGS) as bed:
            yield bed


def measure_e2e(n: int, concurrency: int, batch_size: int, rate: float | None = None) -> dict:
    with fresh_chain() as bed:
        return e2e.run(bed, e2e.prepare(bed, models_dir()), models_dir(), n, concurrency=concurrency,
                       batch_size=batch_size, rate=rate)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, meaningless figures")
    parser.add_argument("--n", type=int, nargs="+", default=[500, 2000], help="requests per end-to-end run")
    args = parser.parse_args(argv)
    report: dict = {"machine": machine(), "quick": args.quick}
    with fresh_chain() as bed:
        report["gas"] = our_gas(bed.services.rpc_url)
        report["chainlink_gas"] = chainlink_gas.measure(Web3(Web3.HTTPProvider(bed.services.rpc_url)))
    if args.quick:
        report["e2e"] = [measure_e2e(20, 2, 16)]
    else:
        sweep = [measure_e2e(500, concurrency, batch) for concurrency, batch in SWEEP]
        best = max(sweep, key=lambda r: r["throughput_per_s"])
        concurrency, batch = best["worker_concurrency"], best["batch_size"]
        report["e2e_sweep"] = sweep
        report["best"] = {"worker_concurrency": concurrency, "batch_size": batch}
        report["e2e"] = [measure_e2e(n, concurrency, batch) for n in args.n]
        report["e2e"].append(measure_e2e(500, concurrency, batch, rate=50))
    with fresh_chain() as bed:  # a hosted-RPC-like endpoint: what the node and a waiting client cost it
        report["rpc"] = (rpc_load.measure(bed, models_dir(), block_s=1, idle_s=5, diagnoses=1) if args.quick else
                         rpc_load.measure(bed, models_dir(), block_s=12, idle_s=120, diagnoses=3))
    report["inference"] = inference.measure(models_dir(), quick=args.quick)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nWritten to {REPORT}")
    return report


def print_table(report: dict) -> None:
    gas, chainlink = report["gas"], report["chainlink_gas"]
    ours_request, ours_fulfil = gas["requestDiagnosis"], gas["fulfilBatch per request @32"]
    print("\n| gas | ours | Chainlink Operator | ratio |\n|---|---:|---:|---:|")
    print(f"| request | {ours_request:,} | {chainlink['request']:,} | {ours_request / chainlink['request']:.2f} |")
    print(f"| fulfil (ours: per request in fulfilBatch @32) | {ours_fulfil:,} | {chainlink['fulfil']:,} | "
          f"{ours_fulfil / chainlink['fulfil']:.2f} |")
    print(f"| fulfil (ours: single fulfil) | {gas['fulfil']:,} | {chainlink['fulfil']:,} | "
          f"{gas['fulfil'] / chainlink['fulfil']:.2f} |")
    transfer = gas["AID transfer (OpenZeppelin ERC-20)"]
    print(f"| request + fulfilment @32 | {ours_request + ours_fulfil:,} | "
          f"{chainlink['request'] + chainlink['fulfil']:,} | "
          f"{(ours_request + ours_fulfil) / (chainlink['request'] + chainlink['fulfil']):.2f} |")
    print(f"| an OpenZeppelin ERC-20 transfer | {transfer:,} | | |")
    print("\n| e2e run | n | rate/s | workers | batch | diagnoses/s | p50 ms | p95 ms | p99 ms | worker MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for index, run in enumerate(report.get("e2e_sweep", []) + report["e2e"]):
        print(f"| {index + 1} | {run['n']} | {run['rate_per_s'] or 'max'} | {run['worker_concurrency']} | "
              f"{run['batch_size']} | {run['throughput_per_s']} | {run['p50_ms']} | {run['p95_ms']} | "
              f"{run['p99_ms']} | {run['worker_peak_rss_mb']} |")
    for run in report["e2e"]:
        print(f"stages (mean ms) at n={run['n']}: " + ", ".join(f"{k} {v}" for k, v in run["stages_ms"].items()))
    rpc = report["rpc"]
    print(f"\nRPC load on {rpc['block_s']} s blocks behind a {rpc['rate_limit_per_s']} calls/s limit: node idle "
          f"{rpc['node_idle_calls_per_s']} calls/s ({rpc['node_idle_calls_per_day']:,}/day; subscribed to new heads "
          f"{rpc['node_idle_calls_per_s_subscribed']}), "
          f"{rpc['node_calls_per_diagnosis']} calls per diagnosis; a waiting client "
          f"{rpc['client_poll_calls_per_block_waiting']} calls per block; 429 answers: {rpc['refused_429'] or 'none'}")
    print("\n| inference (records/s) | device | " + " | ".join(
        next(iter(next(iter(report["inference"].values())).values())).keys()) + " |")
    for model, devices in report["inference"].items():
        for device, sizes in devices.items():
            print(f"| {model} | {device} | " + " | ".join(f"{v:,.0f}" for v in sizes.values()) + " |")


if __name__ == "__main__":
    main()
