// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";
import {Artifacts} from "./libraries/Artifacts.sol";
import {DataTypes} from "./libraries/DataTypes.sol";
import {Purposes} from "./libraries/Purposes.sol";

/// @title Consent registry
/// @notice Encrypted health records and their owners' consent, per grantee, per purpose, with an
/// expiry; grants and revocations also by EIP-712 signature; the access log of actual uses.
contract ConsentRegistry is IConsentRegistry, AccessControl, EIP712, Nonces {
    /// @notice Role of the contracts that log a node's actual use of a record (the market).
    bytes32 public constant ACCESS_LOGGER_ROLE = keccak256("ACCESS_LOGGER_ROLE");

    /// @notice EIP-712 type of a signed grant (see aidoc/signing.py for the off-chain side).
    bytes32 public constant CONSENT_GRANT_TYPEHASH = keccak256(
        "ConsentGrant(uint256 recordId,address grantee,uint8 purposes,uint64 expiry,uint256 nonce,uint256 deadline)"
    );
    /// @notice EIP-712 type of a signed revocation.
    bytes32 public constant CONSENT_REVOCATION_TYPEHASH =
        keccak256("ConsentRevocation(uint256 recordId,address grantee,uint8 purposes,uint256 nonce,uint256 deadline)");

    /// @notice Highest known data type code (1 lab panel, 2 ECG, 3 image, 4 cytology): DataTypes'
    /// bound, which ModelRegistry.MAX_INPUT_TYPE exposes too.
    uint8 public constant MAX_DATA_TYPE = DataTypes.MAX_DATA_TYPE;

    uint256 private _recordCount;
    mapping(uint256 recordId => Record) private _records;
    mapping(uint256 recordId => mapping(address grantee => Grant)) private _grants;

    /// @param admin receives DEFAULT_ADMIN_ROLE, which assigns ACCESS_LOGGER_ROLE to the market
    constructor(address admin) EIP712("AIDoc ConsentRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ records

    /// @inheritdoc IConsentRegistry
    function registerRecord(
        string calldata ciphertextCid,
        bytes32 ciphertextHash,
        uint8 dataType,
        string calldata keyEnvelopeCid,
        uint80 royalty
    ) external returns (uint256 recordId) {
        // EmptyCid if either CID is empty, before ZeroHash.
        Artifacts.requireCid(keyEnvelopeCid);
        Artifacts.check(ciphertextCid, ciphertextHash);
        if (!DataTypes.isKnown(dataType)) revert InvalidDataType(dataType);

        recordId = ++_recordCount;
        Record storage record = _records[recordId];
        record.owner = msg.sender;
        record.royalty = royalty;
        record.dataType = dataType;
        record.ciphertextHash = ciphertextHash;
        record.ciphertextCid = ciphertextCid;
        record.keyEnvelopeCid = keyEnvelopeCid;
        emit RecordRegistered(recordId, msg.sender, dataType, ciphertextCid, ciphertextHash, keyEnvelopeCid, royalty);
    }

    /// @inheritdoc IConsentRegistry
    function updateKeyEnvelope(uint256 recordId, string calldata keyEnvelopeCid) external {
        Record storage record = _ownedLiveRecord(recordId, msg.sender);
        Artifacts.requireCid(keyEnvelopeCid);
        record.keyEnvelopeCid = keyEnvelopeCid;
        emit KeyEnvelopeUpdated(recordId, keyEnvelopeCid);
    }

    /// @inheritdoc IConsentRegistry
    function setRoyalty(uint256 recordId, uint80 royalty) external {
        _ownedLiveRecord(recordId, msg.sender).royalty = royalty;
        emit RoyaltyUpdated(recordId, royalty);
    }

    /// @inheritdoc IConsentRegistry
    function retireRecord(uint256 recordId) external {
        _ownedLiveRecord(recordId, msg.sender).retired = true;
        emit RecordRetired(recordId);
    }

    // ------------------------------------------------------------------ consent

    /// @inheritdoc IConsentRegistry
    function grantConsent(uint256 recordId, address grantee, uint8 purposes, uint64 expiry) external {
        _ownedLiveRecord(recordId, msg.sender);
        _grant(recordId, grantee, purposes, expiry);
    }

    /// @inheritdoc IConsentRegistry
    function grantConsentBatch(GrantRequest[] calldata grants) external {
        for (uint256 i = 0; i < grants.length; ++i) {
            GrantRequest calldata g = grants[i];
            _ownedLiveRecord(g.recordId, msg.sender);
            _grant(g.recordId, g.grantee, g.purposes, g.expiry);
        }
    }

    /// @inheritdoc IConsentRegistry
    function grantConsentBySig(
        uint256 recordId,
        address grantee,
        uint8 purposes,
        uint64 expiry,
        uint256 deadline,
        bytes calldata signature
    ) external {
        address owner = _liveRecord(recordId).owner;
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 structHash = keccak256(
            abi.encode(CONSENT_GRANT_TYPEHASH, recordId, grantee, purposes, expiry, _useNonce(owner), deadline)
        );
        _checkOwnerSignature(recordId, owner, structHash, signature);
        _grant(recordId, grantee, purposes, expiry);
    }

    /// @inheritdoc IConsentRegistry
    function revokeConsent(uint256 recordId, address grantee, uint8 purposes) external {
        _ownedRecord(recordId, msg.sender);
        _revoke(recordId, grantee, purposes);
        _invalidateSignatures(msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function invalidateSignatures() external {
        _invalidateSignatures(msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function revokeConsentBySig(
        uint256 recordId,
        address grantee,
        uint8 purposes,
        uint256 deadline,
        bytes calldata signature
    ) external {
        address owner = _record(recordId).owner;
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 structHash = keccak256(
            abi.encode(CONSENT_REVOCATION_TYPEHASH, recordId, grantee, purposes, _useNonce(owner), deadline)
        );
        _checkOwnerSignature(recordId, owner, structHash, signature);
        _revoke(recordId, grantee, purposes);
    }

    // ------------------------------------------------------------------ access

    /// @inheritdoc IConsentRegistry
    function logAccess(uint256 recordId, address grantee, uint8 purpose, address node, uint256 requestId)
        external
        onlyRole(ACCESS_LOGGER_ROLE)
    {
        if (!hasConsent(recordId, grantee, purpose)) revert ConsentMissing(recordId, grantee, purpose);
        emit RecordAccessed(recordId, grantee, node, purpose, requestId);
    }

    /// @inheritdoc IConsentRegistry
    function hasConsent(uint256 recordId, address grantee, uint8 purpose) public view returns (bool) {
        Record storage record = _records[recordId];
        if (record.owner == address(0) || record.retired) return false;
        Grant memory grant = _grants[recordId][grantee];
        return purpose != 0 && grant.purposes & purpose == purpose && block.timestamp < grant.expiry;
    }

    /// @inheritdoc IConsentRegistry
    function checkAccess(uint256 recordId, address grantee, uint8 purpose)
        external
        view
        returns (address owner, uint80 royalty, uint8 dataType, uint64 expiry)
    {
        Record storage record = _liveRecord(recordId);
        Grant memory grant = _grants[recordId][grantee];
        if (purpose == 0 || grant.purposes & purpose != purpose) revert ConsentMissing(recordId, grantee, purpose);
        if (block.timestamp >= grant.expiry) revert ConsentExpired(recordId, grantee, grant.expiry);
        return (record.owner, record.royalty, record.dataType, grant.expiry);
    }

    /// @inheritdoc IConsentRegistry
    function getRecord(uint256 recordId) external view returns (Record memory) {
        return _record(recordId);
    }

    /// @inheritdoc IConsentRegistry
    function consentOf(uint256 recordId, address grantee) external view returns (Grant memory) {
        return _grants[recordId][grantee];
    }

    /// @inheritdoc IConsentRegistry
    function recordCount() external view returns (uint256) {
        return _recordCount;
    }

    /// @notice The EIP-712 domain separator for signed grants and revocations.
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _grant(uint256 recordId, address grantee, uint8 purposes, uint64 expiry) private {
        if (grantee == address(0)) revert InvalidGrantee(grantee);
        if (!Purposes.isValid(purposes)) revert InvalidPurposes(purposes);
        if (expiry <= block.timestamp) revert ConsentExpiryInPast(expiry);
        Grant storage grant = _grants[recordId][grantee];
        // A grant replaces the grantee's earlier one: a purpose that still held and is not granted
        // again ends here, and the audit trail says so as a revocation.
        uint8 removed = block.timestamp < grant.expiry ? grant.purposes & ~purposes : 0;
        (grant.purposes, grant.expiry) = (purposes, expiry);
        if (removed != 0) emit ConsentRevoked(recordId, grantee, removed);
        emit ConsentGranted(recordId, grantee, purposes, expiry);
    }

    function _invalidateSignatures(address owner) private {
        _useNonce(owner);
        emit SignaturesInvalidated(owner, nonces(owner));
    }

    function _revoke(uint256 recordId, address grantee, uint8 purposes) private {
        if (!Purposes.isValid(purposes)) revert InvalidPurposes(purposes);
        Grant storage grant = _grants[recordId][grantee];
        uint8 remaining = grant.purposes & ~purposes;
        if (remaining == grant.purposes) revert NoConsentToRevoke(recordId, grantee);
        if (remaining == 0) {
            delete _grants[recordId][grantee];
        } else {
            grant.purposes = remaining;
        }
        emit ConsentRevoked(recordId, grantee, purposes);
    }

    /// @dev EOA signatures and ERC-1271 wallets (a patient's smart account) alike.
    function _checkOwnerSignature(uint256 recordId, address owner, bytes32 structHash, bytes calldata signature)
        private
        view
    {
        if (!SignatureChecker.isValidSignatureNow(owner, _hashTypedDataV4(structHash), signature)) {
            revert InvalidConsentSignature(recordId, owner);
        }
    }

    function _record(uint256 recordId) private view returns (Record storage record) {
        record = _records[recordId];
        if (record.owner == address(0)) revert UnknownRecord(recordId);
    }

    function _liveRecord(uint256 recordId) private view returns (Record storage record) {
        record = _record(recordId);
        if (record.retired) revert RecordIsRetired(recordId);
    }

    function _ownedRecord(uint256 recordId, address caller) private view returns (Record storage record) {
        record = _record(recordId);
        if (record.owner != caller) revert NotRecordOwner(recordId, caller);
    }

    function _ownedLiveRecord(uint256 recordId, address caller) private view returns (Record storage record) {
        record = _ownedRecord(recordId, caller);
        if (record.retired) revert RecordIsRetired(recordId);
    }
}
