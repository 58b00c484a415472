"""The agent that holds a job's workspace is gone between two steps: the finished steps are not
run again (their outputs are kept), the remaining ones continue on another agent of the queue in
a new workspace (files of the old one are gone), and the step log says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultkit import PICKUP_TIMEOUT, Fleet, result_of, submit, wait_until
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.service import RPCError

from waterflow.engine.types import AGENT_BUSY, SUCCESS

pytestmark = pytest.mark.e2e

SCHEDULED = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


async def _pending_steps(
    client: Client, workflow_id: str, state: PendingActivityState.ValueType
) -> int:
    """How many steps of a job are pending in `state` (scheduled, or started)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return 0  # not started yet
    return sum(
        1
        for a in description.raw_description.pending_activities
        if a.activity_type.name == "execute_node" and a.state == state
    )


async def test_remaining_steps_continue_on_another_agent_after_the_holder_dies(
    client: Client, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    # The holder runs one step at a time. While job `j` waits between its steps, another job's
    # step takes the holder's only slot, so `j`'s next step is queued on the holder, not
    # started; then the holder is killed.
    other_queue = f"{queue}-busy"
    marks = tmp_path / "marks"
    marks.mkdir()
    holder = await fleet.start(
        [queue, other_queue], "holder", WATERFLOW_AGENT_MAX_CONCURRENT_ACTIVITIES="1"
    )
    job = await submit(
        client,
        f"""
name: holder-dies
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: checkout
        run: |
          echo data > state.txt
          touch {marks}/checkout-started
          timeout 60 sh -c 'until [ -e {marks}/go ]; do sleep 0.05; done'
          echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
      - id: build
        run: |
          if [ -e state.txt ]; then echo "state=kept" >> $GITHUB_OUTPUT
          else echo "state=lost" >> $GITHUB_OUTPUT; fi
          echo "by=$RUNNER_NAME after ${{{{ steps.checkout.outputs.by }}}}" >> $GITHUB_OUTPUT
      - id: test
        run: echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
""",
    )
    await wait_until(lambda: (marks / "checkout-started").exists(), 60, "checkout starting")
    blocker = await submit(
        client,
        f"""
name: blocker
jobs:
  b:
    runs-on: {other_queue}
    steps:
      - run: touch {marks}/blocker-started; sleep 300
""",
    )

    async def blocker_waits_privately() -> bool:
        # The holder refused the other job's step on that job's queue (`checkout` has its one
        # slot), and the step now waits on the holder's private queue, started there: it takes
        # the slot `checkout` frees, and holds the private queue's only place, so that `build`
        # stays unstarted there. Had the step still been on its job's queue when `checkout`
        # ended, it would take the slot there, and `build` would start on the private queue.
        handle = client.get_workflow_handle(f"{blocker.id}.b")
        try:
            history = await handle.fetch_history()
        except RPCError:
            return False  # not started yet
        refused = any(
            e.activity_task_failed_event_attributes.failure.application_failure_info.type
            == AGENT_BUSY
            for e in history.events
            if e.HasField("activity_task_failed_event_attributes")
        )
        return refused and await _pending_steps(client, f"{blocker.id}.b", STARTED) == 1

    await wait_until(blocker_waits_privately, 30, "the other job's step waiting on the holder")
    (marks / "go").touch()
    await wait_until(
        lambda: (marks / "blocker-started").exists(), 30, "the other job's step taking the slot"
    )

    async def build_queued() -> bool:
        # `build` waits, unstarted, on the holder's queue: the holder refused it on the job's
        # queue (its one slot is taken), and the step went to its private queue.
        return await _pending_steps(client, f"{job.id}.j", SCHEDULED) == 1

    await wait_until(build_queued, 30, "`build` waiting, unstarted, on the holder's queue")
    holder.kill()
    successor = await fleet.start([queue], "successor")

    result = await result_of(job, 60 + PICKUP_TIMEOUT)
    assert result.status == SUCCESS, result
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["checkout"].agent_id == "holder"
    assert steps["checkout"].attempts == 1  # finished: not run again
    assert steps["build"].outputs == {"state": "lost", "by": "successor after holder"}
    assert steps["build"].attempts == 2  # the one that never started on the holder counts
    assert steps["test"].outputs == {"by": "successor"}
    log = Path(steps["build"].log_path).read_text()
    assert (
        "the workspace of job j was lost: agent holder did not pick the step up; step 'build' "
        f"runs again in a new workspace on another agent of queue {queue}"
    ) in log
    assert successor.alive
    await blocker.terminate("test over")
