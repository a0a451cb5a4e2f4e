"""The local stack's process handling: secrets stay out of child processes' environments."""

from __future__ import annotations

import sys

from aidoc.stack.process import ManagedProcess


def _environment_of_child(run_dir, monkeypatch, inherit_aidoc: bool, extra: dict[str, str]) -> str:
    monkeypatch.setenv("AIDOC_PRIVATE_KEY", "0x" + "11" * 32)
    monkeypatch.setenv("AIDOC_PASSWORD", "hunter2")
    monkeypatch.setenv("AIDOC_NODE_PRIVATE_KEY", "0x" + "22" * 32)
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:8545")
    code = "import os; print(sorted(os.environ.items()), flush=True); import time; time.sleep(30)"
    child = ManagedProcess("child", [sys.executable, "-c", code], run_dir, env=extra, inherit_aidoc=inherit_aidoc,
                           ready=lambda: child.log_path.exists() and "PATH" in child.log_path.read_text())
    with child:
        return child.log_path.read_text()


def test_our_children_inherit_settings_but_no_secrets(tmp_path, monkeypatch):
    seen = _environment_of_child(tmp_path, monkeypatch, True, {"AIDOC_NODE_PRIVATE_KEY": "0x" + "33" * 32})
    assert "AIDOC_RPC_URL" in seen
    assert "hunter2" not in seen and "11" * 32 not in seen and "22" * 32 not in seen
    assert "33" * 32 in seen  # the one secret handed over on purpose


def test_third_party_servers_get_no_aidoc_settings_at_all(tmp_path, monkeypatch):
    seen = _environment_of_child(tmp_path, monkeypatch, False, {})
    assert "AIDOC_" not in seen and "PATH" in seen
