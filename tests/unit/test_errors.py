"""The one error policy, as the demos, the Brownie scripts and the node's processes apply it."""

from __future__ import annotations

import pytest
from web3.exceptions import Web3Exception

from aidoc.errors import AidocError, ConfigError, exit_on_user_error


@pytest.mark.parametrize("error", [ConfigError("set AIDOC_X\nto a number"), OSError("disk full"),
                                   Web3Exception("the node refused"), AidocError("")])
def test_a_user_error_ends_an_entry_point_with_one_line_and_status_1(error, capsys):
    @exit_on_user_error
    def entry_point() -> None:
        raise error

    with pytest.raises(SystemExit) as ended:
        entry_point()
    assert ended.value.code == 1
    printed = capsys.readouterr().err
    assert printed.startswith("error: ") and printed.count("\n") == 1


def test_a_bug_keeps_its_traceback():
    @exit_on_user_error
    def entry_point() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        entry_point()
