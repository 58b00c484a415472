"""Fixtures: a real server on loopback (grpc.aio, a real SQLite file), clients with real
tokens, the agent's real ServerLink, and the process log as it is written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from loguru import logger
from server_testing import AGENT_TOKEN, LogCapture, server_config

from waterflow._proto.v1 import agent_pb2_grpc, user_pb2_grpc
from waterflow._registry import NodeRegistry
from waterflow.agent.config import ServerSettings
from waterflow.agent.reporting import ServerLink
from waterflow_server.server import WaterflowServer

# A `waterflow up` the developer left running must not take the runs of the tests'
# `waterflow run` commands: the tests' own service, if any, lives here.
os.environ["WATERFLOW_UP_DIR"] = tempfile.mkdtemp(prefix="waterflow-up-")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[WaterflowServer]:
    s = WaterflowServer(server_config(tmp_path))
    await s.start()
    try:
        yield s
    finally:
        await s.stop(grace=0.5)


@pytest.fixture
async def user(server: WaterflowServer) -> AsyncIterator[user_pb2_grpc.UserServiceAsyncStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield user_pb2_grpc.UserServiceStub(channel)


@pytest.fixture
async def agent_stub(
    server: WaterflowServer,
) -> AsyncIterator[agent_pb2_grpc.AgentServiceAsyncStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield agent_pb2_grpc.AgentServiceStub(channel)


@pytest.fixture
async def link(server: WaterflowServer) -> AsyncIterator[Callable[..., Any]]:
    """Start ServerLinks (the agent's real reporter) against the server; stopped at the end."""
    started: list[ServerLink] = []

    def make(
        agent_id: str,
        queues: list[str],
        registry: NodeRegistry,
        *,
        token: str = AGENT_TOKEN,
        address: str | None = None,
        **kw: Any,
    ) -> ServerLink:
        settings = ServerSettings(address=address or server.address, token=token)
        made = ServerLink(
            settings, agent_id=agent_id, task_queues=queues, registry=lambda: registry, **kw
        )
        started.append(made)
        return made

    yield make
    for made in started:
        await made.stop(timeout=1)


@pytest.fixture
def log_lines() -> Iterator[LogCapture]:
    capture = LogCapture()
    handler = logger.add(capture.sink, level="DEBUG")
    yield capture
    logger.remove(handler)
