// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ComputeMarket} from "./base/ComputeMarket.sol";
import {IDiagnosisMarket} from "./interfaces/IDiagnosisMarket.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {Purposes} from "./libraries/Purposes.sol";
import {FailureReasons} from "./libraries/FailureReasons.sol";

/// @title Diagnosis market
/// @notice Escrow and settlement of diagnosis requests between requesters, model providers, data
/// owners and compute nodes. Holds AID only while requests are pending, and never holds ETH.
/// AID moves only through the escrow's _collect and _pay (see MarketEscrow).
contract DiagnosisMarket is IDiagnosisMarket, ComputeMarket, AccessControl, ReentrancyGuard {
    /// @notice Bounds of the governance-set request timeout.
    uint64 public constant MIN_REQUEST_TIMEOUT = 1 minutes;
    uint64 public constant MAX_REQUEST_TIMEOUT = 30 days;

    /// @dev Gas given to a NodeRegistry outcome counter (it needs under 30k: a role check and one
    /// slot, zero to non-zero at worst), and what must be left for the call to get all of it
    /// (EIP-150 forwards at most 63/64 of what remains).
    uint256 private constant REPORT_GAS = 60_000;
    uint256 private constant REPORT_GAS_NEEDED = REPORT_GAS + REPORT_GAS / 63 + 5_000;

    /// @inheritdoc IDiagnosisMarket
    uint64 public requestTimeout;

    uint256 private _requestCount;
    mapping(uint256 requestId => RequestState) private _requests;
    mapping(address node => NodeAccount) private _nodeAccounts;

    /// @dev What fulfilBatch decided for one item.
    enum Outcome {
        Skipped,
        Fulfilled,
        Refunded
    }

    /// @dev A payment being summed over consecutive fulfilments to the same payee.
    struct Payout {
        address to;
        uint256 amount;
    }

    /// @param admin receives DEFAULT_ADMIN_ROLE (sets the request timeout)
    /// @param initialRequestTimeout seconds a node has to fulfil a request
    constructor(
        address admin,
        IERC20 aidToken,
        IConsentRegistry consentRegistry,
        IModelRegistry modelRegistry,
        INodeRegistry nodeRegistry,
        uint64 initialRequestTimeout
    ) ComputeMarket(aidToken, consentRegistry, modelRegistry, nodeRegistry) {
        _checkTimeout(initialRequestTimeout);
        requestTimeout = initialRequestTimeout;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ requester

    /// @inheritdoc IDiagnosisMarket
    function requestDiagnosis(uint256 recordId, uint256 modelId, address node, bytes32 resultKey, uint256 maxTotal)
        external
        nonReentrant
        returns (uint256 requestId)
    {
        return _request(recordId, modelId, node, resultKey, maxTotal);
    }

    /// @inheritdoc IDiagnosisMarket
    function requestDiagnosisWithPermit(
        uint256 recordId,
        uint256 modelId,
        address node,
        bytes32 resultKey,
        uint256 maxTotal,
        uint256 permitValue,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256 requestId) {
        // A failed permit is ignored (it may have been front-run): the escrow's transfer decides.
        _permit(msg.sender, permitValue, permitDeadline, v, r, s);
        return _request(recordId, modelId, node, resultKey, maxTotal);
    }

    /// @inheritdoc IDiagnosisMarket
    function cancel(uint256 requestId, Request calldata request) external nonReentrant {
        RequestState storage state = _pendingRequest(requestId, request);
        if (msg.sender != request.requester) revert NotRequester(requestId, msg.sender);
        bool timedOut = block.timestamp > request.deadline;
        bool consentHeld = consents.hasConsent(request.recordId, request.requester, Purposes.DIAGNOSIS);
        if (!timedOut && consentHeld) revert NotCancellable(requestId, request.deadline);
        state.status = Status.Cancelled;
        emit DiagnosisCancelled(requestId, request.requester, timedOut);
        _pay(request.requester, _total(request));
        // A node cannot fulfil a request whose consent is gone, so that timeout is not its fault.
        if (timedOut && consentHeld) {
            _recordOutcome(request.node, abi.encodeCall(nodes.recordTimedOut, (request.node)));
        }
    }

    /// @inheritdoc IDiagnosisMarket
    function rateModel(uint256 requestId, Request calldata request, uint8 score) external {
        RequestState storage state = _requests[requestId];
        if (state.status != Status.Fulfilled) revert RequestNotFulfilled(requestId, state.status);
        if (state.digest != _digest(request)) revert RequestMismatch(requestId);
        if (msg.sender != request.requester) revert NotRequester(requestId, msg.sender);
        if (state.rated) revert AlreadyRated(requestId);
        state.rated = true;
        models.recordRating(request.modelId, msg.sender, score);
    }

    // ------------------------------------------------------------------ node

    /// @inheritdoc IDiagnosisMarket
    function fulfil(uint256 requestId, Request calldata request, bytes32 resultCommitment, string calldata resultCid)
        external
        nonReentrant
    {
        RequestState storage state = _pendingRequest(requestId, request);
        if (msg.sender != request.node) revert NotAssignedNode(requestId, msg.sender);
        if (block.timestamp > request.deadline) revert DeadlinePassed(requestId, request.deadline);
        _checkResult(requestId, resultCommitment, resultCid);
        // A node that has withdrawn its stake (a request can outlive the unbonding delay) or been
        // slashed to nothing answers for nothing it delivers: it is not paid to deliver.
        nodes.requireBonded(msg.sender);

        state.status = Status.Fulfilled;
        NodeAccount storage account = _nodeAccounts[request.node];
        account.earnings += request.nodeFee;
        account.unreportedFulfilments += 1;
        emit DiagnosisFulfilled(requestId, resultCommitment, resultCid);

        // Reverts with ConsentMissing if the patient revoked consent since the request; the
        // requester can then cancel for a refund at once.
        consents.logAccess(request.recordId, request.requester, Purposes.DIAGNOSIS, request.node, requestId);
        _pay(request.provider, request.modelFee);
        _pay(request.dataOwner, request.royalty);
    }

    /// @inheritdoc IDiagnosisMarket
    function fulfilBatch(Fulfilment[] calldata fulfilments) external nonReentrant {
        uint256 count = fulfilments.length;
        if (count == 0) revert EmptyBatch();
        // Checks and effects for every item first, then every interaction.
        Outcome[] memory outcomes = new Outcome[](count);
        uint256 nodeFees = 0;
        uint64 fulfilled = 0;

        for (uint256 i = 0; i < count; ++i) {
            Fulfilment calldata item = fulfilments[i];
            Request calldata request = item.request;
            RequestState storage state = _requests[item.requestId];
            if (state.status == Status.None) revert UnknownRequest(item.requestId);
            if (state.digest != _digest(request)) revert RequestMismatch(item.requestId);
            if (msg.sender != request.node) revert NotAssignedNode(item.requestId, msg.sender);
            // A request cancelled, failed or fulfilled since the node built this batch is skipped,
            // so that one lost race does not revert the other fulfilments.
            if (state.status != Status.Pending) {
                emit FulfilmentSkipped(item.requestId, state.status);
                continue;
            }
            if (block.timestamp > request.deadline) {
                emit FulfilmentSkipped(item.requestId, Status.Pending);
                continue;
            }
            _checkResult(item.requestId, item.resultCommitment, item.resultCid);

            if (consents.hasConsent(request.recordId, request.requester, Purposes.DIAGNOSIS)) {
                state.status = Status.Fulfilled;
                emit DiagnosisFulfilled(item.requestId, item.resultCommitment, item.resultCid);
                outcomes[i] = Outcome.Fulfilled;
                nodeFees += request.nodeFee;
                // unchecked: at most `count` increments, far below 2**64.
                unchecked {
                    ++fulfilled;
                }
            } else {
                state.status = Status.Failed;
                emit DiagnosisFailed(item.requestId, msg.sender, FailureReasons.CONSENT_REVOKED);
                outcomes[i] = Outcome.Refunded;
            }
        }

        // Only a node with stake left to slash is paid to deliver (see fulfil).
        if (fulfilled != 0) nodes.requireBonded(msg.sender);

        NodeAccount storage account = _nodeAccounts[msg.sender];
        uint64 toReport = account.unreportedFulfilments + fulfilled;
        // The cast is lossless: nodeFees sums at most `count` uint80 fees, far below 2**192.
        account.earnings += uint192(nodeFees);
        account.unreportedFulfilments = 0;

        Payout memory toProvider = Payout({to: address(0), amount: 0});
        Payout memory toOwner = Payout({to: address(0), amount: 0});
        for (uint256 i = 0; i < count; ++i) {
            Outcome outcome = outcomes[i];
            if (outcome == Outcome.Skipped) continue;
            Fulfilment calldata item = fulfilments[i];
            Request calldata request = item.request;
            if (outcome == Outcome.Fulfilled) {
                consents.logAccess(request.recordId, request.requester, Purposes.DIAGNOSIS, msg.sender, item.requestId);
                _accumulate(toProvider, request.provider, request.modelFee);
                _accumulate(toOwner, request.dataOwner, request.royalty);
            } else {
                _pay(request.requester, _total(request));
            }
        }
        _pay(toProvider.to, toProvider.amount);
        _pay(toOwner.to, toOwner.amount);
        _report(account, msg.sender, toReport);
    }

    /// @inheritdoc IDiagnosisMarket
    function reportFailure(uint256 requestId, Request calldata request, uint8 reason) external nonReentrant {
        RequestState storage state = _pendingRequest(requestId, request);
        if (msg.sender != request.node) revert NotAssignedNode(requestId, msg.sender);
        if (reason == 0) revert InvalidReason(reason);
        // A failure blamed on consent counts against the node unless the consent really is gone.
        bool nodesFault = !FailureReasons.isDataOwnerSide(reason)
            || consents.hasConsent(request.recordId, request.requester, Purposes.DIAGNOSIS);

        state.status = Status.Failed;
        emit DiagnosisFailed(requestId, request.node, reason);
        _pay(request.requester, _total(request));
        if (nodesFault) _recordOutcome(request.node, abi.encodeCall(nodes.recordFailed, (request.node)));
    }

    /// @inheritdoc IDiagnosisMarket
    function withdrawNodeEarnings(address to) external nonReentrant {
        if (to == address(0) || to == address(this)) revert InvalidRecipient(to);
        NodeAccount storage account = _nodeAccounts[msg.sender];
        uint256 amount = account.earnings;
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        account.earnings = 0;
        emit NodeEarningsWithdrawn(msg.sender, to, amount);
        _pay(to, amount);
    }

    /// @inheritdoc IDiagnosisMarket
    function syncReputation(address node) external nonReentrant {
        NodeAccount storage account = _nodeAccounts[node];
        uint64 unreported = account.unreportedFulfilments;
        account.unreportedFulfilments = 0;
        _report(account, node, unreported);
    }

    // ------------------------------------------------------------------ governance and views

    /// @inheritdoc IDiagnosisMarket
    function setRequestTimeout(uint64 newRequestTimeout) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkTimeout(newRequestTimeout);
        requestTimeout = newRequestTimeout;
        emit RequestTimeoutUpdated(newRequestTimeout);
    }

    /// @inheritdoc IDiagnosisMarket
    function getRequestState(uint256 requestId) external view returns (RequestState memory) {
        return _requests[requestId];
    }

    /// @inheritdoc IDiagnosisMarket
    function requestDigest(Request calldata request) external pure returns (bytes30) {
        return _digest(request);
    }

    /// @inheritdoc IDiagnosisMarket
    function nodeAccount(address node) external view returns (NodeAccount memory) {
        return _nodeAccounts[node];
    }

    /// @inheritdoc IDiagnosisMarket
    function requestCount() external view returns (uint256) {
        return _requestCount;
    }

    // ------------------------------------------------------------------ internals

    function _request(uint256 recordId, uint256 modelId, address node, bytes32 resultKey, uint256 maxTotal)
        private
        returns (uint256 requestId)
    {
        if (_isSmallOrderX25519(resultKey)) revert InvalidResultKey(resultKey);
        Request memory request = _terms(recordId, modelId, node);
        uint256 total = _total(request);
        if (total > maxTotal) revert PriceAboveLimit(total, maxTotal);

        requestId = ++_requestCount;
        _requests[requestId] = RequestState({digest: _digest(request), status: Status.Pending, rated: false});
        emit DiagnosisRequested(requestId, msg.sender, node, request, resultKey);
        _collect(msg.sender, total);
    }

    /// @dev Whether `key` (an X25519 public key, little-endian u-coordinate) is zero or of small
    /// order: libsodium refuses to seal to those, so a node could never deliver a result to it.
    /// The list is libsodium's (crypto_scalarmult/curve25519 has_small_order); the top bit of the
    /// last byte is ignored, as X25519 does.
    function _isSmallOrderX25519(bytes32 key) private pure returns (bool) {
        bytes32 u = key & ~bytes32(uint256(0x80));
        return u == bytes32(0)
            || u == 0x0100000000000000000000000000000000000000000000000000000000000000
            || u == 0xe0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800
            || u == 0x5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157
            || u == 0xecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f
            || u == 0xedffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f
            || u == 0xeeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f;
    }

    /// @dev The terms of a new request by the caller, after every check a request must pass.
    function _terms(uint256 recordId, uint256 modelId, address node) private view returns (Request memory request) {
        request.requester = msg.sender;
        request.node = node;
        request.recordId = recordId;
        request.modelId = modelId;
        request.deadline = uint64(block.timestamp) + requestTimeout;

        uint8 dataType;
        uint64 expiry;
        (request.dataOwner, request.royalty, dataType, expiry) =
            consents.checkAccess(recordId, msg.sender, Purposes.DIAGNOSIS);
        // A consent that lapses before the deadline would leave the node nothing it may do.
        if (expiry <= request.deadline) revert ConsentExpiresBeforeDeadline(recordId, expiry, request.deadline);

        uint8 inputType;
        (request.provider, request.modelFee, inputType) = models.requireActive(modelId);
        if (inputType != dataType) revert InputTypeMismatch(modelId, inputType, dataType);

        request.nodeFee = _requireCapableNode(node, dataType);
    }

    function _pendingRequest(uint256 requestId, Request calldata request)
        private
        view
        returns (RequestState storage state)
    {
        state = _requests[requestId];
        if (state.status == Status.None) revert UnknownRequest(requestId);
        if (state.status != Status.Pending) revert RequestNotPending(requestId, state.status);
        if (state.digest != _digest(request)) revert RequestMismatch(requestId);
    }

    function _checkResult(uint256 requestId, bytes32 resultCommitment, string calldata resultCid) private pure {
        if (resultCommitment == bytes32(0)) revert ZeroResultCommitment(requestId);
        if (bytes(resultCid).length == 0) revert EmptyResultCid(requestId);
    }

    function _accumulate(Payout memory payout, address to, uint256 amount) private {
        if (payout.to != to) {
            _pay(payout.to, payout.amount);
            payout.to = to;
            payout.amount = 0;
        }
        payout.amount += amount;
    }

    /// @dev Reports fulfilments to the NodeRegistry; if it refuses (a misconfigured role), they go
    /// back into the node's account to be synced later instead of blocking the settlement.
    function _report(NodeAccount storage account, address node, uint64 fulfilments) private {
        if (fulfilments == 0) return;
        if (_recordOutcome(node, abi.encodeCall(nodes.recordFulfilled, (node, fulfilments)))) {
            emit ReputationSynced(node, fulfilments);
        } else {
            account.unreportedFulfilments += fulfilments;
        }
    }

    /// @dev Calls the NodeRegistry's outcome counter `call` without letting its failure block a
    /// settlement. The callee always gets REPORT_GAS: otherwise a node could send reportFailure
    /// with just too little gas for the counter and keep its failure off the record.
    function _recordOutcome(address node, bytes memory call) private returns (bool recorded) {
        if (gasleft() < REPORT_GAS_NEEDED) revert InsufficientGasForReport(gasleft(), REPORT_GAS_NEEDED);
        (recorded,) = address(nodes).call{gas: REPORT_GAS}(call);
        if (!recorded) emit ReputationNotRecorded(node);
    }

    function _checkTimeout(uint64 timeout) private pure {
        if (timeout < MIN_REQUEST_TIMEOUT || timeout > MAX_REQUEST_TIMEOUT) revert InvalidTimeout(timeout);
    }

    function _total(Request memory request) private pure returns (uint256) {
        return uint256(request.modelFee) + request.royalty + request.nodeFee;
    }

    function _digest(Request memory request) private pure returns (bytes30) {
        return bytes30(keccak256(abi.encode(request)));
    }
}
