"""The node supervisor restarts a process that exits with exponential backoff (on a clock the test
moves), says each restart once with its cause, and starts from the first delay again once a
process has run long enough. Real child processes; no sleeping on timing."""

from __future__ import annotations

from aidoc.stack.local import NodeSupervisor, exit_cause
from aidoc.stack.process import ManagedProcess


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def crashing(tmp_path) -> ManagedProcess:
    """A process that logs a line and exits with status 3 once the test creates its `crash` file."""
    script = "echo 'error: the chain went away'; while [ ! -e crash ]; do sleep 0.01; done; exit 3"
    return ManagedProcess("crasher", ["sh", "-c", script], tmp_path, cwd=tmp_path, ready=lambda: True)


def exited(process: ManagedProcess) -> None:
    trigger = process.run_dir / "crash"
    trigger.touch()
    process.process.wait()
    trigger.unlink()


def test_restarts_back_off_and_start_over_once_the_process_ran_long_enough(tmp_path):
    clock, said = Clock(), []
    process = crashing(tmp_path).start()
    supervisor = NodeSupervisor([process], said.append, backoff=(1.0, 4.0), stable_after=30.0, clock=clock)

    expected = []
    for delay in (1.0, 2.0, 4.0, 4.0):  # doubling, then capped
        exited(process)
        supervisor.check()
        expected.append(delay)
        assert supervisor.delays["crasher"] == expected
        clock.now += delay - 0.01
        supervisor.check()
        assert process.process is None  # not before its delay
        clock.now += 0.01
        supervisor.check()
        assert process.process is not None  # started again
    assert supervisor.restarts["crasher"] == 4

    clock.now += 30.0  # this run lasted long enough: the next exit starts over
    exited(process)
    supervisor.check()
    assert supervisor.delays["crasher"][-1] == 1.0
    assert len(said) == 5  # one line per restart
    assert said[0].startswith("crasher exited with status 3 (its log ends: error: the chain went away); "
                              "starting it again in 1 s")
    process.stop()


def test_a_process_that_cannot_start_is_tried_again_later_not_in_a_loop(tmp_path):
    clock, said = Clock(), []
    process = crashing(tmp_path).start()
    supervisor = NodeSupervisor([process], said.append, backoff=(1.0, 60.0), clock=clock)
    exited(process)
    supervisor.check()
    process.command = ["/nonexistent/binary"]
    for _ in range(3):
        clock.now += supervisor.delays["crasher"][-1]
        supervisor.check()
    assert supervisor.delays["crasher"] == [1.0, 2.0, 4.0, 8.0]
    assert all("did not start again" in line and "is not installed" in line for line in said[1:])
    assert "crasher" not in supervisor.restarts


def test_exit_causes_name_the_signal():
    assert exit_cause(1) == "status 1"
    assert exit_cause(-9) == "signal 9 (SIGKILL)"
