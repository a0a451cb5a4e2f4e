// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "../interfaces/IMarketplaceErrors.sol";

/// @title Content-addressed artifacts
/// @notice The one check of what names a file on IPFS (a ciphertext, a key envelope, weights, an
/// update, an aggregate): a non-empty CID and, where the contract pins the content, a non-zero hash.
library Artifacts {
    /// @notice Reverts with EmptyCid if `cid` is empty.
    function requireCid(string calldata cid) internal pure {
        if (bytes(cid).length == 0) revert IMarketplaceErrors.EmptyCid();
    }

    /// @notice Reverts with EmptyCid if `cid` is empty, then with ZeroHash if `digest` is zero.
    function check(string calldata cid, bytes32 digest) internal pure {
        if (bytes(cid).length == 0) revert IMarketplaceErrors.EmptyCid();
        if (digest == bytes32(0)) revert IMarketplaceErrors.ZeroHash();
    }
}
