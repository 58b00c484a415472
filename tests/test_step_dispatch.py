"""Where a job's steps are sent. While the agent deciding the job holds its workspace, a step
goes to the job's own queue, and Temporal hands it back to that agent with the workflow task
that scheduled it (eager dispatch); a step that reaches another agent of the queue instead is
refused there, unstarted, and the job sends it and its later steps to the holder's private
queue. Steps with `retry:` always go to the private queue (a retry is not dispatched eagerly)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import handwired
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker
from waiting import wait_until

import waterflow_nodes_shell
from waterflow.dsl import parse_workflow
from waterflow.engine.activities import Activities
from waterflow.engine.client import start_run
from waterflow.engine.types import (
    ACTIVITY_EXECUTE_NODE,
    AGENT_BUSY,
    NOT_HERE,
    SUCCESS,
    RunResult,
    claim_queue_for,
)
from waterflow.testing import TestRegistry

STEPS = """\
      - id: one
        run: echo "where=$RUNNER_NAME" >> "$GITHUB_OUTPUT"
      - id: two
        run: echo "where=$RUNNER_NAME" >> "$GITHUB_OUTPUT"
"""


async def start(client: Client, queue: str, steps: str) -> WorkflowHandle[Any, RunResult]:
    """Start a run of one job `j` of `steps` (YAML list items) on `queue`."""
    text = f"jobs:\n  j:\n    runs-on: {queue}\n    steps:\n{steps}"
    return await start_run(client, parse_workflow(text, file="dispatch.yaml"))


async def run(client: Client, queue: str, steps: str, tmp_path: Path) -> tuple[RunResult, str]:
    """Run one job `j` of `steps` on `queue`; its result and its job workflow's id."""
    handle = await start(client, queue, steps)
    result = await asyncio.wait_for(handle.result(), 90)
    children: dict[str, str] = await handle.query("children")
    (job_id,) = children.values()
    return result, job_id


async def start_slot_holder(
    client: Client, queue: str, tmp_path: Path, *, with_retry: bool = False
) -> tuple[WorkflowHandle[Any, RunResult], Path, Path]:
    """Start a run whose one step holds a slot of the agent on `queue` until the file `go`
    exists; return once it runs, with the file that exists while it does, and `go`."""
    running, go = tmp_path / "a-running", tmp_path / "go"
    retry = "retry: {max_attempts: 2}\n        " if with_retry else ""
    first = await start(
        client,
        queue,
        f"""\
      - {retry}run: |
          touch {running}
          timeout 60 sh -c 'until [ -e {go} ]; do sleep 0.05; done'
          rm {running}
""",
    )
    await wait_until(running.exists, 60, "the first step starting")
    return first, running, go


async def step_dispatches(job: WorkflowHandle[Any, Any]) -> list[tuple[str, str]]:
    """(task queue, failure type or "") of each `execute_node` the job scheduled, in order."""
    scheduled: dict[int, str] = {}
    ends: dict[int, str] = {}
    try:
        events = [event async for event in job.fetch_history_events()]
    except RPCError:
        return []  # not started yet
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == ACTIVITY_EXECUTE_NODE:
                scheduled[event.event_id] = attrs.task_queue.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            ends[event.activity_task_completed_event_attributes.scheduled_event_id] = ""
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failure = event.activity_task_failed_event_attributes.failure
            kind = failure.application_failure_info.type or failure.message
            ends[event.activity_task_failed_event_attributes.scheduled_event_id] = kind
    return [(q, ends.get(event_id, "?")) for event_id, q in sorted(scheduled.items())]


async def test_steps_go_to_the_jobs_own_queue_and_retried_steps_to_the_holders(
    make_agent: Any, client: Client, queue: str, tmp_path: Path
) -> None:
    agent = await make_agent([queue])
    result, job_id = await run(
        client,
        queue,
        STEPS
        + """\
      - id: three
        retry: {max_attempts: 2}
        run: echo "where=$RUNNER_NAME" >> "$GITHUB_OUTPUT"
""",
        tmp_path,
    )
    assert result.status == SUCCESS
    steps = result.jobs["j"].steps
    assert [s.outputs for s in steps] == [{"where": agent.agent_id}] * 3
    dispatches = await step_dispatches(client.get_workflow_handle(job_id))
    assert dispatches == [(queue, ""), (queue, ""), (agent.private_queue, "")]


