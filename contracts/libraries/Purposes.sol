// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Consent purposes
/// @notice Bits of the purpose bitmask a patient grants per grantee.
library Purposes {
    uint8 internal constant DIAGNOSIS = 1;
    uint8 internal constant RESEARCH = 2;
    uint8 internal constant TRAINING = 4;
    uint8 internal constant INSURANCE = 8;
    uint8 internal constant ALL = DIAGNOSIS | RESEARCH | TRAINING | INSURANCE;

    /// @notice Whether `purposes` names at least one purpose and nothing unknown.
    function isValid(uint8 purposes) internal pure returns (bool) {
        return purposes != 0 && purposes & ~ALL == 0;
    }
}
