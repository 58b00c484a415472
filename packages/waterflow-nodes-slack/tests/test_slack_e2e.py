"""A workflow with Slack steps on a real Temporal dev server, run by a real in-process agent that
loads the nodes through their entry point and reads the secrets from its secrets directory."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_fake import TOKEN, WEBHOOK_PATH, FakeSlack, Reply
from temporalio.client import Client

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent
from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow, validate_workflow
from waterflow.engine.client import start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.types import SUCCESS, RunResult

WORKFLOW = """
name: slack-e2e
jobs:
  announce:
    runs-on: QUEUE
    steps:
      - id: post
        uses: slack/post
        with:
          token: ${{ secrets.SLACK_BOT_TOKEN }}
          api_url: API_URL
          channel: "#general"
          text: Deploying v1.2
      - id: reply
        uses: slack/post
        with:
          token: ${{ secrets.SLACK_BOT_TOKEN }}
          api_url: API_URL
          channel: ${{ steps.post.outputs.channel }}
          thread_ts: ${{ steps.post.outputs.ts }}
          text: Deployed v1.2
      - id: notify
        uses: slack/notify
        timeout: 30s
        with:
          webhook_url: ${{ secrets.SLACK_WEBHOOK }}
          message: "v1.2 is out, see thread ${{ steps.reply.outputs.thread_ts }}"
"""


@pytest.fixture(scope="module")
async def temporal(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    server = DevServer(log_file=tmp_path_factory.mktemp("temporal") / "temporal.log")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(temporal: DevServer) -> Client:
    return await Client.connect(temporal.address, data_converter=data_converter)


@pytest.fixture
def secrets_dir(tmp_path: Path, slack: FakeSlack) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    (directory / "SLACK_BOT_TOKEN").write_text(TOKEN + "\n")
    (directory / "SLACK_WEBHOOK").write_text(slack.webhook_url + "\n")
    return directory


async def test_post_reply_in_thread_and_notify_through_a_rate_limit(
    temporal: DevServer, client: Client, slack: FakeSlack, secrets_dir: Path, tmp_path: Path
) -> None:
    queue = f"slack-{uuid.uuid4().hex[:10]}"
    spec = parse_workflow(
        WORKFLOW.replace("QUEUE", queue).replace("API_URL", slack.api_url), file="slack.yaml"
    )
    installed = NodeRegistry()
    load_installed_plugins(installed)
    assert [str(p) for p in validate_workflow(spec, installed.metadata())] == []
    slack.script(WEBHOOK_PATH, Reply(429, "rate_limited", headers={"Retry-After": "1"}))

    config = load_config(
        None,
        environ={},
        overrides={
            "temporal.address": temporal.address,
            "agent.id": f"agent-{queue}",
            "agent.task_queues": [queue],
            "agent.work_dir": str(tmp_path / "work"),
            "agent.plugin_dir": str(tmp_path / "plugins"),
            "agent.secrets_dir": str(secrets_dir),
            "agent.shutdown_timeout": "5s",
            "agent.step_heartbeat_interval": "1s",
            "log.output_path": str(tmp_path / "logs"),
        },
    )
    agent = Agent(config, client=client)
    await agent.start()
    try:
        handle = await start_run(client, spec, workspace=str(tmp_path / "workspace"))
        result: RunResult = await asyncio.wait_for(handle.result(), 120)
    finally:
        await agent.shutdown()

    job = result.jobs["announce"]
    assert result.status == SUCCESS, job
    steps = {step.key: step for step in job.steps}
    assert steps["post"].outputs == {
        "ts": "1700000000.000100",
        "channel": "C1",
        "thread_ts": "1700000000.000100",
        "attempts": "1",
    }
    assert steps["reply"].outputs["thread_ts"] == "1700000000.000100"
    assert steps["reply"].outputs["ts"] == "1700000000.000101"
    assert steps["notify"].outputs == {"status": "200", "response": "ok", "attempts": "2"}

    first, reply = (r.json() for r in slack.to("/api/chat.postMessage"))
    assert first == {"channel": "#general", "text": "Deploying v1.2"}
    assert reply == {"channel": "C1", "thread_ts": "1700000000.000100", "text": "Deployed v1.2"}
    limited, sent = slack.to(WEBHOOK_PATH)
    assert sent.at - limited.at >= 1.0  # Retry-After: 1, by the server's clock
    assert sent.json() == {"text": "v1.2 is out, see thread 1700000000.000100"}

    notify_log = Path(steps["notify"].log_path).read_text(encoding="utf-8")
    assert "attempt 1: HTTP 429 rate limited; retrying in 1.0s as Retry-After asks" in notify_log
    secret_values = (TOKEN, slack.webhook_url, WEBHOOK_PATH.removeprefix("/services/"))
    for step in steps.values():
        shown = Path(step.log_path).read_text(encoding="utf-8") + json.dumps(step.outputs)
        for value in secret_values:
            assert value not in shown
    for workflow_id in (result.run_id, f"{result.run_id}.announce"):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        recorded = json.dumps(history.to_json_dict())
        for value in secret_values:
            assert value not in recorded
