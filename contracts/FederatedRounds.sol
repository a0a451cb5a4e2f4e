// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MarketEscrow} from "./base/MarketEscrow.sol";
import {ModelPublisher} from "./base/ModelPublisher.sol";
import {IFederatedRounds} from "./interfaces/IFederatedRounds.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {Artifacts} from "./libraries/Artifacts.sol";
import {DataTypes} from "./libraries/DataTypes.sol";

/// @title Federated rounds
/// @notice Escrow, round bookkeeping and settlement of federated trainings. Holds AID only while
/// trainings run, and never holds ETH. AID moves only through the escrow's _collect and _pay (see
/// MarketEscrow).
contract FederatedRounds is IFederatedRounds, ModelPublisher, AccessControl, ReentrancyGuard {
    /// @notice Bounds of a training's participant set (rewards are paid in a loop over it).
    uint256 public constant MIN_PARTICIPANTS = 2;
    uint256 public constant MAX_PARTICIPANTS = 32;
    /// @notice Bounds of a round's duration.
    uint64 public constant MIN_ROUND_DURATION = 1 minutes;
    uint64 public constant MAX_ROUND_DURATION = 30 days;

    /// @dev What the contract keeps per round; its starting model is the previous round's
    /// aggregate (the base model's weights for round 1), so it is not stored twice.
    struct Round {
        bytes32 aggregateSha256;
        uint64 deadline;
        uint16 updates;
        uint16 metricBps;
        string aggregateCid;
    }

    /// @dev One participant's update in one round; numSamples != 0 marks it submitted.
    struct Update {
        bytes32 updateSha256;
        uint64 numSamples;
        string updateCid;
    }

    uint256 private _trainingCount;
    mapping(uint256 trainingId => Training) private _trainings;
    mapping(uint256 trainingId => address[]) private _participants;
    mapping(uint256 trainingId => mapping(address participant => bool)) private _isParticipant;
    mapping(uint256 trainingId => mapping(uint16 round => Round)) private _rounds;
    mapping(uint256 trainingId => mapping(uint16 round => mapping(address participant => Update))) private _updates;

    /// @param admin receives DEFAULT_ADMIN_ROLE
    /// @param aidToken the AID token
    /// @param modelRegistry the ModelRegistry (this contract needs its PUBLISHER_ROLE)
    constructor(address admin, IERC20 aidToken, IModelRegistry modelRegistry) MarketEscrow(aidToken, modelRegistry) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ sponsor

    /// @inheritdoc IFederatedRounds
    function openTraining(
        uint256 baseModelId,
        address[] calldata participants,
        address aggregator,
        uint80 rewardPerUpdate,
        uint80 aggregatorFee,
        uint16 maxRounds,
        uint16 targetMetricBps,
        uint64 roundDuration
    ) external nonReentrant returns (uint256 trainingId) {
        uint256 count = participants.length;
        if (count < MIN_PARTICIPANTS || count > MAX_PARTICIPANTS) revert InvalidParticipantCount(count);
        if (aggregator == address(0)) revert InvalidAggregator(aggregator);
        if (maxRounds == 0) revert InvalidMaxRounds(maxRounds);
        if (targetMetricBps > DataTypes.MAX_BPS) revert InvalidMetric(targetMetricBps);
        if (roundDuration < MIN_ROUND_DURATION || roundDuration > MAX_ROUND_DURATION) {
            revert InvalidRoundDuration(roundDuration);
        }
        IModelRegistry.Model memory base = models.getModel(baseModelId);
        if (base.status != IModelRegistry.ModelStatus.Active) {
            revert IModelRegistry.ModelNotActive(baseModelId, base.status);
        }

        trainingId = ++_trainingCount;
        _enrol(trainingId, participants);
        // At most 32 participants * 65,535 rounds * (2**80 - 1) + 65,535 * (2**80 - 1) < 2**102:
        // the cast to uint128 is lossless.
        uint128 escrow = uint128((count * rewardPerUpdate + aggregatorFee) * maxRounds);
        Training storage training = _trainings[trainingId];
        training.sponsor = msg.sender;
        training.roundDuration = roundDuration;
        training.maxRounds = maxRounds;
        training.aggregator = aggregator;
        training.rewardPerUpdate = rewardPerUpdate;
        training.status = TrainingStatus.Running;
        training.aggregatorFee = aggregatorFee;
        training.targetMetricBps = targetMetricBps;
        training.escrow = escrow;
        training.baseModelId = baseModelId;
        _emitOpened(trainingId, training, participants);
        _openRound(trainingId, training, 1, base.weightsCid, base.weightsSha256);
        _collect(msg.sender, escrow);
    }

    /// @inheritdoc IFederatedRounds
    function cancelTraining(uint256 trainingId) external nonReentrant {
        Training storage training = _runningTraining(trainingId);
        if (msg.sender != training.sponsor) revert NotSponsor(trainingId, msg.sender);
        uint16 round = training.currentRound;
        Round storage current = _rounds[trainingId][round];
        if (block.timestamp <= current.deadline) revert RoundNotExpired(trainingId, round, current.deadline);

        uint16 updates = current.updates;
        uint256 refund = training.escrow - uint256(training.rewardPerUpdate) * updates;
        training.status = TrainingStatus.Cancelled;
        training.escrow = 0;
        emit TrainingCancelled(trainingId, round, updates, refund);
        _payUpdates(trainingId, training, round);
        _pay(msg.sender, refund);
    }

    // ------------------------------------------------------------------ participants

    /// @inheritdoc IFederatedRounds
    function submitUpdate(
        uint256 trainingId,
        uint16 round,
        string calldata updateCid,
        bytes32 updateSha256,
        uint64 numSamples
    ) external {
        Training storage training = _runningTraining(trainingId);
        if (!_isParticipant[trainingId][msg.sender]) revert NotParticipant(trainingId, msg.sender);
        Round storage current = _currentRound(trainingId, training, round);
        if (block.timestamp > current.deadline) revert RoundDeadlinePassed(trainingId, round, current.deadline);
        Artifacts.check(updateCid, updateSha256);
        if (numSamples == 0) revert ZeroSamples();
        Update storage update = _updates[trainingId][round][msg.sender];
        if (update.numSamples != 0) revert AlreadySubmitted(trainingId, round, msg.sender);

        update.updateSha256 = updateSha256;
        update.numSamples = numSamples;
        update.updateCid = updateCid;
        // unchecked: one update per participant and round, and at most MAX_PARTICIPANTS participants.
        unchecked {
            ++current.updates;
        }
        emit UpdateSubmitted(trainingId, round, msg.sender, updateCid, updateSha256, numSamples);
    }

    // ------------------------------------------------------------------ aggregator

    /// @inheritdoc IFederatedRounds
    function postAggregate(
        uint256 trainingId,
        uint16 round,
        string calldata aggregateCid,
        bytes32 aggregateSha256,
        uint16 metricBps
    ) external nonReentrant {
        Training storage training = _runningTraining(trainingId);
        if (msg.sender != training.aggregator) revert NotAggregator(trainingId, msg.sender);
        Round storage current = _currentRound(trainingId, training, round);
        Artifacts.check(aggregateCid, aggregateSha256);
        if (metricBps > DataTypes.MAX_BPS) revert InvalidMetric(metricBps);
        uint16 updates = current.updates;
        // Ready once everyone submitted, or once the deadline passed with at least one update.
        if (updates != _participants[trainingId].length && (block.timestamp <= current.deadline || updates == 0)) {
            revert RoundNotReady(trainingId, round, updates, current.deadline);
        }

        current.aggregateSha256 = aggregateSha256;
        current.metricBps = metricBps;
        current.aggregateCid = aggregateCid;
        training.escrow -= uint128(uint256(training.rewardPerUpdate) * updates + training.aggregatorFee);
        emit AggregatePosted(trainingId, round, aggregateCid, aggregateSha256, metricBps, updates);

        uint256 refund = 0;
        if (metricBps >= training.targetMetricBps || round == training.maxRounds) {
            refund = _finish(trainingId, training, aggregateCid, aggregateSha256, metricBps);
        } else {
            // round < maxRounds, a uint16, so round + 1 does not overflow.
            _openRound(trainingId, training, round + 1, aggregateCid, aggregateSha256);
        }

        _payUpdates(trainingId, training, round);
        _pay(msg.sender, training.aggregatorFee);
        _pay(training.sponsor, refund);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IFederatedRounds
    function getTraining(uint256 trainingId) external view returns (Training memory) {
        return _training(trainingId);
    }

    /// @inheritdoc IFederatedRounds
    function participantsOf(uint256 trainingId) external view returns (address[] memory) {
        _training(trainingId);
        return _participants[trainingId];
    }

    /// @inheritdoc IFederatedRounds
    function getUpdate(uint256 trainingId, uint16 round, address participant)
        external
        view
        returns (string memory updateCid, bytes32 updateSha256, uint64 numSamples)
    {
        _round(trainingId, round);
        Update storage update = _updates[trainingId][round][participant];
        return (update.updateCid, update.updateSha256, update.numSamples);
    }

    /// @inheritdoc IFederatedRounds
    function getRound(uint256 trainingId, uint16 round)
        external
        view
        returns (
            string memory startCid,
            bytes32 startSha256,
            string memory aggregateCid,
            bytes32 aggregateSha256,
            uint16 metricBps,
            uint16 updates,
            uint64 deadline
        )
    {
        Round storage stored = _round(trainingId, round);
        (startCid, startSha256) = _startOf(trainingId, round);
        return (
            startCid,
            startSha256,
            stored.aggregateCid,
            stored.aggregateSha256,
            stored.metricBps,
            stored.updates,
            stored.deadline
        );
    }

    /// @inheritdoc IFederatedRounds
    function trainingCount() external view returns (uint256) {
        return _trainingCount;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Records the participant set, refusing the zero address and duplicates.
    function _enrol(uint256 trainingId, address[] calldata participants) private {
        mapping(address => bool) storage enrolled = _isParticipant[trainingId];
        for (uint256 i = 0; i < participants.length; ++i) {
            address participant = participants[i];
            if (participant == address(0)) revert InvalidParticipant(participant);
            if (enrolled[participant]) revert DuplicateParticipant(participant);
            enrolled[participant] = true;
        }
        _participants[trainingId] = participants;
    }

    /// @dev The TrainingOpened event, from the stored terms (in openTraining they would not fit on
    /// the stack beside its parameters).
    function _emitOpened(uint256 trainingId, Training storage training, address[] calldata participants) private {
        emit TrainingOpened(
            trainingId,
            training.sponsor,
            training.aggregator,
            training.baseModelId,
            participants,
            training.rewardPerUpdate,
            training.aggregatorFee,
            training.maxRounds,
            training.targetMetricBps,
            training.roundDuration,
            training.escrow
        );
    }

    /// @dev Opens round `round`, starting from the model (startCid, startSha256).
    function _openRound(
        uint256 trainingId,
        Training storage training,
        uint16 round,
        string memory startCid,
        bytes32 startSha256
    ) private {
        uint64 deadline = uint64(block.timestamp) + training.roundDuration;
        training.currentRound = round;
        _rounds[trainingId][round].deadline = deadline;
        emit RoundOpened(trainingId, round, startCid, startSha256, deadline);
    }

    /// @dev Ends the training with its last aggregate, registered for the sponsor as the next
    /// version of the base model's family; returns the escrow left to refund.
    function _finish(
        uint256 trainingId,
        Training storage training,
        string calldata aggregateCid,
        bytes32 aggregateSha256,
        uint16 metricBps
    ) private returns (uint256 refund) {
        refund = training.escrow;
        training.status = TrainingStatus.Finished;
        training.escrow = 0;
        uint256 modelId = _publishVersion(training.sponsor, training.baseModelId, aggregateCid, aggregateSha256);
        training.modelId = modelId;
        emit TrainingFinished(trainingId, modelId, training.currentRound, metricBps, refund);
    }

    /// @dev Pays the reward of every update submitted to round `round`.
    function _payUpdates(uint256 trainingId, Training storage training, uint16 round) private {
        uint256 reward = training.rewardPerUpdate;
        if (reward == 0) return;
        address[] storage participants = _participants[trainingId];
        mapping(address => Update) storage updates = _updates[trainingId][round];
        for (uint256 i = 0; i < participants.length; ++i) {
            address participant = participants[i];
            if (updates[participant].numSamples != 0) _pay(participant, reward);
        }
    }

    /// @dev The model round `round` starts from: the base model's weights for round 1, else the
    /// previous round's aggregate.
    function _startOf(uint256 trainingId, uint16 round)
        private
        view
        returns (string memory startCid, bytes32 startSha256)
    {
        if (round == 1) {
            IModelRegistry.Model memory base = models.getModel(_trainings[trainingId].baseModelId);
            return (base.weightsCid, base.weightsSha256);
        }
        Round storage previous = _rounds[trainingId][round - 1];
        return (previous.aggregateCid, previous.aggregateSha256);
    }

    function _training(uint256 trainingId) private view returns (Training storage training) {
        training = _trainings[trainingId];
        if (training.status == TrainingStatus.None) revert UnknownTraining(trainingId);
    }

    function _runningTraining(uint256 trainingId) private view returns (Training storage training) {
        training = _training(trainingId);
        if (training.status != TrainingStatus.Running) revert TrainingNotRunning(trainingId, training.status);
    }

    function _currentRound(uint256 trainingId, Training storage training, uint16 round)
        private
        view
        returns (Round storage)
    {
        if (round != training.currentRound) revert NotCurrentRound(trainingId, round, training.currentRound);
        return _rounds[trainingId][round];
    }

    /// @dev A round that has been opened (1..currentRound).
    function _round(uint256 trainingId, uint16 round) private view returns (Round storage) {
        Training storage training = _training(trainingId);
        if (round == 0 || round > training.currentRound) revert UnknownRound(trainingId, round);
        return _rounds[trainingId][round];
    }
}
