"""`waterflow up` and `waterflow down`: the embedded default, kept running between runs.

`waterflow up` starts what `waterflow run` otherwise starts for each run (a Temporal dev server
and an agent in this process) and listens on a Unix socket. While it runs, `waterflow run
FILE` hands the run to it (`_up_client`) and prints what it sends back: the command then costs
a Python start and a socket, and the run starts on a dev server, an agent and node plugins
that are already up. Steps run with the environment `waterflow up` was started with, as they
would on any agent; the workspace is the run command's current directory (or --workspace).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO, cast

from loguru import logger

from waterflow.agent.worker import Agent, AgentError
from waterflow.devserver import DevServer, DevServerError
from waterflow.engine.client import start_run
from waterflow_server import _up_client
from waterflow_server._local import LocalError, LocalOptions, github_context
from waterflow_server._render import Renderer
from waterflow_server._run import (
    RunError,
    check_workflow,
    embedded_queues,
    follow_run,
    report,
    start_embedded_agent,
)
from waterflow_server._up_client import PROTOCOL, UpError, installation, socket_path, up_dir


class _Output:
    """A text stream whose writes reach the run's command as `{key: text}` lines."""

    def __init__(self, writer: asyncio.StreamWriter, key: str, tty: bool) -> None:
        self.writer = writer
        self.key = key
        self.tty = tty

    def write(self, text: str) -> int:
        if not self.writer.is_closing():
            self.writer.write(json.dumps({self.key: text}).encode() + b"\n")
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self.tty


def _answer(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(message).encode() + b"\n")


