// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Failure reason codes
/// @notice Why a node could not fulfil a request; reported on-chain with the refund.
library FailureReasons {
    uint8 internal constant CONSENT_MISSING = 1;
    uint8 internal constant CORRUPT_RECORD = 2;
    uint8 internal constant WRONG_KEY = 3;
    uint8 internal constant WEIGHTS_MISMATCH = 4;
    uint8 internal constant UNSUPPORTED_INPUT = 5;
    uint8 internal constant RECORD_TOO_LARGE = 6;
    uint8 internal constant MODEL_ERROR = 7;
    uint8 internal constant CONSENT_REVOKED = 8;
    uint8 internal constant INTERNAL_ERROR = 255;

    /// @notice Whether the failure is none of the node's doing (it then does not count against it).
    function isDataOwnerSide(uint8 reason) internal pure returns (bool) {
        return reason == CONSENT_MISSING || reason == CONSENT_REVOKED;
    }
}
