"""NodeRegistry: staking, profile, unbonding, slashing, reputation counters."""

from brownie import chain

from aidoc.config import AID
from aidoc.constants import DataType, input_types_mask
from conftest import MIN_STAKE, NODE_FEE, NODE_KEY, UNBONDING_DELAY, event_args, plain, register_node, reverts_with

LAB_AND_ECG = input_types_mask(DataType.LAB_PANEL, DataType.ECG)
OTHER_KEY = "0x" + "ee" * 32


def test_register_pulls_stake_and_publishes_profile(token, nodes, node):
    before = token.balanceOf(node)
    tx = register_node(token, nodes, node)
    assert token.balanceOf(node) == before - MIN_STAKE
    assert token.balanceOf(nodes) == MIN_STAKE
    assert event_args(tx, "NodeRegistered") == {
        "node": node.address, "stake": MIN_STAKE, "fee": NODE_FEE, "encryptionKey": NODE_KEY,
        "inputTypes": LAB_AND_ECG, "gpu": False,
    }
    assert plain(nodes.getNode(node)) == (MIN_STAKE, NODE_FEE, 0, LAB_AND_ECG, False, True, NODE_KEY)
    assert nodes.isActive(node)
    assert plain(nodes.requireActive(node)) == (NODE_FEE, LAB_AND_ECG)


def test_register_rejections(token, nodes, node):
    token.approve(nodes, 10 * MIN_STAKE, {"from": node})
    with reverts_with("StakeBelowMinimum", MIN_STAKE - 1, MIN_STAKE):
        nodes.register(MIN_STAKE - 1, 0, NODE_KEY, LAB_AND_ECG, False, {"from": node})
    with reverts_with("ZeroEncryptionKey"):
        nodes.register(MIN_STAKE, 0, "0x" + "00" * 32, LAB_AND_ECG, False, {"from": node})
    with reverts_with("NoInputTypes"):
        nodes.register(MIN_STAKE, 0, NODE_KEY, 0, False, {"from": node})
    nodes.register(MIN_STAKE, 0, NODE_KEY, LAB_AND_ECG, False, {"from": node})
    with reverts_with("AlreadyRegistered", node.address):
        nodes.register(MIN_STAKE, 0, NODE_KEY, LAB_AND_ECG, False, {"from": node})


def test_add_stake_and_update_profile(token, nodes, active_node, stranger):
    token.approve(nodes, 500 * AID, {"from": active_node})
    tx = nodes.addStake(500 * AID, {"from": active_node})
    assert event_args(tx, "StakeAdded") == {"node": active_node.address, "amount": 500 * AID, "stake": MIN_STAKE + 500 * AID}
    with reverts_with("ZeroAmount"):
        nodes.addStake(0, {"from": active_node})
    with reverts_with("NotRegistered", stranger.address):
        nodes.addStake(1, {"from": stranger})

    mask = input_types_mask(DataType.IMAGE)
    tx = nodes.update(7, OTHER_KEY, mask, True, {"from": active_node})
    assert event_args(tx, "NodeUpdated") == {
        "node": active_node.address, "fee": 7, "encryptionKey": OTHER_KEY, "inputTypes": mask, "gpu": True,
    }
    assert plain(nodes.getNode(active_node))[1:] == (7, 0, mask, True, True, OTHER_KEY)
    with reverts_with("ZeroEncryptionKey"):
        nodes.update(7, "0x" + "00" * 32, mask, True, {"from": active_node})
    with reverts_with("NoInputTypes"):
        nodes.update(7, OTHER_KEY, 0, True, {"from": active_node})
    with reverts_with("NotRegistered", stranger.address):
        nodes.update(7, OTHER_KEY, mask, True, {"from": stranger})


def test_unbonding_then_withdrawal(token, nodes, active_node, stranger):
    with reverts_with("NotUnbonding", active_node.address):
        nodes.withdrawStake({"from": active_node})
    tx = nodes.beginUnbonding({"from": active_node})
    end = tx.timestamp + UNBONDING_DELAY
    assert event_args(tx, "UnbondingStarted") == {"node": active_node.address, "stake": MIN_STAKE, "unbondingEnd": end}
    assert not nodes.isActive(active_node)
    with reverts_with("NodeNotActive", active_node.address):
        nodes.requireActive(active_node)
    with reverts_with("AlreadyUnbonding", active_node.address, end):
        nodes.beginUnbonding({"from": active_node})
    with reverts_with("AlreadyUnbonding", active_node.address, end):
        nodes.addStake(1, {"from": active_node})
    with reverts_with("UnbondingNotFinished", active_node.address, end):
        nodes.withdrawStake({"from": active_node})
    with reverts_with("NotRegistered", stranger.address):
        nodes.beginUnbonding({"from": stranger})

    chain.sleep(UNBONDING_DELAY + 1)
    before = token.balanceOf(active_node)
    tx = nodes.withdrawStake({"from": active_node})
    assert event_args(tx, "StakeWithdrawn") == {"node": active_node.address, "amount": MIN_STAKE}
    assert token.balanceOf(active_node) == before + MIN_STAKE
    assert not nodes.getNode(active_node)[5]
    # A withdrawn node can register again from scratch.
    register_node(token, nodes, active_node)
    assert nodes.isActive(active_node)


