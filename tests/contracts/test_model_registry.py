"""ModelRegistry: versioned registration, price, deactivation, audit suspension, ratings."""

import pytest

from aidoc.constants import DataType, ModelStatus
from conftest import CID, MODEL_PRICE, WEIGHTS_HASH, event_args, plain, register_model, reverts_with


def test_register_model_versions_per_provider_and_name(models, provider, stranger):
    tx = models.registerModel("panel-mlp", CID, WEIGHTS_HASH, DataType.LAB_PANEL, MODEL_PRICE, {"from": provider})
    assert tx.return_value == 1
    assert event_args(tx, "ModelRegistered") == {
        "modelId": 1, "provider": provider.address, "name": "panel-mlp", "version": 1, "weightsCid": CID,
        "weightsSha256": WEIGHTS_HASH, "inputType": DataType.LAB_PANEL, "price": MODEL_PRICE,
    }
    second = register_model(models, provider, name="panel-mlp")
    other = register_model(models, stranger, name="panel-mlp")
    ecg = register_model(models, provider, data_type=DataType.ECG, name="ecg-cnn")
    assert models.getModel(second)[5] == 2
    assert models.getModel(other)[5] == 1
    assert models.getModel(ecg)[5] == 1
    assert models.latestVersion(provider, "panel-mlp") == 2
    assert models.latestVersion(stranger, "ecg-cnn") == 0
    assert models.modelCount() == 4
    assert plain(models.getModel(1)) == (
        provider.address, MODEL_PRICE, DataType.LAB_PANEL, ModelStatus.ACTIVE, WEIGHTS_HASH, 1, "panel-mlp", CID,
    )


@pytest.mark.parametrize(
    "name,cid,digest,input_type,error",
    [
        ("", CID, WEIGHTS_HASH, 1, "EmptyModelName"),
        ("m", "", WEIGHTS_HASH, 1, "EmptyCid"),
        ("m", CID, "0x" + "00" * 32, 1, "ZeroHash"),
        ("m", CID, WEIGHTS_HASH, 0, "InvalidInputType"),
        ("m", CID, WEIGHTS_HASH, 5, "InvalidInputType"),
    ],
)
def test_register_model_rejects_bad_input(models, provider, name, cid, digest, input_type, error):
    with reverts_with(error):
        models.registerModel(name, cid, digest, input_type, 1, {"from": provider})


def test_update_price(models, provider, model_id, stranger):
    tx = models.updatePrice(model_id, 42, {"from": provider})
    assert event_args(tx, "ModelPriceUpdated") == {"modelId": model_id, "price": 42}
    assert models.requireActive(model_id)[1] == 42
    with reverts_with("NotModelProvider", model_id, stranger.address):
        models.updatePrice(model_id, 1, {"from": stranger})
    with reverts_with("UnknownModel", 9):
        models.updatePrice(9, 1, {"from": provider})


def test_deactivate_is_final(models, provider, model_id, auditor, stranger):
    with reverts_with("NotModelProvider", model_id, stranger.address):
        models.deactivate(model_id, {"from": stranger})
    tx = models.deactivate(model_id, {"from": provider})
    assert event_args(tx, "ModelDeactivated") == {"modelId": model_id}
    with reverts_with("ModelNotActive", model_id, ModelStatus.DEACTIVATED):
        models.requireActive(model_id)
    with reverts_with("ModelNotActive", model_id, ModelStatus.DEACTIVATED):
        models.deactivate(model_id, {"from": provider})
    with reverts_with("ModelNotActive", model_id, ModelStatus.DEACTIVATED):
        models.updatePrice(model_id, 1, {"from": provider})
    with reverts_with("ModelNotActive", model_id, ModelStatus.DEACTIVATED):
        models.suspend(model_id, "late", {"from": auditor})


def test_auditor_suspends_and_reinstates_with_reason(models, model_id, auditor):
    tx = models.suspend(model_id, "miscalibrated on pediatric panels", {"from": auditor})
    assert event_args(tx, "ModelSuspended") == {
        "modelId": model_id, "auditor": auditor.address, "reason": "miscalibrated on pediatric panels",
    }
    with reverts_with("ModelNotActive", model_id, ModelStatus.SUSPENDED):
        models.requireActive(model_id)
    with reverts_with("ModelNotActive", model_id, ModelStatus.SUSPENDED):
        models.suspend(model_id, "again", {"from": auditor})
    tx = models.reinstate(model_id, "recalibrated in v1.1 weights", {"from": auditor})
    assert event_args(tx, "ModelReinstated")["reason"] == "recalibrated in v1.1 weights"
    assert models.getModel(model_id)[3] == ModelStatus.ACTIVE
    with reverts_with("ModelNotSuspended", model_id):
        models.reinstate(model_id, "twice", {"from": auditor})


