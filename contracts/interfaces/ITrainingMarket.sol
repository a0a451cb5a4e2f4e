// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Training market interface
/// @notice Compute-to-data training with differential privacy: the data never leaves the node.
/// A buyer opens a job on a base model and escrows a royalty per record it may use and a fee for
/// the node. The node trains the base model with DP-SGD on a cohort of records whose owners
/// granted the buyer the TRAINING purpose, and completes the job with the new weights; the market
/// publishes them as a new version of the base model's family owned by the buyer, logs each
/// record's use in the ConsentRegistry, pays each record's owner the royalty and the node its fee,
/// and refunds the royalties of the records not used.
///
/// Every record has a privacy budget: the epsilon of all the jobs that trained on it adds up and
/// may not exceed the limit its owner set (or the default while the owner set none). Epsilon is in
/// milli-units (1500 = epsilon 1.5); delta in units of 1e-18.
interface ITrainingMarket is IMarketplaceErrors {
    /// @notice Lifecycle of a job. Every job ends exactly once: Completed, Cancelled or Abandoned.
    enum JobStatus {
        None,
        Open,
        Completed,
        Cancelled,
        Abandoned
    }

    /// @notice A training job. Fees are AID in wei units.
    /// @param buyer who opened the job, escrowed its budget and owns the trained model
    /// @param deadline the node must complete by this timestamp; the buyer may cancel after it
    /// @param epsilonMilli the most epsilon (milli-units) the training may spend on each record
    /// @param node the compute node that trains
    /// @param royaltyPerRecord paid to a record's owner for each record the training used
    /// @param dataType the base model's input type: the type of every record of the cohort
    /// @param status where the job is in its lifecycle
    /// @param nodeFee paid to the node on completion
    /// @param delta the DP delta of the training, in units of 1e-18
    /// @param maxRecords the most records the job may use (its royalty escrow is for that many)
    /// @param recordCount how many records the training used (set on completion)
    /// @param epsilonSpentMilli epsilon the training spent on each record (set on completion)
    /// @param baseModelId the model the training started from
    /// @param modelId the trained model, registered for the buyer on completion (0 until then)
    struct Job {
        address buyer;
        uint64 deadline;
        uint32 epsilonMilli;
        address node;
        uint80 royaltyPerRecord;
        uint8 dataType;
        JobStatus status;
        uint80 nodeFee;
        uint64 delta;
        uint32 maxRecords;
        uint32 recordCount;
        uint32 epsilonSpentMilli;
        uint256 baseModelId;
        uint256 modelId;
    }

    /// @notice Emitted when a buyer opens a training job and escrows royaltyPerRecord * maxRecords + nodeFee.
    /// @param dataType the base model's input type: the type of every record of the cohort
    /// @param epsilonMilli the most epsilon (milli-units) the training may spend on each record
    /// @param delta the DP delta, in units of 1e-18
    /// @param deadline the node must complete by this timestamp
    event JobOpened(
        uint256 indexed jobId,
        address indexed buyer,
        address indexed node,
        uint256 baseModelId,
        uint8 dataType,
        uint32 epsilonMilli,
        uint64 delta,
        uint80 royaltyPerRecord,
        uint80 nodeFee,
        uint32 maxRecords,
        uint64 deadline
    );

    /// @notice Emitted when the node completes a job, with its provenance: the trained model, a commitment to
    /// the cohort (the node's salted hash of the record ids and data it trained on), and how the model
    /// scored on held-out records.
    /// @param modelId the trained model, registered for the buyer
    /// @param recordCount how many records the training used
    /// @param accuracyBps the trained model's accuracy on `heldOutCount` held-out records, in basis points
    event JobCompleted(
        uint256 indexed jobId,
        uint256 indexed modelId,
        bytes32 cohortCommitment,
        uint32 recordCount,
        uint32 epsilonSpentMilli,
        uint16 accuracyBps,
        uint16 heldOutCount
    );

    /// @notice Emitted when a completed job spends a record's privacy budget, once per record of its cohort,
    /// indexed by record so that an owner's wallet can follow its records' budgets.
    /// @param epsilonSpentMilli the epsilon this job spent on the record
    /// @param cumulativeMilli the epsilon all jobs have spent on it so far
    event RecordUsedForTraining(
        uint256 indexed recordId, uint256 indexed jobId, uint32 epsilonSpentMilli, uint32 cumulativeMilli
    );

    /// @notice Emitted when the buyer cancels an open job after its deadline and is refunded `refund`.
    event JobCancelled(uint256 indexed jobId, address indexed buyer, uint256 refund);

    /// @notice Emitted when the job's node gives up an open job; the buyer is refunded `refund`.
    /// @param reasonCode why, as a FailureReasons code
    event JobAbandoned(uint256 indexed jobId, address indexed node, uint8 reasonCode, uint256 refund);

    /// @notice Emitted when a record's owner sets the record's privacy budget, in milli-units of epsilon.
    event EpsilonLimitSet(uint256 indexed recordId, address indexed owner, uint32 limitMilli);

    /// @notice Emitted when governance sets the privacy budget of every record whose owner set none.
    event DefaultEpsilonLimitSet(uint32 limitMilli);

    /// @notice Thrown when no job has the id `jobId`.
    error UnknownJob(uint256 jobId);

    /// @notice Thrown when a job that must be open has ended.
    error JobNotOpen(uint256 jobId, JobStatus status);

    /// @notice Thrown when someone other than a job's node completes or abandons it.
    error NotJobNode(uint256 jobId, address caller);

    /// @notice Thrown when someone other than a job's buyer cancels it.
    error NotJobBuyer(uint256 jobId, address caller);

