// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Consent registry interface
/// @notice Patients register encrypted health records and decide who may use each one, for what
/// purpose and until when. Nothing here is plaintext: a record is the IPFS CID of its ciphertext,
/// the hash of that ciphertext, a data type and the CID of its key envelope.
interface IConsentRegistry is IMarketplaceErrors {
    /// @notice A record as stored on-chain.
    /// @param owner the patient who registered it and alone may grant access to it
    /// @param royalty AID (wei units) paid to the owner each time the record is used for a diagnosis
    /// @param dataType what the record holds (1 lab panel, 2 ECG, 3 image, 4 cytology; >4 reserved)
    /// @param retired true once the owner retired it: no grant is valid any more
    /// @param ciphertextHash sha256 of the ciphertext (never of the plaintext)
    /// @param ciphertextCid IPFS CID of the ciphertext
    /// @param keyEnvelopeCid IPFS CID of the data key wrapped to the chosen nodes' keys
    struct Record {
        address owner;
        uint80 royalty;
        uint8 dataType;
        bool retired;
        bytes32 ciphertextHash;
        string ciphertextCid;
        string keyEnvelopeCid;
    }

    /// @notice A grant of access to one record for one grantee: a purpose bitmask and an expiry.
    struct Grant {
        uint8 purposes;
        uint64 expiry;
    }

    /// @notice One entry of a batch grant.
    struct GrantRequest {
        uint256 recordId;
        address grantee;
        uint8 purposes;
        uint64 expiry;
    }

    /// @notice Emitted when a patient registers an encrypted record.
    /// @param recordId the new record's id
    /// @param owner the patient, who alone may grant access to it
    /// @param dataType what the record holds (DataTypes)
    /// @param ciphertextCid IPFS CID of the ciphertext
    /// @param ciphertextHash sha256 of the ciphertext
    /// @param keyEnvelopeCid IPFS CID of the data key wrapped to the chosen nodes' keys
    /// @param royalty AID (wei units) paid to the owner per diagnosis on the record
    event RecordRegistered(
        uint256 indexed recordId,
        address indexed owner,
        uint8 dataType,
        string ciphertextCid,
        bytes32 ciphertextHash,
        string keyEnvelopeCid,
        uint80 royalty
    );

    /// @notice Emitted when a record's owner points the record at a new key envelope (e.g. one that wraps
    /// its key to another node as well).
    event KeyEnvelopeUpdated(uint256 indexed recordId, string keyEnvelopeCid);

    /// @notice Emitted when a record's owner sets the royalty it earns per diagnosis on the record; requests
    /// already made keep the royalty they escrowed.
    event RoyaltyUpdated(uint256 indexed recordId, uint80 royalty);

    /// @notice Emitted when a record's owner retires the record for good: no grant on it counts any more.
    event RecordRetired(uint256 indexed recordId);

    /// @notice Emitted when a record's owner grants `grantee` the purposes in `purposes` until `expiry`,
    /// directly, in a batch or by signature; the grant replaces any earlier one to the same grantee
    /// (a purpose of a live earlier grant that it leaves out is revoked: ConsentRevoked, emitted first).
    /// @param purposes a bitmask of Purposes
    /// @param expiry the grant holds while block.timestamp < expiry
    event ConsentGranted(uint256 indexed recordId, address indexed grantee, uint8 purposes, uint64 expiry);

    /// @notice Emitted when the purposes in `purposes` are revoked from `grantee`, directly or by signature,
    /// or left out of a new grant that replaces a live one; the grantee keeps any other purpose it held.
    event ConsentRevoked(uint256 indexed recordId, address indexed grantee, uint8 purposes);

    /// @notice Emitted when a record owner's unsubmitted signed grants and revocations are voided
    /// (invalidateSignatures, and every revokeConsent).
    /// @param nextNonce the nonce the owner's next signature must use
    event SignaturesInvalidated(address indexed owner, uint256 nextNonce);

    /// @notice Emitted when a market logs a node's actual use of a record: the access log, written only by
    /// ACCESS_LOGGER_ROLE contracts (the markets), and only while the consent holds.
    /// @param grantee whose consent the use was under (the requester or the job's buyer)
    /// @param node the compute node that used the record
    /// @param purpose the single purpose of the use (Purposes.DIAGNOSIS or Purposes.TRAINING)
    /// @param requestId the market's request id, or the training market's job id
    event RecordAccessed(
        uint256 indexed recordId, address indexed grantee, address indexed node, uint8 purpose, uint256 requestId
    );

    /// @notice Thrown when no record has the id `recordId`.
    error UnknownRecord(uint256 recordId);

    /// @notice Thrown when a retired record is used, granted on or changed.
    error RecordIsRetired(uint256 recordId);

    /// @notice Thrown when a record is registered with a data type outside 1..MAX_DATA_TYPE.
    error InvalidDataType(uint8 dataType);

    /// @notice Thrown when a purpose bitmask to grant or revoke is 0 or has a bit that names no purpose.
    error InvalidPurposes(uint8 purposes);

