"""Brownie's transaction lookups wait out anvil's index lag instead of calling a mined transaction
dropped, and a script outside a project is refused with one line."""

from __future__ import annotations

import pytest
from web3.exceptions import TransactionNotFound

from aidoc.chain.brownie_runner import check_script, patient_lookup
from aidoc.errors import ConfigError


def test_a_transaction_found_a_moment_late_is_found():
    answers = iter([TransactionNotFound("not yet"), TransactionNotFound("not yet"), {"hash": "0x01"}])

    def lookup(tx_hash):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert patient_lookup(lookup, wait=5.0)("0x01") == {"hash": "0x01"}


def test_a_transaction_never_found_is_still_not_found():
    def lookup(tx_hash):
        raise TransactionNotFound("unknown")

    with pytest.raises(TransactionNotFound):
        patient_lookup(lookup, wait=0.05)("0x02")


def test_other_errors_are_not_waited_on():
    calls = []

    def lookup(tx_hash):
        calls.append(tx_hash)
        raise ValueError("bad hash")

    with pytest.raises(ValueError):
        patient_lookup(lookup, wait=5.0)("0x03")
    assert calls == ["0x03"]


def test_a_script_outside_the_project_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="AIDOC_PROJECT_DIR"):
        check_script(tmp_path, "scripts/deploy.py")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "deploy.py").write_text("")
    assert check_script(tmp_path, "scripts/deploy.py").name == "deploy.py"