    /// @notice Thrown when a node completes a job after its deadline.
    error JobDeadlinePassed(uint256 jobId, uint64 deadline);

    /// @notice Thrown when a buyer cancels a job before its deadline passed.
    error JobNotExpired(uint256 jobId, uint64 deadline);

    /// @notice Thrown when a job is opened with an epsilon of 0.
    error InvalidEpsilon(uint32 epsilonMilli);

    /// @notice Thrown when a job is opened with a delta of 1 (1e18) or more, which guarantees nothing.
    error InvalidDelta(uint64 delta);

    /// @notice Thrown when a job is opened for 0 records or more than MAX_RECORDS_PER_JOB.
    error InvalidMaxRecords(uint32 maxRecords);

    /// @notice Thrown when a job's deadline is not in the future, or more than MAX_JOB_DURATION ahead.
    error InvalidDeadline(uint64 deadline);

    /// @notice Thrown when a completion's cohort is empty or larger than the job's `maxRecords`.
    error InvalidRecordCount(uint256 count, uint32 maxRecords);

    /// @notice Thrown when a cohort's record ids are not strictly increasing, which would let a record count
    /// (and be paid) twice.
    /// @param index the position of the first id out of order
    error RecordIdsNotIncreasing(uint256 index, uint256 recordId);

    /// @notice Thrown when the epsilon a completion spent is 0 or more than the job's `epsilonMilli`.
    error InvalidEpsilonSpent(uint32 epsilonSpentMilli, uint32 epsilonMilli);

    /// @notice Thrown when a completion's accuracy is above 10,000 basis points.
    error InvalidAccuracy(uint16 accuracyBps);

    /// @notice Thrown when a cohort record's data type differs from the job's.
    error RecordDataTypeMismatch(uint256 recordId, uint8 dataType, uint8 jobDataType);

    /// @notice Thrown when the job's epsilon would take a record's spent epsilon past its privacy budget.
    error EpsilonBudgetExceeded(uint256 recordId, uint32 spentMilli, uint32 limitMilli);

    /// @notice Opens a training job on `baseModelId` by `node`, escrowing
    /// royaltyPerRecord * maxRecords + nodeFee AID from the caller (approve it first).
    /// @param baseModelId an Active model; its input type is the job's data type
    /// @param node an active node that supports the data type
    /// @param epsilonMilli the most epsilon the training may spend per record, in milli-units (> 0)
    /// @param delta the DP delta in units of 1e-18 (< 1e18)
    /// @param royaltyPerRecord AID paid to a record's owner per record used
    /// @param nodeFee AID paid to the node on completion
    /// @param maxRecords the most records the training may use (1..MAX_RECORDS_PER_JOB)
    /// @param deadline when the node must have completed (in the future, at most MAX_JOB_DURATION ahead)
    /// @return jobId the new job's id, counted from 1
    function openJob(
        uint256 baseModelId,
        address node,
        uint32 epsilonMilli,
        uint64 delta,
        uint80 royaltyPerRecord,
        uint80 nodeFee,
        uint32 maxRecords,
        uint64 deadline
    ) external returns (uint256 jobId);

    /// @notice The job's node completes it with the trained weights, before the deadline. Every
    /// record must be live, of the job's data type, with the buyer's TRAINING consent, and have
    /// epsilonSpentMilli left in its privacy budget. Registers the weights as a new version of the
    /// base model's family for the buyer; pays each record's owner, the node, and refunds the rest.
    /// @param recordIds the cohort, strictly increasing (1..maxRecords of them)
    /// @param cohortCommitment the node's commitment to the cohort it trained on
    /// @param epsilonSpentMilli the epsilon the training spent per record (1..the job's epsilon)
    /// @param weightsCid IPFS CID of the trained safetensors weights
    /// @param weightsSha256 sha256 of the weights file
    /// @param accuracyBps the trained model's accuracy on the held-out records, in basis points
    /// @param heldOutCount how many held-out records that accuracy was measured on
    function completeJob(
        uint256 jobId,
        uint256[] calldata recordIds,
        bytes32 cohortCommitment,
        uint32 epsilonSpentMilli,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint16 accuracyBps,
        uint16 heldOutCount
    ) external;

    /// @notice The buyer cancels an open job after its deadline and is refunded in full.
    function cancelJob(uint256 jobId) external;

    /// @notice The job's node gives up an open job at any time; the buyer is refunded in full.
    /// @param reasonCode why, as a FailureReasons code (1..255)
    function abandonJob(uint256 jobId, uint8 reasonCode) external;

    /// @notice The record's owner sets its privacy budget: the most epsilon (milli-units) all
    /// training jobs together may spend on it. 0 forbids training on it; a limit below what was
    /// already spent stops further use.
    function setEpsilonLimit(uint256 recordId, uint32 limitMilli) external;

    /// @notice Sets the budget of every record whose owner set none. Only DEFAULT_ADMIN_ROLE.
    function setDefaultEpsilonLimit(uint32 limitMilli) external;

    /// @notice The job `jobId`.
    function getJob(uint256 jobId) external view returns (Job memory);

    /// @notice Epsilon (milli-units) the completed jobs have spent on `recordId` so far.
    function epsilonSpent(uint256 recordId) external view returns (uint32);

    /// @notice The privacy budget of `recordId`: its owner's limit if set, else the default.
    function epsilonLimitOf(uint256 recordId) external view returns (uint32);

    /// @notice The budget of records whose owner set none, in milli-units.
    function defaultEpsilonLimitMilli() external view returns (uint32);

    /// @notice How many jobs have been opened.
    function jobCount() external view returns (uint256);
}
