// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title Node registry
/// @notice Staked compute nodes: their encryption keys, capabilities, fees, exits and reputation.
contract NodeRegistry is INodeRegistry, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Governance that slashes misbehaving nodes.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Contracts that report request outcomes (the market).
    bytes32 public constant REPORTER_ROLE = keccak256("REPORTER_ROLE");

    /// @notice The AID token nodes stake.
    IERC20 public immutable stakeToken;

    uint96 public minStake;
    uint40 public unbondingDelay;

    mapping(address node => Node) private _nodes;
    mapping(address node => Reputation) private _reputations;

    /// @param admin receives DEFAULT_ADMIN_ROLE and SLASHER_ROLE
    /// @param token the AID token
    /// @param initialMinStake minimum stake for a node to be active
    /// @param initialUnbondingDelay seconds between beginUnbonding and withdrawStake
    constructor(address admin, IERC20 token, uint96 initialMinStake, uint40 initialUnbondingDelay) {
        stakeToken = token;
        minStake = initialMinStake;
        unbondingDelay = initialUnbondingDelay;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(SLASHER_ROLE, admin);
    }

    /// @inheritdoc INodeRegistry
    function register(uint96 stake, uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu)
        external
        nonReentrant
    {
        Node storage node = _nodes[msg.sender];
        if (node.registered) revert AlreadyRegistered(msg.sender);
        if (stake < minStake) revert StakeBelowMinimum(stake, minStake);
        _checkProfile(encryptionKey, inputTypes);

        _nodes[msg.sender] = Node({
            stake: stake,
            fee: fee,
            unbondingEnd: 0,
            inputTypes: inputTypes,
            gpu: gpu,
            registered: true,
            encryptionKey: encryptionKey
        });
        emit NodeRegistered(msg.sender, stake, fee, encryptionKey, inputTypes, gpu);
        stakeToken.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @inheritdoc INodeRegistry
    function addStake(uint96 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Node storage node = _registered(msg.sender);
        if (node.unbondingEnd != 0) revert AlreadyUnbonding(msg.sender, node.unbondingEnd);
        node.stake += amount;
        emit StakeAdded(msg.sender, amount, node.stake);
        stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeRegistry
    function update(uint80 fee, bytes32 encryptionKey, uint16 inputTypes, bool gpu) external {
        Node storage node = _registered(msg.sender);
        _checkProfile(encryptionKey, inputTypes);
        node.fee = fee;
        node.encryptionKey = encryptionKey;
        node.inputTypes = inputTypes;
        node.gpu = gpu;
        emit NodeUpdated(msg.sender, fee, encryptionKey, inputTypes, gpu);
    }

    /// @inheritdoc INodeRegistry
    function beginUnbonding() external {
        Node storage node = _registered(msg.sender);
        if (node.unbondingEnd != 0) revert AlreadyUnbonding(msg.sender, node.unbondingEnd);
        uint40 end = uint40(block.timestamp) + unbondingDelay;
        node.unbondingEnd = end;
        emit UnbondingStarted(msg.sender, node.stake, end);
    }

    /// @inheritdoc INodeRegistry
    function withdrawStake() external nonReentrant {
        Node storage node = _registered(msg.sender);
        uint40 end = node.unbondingEnd;
        if (end == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < end) revert UnbondingNotFinished(msg.sender, end);
        uint96 amount = node.stake;
        delete _nodes[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        if (amount != 0) stakeToken.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc INodeRegistry
    function slash(address nodeAddress, uint96 amount, address recipient, string calldata reason)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0) || recipient == address(this)) revert InvalidRecipient(recipient);
        if (bytes(reason).length == 0) revert EmptyReason();
        Node storage node = _registered(nodeAddress);
        if (amount > node.stake) revert SlashExceedsStake(nodeAddress, amount, node.stake);
        // unchecked: amount <= node.stake was checked just above.
        unchecked {
            node.stake -= amount;
        }
        _reputations[nodeAddress].slashed += 1;
        emit NodeSlashed(nodeAddress, amount, recipient, reason);
        stakeToken.safeTransfer(recipient, amount);
    }

    /// @inheritdoc INodeRegistry
    function recordFulfilled(address nodeAddress, uint64 count) external onlyRole(REPORTER_ROLE) {
        _reputations[nodeAddress].fulfilled += count;
    }

    /// @inheritdoc INodeRegistry
    function recordFailed(address nodeAddress) external onlyRole(REPORTER_ROLE) {
        _reputations[nodeAddress].failed += 1;
    }

    /// @inheritdoc INodeRegistry
    function recordTimedOut(address nodeAddress) external onlyRole(REPORTER_ROLE) {
        _reputations[nodeAddress].timedOut += 1;
    }

    /// @inheritdoc INodeRegistry
    function setMinStake(uint96 newMinStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        minStake = newMinStake;
        emit MinStakeUpdated(newMinStake);
    }

    /// @inheritdoc INodeRegistry
    function setUnbondingDelay(uint40 newUnbondingDelay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        unbondingDelay = newUnbondingDelay;
        emit UnbondingDelayUpdated(newUnbondingDelay);
    }

    /// @inheritdoc INodeRegistry
    function requireActive(address nodeAddress) external view returns (uint80 fee, uint16 inputTypes) {
        Node storage node = _nodes[nodeAddress];
        if (!_isActive(node)) revert NodeNotActive(nodeAddress);
        return (node.fee, node.inputTypes);
    }

    /// @inheritdoc INodeRegistry
    function isActive(address nodeAddress) external view returns (bool) {
        return _isActive(_nodes[nodeAddress]);
    }

    /// @inheritdoc INodeRegistry
    function requireBonded(address nodeAddress) external view {
        Node storage node = _nodes[nodeAddress];
        if (!node.registered || node.stake == 0) revert NodeNotBonded(nodeAddress);
    }

    /// @inheritdoc INodeRegistry
    function getNode(address nodeAddress) external view returns (Node memory) {
        return _nodes[nodeAddress];
    }

    /// @inheritdoc INodeRegistry
    function reputationOf(address nodeAddress) external view returns (Reputation memory) {
        return _reputations[nodeAddress];
    }

    function _isActive(Node storage node) private view returns (bool) {
        return node.registered && node.unbondingEnd == 0 && node.stake >= minStake;
    }

    function _registered(address nodeAddress) private view returns (Node storage node) {
        node = _nodes[nodeAddress];
        if (!node.registered) revert NotRegistered(nodeAddress);
    }

    function _checkProfile(bytes32 encryptionKey, uint16 inputTypes) private pure {
        if (encryptionKey == bytes32(0)) revert ZeroEncryptionKey();
        if (inputTypes == 0) revert NoInputTypes();
    }
}
