// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Chainlink} from "@chainlink/contracts/src/v0.8/Chainlink.sol";
import {ChainlinkClient} from "@chainlink/contracts/src/v0.8/ChainlinkClient.sol";

/// @title The smallest Chainlink consumer that does what a diagnosis request does
/// @notice It asks an Operator for a result and receives what a DiagnosisMarket fulfilment carries (a
/// 32-byte commitment and a result CID), emitting them as DiagnosisFulfilled does. It exists only so
/// that `make bench` can measure Chainlink's request and fulfilment gas next to ours.
contract AidocBenchConsumer is ChainlinkClient {
    using Chainlink for Chainlink.Request;

    event ResultReceived(bytes32 indexed requestId, bytes32 commitment, string resultCid);

    constructor(address link) {
        _setChainlinkToken(link);
    }

    /// @notice Requests a result from `operator` for `jobId`, paying `payment` LINK.
    function request(address operator, bytes32 jobId, uint256 payment, string calldata recordCid)
        external
        returns (bytes32 requestId)
    {
        Chainlink.Request memory req = _buildOperatorRequest(jobId, this.fulfill.selector);
        req._add("record", recordCid);
        return _sendOperatorRequestTo(operator, req, payment);
    }

    /// @notice The Operator's callback with the node's answer.
    function fulfill(bytes32 requestId, bytes32 commitment, string calldata resultCid)
        external
        recordChainlinkFulfillment(requestId)
    {
        emit ResultReceived(requestId, commitment, resultCid);
    }
}
