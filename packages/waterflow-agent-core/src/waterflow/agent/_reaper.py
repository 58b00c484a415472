"""Stops the step processes an agent leaves behind when it ends, even by SIGKILL.

A step's program runs in its own session, so nothing ties it to the agent: were the agent
killed, its steps would run on, unseen, beside the new attempts Temporal starts elsewhere. So
the agent starts this module as a small process of its own (standard library only, run as a
script: it imports nothing of Waterflow) and keeps the write end of a pipe whose read end is
this process's stdin. Every step the agent runs gets `WATERFLOW_AGENT_INSTANCE=<token>` in its
environment, and the processes it starts inherit it. When the agent ends, however it ends, the
kernel closes its end of the pipe; this process reads end-of-file, finds every process whose
environment carries the token, sends SIGTERM to each (and to its process group when it leads
one), SIGKILL to whatever is left after `GRACE_PERIOD` seconds, and exits.

What it cannot reach: a process that cleared its environment and left its step's process group,
and containers (they belong to the container engine, not to the step).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

ENV_NAME = "WATERFLOW_AGENT_INSTANCE"
"""The variable that marks every process started for the agent's steps."""

GRACE_PERIOD = 5.0
"""Seconds between SIGTERM and SIGKILL for the processes left behind."""

_POLL = 0.1
_ROUNDS = 3  # processes may still fork while they are being stopped: look again


class Reaper:
    """The agent's side: starts the reaper process and tells it, by ending, to clean up."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.token = f"{agent_id}:{os.getpid()}:{secrets.token_hex(8)}"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_end: int | None = None

    def step_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (the agent's environment by default) with the variable that marks steps."""
        env = dict(os.environ if base is None else base)
        env[ENV_NAME] = self.token
        return env

    def start(self) -> None:
        read_end, write_end = os.pipe()  # neither end is inherited by step processes
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", os.path.abspath(__file__), self.token, self.agent_id],
                stdin=read_end,
                start_new_session=True,  # a signal to the agent's process group spares it
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._write_end = write_end

    def close(self, timeout: float = GRACE_PERIOD + 5.0) -> None:
        """Let the reaper clean up now (what it does when the agent dies) and wait for it."""
        if self._write_end is not None:
            os.close(self._write_end)
            self._write_end = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)


def _marked(needle: bytes) -> Iterator[tuple[int, int]]:
    """(pid, process group) of each live process whose environment holds `needle`."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue  # gone, or not ours to read
        if needle not in environ.split(b"\0"):
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 3 or fields[0] in ("Z", "X"):
            continue  # a zombie waits only for its parent
        yield int(entry), int(fields[2])


def _signal(found: list[tuple[int, int]], signum: signal.Signals) -> None:
    pids = {pid for pid, _ in found}
    for pid, group in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
        if group == pid or group in pids:  # a group led by a marked process: all of it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)


def reap(token: str, grace: float = GRACE_PERIOD) -> tuple[list[int], list[int]]:
    """Stop every process marked with `token`; return (pids found, pids that needed SIGKILL)."""
    needle = f"{ENV_NAME}={token}".encode()
    found: dict[int, int] = {}
    killed: set[int] = set()
    for _ in range(_ROUNDS):
        current = list(_marked(needle))
        if not current:
            break
        found.update(current)
        _signal(current, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while current and time.monotonic() < deadline:
            time.sleep(_POLL)
            current = list(_marked(needle))
        if current:
            killed.update(pid for pid, _ in current)
            _signal(current, signal.SIGKILL)
    return sorted(found), sorted(killed)


def _log(level: str, message: str, **fields: object) -> None:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    line = {"time": stamp, "level": level, "message": message, **fields}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    token, agent_id = argv[1], argv[2]
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    while os.read(0, 4096):  # the agent never writes: this waits for it to end
        pass
    found, killed = reap(token)
    if found:
        _log(
            "warning",
            "Stopped the step processes the agent left behind",
            agent_id=agent_id,
            pids=found,
            killed_after_grace=killed,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
