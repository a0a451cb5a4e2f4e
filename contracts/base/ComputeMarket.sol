// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MarketEscrow} from "./MarketEscrow.sol";
import {IConsentRegistry} from "../interfaces/IConsentRegistry.sol";
import {IMarketplaceErrors} from "../interfaces/IMarketplaceErrors.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {DataTypes} from "../libraries/DataTypes.sol";

/// @title Compute market
/// @notice A market in which staked compute nodes work on consented records (diagnoses, training
/// jobs): the escrow, plus the ConsentRegistry and the NodeRegistry, and the check that a node can
/// take the work.
abstract contract ComputeMarket is MarketEscrow, IMarketplaceErrors {
    /// @notice Where consent is checked and access is logged (the market needs its
    /// ACCESS_LOGGER_ROLE).
    IConsentRegistry public immutable consents;
    /// @notice Where node terms come from (and, for the diagnosis market, outcomes go).
    INodeRegistry public immutable nodes;

    constructor(
        IERC20 aidToken,
        IConsentRegistry consentRegistry,
        IModelRegistry modelRegistry,
        INodeRegistry nodeRegistry
    ) MarketEscrow(aidToken, modelRegistry) {
        consents = consentRegistry;
        nodes = nodeRegistry;
    }

    /// @dev Reverts with NodeNotActive unless `node` can take new work, and with
    /// NodeUnsupportedInput unless it reads `dataType`; returns its per-diagnosis fee.
    function _requireCapableNode(address node, uint8 dataType) internal view returns (uint80 fee) {
        uint16 inputTypes;
        (fee, inputTypes) = nodes.requireActive(node);
        if (!DataTypes.isSupported(inputTypes, dataType)) revert NodeUnsupportedInput(node, dataType);
    }
}
