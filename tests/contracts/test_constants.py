"""Python's mirrors of on-chain constants (aidoc.constants, aidoc.signing) agree with the contracts."""

from brownie import web3

from aidoc.constants import DataType, Purpose
from aidoc.signing import CONSENT_GRANT_FIELDS, CONSENT_REVOCATION_FIELDS


def _type_string(name, fields):
    return f"{name}({','.join(f['type'] + ' ' + f['name'] for f in fields)})"


def test_eip712_type_hashes_match_the_python_signer(consents):
    grant = web3.keccak(text=_type_string("ConsentGrant", CONSENT_GRANT_FIELDS))
    revocation = web3.keccak(text=_type_string("ConsentRevocation", CONSENT_REVOCATION_FIELDS))
    assert bytes(consents.CONSENT_GRANT_TYPEHASH()) == bytes(grant)
    assert bytes(consents.CONSENT_REVOCATION_TYPEHASH()) == bytes(revocation)


def test_data_types_and_purposes_match(consents, models):
    assert consents.MAX_DATA_TYPE() == max(DataType) == models.MAX_INPUT_TYPE()
    assert int(Purpose.DIAGNOSIS | Purpose.RESEARCH | Purpose.TRAINING | Purpose.INSURANCE) == 15


def test_timeout_bounds_match_the_settings_check(market):
    # aidoc.config.DeploySettings refuses timeouts outside the same bounds before any transaction.
    assert market.MIN_REQUEST_TIMEOUT() == 60
    assert market.MAX_REQUEST_TIMEOUT() == 30 * 24 * 3600


def test_registries_point_at_the_same_token(nodes, market, token):
    assert nodes.stakeToken() == token.address == market.token()
