"""Shared fixtures: a freshly deployed marketplace per module, reverted to a snapshot after each
test (Brownie's fn_isolation), with actors holding AID and patients holding signing keys."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from brownie import accounts, chain
from brownie.exceptions import VirtualMachineError
from hexbytes import HexBytes

from aidoc.chain.brownie_runner import tolerate_transaction_index_lag
from aidoc.chain.request import DiagnosisRequest
from aidoc.config import AID, DeploySettings
from aidoc.constants import DataType, Purpose, input_types_mask
from scripts.accounts import fresh_local_account
from scripts.deploy import deploy_contracts

# A transaction anvil has mined is not taken for a dropped one (aidoc.chain.brownie_runner).
tolerate_transaction_index_lag()

MODEL_PRICE = 10 * AID
ROYALTY = 2 * AID
NODE_FEE = 3 * AID
TOTAL = MODEL_PRICE + ROYALTY + NODE_FEE  # one request's escrow
MIN_STAKE = 1_000 * AID
DEFAULT_EPSILON_LIMIT = 10_000  # milli-epsilon: epsilon 10
REQUEST_TIMEOUT = 3600
UNBONDING_DELAY = 7 * 24 * 3600
DAY = 24 * 3600
RESULT_KEY = "0x" + "ab" * 32
NODE_KEY = "0x" + "cd" * 32
CIPHERTEXT_HASH = "0x" + "12" * 32
WEIGHTS_HASH = "0x" + "34" * 32
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
ENVELOPE_CID = "bafkreidgvpkjawlxz6sffxzwgooowe5yt7i6wsyg236mfoks77nywkptdq"
RESULT_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
COMMITMENT = "0x" + "77" * 32


def _as_revert_argument(value) -> str:
    """How Brownie prints one decoded custom-error argument in a revert message."""
    if isinstance(value, (bytes, bytearray)) or (isinstance(value, str) and value.startswith("0x") and len(value) == 66):
        return str(bytes(HexBytes(value)))
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    if hasattr(value, "address"):
        return value.address.lower()
    return str(int(value)) if isinstance(value, int) else str(value)


@contextmanager
def reverts_with(error: str, *args):
    """Expects a revert with the custom error `error` and, if given, exactly these arguments."""
    with pytest.raises(VirtualMachineError) as caught:
        yield
    message = caught.value.revert_msg or ""
    name, _, rest = message.partition(":")
    assert name == error, f"expected {error}, got revert {message!r}"
    if args:
        expected = ", ".join(_as_revert_argument(a) for a in args)
        assert rest.strip() == expected, f"{error} arguments {rest.strip()!r} != {expected!r}"


def now() -> int:
    """The latest block's timestamp. Tests reckon time from the chain, not from Brownie's
    chain.time(), whose offset can drift from anvil's across snapshot reverts."""
    return chain[-1].timestamp


def plain(value):
    """A Brownie return value as plain Python (tuples, int, str, bool), for equality checks."""
    if isinstance(value, (list, tuple)):
        return tuple(plain(v) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


def event_args(tx, name: str, index: int = 0) -> dict:
    """The arguments of the `index`-th `name` event of `tx`, as plain Python values."""
    return {key: plain(value) for key, value in dict(tx.events[name][index]).items()}


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="module")
def admin():
    return accounts[0]


@pytest.fixture(scope="module")
def doctor():
    return accounts[1]


@pytest.fixture(scope="module")
def provider():
    return accounts[2]


@pytest.fixture(scope="module")
def node():
    return accounts[3]


@pytest.fixture(scope="module")
def auditor():
    return accounts[4]


@pytest.fixture(scope="module")
def stranger():
    return accounts[5]


@pytest.fixture(scope="module")
def doctor2():
    return accounts[6]


@pytest.fixture(scope="module")
def node2():
    return accounts[7]


@pytest.fixture(scope="module")
def patient(admin):
    """A patient with a local key, so tests can sign EIP-712 consents for it."""
    return fresh_local_account(admin)


@pytest.fixture(scope="module")
def patient2(admin):
    return fresh_local_account(admin)


