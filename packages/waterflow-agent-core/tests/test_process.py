"""run_process: real programs, their output in the step log, exit codes, and a clean kill."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from waterflow import NodeError, SecretMasker, StepLog, _process
from waterflow._process import run_process

DEADLINE = 15.0


@pytest.fixture
def log(tmp_path: Path) -> Iterator[StepLog]:
    step_log = StepLog(tmp_path / "step.log", SecretMasker(), tail_lines=100)
    yield step_log
    step_log.close()


def no_heartbeat(*details: object) -> None:
    pass


async def run(argv: list[str], log: StepLog, cwd: Path | None = None) -> int:
    return await run_process(argv, cwd=cwd, env=dict(os.environ), log=log, heartbeat=no_heartbeat)


def log_text(log: StepLog) -> str:
    assert log.path is not None
    return log.path.read_text(encoding="utf-8")


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE}s: {what}")
        await asyncio.sleep(0.02)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_group_gone(pgid: int) -> None:
    """Until no process of the group is left, not even unreaped (the init process reaps)."""
    await wait_until(lambda: not group_exists(pgid), f"process group {pgid} is gone")


def ready_pids(log: StepLog) -> list[int] | None:
    for line in log.tail():
        if line.startswith("ready "):
            return [int(p) for p in line.split()[1:]]
    return None


def pids_of(log: StepLog) -> list[int]:
    pids = ready_pids(log)
    assert pids is not None, log.tail()
    return pids


async def start_and_wait_ready(argv: list[str], log: StepLog) -> tuple[asyncio.Task[int], int]:
    task = asyncio.create_task(run(argv, log))
    await wait_until(lambda: ready_pids(log) is not None or task.done(), "the program is ready")
    return task, pids_of(log)[0]


@pytest.fixture
def cleanup_groups() -> Iterator[list[int]]:
    """Kills what a failing test leaves behind."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_stdout_and_stderr_lines_go_to_the_log(log: StepLog) -> None:
    code = await run(["bash", "-c", "echo one; echo two >&2; echo three"], log)
    assert code == 0
    assert sorted(log.tail()) == ["one", "three", "two"]  # two pipes: no order between them
    text = log_text(log)
    assert " out one\n" in text
    assert " err two\n" in text
    assert " out three\n" in text


async def test_exit_code(log: StepLog) -> None:
    assert await run(["bash", "-c", "exit 3"], log) == 3


async def test_signal_death_is_128_plus_signal(log: StepLog) -> None:
    assert await run(["bash", "-c", "kill -TERM $$"], log) == 128 + signal.SIGTERM


async def test_stdin_is_dev_null(log: StepLog) -> None:
    assert await asyncio.wait_for(run(["cat"], log), DEADLINE) == 0


async def test_runs_in_cwd_with_env(log: StepLog, tmp_path: Path) -> None:
    env = {**os.environ, "WF_TEST_VALUE": "from-env"}
    code = await run_process(
        ["bash", "-c", 'pwd; echo "$WF_TEST_VALUE"'],
        cwd=tmp_path,
        env=env,
        log=log,
        heartbeat=no_heartbeat,
    )
    assert code == 0
    assert log.tail() == [str(tmp_path), "from-env"]


async def test_own_process_group(log: StepLog) -> None:
    assert await run(["bash", "-c", 'echo "$$ $(ps -o pgid= -p $$)"'], log) == 0
    pid, pgid = log.tail()[0].split()
    assert pid == pgid
    assert int(pgid) != os.getpgid(0)


async def test_final_line_without_newline_is_kept(log: StepLog) -> None:
    assert await run(["printf", "first\\nno newline"], log) == 0
    assert log.tail() == ["first", "no newline"]


async def test_crlf_and_empty_lines(log: StepLog) -> None:
    assert await run(["printf", "a\\r\\n\\nb\\n"], log) == 0
    assert log.tail() == ["a", "", "b"]


async def test_very_long_lines_are_split(log: StepLog) -> None:
    script = "import sys; sys.stdout.write('x' * 200000 + '\\nend\\n')"
    assert await run([sys.executable, "-c", script], log) == 0
    limit = _process.MAX_LINE_BYTES
    assert [len(line) for line in log.tail()] == [limit, limit, limit, 200000 - 3 * limit, 3]


async def test_long_lines_split_between_characters(log: StepLog) -> None:
    script = "import sys; sys.stdout.write('é' * 40000 + '\\n')"
    assert await run([sys.executable, "-c", script], log) == 0
    pieces = log.tail()
    assert len(pieces) == 2
    assert "".join(pieces) == "é" * 40000


async def test_non_utf8_output_is_replaced(log: StepLog) -> None:
    assert await run(["printf", "caf\\351 ok\\n\\377\\n"], log) == 0
    assert log.tail() == ["caf\ufffd ok", "\ufffd"]


async def test_output_is_masked(log: StepLog, tmp_path: Path) -> None:
    masker = SecretMasker(["hunter2-secret"])
    masked_log = StepLog(tmp_path / "masked.log", masker)
    try:
        await run(["bash", "-c", "echo token=hunter2-secret; echo hunter2-secret >&2"], masked_log)
    finally:
        masked_log.close()
    text = (tmp_path / "masked.log").read_text()
    assert "hunter2-secret" not in text
    assert "out token=***" in text
    assert "err ***" in text


async def test_missing_program(log: StepLog) -> None:
    with pytest.raises(NodeError) as info:
        await run(["wf-no-such-program-x1"], log)
    assert info.value.message == (
        "cannot run 'wf-no-such-program-x1': no such program on the step's PATH"
    )
    assert info.value.retryable is False


