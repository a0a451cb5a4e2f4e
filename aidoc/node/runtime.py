"""What each of a compute node's processes holds: its identity, the marketplace, storage, Redis, its
namespace there and its outbox.

The node's key comes from AIDOC_NODE_PRIVATE_KEY, or from the keystore AIDOC_NODE_ACCOUNT opened
with AIDOC_PASSWORD (KeySettings; `node_identity` is the one place that decides). Each process (a Celery worker child, the watcher, the sender) builds one
NodeRuntime and keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import redis

from aidoc.chain.contracts import Marketplace, open_marketplace
from aidoc.config import ENV_PREFIX, KeySettings, OracleSettings, ServiceSettings
from aidoc.errors import ConfigError
from aidoc.identity import Identity, identity_from_key, load_keystore
from aidoc.node.namespace import NodeNamespace
from aidoc.node.outbox import Outbox
from aidoc.storage import ContentStore, open_store


def node_identity(services: ServiceSettings, account: str | None = None,
                  password: Callable[[str], str] | None = None, users_key: bool = False) -> Identity:
    """Who the node is, first found of: the keystore `account` (`aidoc node run --account`),
    AIDOC_NODE_PRIVATE_KEY, the keystore AIDOC_NODE_ACCOUNT, and with `users_key` (the CLI, where the
    operator may be the one user) the keystore AIDOC_ACCOUNT, then AIDOC_PRIVATE_KEY. A keystore
    opens with AIDOC_PASSWORD, else with what `password(name)` asks for."""
    keys = KeySettings()

    def keystore(name: str) -> Identity:
        secret = keys.password
        if secret is None:
            if password is None:
                raise ConfigError(f"set {ENV_PREFIX}PASSWORD to open the keystore {name}")
            secret = password(name)
        return load_keystore(services.keystore_dir, name, secret)

    if account:
        return keystore(account)
    identity = identity_from_key(keys.node_private_key)
    if identity is not None:
        return identity
    if keys.node_account:
        return keystore(keys.node_account)
    if users_key:
        if keys.account:
            return keystore(keys.account)
        identity = identity_from_key(keys.private_key)
        if identity is not None:
            return identity
    raise ConfigError(
        f"no node key: set {ENV_PREFIX}NODE_ACCOUNT (a keystore name) and {ENV_PREFIX}PASSWORD, or "
        f"{ENV_PREFIX}NODE_PRIVATE_KEY" + (", or give --account NAME" if users_key else "")
    )


@dataclass
class NodeRuntime:
    services: ServiceSettings = field(default_factory=ServiceSettings)
    oracle: OracleSettings = field(default_factory=OracleSettings)
    identity: Identity | None = None

    def __post_init__(self) -> None:
        if self.identity is None:
            self.identity = node_identity(self.services)

    @property
    def address(self) -> str:
        return self.identity.address

    @cached_property
    def marketplace(self) -> Marketplace:
        return open_marketplace(self.services)

    @cached_property
    def store(self) -> ContentStore:
        return open_store(self.services.ipfs_api or None, self.services.store_dir)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.services.redis_url, socket_timeout=30, socket_connect_timeout=5)

    @cached_property
    def namespace(self) -> NodeNamespace:
        """Where this node keeps its state for the chain and market it runs on."""
        return NodeNamespace.of(self.marketplace, self.address)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.redis, self.namespace)
