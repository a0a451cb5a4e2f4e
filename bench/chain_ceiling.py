"""The chain's own ceiling: how many requestDiagnosis transactions a local anvil mines per second as
its chain grows, with no node running at all (nothing fulfils them). The oracle end to end can go no
faster than this, and shares the two cores with it.

    python -m bench.chain_ceiling [--n 10000] [--every 1000]"""

from __future__ import annotations

import argparse
import json
import time

from aidoc.chain.contracts import rpc_batch, rpc_request
from aidoc.config import models_dir
from bench import e2e
from bench.run import fresh_chain


def measure(n: int, every: int) -> list[dict]:
    with fresh_chain() as bed:
        setup = e2e.prepare(bed, models_dir())
        doctor = setup.doctor
        w3 = doctor.marketplace.w3
        node, records = e2e.panel_node(bed, doctor, models_dir())
        signed = e2e.signed_requests(doctor, setup.model_id, node.address, records, n)
        first_nonce = int(rpc_request(w3, "eth_getTransactionCount", [doctor.address, "latest"]), 16)
        windows, started = [], time.perf_counter()
        window_start = started
        for index in range(0, n, e2e.IN_FLIGHT):  # sent as bench.e2e sends them: a window per JSON-RPC batch
            e2e.wait_for_mined(w3, doctor.address, first_nonce + index - e2e.IN_FLIGHT)
            chunk = signed[index:index + e2e.IN_FLIGHT]
            rpc_batch(w3, "eth_sendRawTransaction", [["0x" + raw.hex()] for raw in chunk])
            sent = index + len(chunk)
            if sent // every > index // every:
                e2e.wait_for_mined(w3, doctor.address, first_nonce + sent - 1)
                now = time.perf_counter()
                windows.append({"requests": sent, "per_s": round((sent - (windows[-1]["requests"] if windows else 0))
                                                                 / (now - window_start), 1),
                                "block": int(rpc_request(w3, "eth_blockNumber", []), 16)})
                window_start = now
        return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    args = parser.parse_args()
    windows = measure(args.n, args.every)
    print("| requests mined so far | chain height | requests mined per s (this window) |")
    print("|---:|---:|---:|")
    for window in windows:
        print(f"| {window['requests']:,} | {window['block']:,} | {window['per_s']:,} |")
    print(json.dumps(windows))


if __name__ == "__main__":
    main()
