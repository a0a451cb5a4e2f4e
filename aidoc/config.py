"""All configuration in one place: environment variables prefixed AIDOC_ (documented in README).

Amounts are in whole AID unless the name says otherwise; they are converted to wei units (18
decimals) here, so nothing else in the library reads or parses an AIDOC_ variable (the test
bed, aidoc.stack.testbed, points this process's settings at its servers; the demos do not).

The project directory (brownie-config.yaml, contracts/, build/ with the compiled contracts and the
trained models, deployments/) is AIDOC_PROJECT_DIR or the working directory, as Brownie and ape take
it: never the installed package's own location."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aidoc.errors import ConfigError

ENV_PREFIX = "AIDOC_"
AID = 10**18


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


SECRET_VARIABLES = (ENV_PREFIX + "PASSWORD", ENV_PREFIX + "PRIVATE_KEY", ENV_PREFIX + "NODE_PRIVATE_KEY")


def child_environment(extra: dict[str, str], inherit_aidoc: bool) -> dict[str, str]:
    """The environment a child process gets: this one's, without secrets (and without any AIDOC_
    setting for third-party servers), plus `extra`, which alone may hand a child a secret."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in SECRET_VARIABLES and (inherit_aidoc or not key.startswith(ENV_PREFIX))
    }
    return {**base, **extra}


def is_set(name: str) -> bool:
    """Whether AIDOC_<name> is set (a chain given with AIDOC_RPC_URL is used instead of a new one)."""
    return bool(_env(name, ""))


def project_dir() -> Path:
    """The project directory: AIDOC_PROJECT_DIR, else the working directory."""
    return Path(_env("PROJECT_DIR", "") or os.getcwd()).expanduser().resolve()


def models_dir() -> Path:
    """The trained models and sample records (scripts/train_models.py, `make models`)."""
    return project_dir() / "build" / "models"


def _env_number(name: str, default: float, parse, kind: str, advice: str):
    """AIDOC_<name> parsed with `parse` (int or float), 0 or more, or a ConfigError naming it."""
    raw = _env(name, str(default))
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not {kind}; set it to {advice}") from None
    if value < 0:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is negative; set it to 0 or more")
    return value


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "a whole number", "an integer")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number", "a number")


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in _env(name, "").split(",") if item.strip()]


@dataclass(frozen=True)
class DeploySettings:
    """Parameters of a deployment (scripts/deploy.py)."""

    token_cap: int = field(default_factory=lambda: _env_int("TOKEN_CAP", 1_000_000_000) * AID)
    initial_supply: int = field(default_factory=lambda: _env_int("TOKEN_INITIAL_SUPPLY", 100_000_000) * AID)
    min_stake: int = field(default_factory=lambda: _env_int("MIN_STAKE", 1_000) * AID)
    unbonding_delay: int = field(default_factory=lambda: _env_int("UNBONDING_DELAY", 7 * 24 * 3600))
    request_timeout: int = field(default_factory=lambda: _env_int("REQUEST_TIMEOUT", 3600))
    # A record's privacy budget while its owner set none, in milli-epsilon (10000 = epsilon 10).
    default_epsilon_limit_milli: int = field(default_factory=lambda: _env_int("DEFAULT_EPSILON_LIMIT", 10_000))
    auditors: list[str] = field(default_factory=lambda: _env_list("AUDITORS"))
    deployer_keystore: str = field(default_factory=lambda: _env("DEPLOYER_KEYSTORE", ""))
    # Redeploy even when deployments/<chainId>.json is live and matches the build (aidoc deploy --fresh).
    fresh: bool = field(default_factory=lambda: _env("DEPLOY_FRESH", "") not in ("", "0"))
    # The most a deployment transaction may pay per gas (gwei); 0: no cap.
    max_fee_gwei: float = field(default_factory=lambda: _env_float("MAX_FEE_GWEI", 0.0))
    deployments_dir: Path = field(
        default_factory=lambda: Path(_env("DEPLOYMENTS_DIR", str(project_dir() / "deployments")))
    )

    def __post_init__(self) -> None:
        if self.initial_supply > self.token_cap:
            raise ConfigError(
                f"{ENV_PREFIX}TOKEN_INITIAL_SUPPLY exceeds {ENV_PREFIX}TOKEN_CAP; lower the supply or raise the cap"
            )
        if not 60 <= self.request_timeout <= 30 * 24 * 3600:
            raise ConfigError(f"{ENV_PREFIX}REQUEST_TIMEOUT must be between 60 s and 30 days")
        if self.default_epsilon_limit_milli >= 2**32:
            raise ConfigError(f"{ENV_PREFIX}DEFAULT_EPSILON_LIMIT is in milli-epsilon and must be below 2**32")


