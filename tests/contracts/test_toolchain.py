"""The offline compiler toolchain: tools/solc/solc answers py-solc-x, Brownie and slither like a
native solc, and the same sources compile to the same bytecode wherever the project lives."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import solcx

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "tools" / "solc" / "solc"
CONTRACTS = ("AIDToken", "ConsentRegistry", "ModelRegistry", "NodeRegistry", "DiagnosisMarket", "TrainingMarket",
             "FederatedRounds")
SOURCE = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
contract Probe is ERC20 { constructor() ERC20("P", "P") {} }
"""


def _run(args, stdin=None, cwd=ROOT):
    return subprocess.run([str(SHIM), *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version_is_what_py_solc_x_parses():
    out = _run(["--version"])
    assert out.returncode == 0
    assert re.search(r"^Version: 0\.8\.37\+commit\.f401782d", out.stdout, re.M)
    assert str(solcx.wrapper.get_solc_version(SHIM, with_commit_hash=True)) == "0.8.37+commit.f401782d"


def test_registered_where_py_solc_x_looks():
    versions = [str(v) for v in solcx.get_installed_solc_versions()]
    assert "0.8.37" in versions, f"SOLCX_BINARY_PATH={os.environ.get('SOLCX_BINARY_PATH')} lists {versions}"


def test_help_lists_combined_json_for_py_solc_x():
    assert any(line.startswith("  --combined-json") for line in _run(["--help"]).stdout.splitlines())


def test_standard_json_stdout_is_pure_json(tmp_path):
    (tmp_path / "Probe.sol").write_text(SOURCE)
    request = {
        "language": "Solidity",
        "sources": {"Probe.sol": {"urls": ["Probe.sol"]}},
        "settings": {"remappings": [f"@openzeppelin/={ROOT}/node_modules/@openzeppelin/"],
                     "outputSelection": {"*": {"*": ["evm.bytecode.object"]}}},
    }
    out = _run(["--standard-json", "--allow-paths", f"{tmp_path},{ROOT}/node_modules"], json.dumps(request),
               cwd=tmp_path)
    result = json.loads(out.stdout)  # fails if soljson's SMT notice leaked onto stdout
    assert not [e for e in result.get("errors", []) if e["severity"] == "error"], result.get("errors")
    assert len(result["contracts"]["Probe.sol"]["Probe"]["evm"]["bytecode"]["object"]) > 1000


def test_imports_outside_allowed_paths_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Secret.sol").write_text("pragma solidity ^0.8.0; contract Secret {}")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "A.sol").write_text('pragma solidity ^0.8.0; import "../outside/Secret.sol"; contract A {}')
    request = {"language": "Solidity", "sources": {"A.sol": {"urls": ["A.sol"]}},
               "settings": {"outputSelection": {"*": {"*": ["abi"]}}}}
    result = json.loads(_run(["--standard-json"], json.dumps(request), cwd=inside).stdout)
    messages = " ".join(e["message"] for e in result.get("errors", []))
    assert "outside of allowed directories" in messages or "not found" in messages.lower()


def test_combined_json_with_remappings_as_crytic_compile_calls_it(tmp_path):
    (tmp_path / "Probe.sol").write_text(SOURCE)
    out = _run(["--combined-json", "abi,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes,ast",
                "--allow-paths", ".", f"@openzeppelin/={ROOT}/node_modules/@openzeppelin/", "Probe.sol"],
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    probe = result["contracts"]["Probe.sol:Probe"]
    assert probe["hashes"]["transfer(address,uint256)"] == "a9059cbb"
    assert probe["bin"] and probe["bin-runtime"] and "Probe.sol" in result["sources"]


def test_unknown_option_is_one_clear_line():
    out = _run(["--no-such-flag"])
    assert out.returncode != 0
    assert out.stderr.strip() == "Error: unrecognised option '--no-such-flag'"


def _deployed_bytecode(project: Path) -> dict[str, str]:
    return {name: json.loads((project / "build" / "contracts" / f"{name}.json").read_text())["deployedBytecode"]
            for name in CONTRACTS}


def test_same_bytecode_from_another_checkout_path(tmp_path):
    """Compiling the sources from a different absolute path gives identical bytecode, metadata hash
    included: sources and remappings are relative, the compiler is pinned by the npm lockfile."""
    elsewhere = tmp_path / "another" / "checkout"
    elsewhere.mkdir(parents=True)
    shutil.copytree(ROOT / "contracts", elsewhere / "contracts")
    shutil.copy(ROOT / "brownie-config.yaml", elsewhere)
    (elsewhere / "node_modules").symlink_to(ROOT / "node_modules")
    here = subprocess.run(["brownie", "compile"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    there = subprocess.run(["brownie", "compile"], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert here.returncode == 0 and there.returncode == 0, there.stdout[-2000:] + there.stderr[-2000:]
    ours, theirs = _deployed_bytecode(ROOT), _deployed_bytecode(elsewhere)
    for name in CONTRACTS:
        assert ours[name] == theirs[name], f"{name} compiled differently at {elsewhere}"