@pytest.fixture(scope="module")
def contracts(admin, auditor, doctor, doctor2, node, node2, patient, patient2):
    settings = DeploySettings(
        token_cap=1_000_000_000 * AID,
        initial_supply=100_000_000 * AID,
        min_stake=MIN_STAKE,
        unbonding_delay=UNBONDING_DELAY,
        request_timeout=REQUEST_TIMEOUT,
        default_epsilon_limit_milli=DEFAULT_EPSILON_LIMIT,
        auditors=[auditor.address],
    )
    marketplace = deploy_contracts(admin, settings)
    for holder in (doctor, doctor2, node, node2, patient, patient2):
        marketplace.token.transfer(holder, 100_000 * AID, {"from": admin})
    return marketplace


@pytest.fixture(scope="module")
def token(contracts):
    return contracts.token


@pytest.fixture(scope="module")
def consents(contracts):
    return contracts.consents


@pytest.fixture(scope="module")
def models(contracts):
    return contracts.models


@pytest.fixture(scope="module")
def nodes(contracts):
    return contracts.nodes


@pytest.fixture(scope="module")
def market(contracts):
    return contracts.market


@pytest.fixture(scope="module")
def training(contracts):
    return contracts.training


@pytest.fixture(scope="module")
def rounds(contracts):
    return contracts.rounds


def register_record(consents, owner, data_type=DataType.LAB_PANEL, royalty=ROYALTY) -> int:
    tx = consents.registerRecord(CID, CIPHERTEXT_HASH, data_type, ENVELOPE_CID, royalty, {"from": owner})
    return tx.return_value


def register_model(models, provider, data_type=DataType.LAB_PANEL, price=MODEL_PRICE, name="panel-mlp") -> int:
    tx = models.registerModel(name, CID, WEIGHTS_HASH, data_type, price, {"from": provider})
    return tx.return_value


def register_node(token, nodes, node, fee=NODE_FEE, stake=MIN_STAKE, data_types=(DataType.LAB_PANEL, DataType.ECG)):
    token.approve(nodes, stake, {"from": node})
    return nodes.register(stake, fee, NODE_KEY, input_types_mask(*data_types), False, {"from": node})


def grant(consents, owner, record_id, grantee, purposes=Purpose.DIAGNOSIS, days=30):
    return consents.grantConsent(record_id, grantee, purposes, now() + days * DAY, {"from": owner})


def make_request(token, market, requester, record_id, model_id, node_account, max_total=10_000 * AID):
    token.approve(market, 10_000 * AID, {"from": requester})
    tx = market.requestDiagnosis(record_id, model_id, node_account, RESULT_KEY, max_total, {"from": requester})
    request = DiagnosisRequest.from_event_field(tx.events["DiagnosisRequested"]["request"])
    return tx.events["DiagnosisRequested"]["requestId"], request, tx


@pytest.fixture
def record_id(consents, patient):
    return register_record(consents, patient)


@pytest.fixture
def model_id(models, provider):
    return register_model(models, provider)


@pytest.fixture
def active_node(token, nodes, node):
    register_node(token, nodes, node)
    return node


@pytest.fixture
def consented(consents, patient, record_id, doctor):
    grant(consents, patient, record_id, doctor)
    return record_id


@pytest.fixture
def pending(token, market, doctor, consented, model_id, active_node):
    """A pending request: (request id, DiagnosisRequest terms, transaction)."""
    return make_request(token, market, doctor, consented, model_id, active_node)


def _load_brownie_stateful_source():
    """Brownie 1.22 ships brownie/test/stateful as a mypyc-compiled module whose type checks reject
    every user-defined state machine ("_BrownieStateMachine object expected"). Its pure-Python source
    ships beside it, so the suite loads that one; the API is Brownie's own `state_machine`."""
    import importlib.util
    from pathlib import Path

    import brownie.test

    source = Path(brownie.test.__file__).with_name("stateful.py")
    spec = importlib.util.spec_from_file_location("brownie_stateful_source", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def state_machine():
    """Brownie's state_machine runner (from its Python source, see above)."""
    return _load_brownie_stateful_source().state_machine
