"""Steps that run as Temporal local activities: `local: true`, or a node whose metadata says
`local`. They run in the agent deciding the job, without a trip through the server; the
job's history then holds a marker for each instead of activity events."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import handwired
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

import waterflow_nodes_shell
from waterflow import NodeMetadata, NodeResult, StepContext, hookimpl
from waterflow.dsl import parse_workflow
from waterflow.engine.activities import Activities
from waterflow.engine.client import start_run
from waterflow.engine.types import (
    CANCELLED,
    SUCCESS,
    RunResult,
    claim_queue_for,
)
from waterflow.testing import TestRegistry


class Stamp:
    """A short node: returns an output at once."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        return NodeResult(outputs={"stamp": f"stamped-{context.step.step_id}"})


quick_plugin = types.SimpleNamespace(
    node_metadata=hookimpl(lambda: [NodeMetadata(name="test/stamp", version="1", local=True)]),
    register_nodes=hookimpl(lambda registry: registry.add("test/stamp", Stamp)),
)


def registry() -> TestRegistry:
    r = TestRegistry()
    r.add_plugin(waterflow_nodes_shell)
    r.add_plugin(quick_plugin, name="stamp")
    return r


async def start(
    client: Client, queue: str, steps: str, tmp_path: Path
) -> WorkflowHandle[Any, RunResult]:
    """Start a run of one job `j` of `steps` (YAML list items) on `queue`."""
    text = f"jobs:\n  j:\n    runs-on: {queue}\n    steps:\n{steps}"
    spec = parse_workflow(text, file="local.yaml")
    return await start_run(client, spec, workspace=str(tmp_path / "ws"))


async def run(
    client: Client, queue: str, steps: str, tmp_path: Path
) -> tuple[RunResult, WorkflowHandle[Any, Any]]:
    """Run one job `j` of `steps` on `queue`; its result and its job workflow's handle."""
    handle = await start(client, queue, steps, tmp_path)
    result = await asyncio.wait_for(handle.result(), 90)
    children: dict[str, str] = await handle.query("children")
    (job_id,) = children.values()
    return result, client.get_workflow_handle(job_id)


async def activity_counts(job: WorkflowHandle[Any, Any]) -> tuple[int, int]:
    """(activities scheduled through the server, local activity markers) in a job's history."""
    scheduled = markers = 0
    async for event in job.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled += 1
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            markers += 1
    return scheduled, markers


@pytest.fixture
async def stamp_agent(make_agent: Any, queue: str) -> None:
    """An in-process agent on the test's queue, with shell/run and the local test/stamp."""
    await make_agent([queue], registry=registry())


@pytest.mark.usefixtures("stamp_agent")
async def test_local_steps_skip_the_server_and_keep_outputs_env_and_failures(
    client: Client, queue: str, tmp_path: Path
) -> None:
    result, job = await run(
        client,
        queue,
        """\
      - id: first
        local: true
        run: |
          echo "word=hello" >> "$GITHUB_OUTPUT"
          echo "FROM_FIRST=yes" >> "$GITHUB_ENV"
      - id: second
        local: true
        run: echo "said=${{ steps.first.outputs.word }}-$FROM_FIRST" >> "$GITHUB_OUTPUT"
      - id: flaky
        local: true
        continue-on-error: true
        run: exit 3
""",
        tmp_path,
    )
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert set(steps) == {"first", "second", "flaky"}
    assert steps["second"].outputs == {"said": "hello-yes"}
    assert steps["flaky"].outcome == "failure"
    assert "exited with code 3" in (steps["flaky"].error or "")
    assert result.status == SUCCESS
    # The claim and all three steps ran in the deciding agent: nothing went through matching.
    assert await activity_counts(job) == (0, 4)


@pytest.mark.usefixtures("stamp_agent")
async def test_node_metadata_makes_steps_local_unless_the_step_says_otherwise(
    client: Client, queue: str, tmp_path: Path
) -> None:
    result, job = await run(
        client,
        queue,
        """\
      - id: a
        uses: test/stamp
      - id: b
        uses: test/stamp
        local: false
      - run: echo ordinary
""",
        tmp_path,
    )
    assert result.status == SUCCESS
    assert result.jobs["j"].steps[0].outputs == {"stamp": "stamped-a"}
    # `b` (local: false) and the `run:` step went to the agent's queue; the claim and `a` not.
    assert await activity_counts(job) == (2, 2)


@pytest.fixture
async def decider_and_holder(
    client: Client, queue: str, tmp_path: Path
) -> AsyncIterator[tuple[Activities, Activities]]:
    """Two agents' activities on one queue, wired by hand: `decider` decides the job's
    workflow tasks but is stopping (so it refuses local claims and steps); `holder` takes
    the claim through the server and runs the steps sent to its private queue."""

    decider = handwired.activities("decider", queue, tmp_path, registry())
    holder = handwired.activities("holder", queue, tmp_path, registry())
    decider.draining = True
    workers = [
        *handwired.deciding_workers(client, queue, decider),
        Worker(client, task_queue=claim_queue_for(queue), activities=[holder.claim_workspace]),
        Worker(client, task_queue=holder.private_queue, activities=[holder.execute_node]),
    ]
    async with handwired.running(workers):
        yield decider, holder


async def test_a_local_step_refused_by_the_deciding_agent_runs_on_the_workspace_holder(
    decider_and_holder: tuple[Activities, Activities], client: Client, queue: str, tmp_path: Path
) -> None:
    result, job = await run(
        client,
        queue,
        """\
      - id: quick
        local: true
        run: echo "where=$RUNNER_NAME" >> "$GITHUB_OUTPUT"
""",
        tmp_path,
    )
    (step,) = result.jobs["j"].steps
    assert result.status == SUCCESS
    assert step.outputs == {"where": "holder"}
    assert step.agent_id == "holder"
    log = Path(step.log_path).read_text()
    assert "not run as a local activity: agent decider is stopping" in log
    # The claim and the step went through the server, after the decider refused both.
    assert await activity_counts(job) == (2, 2)


@pytest.mark.usefixtures("stamp_agent")
async def test_cancelling_a_run_stops_its_running_local_step(
    client: Client, queue: str, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    handle = await start(
        client,
        queue,
        f"""\
      - local: true
        run: echo $$ > {marker}; exec sleep 120
""",
        tmp_path,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not marker.exists() or not marker.read_text().strip():
        assert loop.time() < deadline, "the local step never started"
        await asyncio.sleep(0.05)
    pid = int(marker.read_text())
    await handle.cancel()
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == CANCELLED
    assert result.jobs["j"].steps[0].outcome == CANCELLED
    # The step's process was stopped before the cancellation was reported.
    assert not process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in status.lower()
