// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Node registry interface
/// @notice Compute nodes stake AID, publish an X25519 encryption key and their capabilities, and
/// build a reputation from their outcomes. Governance can slash a node's stake.
interface INodeRegistry is IMarketplaceErrors {
    /// @notice A compute node.
    /// @param stake AID currently at stake (wei units)
    /// @param fee AID the node charges per diagnosis
    /// @param unbondingEnd when an exit's stake can be withdrawn; 0 while the node is not exiting
    /// @param inputTypes bitmask of supported record data types (bit t set = type t supported)
    /// @param gpu whether the node runs inference on a GPU
    /// @param registered whether the address has a live registration
    /// @param encryptionKey X25519 public key that record keys are wrapped to
    struct Node {
        uint96 stake;
        uint80 fee;
        uint40 unbondingEnd;
        uint16 inputTypes;
        bool gpu;
        bool registered;
        bytes32 encryptionKey;
    }

    /// @notice Outcome counters of a node.
    struct Reputation {
        uint64 fulfilled;
        uint64 failed;
        uint64 timedOut;
        uint64 slashed;
    }

    /// @notice Emitted when a node registers and stakes.
    /// @param stake AID staked (wei units)
    /// @param fee AID the node charges per diagnosis
    /// @param encryptionKey X25519 public key that record keys are wrapped to
    /// @param inputTypes bitmask of supported data types (bit t set = type t supported)
    /// @param gpu whether the node runs inference on a GPU
    event NodeRegistered(
        address indexed node, uint96 stake, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu
    );

    /// @notice Emitted when a node adds `amount` to its stake.
    /// @param stake the node's stake after it
    event StakeAdded(address indexed node, uint96 amount, uint96 stake);

    /// @notice Emitted when a node updates its fee, encryption key and capabilities.
    event NodeUpdated(address indexed node, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu);

    /// @notice Emitted when a node starts its exit: it takes no new work, and may withdraw `stake` from
    /// `unbondingEnd`.
    event UnbondingStarted(address indexed node, uint96 stake, uint40 unbondingEnd);

    /// @notice Emitted when a node withdraws its whole stake after unbonding, and is deregistered.
    event StakeWithdrawn(address indexed node, uint96 amount);

    /// @notice Emitted when the slasher takes `amount` of a node's stake to `recipient`, giving the reason.
    event NodeSlashed(address indexed node, uint96 amount, address indexed recipient, string reason);

    /// @notice Emitted when governance sets the minimum stake for a node to be active.
    event MinStakeUpdated(uint96 minStake);

    /// @notice Emitted when governance sets the seconds between beginUnbonding and withdrawStake.
    event UnbondingDelayUpdated(uint40 unbondingDelay);

    /// @notice Thrown when a registered node registers again.
    error AlreadyRegistered(address node);

    /// @notice Thrown when an address that is not a registered node acts as one, or is slashed.
    error NotRegistered(address node);

    /// @notice Thrown when a node registers with less than the minimum stake.
    error StakeBelowMinimum(uint96 stake, uint96 minStake);

    /// @notice Thrown when a node's encryption key is zero.
    error ZeroEncryptionKey();

    /// @notice Thrown when a node's capability mask names no data type.
    error NoInputTypes();

    /// @notice Thrown when a stake top-up or a slash is of 0 AID.
    error ZeroAmount();

    /// @notice Thrown when an exiting node adds stake or starts unbonding again.
    error AlreadyUnbonding(address node, uint40 unbondingEnd);

    /// @notice Thrown when a node withdraws its stake without having started unbonding.
    error NotUnbonding(address node);

    /// @notice Thrown when a node withdraws its stake before its unbonding ends at `unbondingEnd`.
    error UnbondingNotFinished(address node, uint40 unbondingEnd);

    /// @notice Thrown when a node assigned new work is not active: not registered, exiting, or staked below the
    /// minimum.
    error NodeNotActive(address node);

    /// @notice Thrown when a node is to be paid for a delivery but is not registered with stake left to slash
    /// (it withdrew, or was slashed to nothing).
    error NodeNotBonded(address node);

    /// @notice Thrown when a slash of `amount` exceeds the node's `stake`.
    error SlashExceedsStake(address node, uint96 amount, uint96 stake);

    /// @notice Registers the caller as a node, pulling `stake` AID (approve or permit first).
    function register(uint96 stake, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu) external;

    /// @notice Adds `amount` AID to the caller's stake.
    function addStake(uint96 amount) external;

    /// @notice Updates the caller's fee, encryption key and capabilities.
    function update(uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu) external;

    /// @notice Starts the exit: the node takes no new requests; its stake unlocks after the delay.
    function beginUnbonding() external;

    /// @notice Withdraws the whole stake once unbonding has finished, and deregisters the node.
    function withdrawStake() external;

    /// @notice Slashes `amount` of `node`'s stake to `recipient`, giving the reason. Only SLASHER_ROLE.
    function slash(address node, uint96 amount, address recipient, string calldata reason) external;

    /// @notice Counts `count` fulfilled requests for `node`. Only REPORTER_ROLE (the market, whose
    /// DiagnosisFulfilled events already log each outcome, so this emits nothing).
    function recordFulfilled(address node, uint64 count) external;

    /// @notice Counts one failed request for `node`. Only REPORTER_ROLE.
    function recordFailed(address node) external;

    /// @notice Counts one request `node` let time out. Only REPORTER_ROLE.
    function recordTimedOut(address node) external;

    /// @notice Sets the minimum stake for a node to be active. Only DEFAULT_ADMIN_ROLE.
    function setMinStake(uint96 newMinStake) external;

    /// @notice Sets the unbonding delay in seconds. Only DEFAULT_ADMIN_ROLE.
    function setUnbondingDelay(uint40 newUnbondingDelay) external;

    /// @notice Reverts with NodeNotActive unless `node` can take requests; returns its terms.
    function requireActive(address node) external view returns (uint80 fee, uint16 inputTypes);

    /// @notice Whether `node` is registered, not exiting and staked at least the minimum.
    function isActive(address node) external view returns (bool);

    /// @notice Reverts with NodeNotBonded unless `node` is registered with stake left to slash,
    /// unbonding or not: the market pays only such a node for a fulfilment.
    function requireBonded(address node) external view;

    /// @notice The node record of `node`.
    function getNode(address node) external view returns (Node memory);

    /// @notice The reputation counters of `node`.
    function reputationOf(address node) external view returns (Reputation memory);

    /// @notice The minimum stake for a node to be active.
    function minStake() external view returns (uint96);

    /// @notice Seconds between beginUnbonding and withdrawStake.
    function unbondingDelay() external view returns (uint40);
}
