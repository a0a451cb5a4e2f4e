"""Conventions of the Solidity sources that the compiler does not enforce: every event and custom
error says when it happens (NatSpec), every unchecked block says why it cannot overflow, and AID
enters and leaves the markets only through the escrow base (contracts/base/MarketEscrow.sol)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "contracts").rglob("*.sol"))
DECLARATION = re.compile(r"^\s*(event|error)\s+(\w+)\s*\(")
NOTICE = {"event": "/// @notice Emitted when ", "error": "/// @notice Thrown when "}
MARKETS = ("DiagnosisMarket.sol", "TrainingMarket.sol", "FederatedRounds.sol")
ESCROW = ROOT / "contracts" / "base" / "MarketEscrow.sol"
# A token call or the token itself: what only the escrow base may do with AID.
TOKEN_USE = re.compile(r"\b(safeTransfer|safeTransferFrom|transfer|transferFrom|permit)\s*\(|\btoken\s*\.|IERC20Permit")


def _doc_block(lines: list[str], index: int) -> list[str]:
    """The `///` lines right above line `index`."""
    block = []
    for line in reversed(lines[:index]):
        if not line.strip().startswith("///"):
            break
        block.insert(0, line.strip())
    return block


def test_every_event_and_error_has_a_notice_that_says_when():
    missing, declared = [], 0
    for source in SOURCES:
        lines = source.read_text().splitlines()
        for i, line in enumerate(lines):
            match = DECLARATION.match(line)
            if not match:
                continue
            declared += 1
            kind, name = match.groups()
            notices = [d for d in _doc_block(lines, i) if d.startswith("/// @notice")]
            if len(notices) != 1 or not notices[0].startswith(NOTICE[kind]):
                missing.append(f"{source.relative_to(ROOT)}:{i + 1} {kind} {name}")
    assert declared > 100, f"only {declared} declarations found: is the pattern still right?"
    assert not missing, "events need `/// @notice Emitted when ...`, errors `/// @notice Thrown when ...`: " + \
        ", ".join(missing)


def test_every_unchecked_block_says_why():
    unjustified = []
    for source in SOURCES:
        lines = source.read_text().splitlines()
        for i, line in enumerate(lines):
            if not re.search(r"\bunchecked\s*\{", line):
                continue
            comments = []
            for above in reversed(lines[:i]):
                if not above.strip().startswith("//"):
                    break
                comments.append(above)
            if not any("// unchecked:" in c for c in comments):
                unjustified.append(f"{source.relative_to(ROOT)}:{i + 1}")
    assert not unjustified, f"unchecked blocks without a `// unchecked: why` comment above: {unjustified}"


def test_aid_moves_in_and_out_of_the_markets_only_through_the_escrow_base():
    escrow = ESCROW.read_text()
    assert "safeTransferFrom(from, address(this), amount)" in escrow and "safeTransfer(to, amount)" in escrow
    heading = re.compile(r"^(?:abstract\s+)?contract\s+\w+\s+is\s+[^{\n]*\b(?:MarketEscrow|ComputeMarket|ModelPublisher)\b",
                         re.M)
    inheritors = [p for p in SOURCES if heading.search(p.read_text())]
    assert sorted(p.name for p in inheritors) == sorted(MARKETS + ("ComputeMarket.sol", "ModelPublisher.sol"))
    offending = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in inheritors
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if TOKEN_USE.search(line) and not line.strip().startswith("//")]
    assert not offending, f"AID moved outside MarketEscrow's _collect/_pay/_permit: {offending}"
