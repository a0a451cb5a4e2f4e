// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Errors shared by the marketplace's contracts
/// @notice The custom errors that more than one contract throws, declared once with one parameter
/// naming (as OpenZeppelin's draft-IERC6093 does for the token standards). Every contract interface
/// of the marketplace inherits them, so each contract's ABI decodes them.
interface IMarketplaceErrors {
    /// @notice Thrown when a content identifier that must name an IPFS object (a record's
    /// ciphertext or key envelope, a model's weights, an update or an aggregate) is empty.
    error EmptyCid();

    /// @notice Thrown when the hash that pins an IPFS object's content (sha256 of a ciphertext or
    /// of a weights file) is zero.
    error ZeroHash();

    /// @notice Thrown when an auditor's or the slasher's action comes without the reason it must
    /// give.
    error EmptyReason();

    /// @notice Thrown when a node reports a failure, or gives up a job, with the reserved code 0.
    /// @param reason the failure code given (FailureReasons codes are 1..255)
    error InvalidReason(uint8 reason);

    /// @notice Thrown when AID would be sent to the zero address or to the sending contract itself.
    /// @param recipient the refused recipient
    error InvalidRecipient(address recipient);

    /// @notice Thrown when a request or job assigns a node that does not support the records'
    /// data type.
    /// @param node the assigned node
    /// @param dataType the data type it would have to read
    error NodeUnsupportedInput(address node, uint8 dataType);

    /// @notice Thrown when someone other than a record's owner acts on the record.
    /// @param recordId the record
    /// @param caller who tried
    error NotRecordOwner(uint256 recordId, address caller);
}
