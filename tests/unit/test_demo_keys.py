"""`make demo` on a chain it did not start (AIDOC_RPC_URL) keeps its accounts' keys in encrypted
keystores, so that a user can cancel what a failed run leaves in escrow; without a password to
encrypt them it refuses to start, in one line."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aidoc.errors import AidocError
from aidoc.identity import Identity, load_keystore
from demos.marketplace import Cast, demo_keys, keep_keys


def test_the_demos_own_chain_needs_no_keystores(monkeypatch):
    monkeypatch.delenv("AIDOC_RPC_URL", raising=False)
    assert demo_keys() is None


def test_another_chain_without_a_password_is_refused(monkeypatch):
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AIDOC_PASSWORD", raising=False)
    with pytest.raises(AidocError, match="set AIDOC_PASSWORD"):
        demo_keys()


def test_the_accounts_of_a_run_on_another_chain_are_kept_in_keystores(monkeypatch, tmp_path):
    monkeypatch.setenv("AIDOC_RPC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AIDOC_PASSWORD", "demo password")
    monkeypatch.setenv("AIDOC_KEYSTORE_DIR", str(tmp_path))
    keys = demo_keys()
    cast = Cast([Identity.generate(), Identity.generate()], Identity.generate(), Identity.generate(),
                Identity.generate())
    out = io.StringIO()
    keep_keys(Console(file=out, width=300), keys, cast)
    doctor = f"demo-doctor-{cast.doctor.address[2:10].lower()}"
    assert load_keystore(tmp_path, doctor, "demo password").address == cast.doctor.address
    assert load_keystore(tmp_path, f"demo-patient2-{cast.patients[1].address[2:10].lower()}",
                         "demo password").address == cast.patients[1].address
    assert doctor in out.getvalue() and "demo password" not in out.getvalue()
    assert len(list(tmp_path.iterdir())) == 5
