"""AIDToken: capped supply, role-gated reward minting, ERC-2612 permit."""

from brownie import chain
from brownie.convert import to_bytes

from aidoc.config import AID
from aidoc.signing import sign_permit
from conftest import event_args, now, reverts_with


def test_metadata_and_initial_supply(token, admin):
    assert token.name() == "AIDoc Token"
    assert token.symbol() == "AID"
    assert token.decimals() == 18
    assert token.cap() == 1_000_000_000 * AID
    assert token.totalSupply() == 100_000_000 * AID


def test_minter_mints_reward_with_event(token, admin, patient):
    before = token.balanceOf(patient)
    contribution = "0x" + "01" * 32
    tx = token.mintReward(patient, 5 * AID, contribution, {"from": admin})
    assert token.balanceOf(patient) == before + 5 * AID
    assert event_args(tx, "RewardMinted") == {"to": patient, "amount": 5 * AID, "contributionId": contribution}
    assert event_args(tx, "Transfer")["from"] == "0x" + "00" * 20


def test_only_minter_mints(token, stranger):
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, token.MINTER_ROLE()):
        token.mintReward(stranger, 1, "0x" + "00" * 32, {"from": stranger})


def test_minting_stops_at_cap(token, admin, patient):
    headroom = token.cap() - token.totalSupply()
    token.mintReward(patient, headroom, "0x" + "02" * 32, {"from": admin})
    assert token.totalSupply() == token.cap()
    with reverts_with("ERC20ExceededCap", token.cap() + 1, token.cap()):
        token.mintReward(patient, 1, "0x" + "03" * 32, {"from": admin})


def _permit(token, owner, spender, value, deadline, nonce=None):
    return sign_permit(
        owner.private_key, chain_id=chain.id, token=token.address, owner=owner.address,
        spender=spender.address, value=value, nonce=token.nonces(owner) if nonce is None else nonce,
        deadline=deadline,
    )


def test_permit_sets_allowance_without_owner_gas(token, patient, stranger, doctor):
    deadline = now() + 3600
    sig = _permit(token, patient, doctor, 7 * AID, deadline)
    tx = token.permit(patient, doctor, 7 * AID, deadline, sig.v, sig.r, sig.s, {"from": stranger})
    assert token.allowance(patient, doctor) == 7 * AID
    assert token.nonces(patient) == 1
    assert event_args(tx, "Approval") == {"owner": patient, "spender": doctor, "value": 7 * AID}


def test_permit_replay_is_rejected(token, patient, stranger, doctor):
    deadline = now() + 3600
    sig = _permit(token, patient, doctor, 7 * AID, deadline)
    token.permit(patient, doctor, 7 * AID, deadline, sig.v, sig.r, sig.s, {"from": stranger})
    with reverts_with("ERC2612InvalidSigner"):
        token.permit(patient, doctor, 7 * AID, deadline, sig.v, sig.r, sig.s, {"from": stranger})


def test_expired_permit_is_rejected(token, patient, doctor):
    deadline = now() - 1
    sig = _permit(token, patient, doctor, 1, deadline)
    with reverts_with("ERC2612ExpiredSignature", deadline):
        token.permit(patient, doctor, 1, deadline, sig.v, sig.r, sig.s, {"from": doctor})


def test_domain_separator_matches_signing_domain(token, patient, doctor):
    # A permit signed with aidoc.signing's domain verifies, so the domains agree; the separator is
    # also exposed for wallets.
    assert len(to_bytes(token.DOMAIN_SEPARATOR(), "bytes32")) == 32
    deadline = now() + 60
    sig = _permit(token, patient, doctor, 1, deadline)
    token.permit(patient, doctor, 1, deadline, sig.v, sig.r, sig.s, {"from": doctor})
