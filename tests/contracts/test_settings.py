"""Configuration errors are one clear line that says which variable to fix."""

import pytest

from aidoc.chain.deployments import load_deployment
from aidoc.config import DeploySettings
from aidoc.errors import AidocError, ConfigError, DeploymentNotFound


def test_malformed_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("AIDOC_MIN_STAKE", "lots")
    with pytest.raises(ConfigError, match=r"^AIDOC_MIN_STAKE='lots' is not a whole number"):
        DeploySettings()


def test_inconsistent_supply_is_refused(monkeypatch):
    monkeypatch.setenv("AIDOC_TOKEN_CAP", "10")
    monkeypatch.setenv("AIDOC_TOKEN_INITIAL_SUPPLY", "11")
    with pytest.raises(ConfigError, match="AIDOC_TOKEN_INITIAL_SUPPLY exceeds AIDOC_TOKEN_CAP"):
        DeploySettings()


def test_timeout_bounds_match_the_contract(monkeypatch):
    monkeypatch.setenv("AIDOC_REQUEST_TIMEOUT", "59")
    with pytest.raises(ConfigError, match="AIDOC_REQUEST_TIMEOUT"):
        DeploySettings()


def test_default_epsilon_limit_is_milli_epsilon_within_uint32(monkeypatch):
    monkeypatch.delenv("AIDOC_DEFAULT_EPSILON_LIMIT", raising=False)
    assert DeploySettings().default_epsilon_limit_milli == 10_000  # epsilon 10
    monkeypatch.setenv("AIDOC_DEFAULT_EPSILON_LIMIT", str(2**32))
    with pytest.raises(ConfigError, match="AIDOC_DEFAULT_EPSILON_LIMIT is in milli-epsilon"):
        DeploySettings()
    monkeypatch.setenv("AIDOC_DEFAULT_EPSILON_LIMIT", "-1")
    with pytest.raises(ConfigError, match="AIDOC_DEFAULT_EPSILON_LIMIT='-1' is negative"):
        DeploySettings()


def test_missing_deployment_says_what_to_run(tmp_path):
    with pytest.raises(DeploymentNotFound, match="run `aidoc deploy`") as caught:
        load_deployment(tmp_path, 31337)
    assert isinstance(caught.value, AidocError)
    assert "\n" not in str(caught.value)


def test_entry_points_turn_user_errors_into_one_line(capsys):
    from aidoc.errors import exit_on_user_error

    @exit_on_user_error
    def entry():
        raise ConfigError("AIDOC_MIN_STAKE='x' is not a whole number; set it to an integer")

    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 1
    assert capsys.readouterr().err == "error: AIDOC_MIN_STAKE='x' is not a whole number; set it to an integer\n"
