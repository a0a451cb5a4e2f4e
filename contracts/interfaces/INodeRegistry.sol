// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Node registry interface
/// @notice Compute nodes stake AID, publish an X25519 encryption key and their capabilities, and
/// build a reputation from their outcomes. Governance can slash a node's stake.
interface INodeRegistry {
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

    event NodeRegistered(
        address indexed node, uint96 stake, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu
    );
    event StakeAdded(address indexed node, uint96 amount, uint96 stake);
    event NodeUpdated(address indexed node, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu);
    event UnbondingStarted(address indexed node, uint96 stake, uint40 unbondingEnd);
    event StakeWithdrawn(address indexed node, uint96 amount);
    event NodeSlashed(address indexed node, uint96 amount, address indexed recipient, string reason);
    event MinStakeUpdated(uint96 minStake);
    event UnbondingDelayUpdated(uint40 unbondingDelay);

    error AlreadyRegistered(address node);
    error NotRegistered(address node);
    error StakeBelowMinimum(uint96 stake, uint96 minStake);
    error ZeroEncryptionKey();
    error NoInputTypes();
    error ZeroAmount();
    error AlreadyUnbonding(address node, uint40 unbondingEnd);
    error NotUnbonding(address node);
    error UnbondingNotFinished(address node, uint40 unbondingEnd);
    error NodeNotActive(address node);
    error NodeNotBonded(address node);
    error SlashExceedsStake(address node, uint96 amount, uint96 stake);
    error InvalidRecipient(address recipient);
    error EmptyReason();

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
