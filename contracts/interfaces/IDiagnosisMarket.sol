// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Diagnosis market interface
/// @notice A requester (a doctor) asks an assigned compute node to run a model on a consented
/// record and escrows model price + data-owner royalty + node fee in AID. The node fulfils with a
/// salted result commitment and the CID of the result encrypted to the requester, and the escrow
/// pays the provider and the data owner at once and credits the node's fee to its earnings, which
/// the node withdraws when it likes (as Chainlink's Operator does). Failures, timeouts and revoked
/// consent refund the requester.
///
/// Outcomes count in the NodeRegistry's reputation counters. fulfilBatch, reportFailure and cancel
/// report them at once; a single fulfil counts the fulfilment in the node's account here, and it
/// reaches the registry with the node's next batch or syncReputation call, which keeps a single
/// fulfilment under 90k gas. Refunds and withdrawals never depend on that bookkeeping succeeding.
///
/// Nodes must publish a result's ciphertext only once its fulfilment is final: the result CID is
/// visible in the transaction as soon as it is sent, and a requester who sees it may still get the
/// patient to revoke consent first (which refunds the request).
///
/// Storage holds one slot per request: a digest of its terms and its status. The full terms are in
/// the DiagnosisRequested event, and callers pass them back (as with Chainlink's Operator), which
/// keeps a request near 100k gas and a batched fulfilment far below a Chainlink fulfilment.
interface IDiagnosisMarket is IMarketplaceErrors {
    /// @notice Lifecycle of a request. Every request ends exactly once: Fulfilled, Failed or Cancelled.
    enum Status {
        None,
        Pending,
        Fulfilled,
        Failed,
        Cancelled
    }

    /// @notice The terms of a request, fixed when it is made. Fees are AID in wei units.
    struct Request {
        address requester;
        address node;
        address provider;
        address dataOwner;
        uint256 recordId;
        uint256 modelId;
        uint80 modelFee;
        uint80 royalty;
        uint80 nodeFee;
        uint64 deadline;
    }

    /// @notice What a node posts for one request in fulfilBatch.
    struct Fulfilment {
        uint256 requestId;
        Request request;
        bytes32 resultCommitment;
        string resultCid;
    }

    /// @notice What the market keeps per node: fee earnings not yet withdrawn, and fulfilments not
    /// yet reported to the NodeRegistry.
    struct NodeAccount {
        uint192 earnings;
        uint64 unreportedFulfilments;
    }

    /// @notice What the market stores per request.
    struct RequestState {
        bytes30 digest;
        Status status;
        bool rated;
    }

    /// @notice Emitted when a requester makes a request and escrows its fees.
    /// @param request the terms, fixed now; every later call on the request passes them back
    /// @param resultKey the requester's X25519 public key, to which the result is sealed
    event DiagnosisRequested(
        uint256 indexed requestId,
        address indexed requester,
        address indexed node,
        Request request,
        bytes32 resultKey
    );

    /// @notice Emitted when the assigned node fulfils a request (fulfil or fulfilBatch): the provider and the
    /// data owner are paid, and the node's fee is credited to its account.
    /// @param resultCommitment keccak256 of a secret salt and the result
    /// @param resultCid IPFS CID of the result encrypted to the requester
    event DiagnosisFulfilled(uint256 indexed requestId, bytes32 resultCommitment, string resultCid);

    /// @notice Emitted when a request fails and its requester is refunded: its node reported a failure, or
    /// fulfilBatch found the consent revoked.
    /// @param reason a FailureReasons code
    event DiagnosisFailed(uint256 indexed requestId, address indexed node, uint8 reason);

    /// @notice Emitted when the requester cancels a request and is refunded.
    /// @param timedOut whether the deadline had passed (if not, the consent was gone)
    event DiagnosisCancelled(uint256 indexed requestId, address indexed requester, bool timedOut);

    /// @notice Emitted when fulfilBatch skips an item whose request is no longer pending or whose deadline
    /// passed, so that one lost race does not revert the batch.
    /// @param status the request's status (Pending when its deadline passed)
    event FulfilmentSkipped(uint256 indexed requestId, Status status);

    /// @notice Emitted when a node withdraws its accumulated fees to `to`.
    event NodeEarningsWithdrawn(address indexed node, address indexed to, uint256 amount);

    /// @notice Emitted when `fulfilments` fulfilments of `node` are counted in the NodeRegistry.
    event ReputationSynced(address indexed node, uint64 fulfilments);

    /// @notice Emitted when the NodeRegistry refused to count an outcome of `node` (e.g. the market lost its
    /// REPORTER_ROLE); the settlement goes on, and fulfilments stay in the node's account to be synced.
    event ReputationNotRecorded(address indexed node);

    /// @notice Emitted when governance sets the time a node has to fulfil a new request.
    event RequestTimeoutUpdated(uint64 requestTimeout);

    /// @notice Thrown when no request has the id `requestId`.
    error UnknownRequest(uint256 requestId);

    /// @notice Thrown when a request that must be pending has ended.
    error RequestNotPending(uint256 requestId, Status status);

    /// @notice Thrown when the terms passed in do not hash to the digest stored for the request.
    error RequestMismatch(uint256 requestId);

    /// @notice Thrown when someone other than a request's assigned node fulfils it or reports its failure.
    error NotAssignedNode(uint256 requestId, address caller);