async def test_missing_program_path(log: StepLog, tmp_path: Path) -> None:
    with pytest.raises(NodeError, match=r"^cannot run '.*/nope': no such file$"):
        await run([str(tmp_path / "nope")], log)


async def test_program_not_executable(log: StepLog, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    with pytest.raises(NodeError) as info:
        await run([str(script)], log)
    assert (
        info.value.message == f"cannot run {str(script)!r}: permission denied (is it executable?)"
    )
    assert info.value.retryable is False


async def test_missing_working_directory(log: StepLog, tmp_path: Path) -> None:
    with pytest.raises(NodeError, match=r"the working directory '.*/gone' does not exist$"):
        await run(["true"], log, cwd=tmp_path / "gone")


async def test_empty_argv(log: StepLog) -> None:
    with pytest.raises(NodeError, match="empty command"):
        await run([], log)


async def test_heartbeats_while_running(log: StepLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_process, "HEARTBEAT_INTERVAL", 0.05)
    beats: list[tuple[object, ...]] = []
    code = await run_process(
        ["sleep", "0.5"],
        cwd=None,
        env=dict(os.environ),
        log=log,
        heartbeat=lambda *details: beats.append(details),
    )
    assert code == 0
    assert len(beats) >= 2


async def test_failing_heartbeat_stops_the_program(
    log: StepLog, monkeypatch: pytest.MonkeyPatch, cleanup_groups: list[int]
) -> None:
    monkeypatch.setattr(_process, "HEARTBEAT_INTERVAL", 0.05)

    def heartbeat(*details: object) -> None:
        if ready_pids(log) is not None:
            raise RuntimeError("heartbeat failed")

    run = run_process(
        ["bash", "-c", 'echo "ready $$"; sleep 300'],
        cwd=None,
        env=dict(os.environ),
        log=log,
        heartbeat=heartbeat,
    )
    with pytest.raises(RuntimeError, match="heartbeat failed"):
        await asyncio.wait_for(run, DEADLINE)
    pgid = pids_of(log)[0]
    cleanup_groups.append(pgid)
    await wait_group_gone(pgid)
    assert f"step failed: its processes (process group {pgid}) were terminated" in log_text(log)


async def test_background_process_holding_output_does_not_block(
    log: StepLog, monkeypatch: pytest.MonkeyPatch, cleanup_groups: list[int]
) -> None:
    monkeypatch.setattr(_process, "OUTPUT_DRAIN_TIMEOUT", 0.3)
    started = time.monotonic()
    code = await run(["bash", "-c", 'sleep 300 & echo "ready $$"'], log)
    cleanup_groups.append(pids_of(log)[0])
    assert code == 0
    assert time.monotonic() - started < DEADLINE
    assert "still hold its output open" in log_text(log)


async def test_cancel_kills_the_whole_group(log: StepLog, cleanup_groups: list[int]) -> None:
    task, pgid = await start_and_wait_ready(
        ["bash", "-c", 'sleep 300 & echo "ready $$ $!"; sleep 300'], log
    )
    cleanup_groups.append(pgid)
    grandchild = pids_of(log)[1]
    assert os.getpgid(grandchild) == pgid
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_group_gone(pgid)
    assert f"its processes (process group {pgid}) were terminated" in log_text(log)


async def test_sigterm_ignored_means_sigkill_after_grace(
    log: StepLog, monkeypatch: pytest.MonkeyPatch, cleanup_groups: list[int]
) -> None:
    monkeypatch.setattr(_process, "GRACE_PERIOD", 0.5)
    task, pgid = await start_and_wait_ready(
        ["bash", "-c", "trap '' TERM; sleep 300 & echo \"ready $$\"; sleep 300"], log
    )
    cleanup_groups.append(pgid)
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled >= 0.5
    await wait_group_gone(pgid)
    assert "were killed after ignoring SIGTERM for 0.5s" in log_text(log)


async def test_cancel_during_the_grace_period_kills_at_once(
    log: StepLog, monkeypatch: pytest.MonkeyPatch, cleanup_groups: list[int]
) -> None:
    monkeypatch.setattr(_process, "GRACE_PERIOD", 60.0)
    script = "trap 'echo got-term' TERM; echo \"ready $$\"; while :; do sleep 0.1; done"
    task, pgid = await start_and_wait_ready(["bash", "-c", script], log)
    cleanup_groups.append(pgid)
    task.cancel()
    await wait_until(lambda: "got-term" in log.tail(), "the program got SIGTERM")
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < DEADLINE
    await wait_group_gone(pgid)
    assert f"its processes (process group {pgid}) were killed" in log_text(log)


async def test_output_filter_sees_each_line_and_decides_what_is_logged(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def on_output(stream: str, line: str) -> str | None:
        seen.append((stream, line))
        if line.startswith("::"):
            return None
        return line.upper()

    log = StepLog(tmp_path / "log", SecretMasker())
    code = await run_process(
        ["sh", "-c", "echo hello; echo '::set-output name=x::1'; echo oops >&2"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        log=log,
        heartbeat=lambda *a: None,
        on_output=on_output,
    )
    log.close()
    assert code == 0
    assert ("stdout", "::set-output name=x::1") in seen
    assert ("stderr", "oops") in seen
    text = (tmp_path / "log").read_text()
    assert " out HELLO" in text
    assert " err OOPS" in text
    assert "set-output" not in text
