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


class _Dies:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def run(self) -> None:
        raise self.error

    def stop(self, *_: object) -> None:
        pass


def test_a_node_process_that_dies_while_running_logs_its_traceback_then_one_line(capsys, caplog):
    import signal

    from aidoc.node.service import run_service

    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as ended:
            run_service("sender", lambda: (_Dies(OSError("connection reset by the RPC")), "sender started"))
        assert ended.value.code == 1
        assert capsys.readouterr().err == "error: connection reset by the RPC\n"
        died = [r for r in caplog.records if r.name == "aidoc.sender" and r.levelname == "ERROR"]
        assert len(died) == 1 and died[0].exc_info is not None  # the operator's log keeps the traceback
        caplog.clear()
        with pytest.raises(SystemExit):
            run_service("sender", lambda: (_Dies(ConfigError("set AIDOC_X")), "sender started"))
        assert not [r for r in caplog.records if r.levelname == "ERROR"]  # a setting: the one line only
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
