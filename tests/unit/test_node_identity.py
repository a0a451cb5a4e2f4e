"""Who a node runs as: one order, whether the node's processes or `aidoc node run` ask."""

from __future__ import annotations

import pytest

from aidoc.config import ServiceSettings
from aidoc.errors import ConfigError
from aidoc.identity import Identity, save_keystore
from aidoc.node.runtime import node_identity

NODE, USER, STORED = Identity.generate(), Identity.generate(), Identity.generate()


@pytest.fixture
def services(tmp_path, monkeypatch) -> ServiceSettings:
    for name in ("ACCOUNT", "PRIVATE_KEY", "NODE_ACCOUNT", "NODE_PRIVATE_KEY", "PASSWORD"):
        monkeypatch.delenv("AIDOC_" + name, raising=False)
    monkeypatch.setenv("AIDOC_KEYSTORE_DIR", str(tmp_path))
    save_keystore(tmp_path, "stored", STORED, "pw")
    return ServiceSettings()


def key(identity: Identity) -> str:
    return identity.account.key.hex()


def test_the_nodes_own_key_outranks_the_users(services, monkeypatch):
    monkeypatch.setenv("AIDOC_NODE_PRIVATE_KEY", key(NODE))
    monkeypatch.setenv("AIDOC_ACCOUNT", "stored")
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", key(USER))
    assert node_identity(services, users_key=True).address == NODE.address
    assert node_identity(services).address == NODE.address


def test_an_explicit_account_outranks_every_variable(services, monkeypatch):
    monkeypatch.setenv("AIDOC_NODE_PRIVATE_KEY", key(NODE))
    assert node_identity(services, "stored", lambda name: "pw", users_key=True).address == STORED.address


def test_the_users_key_serves_the_cli_only(services, monkeypatch):
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", key(USER))
    assert node_identity(services, users_key=True).address == USER.address
    with pytest.raises(ConfigError, match="AIDOC_NODE_PRIVATE_KEY"):
        node_identity(services)  # a worker never runs as the user by accident
    monkeypatch.setenv("AIDOC_ACCOUNT", "stored")
    monkeypatch.setenv("AIDOC_PASSWORD", "pw")
    assert node_identity(services, users_key=True).address == STORED.address  # as `aidoc` commands choose


def test_a_keystore_without_a_password_is_asked_for_or_named(services, monkeypatch):
    monkeypatch.setenv("AIDOC_NODE_ACCOUNT", "stored")
    assert node_identity(services, password=lambda name: "pw").address == STORED.address
    with pytest.raises(ConfigError, match="AIDOC_PASSWORD"):
        node_identity(services)