def aidoc_home() -> Path:
    """Where the CLI keeps keystores and the embedded IPFS store (AIDOC_HOME, default ~/.aidoc)."""
    return Path(_env("HOME", str(Path.home() / ".aidoc"))).expanduser()


@dataclass(frozen=True)
class ServiceSettings:
    """Where the services are: the chain's RPC, Redis, IPFS (AIDOC_IPFS_API, or the embedded store)."""

    rpc_url: str = field(default_factory=lambda: _env("RPC_URL", "http://127.0.0.1:8545"))
    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ipfs_api: str = field(default_factory=lambda: _env("IPFS_API", ""))
    store_dir: Path = field(default_factory=lambda: Path(_env("STORE_DIR", str(aidoc_home() / "ipfs"))))
    keystore_dir: Path = field(default_factory=lambda: Path(_env("KEYSTORE_DIR", str(aidoc_home() / "keystores"))))
    deployments_dir: Path = field(
        default_factory=lambda: Path(_env("DEPLOYMENTS_DIR", str(project_dir() / "deployments")))
    )
    build_dir: Path = field(default_factory=lambda: Path(_env("BUILD_DIR", str(project_dir() / "build"))))
    # Logs and pid files of the servers `aidoc up` and `aidoc node run` start.
    run_dir: Path = field(default_factory=lambda: Path(_env("RUN_DIR", str(aidoc_home() / "run"))))

    def to_env(self) -> dict[str, str]:
        """These settings as the AIDOC_ variables that give them to a child process."""
        names = {"rpc_url": "RPC_URL", "redis_url": "REDIS_URL", "ipfs_api": "IPFS_API", "store_dir": "STORE_DIR",
                 "keystore_dir": "KEYSTORE_DIR", "deployments_dir": "DEPLOYMENTS_DIR", "build_dir": "BUILD_DIR",
                 "run_dir": "RUN_DIR"}
        return {ENV_PREFIX + names[key]: str(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class OracleSettings:
    """How a node's watcher, workers and sender behave (oracles/, workers/)."""

    # Blocks a request's log must be buried under before the node acts on it (0 on a dev chain).
    confirmations: int = field(default_factory=lambda: _env_int("CONFIRMATIONS", 0))
    # Blocks below the checkpoint rescanned on each pass, to catch logs a reorg moved.
    reorg_depth: int = field(default_factory=lambda: _env_int("REORG_DEPTH", 12))
    # Most blocks per eth_getLogs call (providers cap ranges, often at 1k-10k blocks).
    log_range: int = field(default_factory=lambda: _env_int("LOG_RANGE", 2_000))
    poll_interval: float = field(default_factory=lambda: _env_float("POLL_INTERVAL", 0.5))
    # A WebSocket endpoint (ws:// or wss://) whose eth_subscribe newHeads tells the watcher of each
    # block, so that it does not poll for the head; empty: poll.
    ws_url: str = field(default_factory=lambda: _env("WS_URL", ""))
    # The sender fulfils up to batch_size results per fulfilBatch, or what it has after batch_wait s.
    batch_size: int = field(default_factory=lambda: _env_int("BATCH_SIZE", 32))
    batch_wait: float = field(default_factory=lambda: _env_float("BATCH_WAIT", 0.2))
    # The watcher hands the workers up to task_batch requests per Celery task.
    task_batch: int = field(default_factory=lambda: _env_int("TASK_BATCH", 16))
    # A transaction without a receipt after this long is replaced with a higher fee.
    tx_timeout: float = field(default_factory=lambda: _env_float("TX_TIMEOUT", 30.0))
    max_record_bytes: int = field(default_factory=lambda: _env_int("MAX_RECORD_BYTES", 16 * 1024 * 1024))
    max_weights_bytes: int = field(default_factory=lambda: _env_int("MAX_WEIGHTS_BYTES", 256 * 1024 * 1024))
    # A task is killed after task_time_limit s; Redis redelivers an unacknowledged task after
    # visibility_timeout s, which must be longer so that a slow task is not run twice at once.
    task_time_limit: int = field(default_factory=lambda: _env_int("TASK_TIME_LIMIT", 300))
    visibility_timeout: int = field(default_factory=lambda: _env_int("VISIBILITY_TIMEOUT", 900))
    task_max_retries: int = field(default_factory=lambda: _env_int("TASK_MAX_RETRIES", 8))
    worker_concurrency: int = field(default_factory=lambda: _env_int("WORKER_CONCURRENCY", 2))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO").upper())
    # An institution's own labelled panels (.npz of features and targets) for federated rounds; the
    # aggregator's are its held-out set.
    local_dataset: str = field(default_factory=lambda: _env("LOCAL_DATASET", ""))

    def __post_init__(self) -> None:
        if self.visibility_timeout <= self.task_time_limit:
            raise ConfigError(
                f"{ENV_PREFIX}VISIBILITY_TIMEOUT must exceed {ENV_PREFIX}TASK_TIME_LIMIT, or Redis redelivers running tasks"
            )
        if not 1 <= self.batch_size <= 256:
            raise ConfigError(f"{ENV_PREFIX}BATCH_SIZE must be between 1 and 256")
        if not 1 <= self.task_batch <= 256:
            raise ConfigError(f"{ENV_PREFIX}TASK_BATCH must be between 1 and 256")
        if self.log_range < 1:
            raise ConfigError(f"{ENV_PREFIX}LOG_RANGE must be at least 1 block")
        if self.worker_concurrency < 1:
            raise ConfigError(f"{ENV_PREFIX}WORKER_CONCURRENCY must be at least 1 process")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL={self.log_level!r} is not a level; use DEBUG, INFO, WARNING or ERROR")


@dataclass(frozen=True)
class RelayerSettings:
    """The gasless-consent relayer: where clients find it (AIDOC_RELAYER_URL), where `aidoc relayer
    run` listens (AIDOC_RELAYER_HOST, AIDOC_RELAYER_PORT), and how many signatures one signer may
    have relayed per hour (AIDOC_RELAYER_SIGNER_LIMIT), so that nobody drains its ETH."""

    url: str = field(default_factory=lambda: _env("RELAYER_URL", "").rstrip("/"))
    host: str = field(default_factory=lambda: _env("RELAYER_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("RELAYER_PORT", 8600))
    signer_limit_per_hour: int = field(default_factory=lambda: _env_int("RELAYER_SIGNER_LIMIT", 20))

    def __post_init__(self) -> None:
        if self.signer_limit_per_hour < 1:
            raise ConfigError(f"{ENV_PREFIX}RELAYER_SIGNER_LIMIT must be at least 1 (signatures per signer per hour)")


@dataclass(frozen=True)
class WebSettings:
    """The web app (`aidoc web`): where it listens (AIDOC_WEB_HOST, AIDOC_WEB_PORT), its indexer's
    database (AIDOC_DB_URL: SQLite under AIDOC_HOME by default, or a PostgreSQL URL such as
    postgresql+psycopg://user@host/aidoc) and the largest upload it takes to IPFS (AIDOC_WEB_MAX_UPLOAD)."""

    host: str = field(default_factory=lambda: _env("WEB_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("WEB_PORT", 8700))
    db_url: str = field(default_factory=lambda: _env("DB_URL", f"sqlite:///{aidoc_home() / 'web.sqlite'}"))
    max_upload: int = field(default_factory=lambda: _env_int("WEB_MAX_UPLOAD", 16 * 1024 * 1024))


@dataclass(frozen=True)
class KeySettings:
    """The secrets a process may find in its environment, for servers with a secret store instead of
    a prompt: a user's keystore name (AIDOC_ACCOUNT) or key (AIDOC_PRIVATE_KEY), a node's key (AIDOC_NODE_PRIVATE_KEY) or its keystore
    (AIDOC_NODE_ACCOUNT), and the password of keystores (AIDOC_PASSWORD). Child processes never
    inherit them (aidoc.stack.process); none of them is ever printed (repr=False)."""

    account: str = field(default_factory=lambda: _env("ACCOUNT", "").strip())
    private_key: str = field(default_factory=lambda: _env("PRIVATE_KEY", "").strip(), repr=False)
    node_private_key: str = field(default_factory=lambda: _env("NODE_PRIVATE_KEY", "").strip(), repr=False)
    node_account: str = field(default_factory=lambda: _env("NODE_ACCOUNT", ""))
    password: str | None = field(default_factory=lambda: os.environ.get(ENV_PREFIX + "PASSWORD"), repr=False)
