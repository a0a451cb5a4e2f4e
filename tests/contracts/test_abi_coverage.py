"""The suite names every function, custom error and event our contracts declare: a guard that a
new entry point or revert path does not land untested. (Library entries inherited from
OpenZeppelin are exempt unless our contracts use them on purpose, as listed below.)"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = ("AIDToken", "ConsentRegistry", "ModelRegistry", "NodeRegistry", "DiagnosisMarket", "TrainingMarket",
        "FederatedRounds")
INTERFACE_SOURCES = sorted((ROOT / "contracts").rglob("*.sol"))
# OpenZeppelin functionality that the marketplace relies on and therefore tests.
INHERITED_ON_PURPOSE = {
    "permit", "nonces", "DOMAIN_SEPARATOR", "eip712Domain", "cap", "grantRole", "hasRole", "transfer", "approve",
    "AccessControlUnauthorizedAccount", "ERC20ExceededCap", "ERC2612ExpiredSignature", "ERC2612InvalidSigner",
    "ERC20InsufficientAllowance", "Approval", "Transfer",
}


def _declared_in_our_sources() -> set[str]:
    names = set()
    for source in INTERFACE_SOURCES:
        text = source.read_text()
        names |= set(re.findall(r"^\s*(?:function|error|event)\s+(\w+)", text, re.M))
        names |= set(re.findall(r"^\s*(?:bytes32|uint\d+|IERC20|IConsentRegistry|IModelRegistry|INodeRegistry)"
                                r"\s+public\s+(?:constant\s+|immutable\s+)?(\w+)", text, re.M))
    return {n for n in names if not n.startswith("_")}


def test_every_declared_function_error_and_event_is_exercised():
    tests_text = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name)
    tests_text += (ROOT / "scripts" / "deploy.py").read_text()  # role wiring is exercised through deploy
    abi_names = set()
    for name in OURS:
        abi = json.loads((ROOT / "build" / "contracts" / f"{name}.json").read_text())["abi"]
        abi_names |= {entry["name"] for entry in abi if entry.get("type") in ("function", "error", "event")}
    wanted = (abi_names & _declared_in_our_sources()) | (abi_names & INHERITED_ON_PURPOSE)
    untested = sorted(n for n in wanted if not re.search(rf"\b{n}\b", tests_text))
    assert not untested, f"declared but never named in tests/: {untested}"
