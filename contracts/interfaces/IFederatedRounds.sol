// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Federated rounds interface
/// @notice Federated learning across institutions, in rounds: no data leaves an institution, only
/// model updates do. A sponsor opens a training on a base model with a fixed set of participants
/// (the institutions) and an aggregator, and escrows a reward per update and a fee per aggregate
/// for every round it may take. Each round starts from a model (the base model's weights, then the
/// previous round's aggregate); each participant trains it on its own data and posts its update
/// (IPFS CID, sha256, sample count); the aggregator posts their sample-weighted average (FedAvg)
/// and its metric. The training finishes when the metric reaches the target or the last round is
/// aggregated: the aggregate becomes a new version of the base model's family owned by the
/// sponsor, and the unused escrow goes back to the sponsor.
///
/// Every update's CID, hash and sample count stays on-chain, so anyone can recompute a round's
/// FedAvg aggregate off-chain and compare its sha256 with the one the aggregator posted.
interface IFederatedRounds is IMarketplaceErrors {
    /// @notice Lifecycle of a training. It ends exactly once: Finished or Cancelled.
    enum TrainingStatus {
        None,
        Running,
        Finished,
        Cancelled
    }

    /// @notice A training. Fees are AID in wei units.
    /// @param sponsor who opened and paid for the training and owns the trained model
    /// @param roundDuration seconds each round gives the participants to submit their updates
    /// @param maxRounds the most rounds the training may take
    /// @param currentRound the round now open (1-based); the last round once the training ended
    /// @param aggregator who posts each round's aggregate
    /// @param rewardPerUpdate paid to a participant for each update of an aggregated round
    /// @param status where the training is in its lifecycle
    /// @param aggregatorFee paid to the aggregator for each aggregate
    /// @param targetMetricBps the training finishes once an aggregate's metric reaches this
    /// @param escrow AID still held for the training
    /// @param baseModelId the model the training started from
    /// @param modelId the trained model, registered for the sponsor when it finishes (0 until then)
    struct Training {
        address sponsor;
        uint64 roundDuration;
        uint16 maxRounds;
        uint16 currentRound;
        address aggregator;
        uint80 rewardPerUpdate;
        TrainingStatus status;
        uint80 aggregatorFee;
        uint16 targetMetricBps;
        uint128 escrow;
        uint256 baseModelId;
        uint256 modelId;
    }

    /// @notice Emitted when a sponsor opens a federated training and escrows its budget (RoundOpened follows for
    /// round 1).
    /// @param participants the institutions that submit updates, in the sponsor's order
    /// @param escrow the AID escrowed: every round's rewards and aggregator fees
    event TrainingOpened(
        uint256 indexed trainingId,
        address indexed sponsor,
        address indexed aggregator,
        uint256 baseModelId,
        address[] participants,
        uint80 rewardPerUpdate,
        uint80 aggregatorFee,
        uint16 maxRounds,
        uint16 targetMetricBps,
        uint64 roundDuration,
        uint256 escrow
    );

    /// @notice Emitted when round `round` opens: participants train from the model (startCid, startSha256)
    /// and submit their updates by `deadline`.
    event RoundOpened(
        uint256 indexed trainingId, uint16 indexed round, string startCid, bytes32 startSha256, uint64 deadline
    );

    /// @notice Emitted when a participant submits its update for the current round.
    /// @param numSamples how many samples it trained on (the update's weight in FedAvg)
    event UpdateSubmitted(
        uint256 indexed trainingId,
        uint16 indexed round,
        address indexed participant,
        string updateCid,
        bytes32 updateSha256,
        uint64 numSamples
    );

    /// @notice Emitted when the aggregator posts a round's aggregate; the round's updates and the aggregator are
    /// paid.
    /// @param metricBps the aggregate's metric on the aggregator's validation data, in basis points
    /// @param updates how many updates the aggregate averages
    event AggregatePosted(
        uint256 indexed trainingId,
        uint16 indexed round,
        string aggregateCid,
        bytes32 aggregateSha256,
        uint16 metricBps,
        uint16 updates
    );

    /// @notice Emitted when the training finishes after `rounds` rounds: its last aggregate is the model
    /// `modelId`, registered for the sponsor, and `refund` went back to the sponsor.
    event TrainingFinished(
        uint256 indexed trainingId, uint256 indexed modelId, uint16 rounds, uint16 metricBps, uint256 refund
    );

    /// @notice Emitted when the sponsor cancels in round `round`: the `paidUpdates` updates already submitted to
    /// it were paid, and `refund` went back to the sponsor.
    event TrainingCancelled(uint256 indexed trainingId, uint16 round, uint16 paidUpdates, uint256 refund);

    /// @notice Thrown when no training has the id `trainingId`.
    error UnknownTraining(uint256 trainingId);

    /// @notice Thrown when a round that has not been opened is read.
    error UnknownRound(uint256 trainingId, uint16 round);

    /// @notice Thrown when a training that must be running has finished or been cancelled.
    error TrainingNotRunning(uint256 trainingId, TrainingStatus status);

    /// @notice Thrown when a training is opened with fewer than MIN_PARTICIPANTS or more than MAX_PARTICIPANTS.
    error InvalidParticipantCount(uint256 count);

    /// @notice Thrown when a training's participant set holds the zero address.
    error InvalidParticipant(address participant);