    /// @notice Thrown when consent would be granted to the zero address.
    error InvalidGrantee(address grantee);

    /// @notice Thrown when a grant's expiry is not after the current block's timestamp.
    error ConsentExpiryInPast(uint64 expiry);

    /// @notice Thrown when a revocation would take away none of the purposes `grantee` holds on the record.
    error NoConsentToRevoke(uint256 recordId, address grantee);

    /// @notice Thrown when `grantee` does not hold consent for `purpose` on the record: never granted or
    /// revoked (checkAccess), or no longer holding for any reason when a market logs the use (logAccess).
    error ConsentMissing(uint256 recordId, address grantee, uint8 purpose);

    /// @notice Thrown when `grantee`'s grant on the record covers the purpose but expired at `expiry`.
    error ConsentExpired(uint256 recordId, address grantee, uint64 expiry);

    /// @notice Thrown when a signed grant or revocation is submitted after its `deadline`.
    error SignatureExpired(uint256 deadline);

    /// @notice Thrown when a signed grant or revocation is not the record owner's signature (EOA or
    /// ERC-1271 wallet) over these terms and the owner's current nonce.
    /// @param signer the record's owner, whose signature was expected
    error InvalidConsentSignature(uint256 recordId, address signer);

    /// @notice Registers an encrypted record owned by the caller.
    /// @param ciphertextCid IPFS CID of the ciphertext
    /// @param ciphertextHash sha256 of the ciphertext bytes
    /// @param dataType 1 lab panel, 2 ECG, 3 image, 4 cytology
    /// @param keyEnvelopeCid IPFS CID of the key envelope
    /// @param royalty AID per diagnosis paid to the caller
    /// @return recordId the new record's id, counted from 1
    function registerRecord(
        string calldata ciphertextCid,
        bytes32 ciphertextHash,
        uint8 dataType,
        string calldata keyEnvelopeCid,
        uint80 royalty
    ) external returns (uint256 recordId);

    /// @notice Points a record at a new key envelope, e.g. after wrapping its key to another node.
    function updateKeyEnvelope(uint256 recordId, string calldata keyEnvelopeCid) external;

    /// @notice Sets the royalty the owner earns per diagnosis on this record.
    function setRoyalty(uint256 recordId, uint80 royalty) external;

    /// @notice Retires a record for good: every grant on it stops counting.
    function retireRecord(uint256 recordId) external;

    /// @notice Grants `grantee` the purposes in `purposes` on `recordId` until `expiry`.
    /// @dev Replaces any earlier grant to the same grantee: to add a purpose, grant the union (the CLI
    /// does); a live purpose left out is revoked, with ConsentRevoked. Only the record's owner.
    function grantConsent(uint256 recordId, address grantee, uint8 purposes, uint64 expiry) external;

    /// @notice Grants several consents in one transaction; the caller must own every record.
    function grantConsentBatch(GrantRequest[] calldata grants) external;

    /// @notice Grants consent with the owner's EIP-712 signature, so a patient needs no ETH.
    /// @param deadline the signature is void after this timestamp
    /// @param signature the owner's signature over ConsentGrant (EOA or ERC-1271 wallet)
    function grantConsentBySig(
        uint256 recordId,
        address grantee,
        uint8 purposes,
        uint64 expiry,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Revokes the purposes in `purposes` from `grantee` on `recordId`. It also voids every
    /// grant the caller signed that nobody has submitted yet, so an old signature cannot undo it.
    function revokeConsent(uint256 recordId, address grantee, uint8 purposes) external;

    /// @notice Voids every grant and revocation the caller signed that nobody has submitted yet.
    function invalidateSignatures() external;

    /// @notice Revokes consent with the owner's EIP-712 signature over ConsentRevocation.
    function revokeConsentBySig(
        uint256 recordId,
        address grantee,
        uint8 purposes,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /// @notice Logs that `node` used `recordId` for `grantee`'s request `requestId`. Only
    /// ACCESS_LOGGER_ROLE (the market); reverts with ConsentMissing unless the consent still holds.
    function logAccess(uint256 recordId, address grantee, uint8 purpose, address node, uint256 requestId) external;

    /// @notice Whether `grantee` may use `recordId` for every purpose in `purpose` now.
    function hasConsent(uint256 recordId, address grantee, uint8 purpose) external view returns (bool);

    /// @notice Reverts unless `grantee` may use `recordId` for `purpose`; returns what a request needs.
    function checkAccess(uint256 recordId, address grantee, uint8 purpose)
        external
        view
        returns (address owner, uint80 royalty, uint8 dataType, uint64 expiry);

    /// @notice The record `recordId`.
    function getRecord(uint256 recordId) external view returns (Record memory);

    /// @notice The grant `grantee` holds on `recordId` (zero if none).
    function consentOf(uint256 recordId, address grantee) external view returns (Grant memory);

    /// @notice How many records have been registered.
    function recordCount() external view returns (uint256);
}