    /// @notice Thrown when someone other than a request's requester cancels it or rates its model.
    error NotRequester(uint256 requestId, address caller);

    /// @notice Thrown when a node fulfils a request after its deadline.
    error DeadlinePassed(uint256 requestId, uint64 deadline);

    /// @notice Thrown when a requester cancels before the deadline while the consent still holds.
    error NotCancellable(uint256 requestId, uint64 deadline);

    /// @notice Thrown when the model reads another data type than the record holds.
    error InputTypeMismatch(uint256 modelId, uint8 modelInputType, uint8 recordDataType);

    /// @notice Thrown when the result key is zero or an X25519 point of small order, to which nothing can be
    /// sealed.
    error InvalidResultKey(bytes32 resultKey);

    /// @notice Thrown when a fulfilment's result commitment is zero.
    error ZeroResultCommitment(uint256 requestId);

    /// @notice Thrown when a fulfilment's result CID is empty.
    error EmptyResultCid(uint256 requestId);

    /// @notice Thrown when fulfilBatch is given no fulfilments.
    error EmptyBatch();

    /// @notice Thrown when the model of a request that was not fulfilled is rated.
    error RequestNotFulfilled(uint256 requestId, Status status);

    /// @notice Thrown when the model of a request is rated a second time.
    error AlreadyRated(uint256 requestId);

    /// @notice Thrown when a request timeout outside MIN_REQUEST_TIMEOUT..MAX_REQUEST_TIMEOUT is set.
    error InvalidTimeout(uint64 requestTimeout);

    /// @notice Thrown when a request's fees add up to more than the requester's `maxTotal`.
    error PriceAboveLimit(uint256 total, uint256 maxTotal);

    /// @notice Thrown when too little gas is left to give the NodeRegistry's outcome counter its fixed
    /// allowance, so that no node can keep a failure off its record by starving the call.
    error InsufficientGasForReport(uint256 gasLeft, uint256 gasNeeded);

    /// @notice Thrown when the requester's consent on the record lapses before the request's deadline.
    error ConsentExpiresBeforeDeadline(uint256 recordId, uint64 expiry, uint64 deadline);

    /// @notice Thrown when a node without earnings withdraws.
    error NothingToWithdraw(address node);

    /// @notice Requests a diagnosis of `recordId` with `modelId` by `node`, escrowing the fees.
    /// @dev The caller needs diagnosis consent on the record lasting past the request's deadline,
    /// and an AID allowance for the total.
    /// @param resultKey the caller's X25519 public key; the result is encrypted to it
    /// @param maxTotal the most the caller will pay: fees are read when the transaction runs, and a
    /// provider, patient or node may raise theirs just before
    /// @return requestId the new request's id, counted from 1
    function requestDiagnosis(uint256 recordId, uint256 modelId, address node, bytes32 resultKey, uint256 maxTotal)
        external
        returns (uint256 requestId);

    /// @notice requestDiagnosis with an ERC-2612 permit for the escrow in the same transaction.
    /// @param permitValue the allowance the permit signs (at least the request's total)
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
    ) external returns (uint256 requestId);

    /// @notice Fulfils one request. Only its assigned node, before the deadline, while consent holds.
    /// @param resultCommitment keccak256 of a secret salt and the result; reveals nothing by itself
    /// @param resultCid IPFS CID of the result encrypted to the requester
    function fulfil(uint256 requestId, Request calldata request, bytes32 resultCommitment, string calldata resultCid)
        external;

    /// @notice Fulfils many requests of the calling node. Requests that are no longer pending or past
    /// their deadline are skipped; requests whose consent was revoked are failed and refunded.
    function fulfilBatch(Fulfilment[] calldata fulfilments) external;

    /// @notice The assigned node reports that it cannot fulfil; the requester is refunded.
    /// @param reason a failure code from FailureReasons (1..255)
    function reportFailure(uint256 requestId, Request calldata request, uint8 reason) external;

    /// @notice The requester cancels after the deadline, or at any time once consent is gone, and
    /// is refunded. A timeout counts against the node unless the consent was gone anyway.
    function cancel(uint256 requestId, Request calldata request) external;

    /// @notice The requester of a fulfilled request rates its model from 1 to 5, once.
    function rateModel(uint256 requestId, Request calldata request, uint8 score) external;

    /// @notice Sends the caller's accumulated node fees to `to`.
    function withdrawNodeEarnings(address to) external;

    /// @notice Reports `node`'s unreported fulfilments to the NodeRegistry. Anyone may call it.
    function syncReputation(address node) external;

    /// @notice Sets the time a node has to fulfil a new request. Only DEFAULT_ADMIN_ROLE.
    function setRequestTimeout(uint64 newRequestTimeout) external;

    /// @notice The stored state of a request.
    function getRequestState(uint256 requestId) external view returns (RequestState memory);

    /// @notice The digest the market stores for `request`.
    function requestDigest(Request calldata request) external pure returns (bytes30);

    /// @notice The market's account of `node`: earnings to withdraw, fulfilments to report.
    function nodeAccount(address node) external view returns (NodeAccount memory);

    /// @notice Seconds a node has to fulfil a new request.
    function requestTimeout() external view returns (uint64);

    /// @notice How many requests have been made.
    function requestCount() external view returns (uint256);
}