def test_only_auditors_suspend_and_reasons_are_required(models, model_id, auditor, provider):
    with reverts_with("AccessControlUnauthorizedAccount", provider.address, models.AUDITOR_ROLE()):
        models.suspend(model_id, "competitor", {"from": provider})
    with reverts_with("AccessControlUnauthorizedAccount", provider.address, models.AUDITOR_ROLE()):
        models.reinstate(model_id, "self", {"from": provider})
    with reverts_with("EmptyReason"):
        models.suspend(model_id, "", {"from": auditor})
    models.suspend(model_id, "x", {"from": auditor})
    with reverts_with("EmptyReason"):
        models.reinstate(model_id, "", {"from": auditor})
    with reverts_with("UnknownModel", 99):
        models.suspend(99, "x", {"from": auditor})


def test_ratings_only_through_the_rater_role(models, model_id, stranger, admin):
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, models.RATER_ROLE()):
        models.recordRating(model_id, stranger, 5, {"from": stranger})
    models.grantRole(models.RATER_ROLE(), stranger, {"from": admin})
    tx = models.recordRating(model_id, stranger, 4, {"from": stranger})
    assert event_args(tx, "ModelRated") == {"modelId": model_id, "rater": stranger.address, "score": 4}
    models.recordRating(model_id, stranger, 2, {"from": stranger})
    assert plain(models.ratingOf(model_id)) == (6, 2)
    for bad in (0, 6):
        with reverts_with("InvalidScore", bad):
            models.recordRating(model_id, stranger, bad, {"from": stranger})
    with reverts_with("UnknownModel", 50):
        models.recordRating(50, stranger, 3, {"from": stranger})


def test_cytology_is_a_model_input_type(models, provider):
    model_id = register_model(models, provider, data_type=DataType.CYTOLOGY, name="fna-cytology-mlp")
    assert models.requireActive(model_id)[2] == DataType.CYTOLOGY == models.MAX_INPUT_TYPE() == 4


def test_publisher_registers_a_version_on_a_providers_behalf(models, admin, provider, stranger):
    register_model(models, provider, name="panel-mlp")
    models.grantRole(models.PUBLISHER_ROLE(), stranger, {"from": admin})
    tx = models.registerModelFor(provider, "panel-mlp", CID, WEIGHTS_HASH, DataType.LAB_PANEL, 7, {"from": stranger})
    model_id = tx.return_value
    assert model_id == 2
    # Same versioning as registerModel: the provider's family, not the publisher's.
    assert event_args(tx, "ModelRegistered") == {
        "modelId": 2, "provider": provider.address, "name": "panel-mlp", "version": 2, "weightsCid": CID,
        "weightsSha256": WEIGHTS_HASH, "inputType": DataType.LAB_PANEL, "price": 7,
    }
    assert event_args(tx, "ModelPublishedFor") == {
        "modelId": 2, "provider": provider.address, "publisher": stranger.address,
    }
    assert models.latestVersion(provider, "panel-mlp") == 2
    assert models.latestVersion(stranger, "panel-mlp") == 0
    # The provider owns it: it alone sets the price and deactivates it.
    models.updatePrice(model_id, 9, {"from": provider})
    with reverts_with("NotModelProvider", model_id, stranger.address):
        models.updatePrice(model_id, 1, {"from": stranger})
    # A provider's own registration continues the same count.
    assert models.getModel(register_model(models, provider, name="panel-mlp"))[5] == 3


def test_only_publishers_register_for_others(models, provider, stranger):
    with reverts_with("AccessControlUnauthorizedAccount", stranger.address, models.PUBLISHER_ROLE()):
        models.registerModelFor(stranger, "m", CID, WEIGHTS_HASH, DataType.LAB_PANEL, 1, {"from": stranger})
    with reverts_with("AccessControlUnauthorizedAccount", provider.address, models.PUBLISHER_ROLE()):
        models.registerModelFor(provider, "m", CID, WEIGHTS_HASH, DataType.LAB_PANEL, 1, {"from": provider})
    assert models.modelCount() == 0


@pytest.mark.parametrize(
    "owner,name,cid,digest,input_type,error",
    [
        (None, "m", CID, WEIGHTS_HASH, 1, "InvalidProvider"),
        ("provider", "", CID, WEIGHTS_HASH, 1, "EmptyModelName"),
        ("provider", "m", "", WEIGHTS_HASH, 1, "EmptyCid"),
        ("provider", "m", CID, "0x" + "00" * 32, 1, "ZeroHash"),
        ("provider", "m", CID, WEIGHTS_HASH, 5, "InvalidInputType"),
    ],
)
def test_register_model_for_applies_the_same_checks(models, admin, provider, stranger, owner, name, cid, digest,
                                                     input_type, error):
    models.grantRole(models.PUBLISHER_ROLE(), stranger, {"from": admin})
    target = provider if owner else "0x" + "00" * 20
    with reverts_with(error):
        models.registerModelFor(target, name, cid, digest, input_type, 1, {"from": stranger})
    assert models.modelCount() == 0