@pytest.fixture
async def holder_and_other(
    client: Client, queue: str, tmp_path: Path
) -> AsyncIterator[tuple[Activities, Activities]]:
    """Two agents' activities on one queue, wired by hand: `holder` decides the job and claims
    its workspace, but Temporal does not hand steps back to it eagerly and it takes none from
    the job's queue; `other` polls the job's queue for steps (and refuses them)."""
    registry = TestRegistry()
    registry.add_plugin(waterflow_nodes_shell)
    holder = handwired.activities("holder", queue, tmp_path, registry)
    other = handwired.activities("other", queue, tmp_path, registry)
    workers = [
        *handwired.deciding_workers(client, queue, holder, disable_eager_activity_execution=True),
        Worker(client, task_queue=holder.private_queue, activities=[holder.execute_node]),
        Worker(client, task_queue=queue, activities=[other.execute_node]),
        Worker(client, task_queue=claim_queue_for(queue), activities=[other.claim_workspace]),
    ]
    async with handwired.running(workers):
        yield holder, other


async def test_a_step_another_agent_gets_is_refused_and_the_job_goes_to_the_holders_queue(
    holder_and_other: tuple[Activities, Activities], client: Client, queue: str, tmp_path: Path
) -> None:
    holder, other = holder_and_other
    result, job_id = await run(client, queue, STEPS, tmp_path)
    assert result.status == SUCCESS
    steps = result.jobs["j"].steps
    # Both steps ran once, in the holder's workspace; the refusal is no attempt.
    assert [(s.outputs, s.attempts) for s in steps] == [({"where": "holder"}, 1)] * 2
    dispatches = await step_dispatches(client.get_workflow_handle(job_id))
    assert dispatches == [(queue, NOT_HERE), (holder.private_queue, ""), (holder.private_queue, "")]
    # The other agent started nothing: it wrote no step log.
    assert not other.runtime.log_dir.exists()


async def test_an_agent_runs_no_more_steps_than_it_may_and_the_next_one_waits_on_its_queue(
    make_agent: Any, client: Client, queue: str, tmp_path: Path
) -> None:
    agent = await make_agent([queue], **{"agent.max_concurrent_activities": 1})
    # With `retry:`, the first step runs from the agent's private queue: the slot it takes is
    # the agent's, not the job queue worker's.
    first, running, go = await start_slot_holder(client, queue, tmp_path, with_retry=True)
    second = await start(
        client,
        queue,
        f"""\
      - run: test ! -e {running} && echo "alone=yes" >> "$GITHUB_OUTPUT"
""",
    )
    job = client.get_workflow_handle(f"{second.id}.j")
    # The holder refused the second step on the job's queue (its one slot is taken), so it
    # waits on the holder's own queue.

    async def refused() -> bool:
        return (queue, AGENT_BUSY) in await step_dispatches(job)

    await wait_until(refused, 60, "the busy agent refusing the second step")
    go.touch()
    result = await asyncio.wait_for(second.result(), 60)
    assert result.status == SUCCESS
    assert result.jobs["j"].steps[0].outputs == {"alone": "yes"}
    assert result.jobs["j"].steps[0].attempts == 1
    assert await step_dispatches(job) == [(queue, AGENT_BUSY), (agent.private_queue, "")]
    assert (await asyncio.wait_for(first.result(), 60)).status == SUCCESS


async def test_a_local_step_over_the_limit_waits_for_a_slot_on_the_agents_queue(
    make_agent: Any, client: Client, queue: str, tmp_path: Path
) -> None:
    agent = await make_agent([queue], **{"agent.max_concurrent_activities": 1})
    first, running, go = await start_slot_holder(client, queue, tmp_path)
    second = await start(
        client,
        queue,
        f"""\
      - local: true
        run: test ! -e {running} && echo "alone=yes" >> "$GITHUB_OUTPUT"
""",
    )
    job = client.get_workflow_handle(f"{second.id}.j")

    async def waiting_in_the_agent() -> bool:
        # Refused as a local activity (no free slot), the step went to the agent's own queue,
        # where the agent took it and holds it until a slot is free.
        try:
            description = await job.describe()
        except RPCError:
            return False
        return any(
            a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for a in description.raw_description.pending_activities
        )

    await wait_until(waiting_in_the_agent, 60, "the second step waiting in the agent")
    go.touch()
    result = await asyncio.wait_for(second.result(), 60)
    (step,) = result.jobs["j"].steps
    assert result.status == SUCCESS
    assert (step.outputs, step.attempts) == ({"alone": "yes"}, 1)
    assert await step_dispatches(job) == [(agent.private_queue, "")]
    log = Path(step.log_path).read_text()
    refusal = f"not run as a local activity: agent {agent.agent_id} runs as many steps as it may"
    assert refusal in log
    assert (await asyncio.wait_for(first.result(), 60)).status == SUCCESS