def test_slashing_by_governance(token, nodes, active_node, admin, stranger):
    treasury = stranger
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, nodes.SLASHER_ROLE()):
        nodes.slash(active_node, 1, treasury, "no", {"from": stranger})
    with reverts_with("ZeroAmount"):
        nodes.slash(active_node, 0, treasury, "r", {"from": admin})
    with reverts_with("InvalidRecipient", "0x" + "00" * 20):
        nodes.slash(active_node, 1, "0x" + "00" * 20, "r", {"from": admin})
    with reverts_with("InvalidRecipient", nodes.address):
        nodes.slash(active_node, 1, nodes, "r", {"from": admin})
    with reverts_with("EmptyReason"):
        nodes.slash(active_node, 1, treasury, "", {"from": admin})
    with reverts_with("SlashExceedsStake", active_node.address, MIN_STAKE + 1, MIN_STAKE):
        nodes.slash(active_node, MIN_STAKE + 1, treasury, "r", {"from": admin})
    with reverts_with("NotRegistered", admin.address):
        nodes.slash(admin, 1, treasury, "r", {"from": admin})

    before = token.balanceOf(treasury)
    tx = nodes.slash(active_node, 100 * AID, treasury, "posted a forged result", {"from": admin})
    assert event_args(tx, "NodeSlashed") == {
        "node": active_node.address, "amount": 100 * AID, "recipient": treasury.address,
        "reason": "posted a forged result",
    }
    assert token.balanceOf(treasury) == before + 100 * AID
    assert nodes.getNode(active_node)[0] == MIN_STAKE - 100 * AID
    assert nodes.reputationOf(active_node)[3] == 1
    # Below the minimum stake the node takes no new requests.
    assert not nodes.isActive(active_node)


def test_slashing_reaches_a_node_during_unbonding(token, nodes, active_node, admin, stranger):
    nodes.beginUnbonding({"from": active_node})
    nodes.slash(active_node, MIN_STAKE, stranger, "fled after fraud", {"from": admin})
    chain.sleep(UNBONDING_DELAY + 1)
    tx = nodes.withdrawStake({"from": active_node})
    assert event_args(tx, "StakeWithdrawn")["amount"] == 0


def test_reputation_counters_only_by_reporter(nodes, node, stranger, admin):
    for record in (nodes.recordFulfilled, nodes.recordFailed, nodes.recordTimedOut):
        args = (node, 1) if record is nodes.recordFulfilled else (node,)
        with reverts_with("AccessControlUnauthorizedAccount", stranger.address, nodes.REPORTER_ROLE()):
            record(*args, {"from": stranger})
    nodes.grantRole(nodes.REPORTER_ROLE(), stranger, {"from": admin})
    nodes.recordFulfilled(node, 5, {"from": stranger})
    nodes.recordFailed(node, {"from": stranger})
    nodes.recordTimedOut(node, {"from": stranger})
    nodes.recordTimedOut(node, {"from": stranger})
    assert plain(nodes.reputationOf(node)) == (5, 1, 2, 0)


def test_governance_parameters(nodes, admin, stranger, token, active_node):
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, nodes.DEFAULT_ADMIN_ROLE()):
        nodes.setMinStake(1, {"from": stranger})
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, nodes.DEFAULT_ADMIN_ROLE()):
        nodes.setUnbondingDelay(1, {"from": stranger})
    tx = nodes.setMinStake(2 * MIN_STAKE, {"from": admin})
    assert event_args(tx, "MinStakeUpdated") == {"minStake": 2 * MIN_STAKE}
    assert nodes.minStake() == 2 * MIN_STAKE
    assert not nodes.isActive(active_node)
    tx = nodes.setUnbondingDelay(60, {"from": admin})
    assert event_args(tx, "UnbondingDelayUpdated") == {"unbondingDelay": 60}
    assert nodes.unbondingDelay() == 60


def test_require_bonded_holds_while_stake_is_left_to_slash(token, nodes, active_node, admin, stranger):
    nodes.requireBonded(active_node)  # registered with its stake
    with reverts_with("NodeNotBonded", stranger.address):
        nodes.requireBonded(stranger)  # never registered
    nodes.beginUnbonding({"from": active_node})
    nodes.requireBonded(active_node)  # unbonding: the stake is still there
    nodes.slash(active_node, MIN_STAKE, admin, "fraud", {"from": admin})
    with reverts_with("NodeNotBonded", active_node.address):
        nodes.requireBonded(active_node)  # slashed to nothing
