"""Runs slither on every contract with Brownie's compiler settings, and fails on any high or
medium finding in our code that security/slither-triage.json does not triage with a reason.

OpenZeppelin's code (node_modules) is filtered out: it is audited upstream, and slither's findings
there (Math.mulDiv's xor, divide-before-multiply) are its known, intended false positives."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TRIAGE_FILE = ROOT / "security" / "slither-triage.json"
FAILING_IMPACTS = {"High", "Medium"}


def compiler_args() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "brownie-config.yaml").read_text())["compiler"]
    solc = config["solc"]
    args = [f"--evm-version {config['evm_version']}"]
    if solc["optimizer"]["enabled"]:
        args.append(f"--optimize --optimize-runs {solc['optimizer']['runs']}")
    return " ".join(args), ",".join(solc["remappings"])


def main() -> int:
    solc_args, remaps = compiler_args()
    triaged = {(t["check"], t["location"]): t["reason"] for t in json.loads(TRIAGE_FILE.read_text())["triaged"]}
    sources = sorted(p for p in (ROOT / "contracts").glob("*.sol"))
    untriaged = 0
    for source in sources:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "slither.json"
            proc = subprocess.run(
                ["slither", str(source.relative_to(ROOT)), "--solc", str(ROOT / "tools" / "solc" / "solc"),
                 "--solc-remaps", remaps, "--solc-args", solc_args, "--filter-paths", "node_modules",
                 "--exclude-informational", "--json", str(report)],
                cwd=ROOT, capture_output=True, text=True,
            )
            if not report.exists():
                print(proc.stderr[-4000:], file=sys.stderr)
                print(f"slither could not analyse {source.name}", file=sys.stderr)
                return 2
            data = json.loads(report.read_text())
        if not data.get("success"):
            print(f"slither failed on {source.name}: {data.get('error')}", file=sys.stderr)
            return 2
        findings = data["results"].get("detectors", [])
        for finding in findings:
            first = finding["elements"][0] if finding["elements"] else {}
            location = f"{first.get('type', '')}:{first.get('name', '')}"
            key = (finding["check"], location)
            summary = finding["description"].splitlines()[0]
            if finding["impact"] in FAILING_IMPACTS and key not in triaged:
                untriaged += 1
                print(f"UNTRIAGED {finding['impact']} {finding['check']} {location}: {summary}")
            elif finding["impact"] in FAILING_IMPACTS:
                print(f"triaged   {finding['impact']} {finding['check']} {location}: {triaged[key]}")
        lows = sum(1 for f in findings if f["impact"] not in FAILING_IMPACTS)
        print(f"slither {source.name}: {len(findings) - lows} high/medium, {lows} low")
    if untriaged:
        print(f"{untriaged} high/medium slither finding(s) neither fixed nor triaged in {TRIAGE_FILE.relative_to(ROOT)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
