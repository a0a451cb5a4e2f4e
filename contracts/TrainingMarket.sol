// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ComputeMarket} from "./base/ComputeMarket.sol";
import {ModelPublisher} from "./base/ModelPublisher.sol";
import {ITrainingMarket} from "./interfaces/ITrainingMarket.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Artifacts} from "./libraries/Artifacts.sol";
import {DataTypes} from "./libraries/DataTypes.sol";
import {Purposes} from "./libraries/Purposes.sol";

/// @title Training market
/// @notice Escrow and settlement of compute-to-data training jobs, and the per-record privacy
/// budgets they spend. Holds AID only while jobs are open, and never holds ETH. AID moves only
/// through the escrow's _collect and _pay (see MarketEscrow).
contract TrainingMarket is ITrainingMarket, ComputeMarket, ModelPublisher, AccessControl, ReentrancyGuard {
    /// @notice The furthest ahead a job's deadline may be.
    uint64 public constant MAX_JOB_DURATION = 30 days;
    /// @notice The most records one job may use. completeJob costs up to about 77k gas per record
    /// (a consent check, a first budget write, an access log entry and a first royalty payment to
    /// an owner holding no AID yet), so a job of this many records fits in a 12M-gas block, the
    /// development chains' limit, and in under a third of a 30M one.
    uint32 public constant MAX_RECORDS_PER_JOB = 128;
    /// @dev delta is in units of 1e-18, and a DP delta of 1 or more guarantees nothing.
    uint64 private constant DELTA_ONE = 1e18;

    /// @inheritdoc ITrainingMarket
    uint32 public defaultEpsilonLimitMilli;

    /// @dev A record's privacy budget in one slot: epsilon spent, and the owner's limit if set (a
    /// separate flag, so that a limit of 0 is not mistaken for none).
    struct PrivacyBudget {
        uint32 spentMilli;
        uint32 limitMilli;
        bool limitSet;
    }

    /// @dev Royalties owed per owner in a completing job, summed over the owner's records.
    struct Payouts {
        address[] owners;
        uint256[] records;
        uint256 count;
    }

    uint256 private _jobCount;
    mapping(uint256 jobId => Job) private _jobs;
    mapping(uint256 recordId => PrivacyBudget) private _budgets;

    /// @param admin receives DEFAULT_ADMIN_ROLE (sets the default privacy budget)
    /// @param aidToken the AID token
    /// @param consentRegistry the ConsentRegistry (this market needs its ACCESS_LOGGER_ROLE)
    /// @param modelRegistry the ModelRegistry (this market needs its PUBLISHER_ROLE)
    /// @param nodeRegistry the NodeRegistry
    /// @param defaultEpsilonLimit the budget of records whose owner set none, in milli-units
    constructor(
        address admin,
        IERC20 aidToken,
        IConsentRegistry consentRegistry,
        IModelRegistry modelRegistry,
        INodeRegistry nodeRegistry,
        uint32 defaultEpsilonLimit
    ) ComputeMarket(aidToken, consentRegistry, modelRegistry, nodeRegistry) {
        defaultEpsilonLimitMilli = defaultEpsilonLimit;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ buyer

    /// @inheritdoc ITrainingMarket
    function openJob(
        uint256 baseModelId,
        address node,
        uint32 epsilonMilli,
        uint64 delta,
        uint80 royaltyPerRecord,
        uint80 nodeFee,
        uint32 maxRecords,
        uint64 deadline
    ) external nonReentrant returns (uint256 jobId) {
        if (epsilonMilli == 0) revert InvalidEpsilon(epsilonMilli);
        if (delta >= DELTA_ONE) revert InvalidDelta(delta);
        if (maxRecords == 0 || maxRecords > MAX_RECORDS_PER_JOB) revert InvalidMaxRecords(maxRecords);
        if (deadline <= block.timestamp || deadline > block.timestamp + MAX_JOB_DURATION) {
            revert InvalidDeadline(deadline);
        }
        uint8 dataType = _checkModelAndNode(baseModelId, node);

        jobId = ++_jobCount;
        Job storage job = _jobs[jobId];
        job.buyer = msg.sender;
        job.deadline = deadline;
        job.epsilonMilli = epsilonMilli;
        job.node = node;
        job.royaltyPerRecord = royaltyPerRecord;
        job.dataType = dataType;
        job.status = JobStatus.Open;
        job.nodeFee = nodeFee;
        job.delta = delta;
        job.maxRecords = maxRecords;
        job.baseModelId = baseModelId;
        emit JobOpened(
            jobId,
            msg.sender,
            node,
            baseModelId,
            dataType,
            epsilonMilli,
            delta,
            royaltyPerRecord,
            nodeFee,
            maxRecords,
            deadline
        );
        _collect(msg.sender, _escrow(job));
    }

    /// @inheritdoc ITrainingMarket
    function cancelJob(uint256 jobId) external nonReentrant {
        Job storage job = _openJob(jobId);
        if (msg.sender != job.buyer) revert NotJobBuyer(jobId, msg.sender);
        if (block.timestamp <= job.deadline) revert JobNotExpired(jobId, job.deadline);
        job.status = JobStatus.Cancelled;
        uint256 refund = _escrow(job);
        emit JobCancelled(jobId, msg.sender, refund);
        _pay(msg.sender, refund);
    }

    // ------------------------------------------------------------------ node

    /// @inheritdoc ITrainingMarket
    function completeJob(
        uint256 jobId,
        uint256[] calldata recordIds,
        bytes32 cohortCommitment,
        uint32 epsilonSpentMilli,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint16 accuracyBps,
        uint16 heldOutCount
    ) external nonReentrant {
        Job storage job = _openJob(jobId);
        if (msg.sender != job.node) revert NotJobNode(jobId, msg.sender);
        if (block.timestamp > job.deadline) revert JobDeadlinePassed(jobId, job.deadline);
        _checkResult(job, recordIds.length, epsilonSpentMilli, weightsCid, weightsSha256, accuracyBps);
        // A node that withdrew its stake or was slashed to nothing answers for nothing: not paid.
        nodes.requireBonded(msg.sender);

        // Checks and effects for every record (consent, type, budget), then the job's own effects.
        Payouts memory payouts = _spendBudgets(jobId, job, recordIds, epsilonSpentMilli);
        job.status = JobStatus.Completed;
        // The cast is lossless: recordIds.length <= maxRecords, a uint32, was checked above.
        job.recordCount = uint32(recordIds.length);
        job.epsilonSpentMilli = epsilonSpentMilli;

        // The trained weights become the buyer's version of the base model's family.
        uint256 modelId = _publishVersion(job.buyer, job.baseModelId, weightsCid, weightsSha256);
        job.modelId = modelId;
        emit JobCompleted(
            jobId, modelId, cohortCommitment, job.recordCount, epsilonSpentMilli, accuracyBps, heldOutCount
        );

        _settle(jobId, job, recordIds, payouts);
    }

    /// @inheritdoc ITrainingMarket
    function abandonJob(uint256 jobId, uint8 reasonCode) external nonReentrant {
        Job storage job = _openJob(jobId);
        if (msg.sender != job.node) revert NotJobNode(jobId, msg.sender);
        if (reasonCode == 0) revert InvalidReason(reasonCode);
        job.status = JobStatus.Abandoned;
        uint256 refund = _escrow(job);
        emit JobAbandoned(jobId, msg.sender, reasonCode, refund);
        _pay(job.buyer, refund);
    }

    // ------------------------------------------------------------------ record owners

    /// @inheritdoc ITrainingMarket
    function setEpsilonLimit(uint256 recordId, uint32 limitMilli) external {
        // getRecord reverts with UnknownRecord for a record that does not exist.
        if (consents.getRecord(recordId).owner != msg.sender) revert NotRecordOwner(recordId, msg.sender);
        PrivacyBudget storage budget = _budgets[recordId];
        budget.limitMilli = limitMilli;
        budget.limitSet = true;
        emit EpsilonLimitSet(recordId, msg.sender, limitMilli);
    }

    // ------------------------------------------------------------------ governance and views

    /// @inheritdoc ITrainingMarket
    function setDefaultEpsilonLimit(uint32 limitMilli) external onlyRole(DEFAULT_ADMIN_ROLE) {
        defaultEpsilonLimitMilli = limitMilli;
        emit DefaultEpsilonLimitSet(limitMilli);
    }

    /// @inheritdoc ITrainingMarket
    function getJob(uint256 jobId) external view returns (Job memory) {
        return _job(jobId);
    }

    /// @inheritdoc ITrainingMarket
    function epsilonSpent(uint256 recordId) external view returns (uint32) {
        return _budgets[recordId].spentMilli;
    }

    /// @inheritdoc ITrainingMarket
    function epsilonLimitOf(uint256 recordId) public view returns (uint32) {
        PrivacyBudget storage budget = _budgets[recordId];
        return budget.limitSet ? budget.limitMilli : defaultEpsilonLimitMilli;
    }

    /// @inheritdoc ITrainingMarket
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    // ------------------------------------------------------------------ internals

    /// @dev The job's data type (the base model's input type), once the base model is Active and
    /// `node` is active and supports that type.
    function _checkModelAndNode(uint256 baseModelId, address node) private view returns (uint8 dataType) {
        (,, dataType) = models.requireActive(baseModelId);
        _requireCapableNode(node, dataType);
    }

    function _checkResult(
        Job storage job,
        uint256 recordCount,
        uint32 epsilonSpentMilli,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint16 accuracyBps
    ) private view {
        if (recordCount == 0 || recordCount > job.maxRecords) revert InvalidRecordCount(recordCount, job.maxRecords);
        if (epsilonSpentMilli == 0 || epsilonSpentMilli > job.epsilonMilli) {
            revert InvalidEpsilonSpent(epsilonSpentMilli, job.epsilonMilli);
        }
        Artifacts.check(weightsCid, weightsSha256);
        if (accuracyBps > DataTypes.MAX_BPS) revert InvalidAccuracy(accuracyBps);
    }

    /// @dev Checks every record of the cohort and spends `epsilonSpentMilli` of its budget; returns
    /// the royalties owed, per owner.
    function _spendBudgets(uint256 jobId, Job storage job, uint256[] calldata recordIds, uint32 epsilonSpentMilli)
        private
        returns (Payouts memory payouts)
    {
        uint256 count = recordIds.length;
        payouts.owners = new address[](count);
        payouts.records = new uint256[](count);
        uint256 previous = 0;
        for (uint256 i = 0; i < count; ++i) {
            uint256 recordId = recordIds[i];
            // Strictly increasing: no record is counted (or paid) twice. Record ids start at 1.
            if (recordId <= previous) revert RecordIdsNotIncreasing(i, recordId);
            previous = recordId;
            _owe(payouts, _spendBudget(jobId, job, recordId, epsilonSpentMilli));
        }
    }

    /// @dev Checks one record of the cohort and spends `epsilonSpentMilli` of its budget; returns
    /// its owner.
    function _spendBudget(uint256 jobId, Job storage job, uint256 recordId, uint32 epsilonSpentMilli)
        private
        returns (address owner)
    {
        // Reverts with UnknownRecord, RecordIsRetired, ConsentMissing (no TRAINING grant to the
        // buyer, or revoked) or ConsentExpired.
        uint8 recordType;
        (owner,, recordType,) = consents.checkAccess(recordId, job.buyer, Purposes.TRAINING);
        if (recordType != job.dataType) revert RecordDataTypeMismatch(recordId, recordType, job.dataType);

        PrivacyBudget storage budget = _budgets[recordId];
        uint32 spent = budget.spentMilli;
        uint32 limit = budget.limitSet ? budget.limitMilli : defaultEpsilonLimitMilli;
        if (uint256(spent) + epsilonSpentMilli > limit) revert EpsilonBudgetExceeded(recordId, spent, limit);
        uint32 cumulative;
        // unchecked: spent + epsilonSpentMilli <= limit, a uint32, was checked just above.
        unchecked {
            cumulative = spent + epsilonSpentMilli;
        }
        budget.spentMilli = cumulative;
        emit RecordUsedForTraining(recordId, jobId, epsilonSpentMilli, cumulative);
    }

    /// @dev Adds one record's royalty to `owner`'s payout. An owner's records are often consecutive,
    /// so the search runs from the latest owner backwards.
    function _owe(Payouts memory payouts, address owner) private pure {
        address[] memory owners = payouts.owners;
        uint256 n = payouts.count;
        for (uint256 j = n; j != 0;) {
            // unchecked: j != 0 was checked by the loop condition.
            unchecked {
                --j;
            }
            if (owners[j] == owner) {
                ++payouts.records[j];
                return;
            }
        }
        owners[n] = owner;
        payouts.records[n] = 1;
        payouts.count = n + 1;
    }

    /// @dev The interactions of a completion: the access log of every record, the royalties, the
    /// node's fee and the refund of the royalties of records not used.
    function _settle(uint256 jobId, Job storage job, uint256[] calldata recordIds, Payouts memory payouts) private {
        address buyer = job.buyer;
        address node = job.node;
        uint256 count = recordIds.length;
        for (uint256 i = 0; i < count; ++i) {
            consents.logAccess(recordIds[i], buyer, Purposes.TRAINING, node, jobId);
        }
        uint256 royalty = job.royaltyPerRecord;
        for (uint256 j = 0; j < payouts.count; ++j) {
            _pay(payouts.owners[j], royalty * payouts.records[j]);
        }
        _pay(node, job.nodeFee);
        _pay(buyer, royalty * (job.maxRecords - count));
    }

    /// @dev What an open job escrows: a royalty for each record it may use, and the node's fee.
    function _escrow(Job storage job) private view returns (uint256) {
        return uint256(job.royaltyPerRecord) * job.maxRecords + job.nodeFee;
    }

    function _job(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _openJob(uint256 jobId) private view returns (Job storage job) {
        job = _job(jobId);
        if (job.status != JobStatus.Open) revert JobNotOpen(jobId, job.status);
    }
}
