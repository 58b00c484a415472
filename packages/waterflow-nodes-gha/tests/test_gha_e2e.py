"""End to end: a workflow with GitHub Actions through a real Temporal dev server and an agent
that loads the installed node packages; post steps run after a failing step."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gha_testing import write_action
from temporalio.client import Client

from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent
from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.types import FAILURE, SKIPPED, SUCCESS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    server = DevServer(log_file=tmp_path_factory.mktemp("temporal") / "temporal.log")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def agent_queue(temporal: DevServer, tmp_path: Path) -> AsyncIterator[tuple[Client, str]]:
    """An in-process agent with the installed node packages, on a queue of its own."""
    client = await Client.connect(temporal.address, data_converter=data_converter)
    queue = f"gha-{uuid.uuid4().hex[:10]}"
    config = load_config(
        None,
        environ={},
        overrides={
            "temporal.address": temporal.address,
            "agent.id": f"agent-{queue}",
            "agent.task_queues": [queue],
            "agent.work_dir": str(tmp_path / "work"),
            "log.output_path": str(tmp_path / "logs"),
            "agent.shutdown_timeout": "5s",
            "agent.step_heartbeat_interval": "1s",
        },
    )
    agent = Agent(config, client=client)
    await agent.start()
    try:
        yield client, queue
    finally:
        await agent.shutdown()


JOURNAL_JS = """
const fs = require('fs');
const label = process.env.INPUT_LABEL;
const stage = process.argv[2];
fs.appendFileSync('journal.txt', `${stage} ${label} state=${process.env.STATE_token || ''}\\n`);
if (stage === 'main') fs.appendFileSync(process.env.GITHUB_STATE, `token=${label}-token\\n`);
"""


def journal_action(directory: Path, post_if: str) -> None:
    write_action(
        directory,
        f"""
        inputs: {{label: {{required: true}}}}
        runs:
          using: node20
          main: main.js
          post: post.js
          post-if: {post_if}
        """,
        {
            "journal.js": JOURNAL_JS,
            "main.js": "process.argv[2] = 'main'; require('./journal.js');",
            "post.js": "process.argv[2] = 'post'; require('./journal.js');",
        },
    )


async def test_post_steps_of_actions_run_after_a_failing_step(
    agent_queue: tuple[Client, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, queue = agent_queue
    workspace = tmp_path / "ws"
    journal_action(workspace / "actions" / "always", "always()")
    remote = tmp_path / "remote-checkout"
    journal_action(remote, "success()")
    monkeypatch.setenv("WATERFLOW_GHA_LOCAL_REPOSITORIES", f"octo/journal@v1={remote}")
    spec = parse_workflow(
        f"""
name: gha-post
jobs:
  build:
    runs-on: {queue}
    steps:
      - id: first
        uses: ./actions/always
        with: {{label: first}}
      - id: second
        uses: octo/journal@v1
        with: {{label: second}}
      - id: third
        uses: ./actions/always
        with: {{label: third}}
      - run: echo "the build breaks"; exit 1
      - run: echo "not reached"
""",
        file="gha-post.yaml",
    )
    handle = await start_run(client, spec, workspace=str(workspace))
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == FAILURE
    assert (workspace / "journal.txt").read_text().splitlines() == [
        "main first state=",
        "main second state=",
        "main third state=",
        "post third state=third-token",
        "post first state=first-token",
    ]
    steps = {s.key: s for s in result.jobs["build"].steps}
    assert steps["post-third"].conclusion == SUCCESS
    assert steps["post-second"].conclusion == SKIPPED  # post-if: success() after a failure
    assert steps["post-first"].conclusion == SUCCESS
    assert steps["post-first"].name == "Post ./actions/always"
