// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

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
interface ITrainingMarket {
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
    /// @notice A job's provenance: the trained model, a commitment to the cohort (the node's salted
    /// hash of the record ids and data it trained on), and how the model scored on held-out records.
    event JobCompleted(
        uint256 indexed jobId,
        uint256 indexed modelId,
        bytes32 cohortCommitment,
        uint32 recordCount,
        uint32 epsilonSpentMilli,
        uint16 accuracyBps,
        uint16 heldOutCount
    );
    /// @notice One record of a completed job's cohort and its privacy budget spent so far, indexed
    /// by record so that an owner's wallet can follow its records' budgets.
    event RecordUsedForTraining(
        uint256 indexed recordId, uint256 indexed jobId, uint32 epsilonSpentMilli, uint32 cumulativeMilli
    );
    event JobCancelled(uint256 indexed jobId, address indexed buyer, uint256 refund);
    event JobAbandoned(uint256 indexed jobId, address indexed node, uint8 reasonCode, uint256 refund);
    event EpsilonLimitSet(uint256 indexed recordId, address indexed owner, uint32 limitMilli);
    event DefaultEpsilonLimitSet(uint32 limitMilli);

    error UnknownJob(uint256 jobId);
    error JobNotOpen(uint256 jobId, JobStatus status);
    error NotJobNode(uint256 jobId, address caller);
    error NotJobBuyer(uint256 jobId, address caller);
    error JobDeadlinePassed(uint256 jobId, uint64 deadline);
    error JobNotExpired(uint256 jobId, uint64 deadline);
    error NodeUnsupportedInput(address node, uint8 dataType);
    error InvalidEpsilon(uint32 epsilonMilli);
    error InvalidDelta(uint64 delta);
    error InvalidMaxRecords(uint32 maxRecords);
    error InvalidDeadline(uint64 deadline);
    error InvalidRecordCount(uint256 count, uint32 maxRecords);
    error RecordIdsNotIncreasing(uint256 index, uint256 recordId);
    error InvalidEpsilonSpent(uint32 epsilonSpentMilli, uint32 epsilonMilli);
    error EmptyWeightsCid();
    error ZeroWeightsHash();
    error InvalidAccuracy(uint16 accuracyBps);
    error RecordDataTypeMismatch(uint256 recordId, uint8 dataType, uint8 jobDataType);
    error EpsilonBudgetExceeded(uint256 recordId, uint32 spentMilli, uint32 limitMilli);
    error InvalidReason(uint8 reasonCode);
    error NotRecordOwner(uint256 recordId, address caller);

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
