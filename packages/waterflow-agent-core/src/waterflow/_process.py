"""Running a step's program: output streamed line by line into the step log, and a clean kill.

The program runs in its own session, so it and everything it starts share one process group.
When the step is cancelled or times out, the awaiting task gets `asyncio.CancelledError`; the
whole group then gets SIGTERM, and SIGKILL after `GRACE_PERIOD` seconds if anything is left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from waterflow._node import NodeError

if TYPE_CHECKING:
    from waterflow._steplog import StepLog

GRACE_PERIOD = 10.0
"""Seconds between SIGTERM and SIGKILL when a step is cancelled."""

KILL_WAIT = 5.0
"""Seconds to wait, after SIGKILL, for the kernel to take the processes away."""

OUTPUT_DRAIN_TIMEOUT = 5.0
"""Seconds to keep reading output after the program exited while a process it started in
the background still holds stdout or stderr open. Output after that is not captured."""

HEARTBEAT_INTERVAL = 5.0
"""Seconds between heartbeats while the program runs."""

MAX_LINE_BYTES = 64 * 1024
"""A longer line is split into pieces of at most this many bytes."""

_POLL = 0.05


OutputFilter = Callable[[str, str], "str | None"]
"""(stream, line) -> the line to log, or None to drop it."""


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    log: StepLog,
    heartbeat: Callable[..., None],
    on_output: OutputFilter | None = None,
) -> int:
    """Run `argv` to completion; return its exit code (128+N when killed by signal N).

    stdin is /dev/null; stdout and stderr lines go to `log.stdout` and `log.stderr` as they
    come. `heartbeat()` is called every `HEARTBEAT_INTERVAL` seconds while the program runs.
    A program that cannot be started raises `NodeError(retryable=False)`. On cancellation (or
    any other exception while waiting) the process group is terminated, then the exception
    propagates. `on_output(stream, line)`, when given, sees every line first ("stdout" or
    "stderr") and returns the line to log, or None to drop it (workflow commands, say).
    """
    if not argv:
        raise NodeError("cannot run an empty command", retryable=False)
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _OutputProtocol(log, on_output),
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise NodeError(
            f"cannot run {argv[0]!r}: {_start_failure(exc, argv[0], cwd)}", retryable=False
        ) from None
    pgid = transport.get_pid()
    try:
        while not await _wait_event(protocol.exited, HEARTBEAT_INTERVAL):
            heartbeat()
        if not await _wait_event(protocol.closed, OUTPUT_DRAIN_TIMEOUT):
            log.info(
                "the step's program exited but processes it started in the background still "
                "hold its output open; their further output is not captured (redirect it to a "
                "file to keep it)"
            )
    except BaseException as exc:  # cancelled, or anything else: leave no process behind
        why = "step cancelled" if isinstance(exc, asyncio.CancelledError) else "step failed"
        await _terminate_group(pgid, log, why)
        await _wait_event(protocol.exited, KILL_WAIT)  # let asyncio reap the leader
        raise
    finally:
        protocol.detach()
        transport.close()
    returncode = transport.get_returncode()
    assert returncode is not None  # the exited event is set only with a return code
    return 128 - returncode if returncode < 0 else returncode


def _start_failure(exc: OSError, program: str, cwd: str | os.PathLike[str] | None) -> str:
    filename = exc.filename
    if isinstance(exc, FileNotFoundError):
        if cwd is not None and filename is not None and os.fspath(filename) == os.fspath(cwd):
            return f"the working directory {os.fspath(cwd)!r} does not exist"
        if os.sep in program:
            return "no such file"
        return "no such program on the step's PATH"
    if isinstance(exc, PermissionError):
        return "permission denied (is it executable?)"
    return exc.strerror or type(exc).__name__


async def _wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; return whether it is set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


class _LineSplitter:
    """Turns a byte stream into decoded lines; splits lines longer than MAX_LINE_BYTES."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while True:
            newline = buffer.find(b"\n", start, start + MAX_LINE_BYTES + 1)
            if newline >= 0:
                self._line(buffer[start:newline])
                start = newline + 1
            elif len(buffer) - start > MAX_LINE_BYTES:
                cut = _char_boundary(buffer, start + MAX_LINE_BYTES, start)
                self._line(buffer[start:cut])
                start = cut
            else:
                break
        del buffer[:start]

    def flush(self) -> None:
        if self._buffer:
            self._line(self._buffer)
            self._buffer.clear()

    def _line(self, raw: bytes | bytearray) -> None:
        text = raw.decode("utf-8", errors="replace")
        self._emit(text[:-1] if text.endswith("\r") else text)


def _char_boundary(buffer: bytearray, cut: int, start: int) -> int:
    """Move `cut` back (at most 3 bytes) so it does not fall inside a UTF-8 sequence."""
    for candidate in range(cut, max(start + 1, cut - 3) - 1, -1):
        if buffer[candidate] & 0xC0 != 0x80:  # not a continuation byte
            return candidate
    return cut


class _OutputProtocol(asyncio.SubprocessProtocol):
    """Feeds the program's stdout and stderr to the step log; notes exit and end of output."""

    def __init__(self, log: StepLog, on_output: OutputFilter | None = None) -> None:
        def sink(stream: str, write: Callable[[str], None]) -> Callable[[str], None]:
            if on_output is None:
                return write

            def filtered(line: str) -> None:
                kept = on_output(stream, line)
                if kept is not None:
                    write(kept)

            return filtered

        self._splitters = {
            1: _LineSplitter(sink("stdout", log.stdout)),
            2: _LineSplitter(sink("stderr", log.stderr)),
        }
        self._detached = False
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if not self._detached:
            self._splitters[fd].feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self._detached:
            self._splitters[fd].flush()

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def detach(self) -> None:
        """Log what is buffered and ignore output from here on."""
        if not self._detached:
            for splitter in self._splitters.values():
                splitter.flush()
            self._detached = True


async def _terminate_group(pgid: int, log: StepLog, why: str) -> None:
    """SIGTERM the group, SIGKILL it after the grace period, and wait until it is gone."""
    grace = GRACE_PERIOD
    try:
        _signal_group(pgid, signal.SIGTERM)
        if await _wait_group_gone(pgid, grace):
            log.info(f"{why}: its processes (process group {pgid}) were terminated")
            return
        _signal_group(pgid, signal.SIGKILL)
        gone = await _wait_group_gone(pgid, KILL_WAIT)
    except asyncio.CancelledError:  # cancelled again while cleaning up: no more patience
        _signal_group(pgid, signal.SIGKILL)
        log.info(f"{why}: its processes (process group {pgid}) were killed")
        raise
    if gone:
        log.info(
            f"{why}: its processes (process group {pgid}) were killed after ignoring "
            f"SIGTERM for {grace:g}s"
        )
    else:
        log.info(
            f"{why}: some of its processes (process group {pgid}) survived SIGKILL "
            f"for {KILL_WAIT:g}s (stuck in the kernel?)"
        )


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # gone already, or nothing we may signal; the wait that follows finds out


async def _wait_group_gone(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs. Zombies (dead, not yet reaped) do not."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no procfs: a zombie cannot be told apart; count it as alive
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
