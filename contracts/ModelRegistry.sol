// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IModelRegistry} from "./interfaces/IModelRegistry.sol";
import {Artifacts} from "./libraries/Artifacts.sol";
import {DataTypes} from "./libraries/DataTypes.sol";

/// @title Model registry
/// @notice Versioned diagnostic models, their prices, their audit status and their ratings.
contract ModelRegistry is IModelRegistry, AccessControl {
    /// @notice Expert nodes that suspend and reinstate models.
    bytes32 public constant AUDITOR_ROLE = keccak256("AUDITOR_ROLE");
    /// @notice Contracts that record ratings after checking the rater's fulfilled request (the market).
    bytes32 public constant RATER_ROLE = keccak256("RATER_ROLE");
    /// @notice Contracts that publish a model version on a provider's behalf (the training markets).
    bytes32 public constant PUBLISHER_ROLE = keccak256("PUBLISHER_ROLE");

    /// @notice Highest known input type code; the same codes and bound as ConsentRegistry data
    /// types (DataTypes).
    uint8 public constant MAX_INPUT_TYPE = DataTypes.MAX_DATA_TYPE;

    uint256 private _modelCount;
    mapping(uint256 modelId => Model) private _models;
    mapping(uint256 modelId => Rating) private _ratings;
    mapping(bytes32 providerAndName => uint32) private _latestVersion;

    /// @param admin receives DEFAULT_ADMIN_ROLE, which assigns auditors, the rater and publishers
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IModelRegistry
    function registerModel(
        string calldata name,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    ) external returns (uint256 modelId) {
        return _register(msg.sender, name, weightsCid, weightsSha256, inputType, price);
    }

    /// @inheritdoc IModelRegistry
    function registerModelFor(
        address provider,
        string calldata name,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    ) external onlyRole(PUBLISHER_ROLE) returns (uint256 modelId) {
        // A model with no provider would read as unknown (see _model), and nobody could manage it.
        if (provider == address(0)) revert InvalidProvider(provider);
        modelId = _register(provider, name, weightsCid, weightsSha256, inputType, price);
        emit ModelPublishedFor(modelId, provider, msg.sender);
    }

    /// @inheritdoc IModelRegistry
    function updatePrice(uint256 modelId, uint80 price) external {
        Model storage model = _providedModel(modelId, msg.sender);
        if (model.status == ModelStatus.Deactivated) revert ModelNotActive(modelId, model.status);
        model.price = price;
        emit ModelPriceUpdated(modelId, price);
    }

    /// @inheritdoc IModelRegistry
    function deactivate(uint256 modelId) external {
        Model storage model = _providedModel(modelId, msg.sender);
        if (model.status == ModelStatus.Deactivated) revert ModelNotActive(modelId, model.status);
        model.status = ModelStatus.Deactivated;
        emit ModelDeactivated(modelId);
    }

    /// @inheritdoc IModelRegistry
    function suspend(uint256 modelId, string calldata reason) external onlyRole(AUDITOR_ROLE) {
        if (bytes(reason).length == 0) revert EmptyReason();
        Model storage model = _model(modelId);
        if (model.status != ModelStatus.Active) revert ModelNotActive(modelId, model.status);
        model.status = ModelStatus.Suspended;
        emit ModelSuspended(modelId, msg.sender, reason);
    }

    /// @inheritdoc IModelRegistry
    function reinstate(uint256 modelId, string calldata reason) external onlyRole(AUDITOR_ROLE) {
        if (bytes(reason).length == 0) revert EmptyReason();
        Model storage model = _model(modelId);
        if (model.status != ModelStatus.Suspended) revert ModelNotSuspended(modelId);
        model.status = ModelStatus.Active;
        emit ModelReinstated(modelId, msg.sender, reason);
    }

    /// @inheritdoc IModelRegistry
    function recordRating(uint256 modelId, address rater, uint8 score) external onlyRole(RATER_ROLE) {
        _model(modelId);
        if (score == 0 || score > 5) revert InvalidScore(score);
        Rating storage rating = _ratings[modelId];
        rating.sum += score;
        rating.count += 1;
        emit ModelRated(modelId, rater, score);
    }

    /// @inheritdoc IModelRegistry
    function requireActive(uint256 modelId)
        external
        view
        returns (address provider, uint80 price, uint8 inputType)
    {
        Model storage model = _model(modelId);
        if (model.status != ModelStatus.Active) revert ModelNotActive(modelId, model.status);
        return (model.provider, model.price, model.inputType);
    }

    /// @inheritdoc IModelRegistry
    function getModel(uint256 modelId) external view returns (Model memory) {
        return _model(modelId);
    }

    /// @inheritdoc IModelRegistry
    function ratingOf(uint256 modelId) external view returns (Rating memory) {
        return _ratings[modelId];
    }

    /// @inheritdoc IModelRegistry
    function latestVersion(address provider, string calldata name) external view returns (uint32) {
        return _latestVersion[_familyKey(provider, name)];
    }

    /// @inheritdoc IModelRegistry
    function modelCount() external view returns (uint256) {
        return _modelCount;
    }

    /// @dev Registers the next version of `provider`'s model `name` (registerModel, registerModelFor).
    function _register(
        address provider,
        string calldata name,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    ) private returns (uint256 modelId) {
        if (bytes(name).length == 0) revert EmptyModelName();
        Artifacts.check(weightsCid, weightsSha256);
        if (!DataTypes.isKnown(inputType)) revert InvalidInputType(inputType);

        uint32 version = ++_latestVersion[_familyKey(provider, name)];
        modelId = ++_modelCount;
        _models[modelId] = Model({
            provider: provider,
            price: price,
            inputType: inputType,
            status: ModelStatus.Active,
            weightsSha256: weightsSha256,
            version: version,
            name: name,
            weightsCid: weightsCid
        });
        emit ModelRegistered(modelId, provider, name, version, weightsCid, weightsSha256, inputType, price);
    }

    function _familyKey(address provider, string calldata name) private pure returns (bytes32) {
        return keccak256(abi.encode(provider, name));
    }

    function _model(uint256 modelId) private view returns (Model storage model) {
        model = _models[modelId];
        if (model.provider == address(0)) revert UnknownModel(modelId);
    }

    function _providedModel(uint256 modelId, address caller) private view returns (Model storage model) {
        model = _model(modelId);
        if (model.provider != caller) revert NotModelProvider(modelId, caller);
    }
}