    /// @notice Thrown when a training's participant set names an address twice.
    error DuplicateParticipant(address participant);

    /// @notice Thrown when a training is opened with the zero address as aggregator.
    error InvalidAggregator(address aggregator);

    /// @notice Thrown when a training is opened for 0 rounds.
    error InvalidMaxRounds(uint16 maxRounds);

    /// @notice Thrown when a round duration outside MIN_ROUND_DURATION..MAX_ROUND_DURATION is given.
    error InvalidRoundDuration(uint64 roundDuration);

    /// @notice Thrown when a target or an aggregate's metric is above 10,000 basis points.
    error InvalidMetric(uint16 metricBps);

    /// @notice Thrown when an address outside the training's participant set submits an update.
    error NotParticipant(uint256 trainingId, address caller);

    /// @notice Thrown when someone other than the training's aggregator posts an aggregate.
    error NotAggregator(uint256 trainingId, address caller);

    /// @notice Thrown when someone other than the training's sponsor cancels it.
    error NotSponsor(uint256 trainingId, address caller);

    /// @notice Thrown when an update or aggregate names another round than the one open.
    error NotCurrentRound(uint256 trainingId, uint16 round, uint16 currentRound);

    /// @notice Thrown when a participant submits an update after the round's deadline.
    error RoundDeadlinePassed(uint256 trainingId, uint16 round, uint64 deadline);

    /// @notice Thrown when the sponsor cancels before the current round's deadline passed.
    error RoundNotExpired(uint256 trainingId, uint16 round, uint64 deadline);

    /// @notice Thrown when a participant submits a second update to a round.
    error AlreadySubmitted(uint256 trainingId, uint16 round, address participant);

    /// @notice Thrown when an aggregate is posted before every participant submitted, unless the deadline
    /// passed with at least one update.
    error RoundNotReady(uint256 trainingId, uint16 round, uint16 updates, uint64 deadline);

    /// @notice Thrown when an update claims to be trained on 0 samples.
    error ZeroSamples();

    /// @notice Opens a training of `baseModelId` and its first round, escrowing
    /// participants.length * maxRounds * rewardPerUpdate + maxRounds * aggregatorFee AID from the
    /// caller (approve it first).
    /// @param baseModelId an Active model; round 1 starts from its weights
    /// @param participants MIN_PARTICIPANTS..MAX_PARTICIPANTS distinct non-zero addresses
    /// @param aggregator who posts the aggregates (non-zero)
    /// @param rewardPerUpdate AID per update of an aggregated round
    /// @param aggregatorFee AID per aggregate
    /// @param maxRounds the most rounds (at least 1)
    /// @param targetMetricBps the metric (basis points, at most 10,000) that ends the training early
    /// @param roundDuration seconds each round is open for updates (MIN_ROUND_DURATION..MAX_ROUND_DURATION)
    /// @return trainingId the new training's id, counted from 1
    function openTraining(
        uint256 baseModelId,
        address[] calldata participants,
        address aggregator,
        uint80 rewardPerUpdate,
        uint80 aggregatorFee,
        uint16 maxRounds,
        uint16 targetMetricBps,
        uint64 roundDuration
    ) external returns (uint256 trainingId);

    /// @notice A participant submits its update for the current round, once, before its deadline.
    /// @param round the current round (guards against an update meant for another round)
    /// @param updateCid IPFS CID of the updated weights
    /// @param updateSha256 sha256 of the updated weights file
    /// @param numSamples how many samples the update was trained on (its weight in FedAvg)
    function submitUpdate(
        uint256 trainingId,
        uint16 round,
        string calldata updateCid,
        bytes32 updateSha256,
        uint64 numSamples
    ) external;

    /// @notice The aggregator posts the current round's aggregate once every participant submitted,
    /// or once the deadline passed with at least one update. Pays each update's reward and the
    /// aggregator's fee; then finishes the training (metric at target, or last round) or opens the
    /// next round from the aggregate.
    /// @param aggregateCid IPFS CID of the aggregated weights
    /// @param aggregateSha256 sha256 of the aggregated weights file
    /// @param metricBps the aggregate's metric on the aggregator's validation data, in basis points
    function postAggregate(
        uint256 trainingId,
        uint16 round,
        string calldata aggregateCid,
        bytes32 aggregateSha256,
        uint16 metricBps
    ) external;

    /// @notice The sponsor cancels once the current round's deadline passed without an aggregate.
    /// The updates already submitted to the round are paid (they are public, so they were
    /// delivered); the rest of the escrow is refunded.
    function cancelTraining(uint256 trainingId) external;

    /// @notice The training `trainingId`.
    function getTraining(uint256 trainingId) external view returns (Training memory);

    /// @notice The training's participants, in the order the sponsor gave them.
    function participantsOf(uint256 trainingId) external view returns (address[] memory);

    /// @notice `participant`'s update in round `round` (empty, with 0 samples, if none).
    function getUpdate(uint256 trainingId, uint16 round, address participant)
        external
        view
        returns (string memory updateCid, bytes32 updateSha256, uint64 numSamples);

    /// @notice Round `round` of the training: the model it started from, its aggregate (empty until
    /// posted), the aggregate's metric, how many updates it got and its deadline.
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
        );

    /// @notice How many trainings have been opened.
    function trainingCount() external view returns (uint256);
}
