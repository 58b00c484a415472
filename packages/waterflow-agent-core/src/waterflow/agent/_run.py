"""The agent process: configuration, logging, signals, exit codes, its pidfile.

SIGINT and SIGTERM stop the agent gracefully; SIGHUP makes it rescan its plugins (installed
distributions and the plugin directory) without stopping anything.

While it runs, the agent holds an exclusive lock on `<agent.work_dir>/agent.pid`, which holds
its pid and id: `waterflow-agent plugins reload` on the same host reads it and sends SIGHUP. The
lock tells a live agent from a file left behind (the kernel drops it when the process ends),
so a recycled pid is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from waterflow import _logging
from waterflow.agent.config import (
    ConfigError,
    ignored_environment,
    load_config,
    redacted,
    validate_for_run,
)
from waterflow.agent.worker import EXIT_ERROR, Agent, AgentError
from waterflow.secrets import SecretsError

PIDFILE = "agent.pid"


class PidFile:
    """`<work_dir>/agent.pid`, locked for as long as this process holds it."""

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir).expanduser() / PIDFILE
        self._fd: int | None = None

    def acquire(self, agent_id: str) -> bool:
        """Write our pid; False (and a warning) when another live agent holds the file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise AgentError(
                f"cannot write the pidfile {self.path}: {exc.strerror}; check agent.work_dir"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _read_pidfile(fd)
            os.close(fd)
            logger.warning(
                "Another agent holds the pidfile of this work dir; `waterflow-agent plugins "
                "reload` reaches that one. Give each agent its own agent.work_dir",
                pidfile=str(self.path),
                other_pid=other.get("pid"),
                other_agent_id=other.get("agent_id"),
            )
            return False
        os.fchmod(fd, 0o644)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "agent_id": agent_id}).encode() + b"\n")
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)
        os.close(self._fd)  # drops the lock
        self._fd = None


def _read_pidfile(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        data = json.loads(os.read(fd, 4096) or b"null")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def signal_agent(work_dir: Path, signum: int = signal.SIGHUP) -> str:
    """Send `signum` to the agent running with `work_dir`; return what was done, in one line.

    Raises AgentError (one line) when no agent runs there or it cannot be signalled. The pidfile
    must be trustworthy (owned by root or by our user, not writable by group or others) unless
    it is owned by the same user as the process it names; either way nobody can make us signal
    someone else's process.
    """
    path = Path(work_dir).expanduser() / PIDFILE
    name = signal.Signals(signum).name
    nobody = f"no agent is running with work dir {path.parent}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AgentError(
            f"{nobody} (no {path}); point this command at the agent's configuration "
            "(--config, or WATERFLOW_AGENT_WORK_DIR)"
        ) from None
    except OSError as exc:
        raise AgentError(f"cannot read {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise AgentError(
                f"refusing to trust {path}: it is writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o})"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # an agent holds it: alive
        else:
            left = _read_pidfile(fd).get("pid", "?")
            raise AgentError(f"{nobody}: {path} is left from pid {left}, which has stopped")
        data = _read_pidfile(fd)
    finally:
        os.close(fd)
    pid, agent_id = data.get("pid"), data.get("agent_id", "?")
    if not isinstance(pid, int) or pid <= 0:
        raise AgentError(f"{path} holds no pid; the agent may be starting: try again")
    if st.st_uid not in (0, os.geteuid()):
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            owner = None
        if owner != st.st_uid:
            raise AgentError(
                f"refusing to signal pid {pid}: {path} belongs to uid {st.st_uid}, "
                f"the process to {'nobody' if owner is None else f'uid {owner}'}"
            )
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        raise AgentError(f"agent {agent_id!r} (pid {pid}) has just stopped") from None
    except PermissionError:
        raise AgentError(
            f"cannot signal agent {agent_id!r} (pid {pid}): permission denied; "
            "run this as the agent's user or root"
        ) from None
    return f"sent {name} to agent {agent_id!r} (pid {pid}, work dir {path.parent})"


class _Hangups:
    """SIGHUP: a plugin rescan once the agent has started (one asked for earlier waits)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.ready = False
        self.asked = False
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()

    def on_signal(self) -> None:
        logger.info("Reload signal received", signal="SIGHUP")
        if self.closed:
            return
        if not self.ready:
            self.asked = True
            return
        self._spawn()

    def start(self) -> None:
        self.ready = True
        if self.asked:
            self._spawn()

    async def close(self) -> None:
        self.closed = True
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _spawn(self) -> None:
        task = asyncio.create_task(self._reload())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reload(self) -> None:
        try:
            await self.agent.reload(trigger="signal")
        except Exception as exc:  # a bug of ours must not end the agent
            logger.opt(exception=exc).error("Plugin reload failed: {}", str(exc))


async def _serve(agent: Agent) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    hangups = _Hangups(agent)

    def on_signal(signum: int) -> None:
        if stop.is_set():
            return
        logger.info("Shutdown signal received", signal=signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    # Before the pidfile exists: a SIGHUP must never find the default action (exit).
    loop.add_signal_handler(signal.SIGHUP, hangups.on_signal)
    pidfile = PidFile(agent.config.agent.work_dir)
    pidfile.acquire(agent.agent_id)
    try:
        await agent.start()
        hangups.start()
        waiter = asyncio.create_task(agent.wait())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        await hangups.close()
        if waiter in done:
            stopper.cancel()
            waiter.result()  # raises the worker's failure
            return EXIT_ERROR
        code = await agent.shutdown()
        with contextlib.suppress(AgentError):
            await waiter
        return code
    finally:
        pidfile.release()


def run_agent(config_file: str | None, overrides: Mapping[str, Any]) -> int:
    try:
        config = load_config(config_file, overrides=overrides)
        validate_for_run(config)
    except ConfigError as exc:
        # Logging is not configured yet: the error goes out as one plain line.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _logging.setup_logging(level=config.log.level, fmt=config.log.format)
    _logging.intercept_stdlib_logging()
    logger.info("Configuration loaded", **redacted(config))
    for line in ignored_environment():
        logger.warning("{}", line)
    try:
        return asyncio.run(_serve(Agent(config)))
    except (AgentError, SecretsError) as exc:
        logger.error("Agent stopped: {}", str(exc))
        return EXIT_ERROR
