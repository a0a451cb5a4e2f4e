"""The service definitions in deploy/ stay valid: systemd accepts the unit without a warning, and
every command the unit and the compose file run is a command (with options) the CLI has; every
setting they pass is one aidoc reads."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aidoc.cli.main import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG_SOURCE = (Path(__file__).resolve().parents[2] / "aidoc" / "config.py").read_text()


def cli_accepts(args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, f"`aidoc {' '.join(args)}` is not a command of the CLI: {result.output}"


def known_setting(name: str) -> bool:
    return name.startswith("AIDOC_") and f'"{name.removeprefix("AIDOC_")}"' in CONFIG_SOURCE


def test_systemd_accepts_the_node_unit_without_a_warning():
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: make install installs Debian's systemd"
    verified = subprocess.run(["systemd-analyze", "verify", str(DEPLOY / "aidoc-node.service")],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and not verified.stdout.strip() and not verified.stderr.strip(), \
        verified.stdout + verified.stderr


def test_the_units_command_is_the_clis_node_run():
    unit = (DEPLOY / "aidoc-node.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1)
    inner = shlex.split(shlex.split(exec_start)[-1])  # /bin/sh -c '... exec .../aidoc node run'
    assert inner[-3].endswith("/aidoc")
    cli_accepts(inner[-2:])
    assert "AIDOC_PASSWORD=" not in unit.replace('AIDOC_PASSWORD="$(cat', "")  # a credential, never inline


def test_the_example_settings_are_settings_aidoc_reads():
    names = [line.split("=", 1)[0] for line in (DEPLOY / "node.env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert names and all(known_setting(name) for name in names), [n for n in names if not known_setting(n)]
    assert not any("PASSWORD" in name or "PRIVATE_KEY" in name for name in names)


@pytest.mark.parametrize("service", ["node", "status"])
def test_the_compose_files_commands_are_the_clis(service):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    spec = compose["services"][service]
    assert spec.get("image") == "aidoc-node"
    cli_accepts(spec["command"])
    assert all(known_setting(name) for name in spec.get("environment", {}))
    assert spec["env_file"] == ["node.env"] and (DEPLOY / "node.env.example").exists()


def test_the_image_runs_the_cli():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["aidoc"]' in dockerfile
    cli_accepts(["node", "run"])
    for path in re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE):
        assert (DEPLOY.parent / path).exists() or path in ("build/contracts", "deployments"), path
