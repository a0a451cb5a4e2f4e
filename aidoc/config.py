"""All configuration in one place: environment variables prefixed AIDOC_ (documented in README).

Amounts are in whole AID unless the name says otherwise; they are converted to wei units (18
decimals) here, so nothing else in the code base parses environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from aidoc.errors import ConfigError

ENV_PREFIX = "AIDOC_"
AID = 10**18
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a whole number; set it to an integer") from None
    if value < 0:
        raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is negative; set it to 0 or more")
    return value


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
    auditors: list[str] = field(default_factory=lambda: _env_list("AUDITORS"))
    deployer_keystore: str = field(default_factory=lambda: _env("DEPLOYER_KEYSTORE", ""))
    deployments_dir: Path = field(
        default_factory=lambda: Path(_env("DEPLOYMENTS_DIR", str(PROJECT_ROOT / "deployments")))
    )

    def __post_init__(self) -> None:
        if self.initial_supply > self.token_cap:
            raise ConfigError(
                f"{ENV_PREFIX}TOKEN_INITIAL_SUPPLY exceeds {ENV_PREFIX}TOKEN_CAP; lower the supply or raise the cap"
            )
        if not 60 <= self.request_timeout <= 30 * 24 * 3600:
            raise ConfigError(f"{ENV_PREFIX}REQUEST_TIMEOUT must be between 60 s and 30 days")
