"""What each step sends through Temporal: no more than the agent needs, so that a job's history
(and the server's work per step) stays small, while the step still sees its whole context."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from waterflow.agent.worker import Agent
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import EVENT_UNKNOWN, SUCCESS

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


def _event_job(queue: str, steps: int) -> str:
    step = (
        '      - run: echo "saw=${{ github.event.marker }}-$(grep -c m4rk3r '
        '"$GITHUB_EVENT_PATH")" >> "$GITHUB_OUTPUT"'
    )
    return f"jobs:\n  j:\n    runs-on: {queue}\n    steps:\n" + "\n".join([step] * steps) + "\n"


async def _execute_node_inputs(client: Client, handle: Any) -> list[bytes]:
    children: dict[str, str] = await handle.query("children")
    job = client.get_workflow_handle(next(iter(children.values())))
    return [
        event.activity_task_scheduled_event_attributes.input.payloads[0].data
        async for event in job.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "execute_node"
    ]


# A GitHub webhook's payload is tens of KB; the run's steps all see it.
EVENT = {"marker": "m4rk3r", "commits": [{"message": "x" * 100, "id": str(i)} for i in range(200)]}


async def test_the_event_payload_travels_once_per_job_and_every_step_sees_it(
    agent: Agent, client: Client, queue: str, tmp_path: Path
) -> None:
    spec = parse_workflow(_event_job(queue, 5), file="event.yaml")
    handle = await start_run(client, spec, github={"event": EVENT}, workspace=str(tmp_path / "ws"))
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == SUCCESS
    assert [s.outputs for s in result.jobs["j"].steps] == [{"saw": "m4rk3r-1"}] * 5
    sizes = [len(data) for data in await _execute_node_inputs(client, handle)]
    assert len(sizes) == 5
    assert sizes[0] > len(json.dumps(EVENT)), sizes
    assert max(sizes[1:]) < 1500, sizes


async def test_an_agent_without_the_event_payload_gets_it_again(
    make_agent: Any, agent_process: Any, client: Client, queue: str, tmp_path: Path
) -> None:
    # Two agents under one id share one private queue (as an agent restarted under its id
    # does): a step may reach the one that did not get the event with the job's first step.
    twin = f"twin-{queue}"
    agent_process([queue], name=twin)
    await make_agent([queue], **{"agent.id": twin})
    spec = parse_workflow(_event_job(queue, 12), file="event.yaml")
    handle = await start_run(client, spec, github={"event": EVENT}, workspace=str(tmp_path / "ws"))
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == SUCCESS
    assert [(s.outputs, s.attempts) for s in result.jobs["j"].steps] == [
        ({"saw": "m4rk3r-1"}, 1)
    ] * 12
    children: dict[str, str] = await handle.query("children")
    job = client.get_workflow_handle(next(iter(children.values())))
    # The only failures in the history are steps sent again with the event.
    failures = [
        event.activity_task_failed_event_attributes.failure.application_failure_info.type
        async for event in job.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert set(failures) <= {EVENT_UNKNOWN}, failures
