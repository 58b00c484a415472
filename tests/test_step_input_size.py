"""What each step sends through Temporal: no more than the agent needs, so that a job's history
(and the server's work per step) stays small, while the step still sees its whole context."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from waterflow.agent.worker import Agent
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import SUCCESS

STEPS = 20


async def test_a_step_input_is_small_and_the_step_still_sees_where_it_runs(
    agent: Agent, client: Client, queue: str, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    filler = "\n".join(["      - run: 'true'"] * (STEPS - 1))
    where = (
        "${{ github.workspace }}|${{ github.job }}|${{ github.action }}|${{ runner.os }}|"
        "${{ runner.name }}|${{ runner.temp }}|${{ github.event_name }}"
    )
    text = f"""
jobs:
  j:
    runs-on: {queue}
    steps:
{filler}
      - id: where
        if: runner.os == 'Linux' && github.action == 'where'
        env:
          WHERE: "{where}"
        run: echo "where=$WHERE" >> "$GITHUB_OUTPUT"
"""
    spec = parse_workflow(text, file="size.yaml")
    handle = await start_run(client, spec, workspace=str(workspace))
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == SUCCESS
    report = {s.key: s for s in result.jobs["j"].steps}["where"]
    fields = report.outputs["where"].split("|")
    assert fields[:5] == [str(workspace), "j", "where", "Linux", agent.agent_id]
    assert Path(fields[5]).is_dir()
    assert fields[6] == "workflow_dispatch"

    children: dict[str, str] = await handle.query("children")
    job = client.get_workflow_handle(next(iter(children.values())))
    inputs = [
        event.activity_task_scheduled_event_attributes.input.payloads[0].data
        async for event in job.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "execute_node"
    ]
    assert len(inputs) == STEPS
    # A plain step carries its paths once each, and nothing its agent knows itself.
    first = inputs[0].decode()
    assert first.count(str(workspace)) == 1, first
    assert "runner" not in json.loads(first)["contexts"], first
    paths = len(str(workspace)) + len(json.loads(first)["temp_dir"])
    assert len(inputs[0]) - paths < 600, first
