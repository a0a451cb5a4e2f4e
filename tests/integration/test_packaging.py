"""The library installs anywhere: the built wheel, installed (not editable) into a fresh venv outside
the checkout, holds one top-level package, runs `aidoc --help` and a node's imports from any folder,
takes the project directory from the working directory or AIDOC_PROJECT_DIR, and deploys with
`aidoc deploy` run in the project directory.

The fresh venv gets the dependencies by a path line pointing at this venv's site-packages (a plain
path line in a .pth file adds the folder without running the .pth files inside it, so this venv's
editable install of aidoc stays invisible there): only the wheel provides `aidoc`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from aidoc.config import project_dir
from aidoc.stack.process import free_port
from aidoc.stack.services import anvil

PACKAGE_SOURCES = ("pyproject.toml", "README.md", "aidoc", "oracles", "workers")
NODE_IMPORTS = ("aidoc.oracles.watcher", "aidoc.oracles.sender", "aidoc.oracles.publisher", "aidoc.workers.app",
                "aidoc.workers.tasks", "aidoc.workers.training", "aidoc.node.messages", "aidoc.cli.main")


@dataclass(frozen=True)
class Installed:
    bin: Path
    wheel: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """A fresh venv with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy, so that setuptools' build/ never mixes with Brownie's build/
    for name in PACKAGE_SOURCES:
        origin = project_dir() / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(base / "dist"), str(source)], check=True)
    wheel = next((base / "dist").glob("aidoc_chain-*.whl"))
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    site = Path(subprocess.check_output([str(target / "bin" / "python"), "-c",
                                         "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "aidoc-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
                    "--target", str(site), str(wheel)], check=True)
    # pip --target writes no console script: the wheel's entry point, as pip would write it.
    (target / "bin" / "aidoc").write_text(f"#!{target / 'bin' / 'python'}\nimport sys\nfrom aidoc.cli.main import app\n"
                                          "sys.exit(app())\n")
    (target / "bin" / "aidoc").chmod(0o755)
    return Installed(target / "bin", wheel)


def run(installed: Installed, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AIDOC_")}
    return subprocess.run([str(installed.bin / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True,
                          env={**environment, **(env or {})}, timeout=300)


def test_only_aidoc_lands_in_site_packages(installed, tmp_path):
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(installed.wheel).namelist()}
    assert top_level == {"aidoc", "-".join(installed.wheel.name.split("-")[:2]) + ".dist-info"}
    site = Path(run(installed, "python", "-c", "import aidoc, pathlib; print(pathlib.Path(aidoc.__file__).parent.parent)",
                    cwd=tmp_path).stdout.strip())
    assert (site / "aidoc" / "oracles" / "watcher.py").is_file() and (site / "aidoc" / "workers" / "app.py").is_file()
    assert not (site / "oracles").exists() and not (site / "workers").exists()


def test_aidoc_help_and_the_node_imports_work_outside_the_checkout(installed, tmp_path):
    helped = run(installed, "aidoc", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "consent" in helped.stdout and "node" in helped.stdout
    code = ("import importlib, importlib.util, pathlib, aidoc\n"
            f"for name in {NODE_IMPORTS!r}: importlib.import_module(name)\n"
            "assert importlib.util.find_spec('workers') is None and importlib.util.find_spec('oracles') is None\n"
            "print(pathlib.Path(aidoc.__file__).resolve())")
    imported = run(installed, "python", "-c", code, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    location = Path(imported.stdout.strip())
    assert project_dir() not in location.parents  # the installed copy, not the checkout


def test_the_project_directory_is_the_working_directory_or_aidoc_project_dir(installed, tmp_path):
    code = "from aidoc.config import ServiceSettings as S; s = S(); print(s.build_dir, s.deployments_dir)"
    here = run(installed, "python", "-c", code, cwd=tmp_path).stdout.split()
    assert here == [str(tmp_path.resolve() / "build"), str(tmp_path.resolve() / "deployments")]
    named = run(installed, "python", "-c", code, cwd=tmp_path, env={"AIDOC_PROJECT_DIR": str(project_dir())}).stdout.split()
    assert named == [str(project_dir() / "build"), str(project_dir() / "deployments")]


def scratch_project(directory: Path) -> Path:
    """A Brownie project with no Python package in it (the checkout's own `aidoc/` would shadow the
    installed one for `python -m` children started there): its sources and build outputs are copies,
    node_modules and tools are links."""
    checkout = project_dir()
    directory.mkdir()
    shutil.copy2(checkout / "brownie-config.yaml", directory)
    for name in ("contracts", "interfaces", "scripts", "build/contracts", "build/interfaces"):
        shutil.copytree(checkout / name, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("node_modules", "tools"):
        (directory / name).symlink_to(checkout / name)
    return directory


def test_aidoc_deploy_from_the_installed_package_in_the_project_directory(installed, tmp_path):
    project = scratch_project(tmp_path / "project")
    port = free_port()
    with anvil(tmp_path / "run", port):
        deployed = run(installed, "aidoc", "deploy", cwd=project,
                       env={"AIDOC_RPC_URL": f"http://127.0.0.1:{port}", "AIDOC_DEPLOYMENTS_DIR": str(tmp_path)})
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert not (project / "aidoc").exists()  # the deploy script's imports came from the installed wheel
    record = json.loads((tmp_path / "31337.json").read_text())
    assert set(record["contracts"]) >= {"DiagnosisMarket", "ConsentRegistry", "TrainingMarket"}


def test_aidoc_deploy_outside_a_project_says_where_to_run_it(installed, tmp_path):
    refused = run(installed, "aidoc", "deploy", cwd=tmp_path, env={"AIDOC_RPC_URL": "http://127.0.0.1:9"})
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "AIDOC_PROJECT_DIR" in refused.stderr
