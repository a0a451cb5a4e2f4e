"""Python's mirrors of on-chain constants (aidoc.constants, aidoc.signing) agree with the contracts."""

import re
from pathlib import Path

from brownie import web3

from aidoc.constants import DataType, Purpose
from aidoc.signing import CONSENT_GRANT_FIELDS, CONSENT_REVOCATION_FIELDS

ROOT = Path(__file__).resolve().parents[2]


def _type_string(name, fields):
    return f"{name}({','.join(f['type'] + ' ' + f['name'] for f in fields)})"


def test_eip712_type_hashes_match_the_python_signer(consents):
    grant = web3.keccak(text=_type_string("ConsentGrant", CONSENT_GRANT_FIELDS))
    revocation = web3.keccak(text=_type_string("ConsentRevocation", CONSENT_REVOCATION_FIELDS))
    assert bytes(consents.CONSENT_GRANT_TYPEHASH()) == bytes(grant)
    assert bytes(consents.CONSENT_REVOCATION_TYPEHASH()) == bytes(revocation)


def _library_constants(name: str) -> dict[str, int]:
    """The uint constants of contracts/libraries/<name>.sol, with constants defined by one another resolved."""
    text = (ROOT / "contracts" / "libraries" / f"{name}.sol").read_text()
    raw = dict(re.findall(r"uint\d+ internal constant (\w+) = ([\w_]+);", text))
    values: dict[str, int] = {}
    for _ in raw:  # each pass resolves at least one more reference, if they resolve at all
        for key, value in raw.items():
            if value.replace("_", "").isdigit():
                values[key] = int(value.replace("_", ""))
            elif value in values:
                values[key] = values[value]
    assert values.keys() == raw.keys(), f"unresolved constants in {name}.sol: {raw.keys() - values.keys()}"
    return values


def test_data_types_and_purposes_match(consents, models):
    data_types = _library_constants("DataTypes")
    # One bound, in the DataTypes library; both registries expose it rather than a literal of their own.
    assert consents.MAX_DATA_TYPE() == models.MAX_INPUT_TYPE() == data_types["MAX_DATA_TYPE"] == max(DataType)
    assert "MAX_DATA_TYPE = DataTypes.MAX_DATA_TYPE;" in (ROOT / "contracts" / "ConsentRegistry.sol").read_text()
    assert "MAX_INPUT_TYPE = DataTypes.MAX_DATA_TYPE;" in (ROOT / "contracts" / "ModelRegistry.sol").read_text()
    assert {member.name: int(member) for member in DataType} == {
        key: value for key, value in data_types.items() if key in DataType.__members__
    }
    assert data_types["MAX_BPS"] == 10_000
    assert int(Purpose.DIAGNOSIS | Purpose.RESEARCH | Purpose.TRAINING | Purpose.INSURANCE) == 15


def test_timeout_bounds_match_the_settings_check(market):
    # aidoc.config.DeploySettings refuses timeouts outside the same bounds before any transaction.
    assert market.MIN_REQUEST_TIMEOUT() == 60
    assert market.MAX_REQUEST_TIMEOUT() == 30 * 24 * 3600


def test_registries_point_at_the_same_token(nodes, market, token):
    assert nodes.stakeToken() == token.address == market.token()
