// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceErrors} from "./IMarketplaceErrors.sol";

/// @title Model registry interface
/// @notice Providers publish versioned diagnostic models: weights on IPFS pinned by their sha256,
/// an input type and a price per call in AID. Auditors suspend and reinstate models with a reason.
interface IModelRegistry is IMarketplaceErrors {
    /// @notice Lifecycle of a model. Deactivated is final; Suspended can be reinstated by an auditor.
    enum ModelStatus {
        None,
        Active,
        Suspended,
        Deactivated
    }

    /// @notice A registered model.
    struct Model {
        address provider;
        uint80 price;
        uint8 inputType;
        ModelStatus status;
        bytes32 weightsSha256;
        uint32 version;
        string name;
        string weightsCid;
    }

    /// @notice Ratings left by requesters with a fulfilled request.
    struct Rating {
        uint128 sum;
        uint128 count;
    }

    /// @notice Emitted when a model version is registered, by its provider or by a publisher on the provider's
    /// behalf (then followed by ModelPublishedFor).
    /// @param version the version within the provider's family `name`, counted from 1
    /// @param weightsSha256 sha256 of the weights file, checked by nodes before loading
    /// @param inputType the data type the model reads (DataTypes)
    /// @param price AID (wei units) per diagnosis
    event ModelRegistered(
        uint256 indexed modelId,
        address indexed provider,
        string name,
        uint32 version,
        string weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    );

    /// @notice Emitted when a PUBLISHER_ROLE contract registers `modelId` on `provider`'s behalf, right after the
    /// ModelRegistered event that names the model; the publisher's own events say how the weights were
    /// made (JobCompleted, TrainingFinished).
    event ModelPublishedFor(uint256 indexed modelId, address indexed provider, address indexed publisher);

    /// @notice Emitted when a model's provider sets its price per diagnosis.
    event ModelPriceUpdated(uint256 indexed modelId, uint80 price);

    /// @notice Emitted when a model's provider withdraws the model for good.
    event ModelDeactivated(uint256 indexed modelId);

    /// @notice Emitted when an auditor suspends an active model, giving the reason.
    event ModelSuspended(uint256 indexed modelId, address indexed auditor, string reason);

    /// @notice Emitted when an auditor reinstates a suspended model, giving the reason.
    event ModelReinstated(uint256 indexed modelId, address indexed auditor, string reason);

    /// @notice Emitted when the market records the rating (1..5) a requester with a fulfilled request gave the model.
    event ModelRated(uint256 indexed modelId, address indexed rater, uint8 score);

    /// @notice Thrown when no model has the id `modelId`.
    error UnknownModel(uint256 modelId);

    /// @notice Thrown when someone other than a model's provider changes the model.
    error NotModelProvider(uint256 modelId, address caller);

    /// @notice Thrown when a model is not in the state an action needs: Active to take requests, to be trained
    /// from or to be suspended; not Deactivated to change its price or deactivate it.
    /// @param status the model's status
    error ModelNotActive(uint256 modelId, ModelStatus status);

    /// @notice Thrown when an auditor reinstates a model that is not suspended.
    error ModelNotSuspended(uint256 modelId);

    /// @notice Thrown when a model is registered without a name.
    error EmptyModelName();

    /// @notice Thrown when a model is registered with an input type outside 1..MAX_INPUT_TYPE.
    error InvalidInputType(uint8 inputType);

    /// @notice Thrown when a publisher registers a model for the zero address.
    error InvalidProvider(address provider);

    /// @notice Thrown when a rating is not from 1 to 5.
    error InvalidScore(uint8 score);

    /// @notice Registers the next version of the caller's model `name`.
    /// @param name the model family; versions count from 1 per provider and name
    /// @param weightsCid IPFS CID of the safetensors weights
    /// @param weightsSha256 sha256 of the weights file, checked by nodes before loading
    /// @param inputType the record data type the model reads (1 lab panel, 2 ECG, 3 image, 4 cytology)
    /// @param price AID (wei units) per diagnosis
    /// @return modelId the new model's id, counted from 1
    function registerModel(
        string calldata name,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    ) external returns (uint256 modelId);

    /// @notice Registers the next version of `provider`'s model `name`, on the provider's behalf.
    /// Only PUBLISHER_ROLE (the training markets, which publish a trained version for their buyer or
    /// sponsor). Same checks and versioning as registerModel: versions count per provider and name.
    /// @param provider who owns the new version (sets its price, deactivates it, is paid for it)
    /// @param name the model family
    /// @param weightsCid IPFS CID of the safetensors weights
    /// @param weightsSha256 sha256 of the weights file
    /// @param inputType the record data type the model reads (1 lab panel, 2 ECG, 3 image, 4 cytology)
    /// @param price AID (wei units) per diagnosis
    /// @return modelId the new model's id
    function registerModelFor(
        address provider,
        string calldata name,
        string calldata weightsCid,
        bytes32 weightsSha256,
        uint8 inputType,
        uint80 price
    ) external returns (uint256 modelId);

    /// @notice Sets a new price per call; requests already made keep the price they escrowed.
    function updatePrice(uint256 modelId, uint80 price) external;

    /// @notice Withdraws a model for good. Only its provider.
    function deactivate(uint256 modelId) external;

    /// @notice Suspends an active model, giving the reason. Only AUDITOR_ROLE.
    function suspend(uint256 modelId, string calldata reason) external;

    /// @notice Reinstates a suspended model, giving the reason. Only AUDITOR_ROLE.
    function reinstate(uint256 modelId, string calldata reason) external;

    /// @notice Records a rating from 1 to 5. Only RATER_ROLE (the market, which checks the rater
    /// had a fulfilled request with this model).
    function recordRating(uint256 modelId, address rater, uint8 score) external;

    /// @notice Reverts with ModelNotActive unless the model can take requests; returns its terms.
    function requireActive(uint256 modelId)
        external
        view
        returns (address provider, uint80 price, uint8 inputType);

    /// @notice The model `modelId`.
    function getModel(uint256 modelId) external view returns (Model memory);

    /// @notice Sum and count of the model's ratings.
    function ratingOf(uint256 modelId) external view returns (Rating memory);

    /// @notice The latest version number registered by `provider` under `name` (0 if none).
    function latestVersion(address provider, string calldata name) external view returns (uint32);

    /// @notice How many models have been registered.
    function modelCount() external view returns (uint256);
}