class UpService:
    """The dev server, the agent and the socket of `waterflow up`."""

    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self.directory = Path(up_dir())
        self.socket = Path(socket_path())
        self.server: DevServer | None = None
        self.agent: Agent | None = None
        self._listener: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._stoppers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        problem = _up_client.socket_path_problem()
        if problem:
            raise UpError(problem)
        running = _up_client.already_running()
        if running:
            raise UpError(running)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()  # left by a service that is gone (nothing answered)
        self.server = DevServer(namespace=self.namespace, log_file=self.directory / "temporal.log")
        await self.server.start()
        self.agent = await start_embedded_agent(self.server, self.namespace, [])
        self._listener = await asyncio.start_unix_server(self._handle, path=os.fspath(self.socket))
        os.chmod(self.socket, 0o600)  # runs start steps as this user: nobody else may ask
        logger.info(
            "waterflow up is ready",
            pid=os.getpid(),
            socket=str(self.socket),
            temporal=self.server.address,
        )

    async def serve(self, on_ready: Any = None) -> int:
        """Start, serve until SIGINT, SIGTERM or `waterflow down`, stop. Returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        try:
            await self.start()
            assert self.agent is not None
            assert self.server is not None
            if on_ready is not None:
                on_ready(self.server.address)
            agent_failed = asyncio.ensure_future(self.agent.wait())
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([agent_failed, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if agent_failed.done():
                agent_failed.result()  # raises the worker's failure as AgentError
            agent_failed.cancel()
            return 0
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._listener is not None:  # else the socket is another service's, or none
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
        try:
            if self.agent is not None:
                await self.agent.shutdown()
        finally:
            if self.server is not None:
                self.server.stop()
            for writer in self._stoppers:  # `waterflow down` returns once this is closed
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            message = json.loads(await reader.readline() or b"{}")
            op = message.get("op")
            if op == "run" and message.get("protocol") != PROTOCOL:
                _answer(
                    writer,
                    {
                        "elsewhere": f"waterflow up (pid {os.getpid()}) is of another version: "
                        "this command runs the workflow itself; `waterflow down` stops it",
                        "pid": os.getpid(),
                    },
                )
            elif op == "ping":
                assert self.server is not None
                _answer(writer, {"pid": os.getpid(), "temporal": self.server.address})
            elif op == "stop":
                _answer(writer, {"pid": os.getpid()})
                await writer.drain()
                self._stoppers.append(writer)
                self._stop.set()
                return  # closed once everything has stopped
            elif op == "run":
                await self._run(message, reader, writer)
            else:
                _answer(writer, {"err": f"error: waterflow up: unknown request {op!r}\n"})
                _answer(writer, {"exit": 2})
            await writer.drain()
        except (ConnectionError, ValueError) as exc:
            logger.warning("A waterflow up request failed", error=str(exc))
        writer.close()

    async def _run(
        self, message: dict[str, Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if message.get("installation") != installation():
            _answer(
                writer,
                {
                    "elsewhere": f"waterflow up (pid {os.getpid()}) runs from another "
                    "installation: this command runs the workflow itself"
                },
            )
            return
        if message.get("namespace", self.namespace) != self.namespace:
            _answer(
                writer,
                {
                    "elsewhere": f"waterflow up serves namespace {self.namespace!r}: this "
                    "command runs the workflow itself"
                },
            )
            return
        tty = bool(message.get("tty"))
        as_json = bool(message.get("as_json"))
        renderer = Renderer(
            quiet=as_json,
            stream=cast(TextIO, _Output(writer, "out", tty)),
            err=cast(TextIO, _Output(writer, "err", tty)),
        )
        cancel = asyncio.Event()

        async def read_cancel() -> None:
            while line := await reader.readline():
                if json.loads(line).get("op") == "cancel":
                    cancel.set()
            # The command is gone (twice Ctrl-C): the run goes on, as it would on a fleet.

        listening = asyncio.ensure_future(read_cancel())
        started = time.monotonic()
        try:
            code = await self._run_checked(message, renderer, cancel, started, as_json)
        except (RunError, LocalError, DevServerError, AgentError) as exc:
            renderer.err.write(f"error: {exc}\n")
            code = 1
        except Exception as exc:  # one run's failure is not the service's
            logger.exception("A run through waterflow up failed")
            renderer.err.write(
                f"error: waterflow up could not run it: {exc!r}; its log: "
                f"{self.directory / 'up.log'}\n"
            )
            code = 1
        finally:
            listening.cancel()
        _answer(writer, {"exit": code})

    async def _run_checked(
        self,
        message: dict[str, Any],
        renderer: Renderer,
        cancel: asyncio.Event,
        started: float,
        as_json: bool,
    ) -> int:
        agent = self.agent
        assert agent is not None
        assert agent.client is not None
        assert agent.registry is not None
        cwd = str(message["cwd"])

        def at(path: str | None) -> str | None:
            return None if path is None else os.path.join(cwd, path)

        file = str(message["file"])
        inputs = tuple(str(pair) for pair in message.get("inputs", ()))
        local = LocalOptions(
            event=message.get("event"),
            event_path=at(message.get("event_path")),
            jobs=tuple(message.get("jobs", ())),
        )

        def check(err: Any) -> tuple[Any, dict[str, Any]] | None:
            assert agent.registry is not None
            registry = agent.registry
            return check_workflow(
                file, inputs, jobs=local.jobs, nodes=registry.metadata, err=err, path=at(file)
            )

        checked = check(io.StringIO())
        if checked is None and agent.reloader is not None:
            # Perhaps a node package was installed since: look again before saying no.
            await agent.reload(trigger="waterflow run")
            checked = check(renderer.err)
        if checked is None:
            return 1
        spec, values = checked
        added = await agent.serve_queues(embedded_queues(spec, values))
        if added:
            logger.info("Now serving task queues", task_queues=added)
        workspace = str(Path(at(message.get("workspace")) or cwd).resolve())
        github = await asyncio.to_thread(github_context, workspace, local)
        handle = await start_run(
            agent.client, spec, inputs=values, github=github, workspace=workspace
        )
        renderer.started(spec, handle.id)
        result = await follow_run(agent.client, handle, renderer, cancel)
        return report(result, renderer, as_json=as_json, elapsed=time.monotonic() - started)


def up_command(*, namespace: str, ready_fd: int | None) -> int:
    """`waterflow up` in the foreground: serve in this process until stopped."""
    from waterflow import _logging

    _logging.setup_logging(level="info", fmt="console", stream=sys.stderr)

    def ready(address: str) -> None:
        line = f"waterflow up: ready (pid {os.getpid()}, Temporal at {address})\n"
        if ready_fd is not None:
            os.write(ready_fd, line.encode())
            os.close(ready_fd)
        else:
            sys.stderr.write(
                line + "waterflow run now runs here; Ctrl-C or `waterflow down` stops it\n"
            )

    try:
        return asyncio.run(UpService(namespace).serve(ready))
    except (UpError, RunError, DevServerError, AgentError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
