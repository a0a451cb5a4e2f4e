// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Data types and their bounds
/// @notice The codes of what a record holds, which are also a model's input types and the bits of
/// a node's capability mask, and the bounds every contract checks them against. aidoc.constants
/// mirrors them (DataType).
library DataTypes {
    uint8 internal constant LAB_PANEL = 1;
    uint8 internal constant ECG = 2;
    uint8 internal constant IMAGE = 3;
    /// @dev The 30 fine-needle-aspirate measurements of scikit-learn's breast-cancer dataset.
    uint8 internal constant CYTOLOGY = 4;
    /// @notice Highest known data type code; codes above it are reserved, 0 means none.
    uint8 internal constant MAX_DATA_TYPE = CYTOLOGY;

    /// @notice Metrics (accuracy, AUC) are basis points of a score in [0, 1].
    uint16 internal constant MAX_BPS = 10_000;

    /// @notice Whether `dataType` is a known data type code (1..MAX_DATA_TYPE).
    function isKnown(uint8 dataType) internal pure returns (bool) {
        return dataType != 0 && dataType <= MAX_DATA_TYPE;
    }

    /// @notice Whether the capability mask `inputTypes` (bit t set = type t supported) has `dataType`.
    /// A type of 16 or more shifts the bit out of the mask, so it is never supported.
    function isSupported(uint16 inputTypes, uint8 dataType) internal pure returns (bool) {
        return inputTypes & (uint16(1) << dataType) != 0;
    }
}
