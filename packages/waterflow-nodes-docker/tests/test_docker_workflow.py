"""The docker nodes in real workflow runs: a Temporal dev server, an in-process agent with this
plugin loaded through its hooks, and the test engine and registries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from docker_testing import DockerTestEnv, setting, wait_until, write
from temporalio.client import Client

import waterflow_nodes_docker
from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent
from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import RunResult
from waterflow.testing import TestRegistry

pytestmark = pytest.mark.e2e

SHIP = """\
name: ship
env:
  DOCKER_HOST: ENGINE
jobs:
  ship:
    runs-on: QUEUE
    outputs:
      greeting: ${{ steps.check.outputs.greeting }}
    steps:
      - id: build
        uses: docker/build
        with:
          tags: IMAGE
          build-args: {GREETING: hello from the workflow}
      - id: push
        uses: docker/push
        with:
          image: ${{ steps.build.outputs.image-id }}
          tags: ${{ steps.build.outputs.tags }}
          username: ${{ secrets.REGISTRY_USER }}
          password: ${{ secrets.REGISTRY_PASSWORD }}
      - id: check
        uses: docker/run
        with:
          image: IMAGE
          args:
            - sh
            - -c
            - cp /greeting greeting.txt; echo "greeting=$(cat /greeting)" >> "$GITHUB_OUTPUT"
"""

TIMEOUT = """\
name: stuck
env:
  DOCKER_HOST: ENGINE
jobs:
  stuck:
    runs-on: QUEUE
    steps:
      - id: forever
        uses: docker/run
        timeout: 3s
        with:
          image: waterflow-busybox:latest
          command: sh -c 'echo started; sleep 300'
"""


class Harness:
    def __init__(self, client: Client, queue: str, registry: TestRegistry, tmp: Path) -> None:
        self.client = client
        self.queue = queue
        self.registry = registry
        self.tmp = tmp

    async def run(self, text: str, workspace: Path, **replace: str) -> RunResult:
        for key, value in {"QUEUE": self.queue, **replace}.items():
            text = text.replace(key, value)
        spec = parse_workflow(text, "test.yaml", nodes=self.registry.metadata())
        run_id = f"docker-e2e-{uuid.uuid4().hex[:10]}"
        handle = await start_run(self.client, spec, workspace=str(workspace), run_id=run_id)
        result: RunResult = await asyncio.wait_for(handle.result(), 120)
        return result


@pytest.fixture
async def harness(
    temporal: DevServer, client: Client, tmp_path: Path, docker_env: DockerTestEnv
) -> AsyncIterator[Harness]:
    """An agent on a fresh queue with the docker plugin, and the registry's credentials as the
    agent's secrets."""
    user = setting("WATERFLOW_TEST_AUTH_REGISTRY_USER") or ""
    password = setting("WATERFLOW_TEST_AUTH_REGISTRY_PASSWORD") or ""
    secrets = tmp_path / "secrets"
    write(secrets, {"REGISTRY_USER": user, "REGISTRY_PASSWORD": password})
    registry = TestRegistry()
    registry.add_plugin(waterflow_nodes_docker)
    queue = f"q-{uuid.uuid4().hex[:12]}"
    settings: dict[str, Any] = {
        "temporal.address": temporal.address,
        "agent.id": f"docker-{queue}",
        "agent.task_queues": [queue],
        "agent.work_dir": str(tmp_path / "work"),
        "agent.secrets_dir": str(secrets),
        "log.output_path": str(tmp_path / "logs"),
        "agent.shutdown_timeout": "5s",
        "agent.step_heartbeat_interval": "1s",
    }
    agent = Agent(
        load_config(None, environ={}, overrides=settings), registry=registry, client=client
    )
    await agent.start()
    try:
        yield Harness(client, queue, registry, tmp_path)
    finally:
        await agent.shutdown()


async def test_build_push_and_run_in_one_job(
    harness: Harness, docker_env: DockerTestEnv, tmp_path: Path
) -> None:
    registry = docker_env.registry("WATERFLOW_TEST_AUTH_REGISTRY")
    image = f"{registry}/waterflow-test/ship-{uuid.uuid4().hex[:8]}:1"
    workspace = tmp_path / "ws"
    write(
        workspace, {"Dockerfile": 'FROM alpine\nARG GREETING\nRUN echo "$GREETING" > /greeting\n'}
    )
    result = await harness.run(SHIP, workspace, ENGINE=docker_env.host, IMAGE=image)
    job = result.jobs["ship"]
    assert result.status == "success", [(s.key, s.error, s.log_tail) for s in job.steps]
    build, push, check = job.steps
    assert build.outputs["image-id"].startswith("sha256:")
    assert build.outputs["tags"] == image
    digest = push.outputs["digest"]
    assert digest.startswith("sha256:")
    assert check.outputs == {"exit-code": "0", "greeting": "hello from the workflow"}
    assert job.outputs == {"greeting": "hello from the workflow"}
    assert (workspace / "greeting.txt").read_text() == "hello from the workflow\n"
    # What was pushed is what was built: pull it back by digest.
    password = setting("WATERFLOW_TEST_AUTH_REGISTRY_PASSWORD")
    user = setting("WATERFLOW_TEST_AUTH_REGISTRY_USER")
    assert password
    repository = image.rsplit(":", 1)[0]
    docker_env.api.remove_image(image)
    auth = {"username": user, "password": password}
    docker_env.api.pull(f"{repository}@{digest}", auth_config=auth)
    assert docker_env.api.inspect_image(f"{repository}@{digest}")["Id"] == build.outputs["image-id"]
    docker_env.api.remove_image(build.outputs["image-id"], force=True)
    # The password never reached a log; no container of the run is left.
    for report in job.steps:
        assert password not in Path(report.log_path).read_text()
    assert (
        docker_env.api.containers(all=True, filters={"label": f"io.waterflow.run={result.run_id}"})
        == []
    )


async def test_step_timeout_stops_and_removes_the_container(
    harness: Harness, docker_env: DockerTestEnv, tmp_path: Path
) -> None:
    result = await harness.run(TIMEOUT, tmp_path / "ws", ENGINE=docker_env.host)
    assert result.status == "failure"
    (report,) = result.jobs["stuck"].steps
    # The step's own deadline fires just before Temporal's; on a busy machine Temporal's may
    # be the one that ends the step. Either way the container goes, and the log says so.
    assert report.error is not None
    assert "timed out" in report.error
    label = {"label": f"io.waterflow.run={result.run_id}"}
    await wait_until(
        lambda: docker_env.api.containers(all=True, filters=label) == [],
        "no container of the run is left",
    )
    (log,) = (tmp_path / "logs" / result.run_id).rglob("*.log")
    await wait_until(lambda: " stopped and removed" in log.read_text(), "the log tells")
    text = log.read_text()
    assert " out started\n" in text
    assert "step cancelled: stopping container waterflow-" in text
