// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketEscrow} from "./MarketEscrow.sol";
import {IModelRegistry} from "../interfaces/IModelRegistry.sol";

/// @title Model publisher
/// @notice A market that pays for training and publishes what it trained (the training market and
/// the federated rounds): the trained weights become the next version of the base model's family,
/// owned by whoever paid for them. The market needs the ModelRegistry's PUBLISHER_ROLE.
abstract contract ModelPublisher is MarketEscrow {
    /// @dev Registers `weightsCid` (pinned by `weightsSha256`) for `owner` as the next version of
    /// `baseModelId`'s family, with the base model's input type and price (the owner, as the new
    /// version's provider, may change the price); returns the new model's id.
    function _publishVersion(address owner, uint256 baseModelId, string calldata weightsCid, bytes32 weightsSha256)
        internal
        returns (uint256 modelId)
    {
        IModelRegistry.Model memory base = models.getModel(baseModelId);
        return models.registerModelFor(owner, base.name, weightsCid, weightsSha256, base.inputType, base.price);
    }
}
