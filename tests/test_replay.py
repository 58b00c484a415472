"""Histories of real runs replay: the same decisions again, under Temporal's default sandbox.

An agent that restarts, or another agent that takes a run's workflows over, replays their
histories; a workflow that decides differently on replay fails with a nondeterminism error.
The agent runs its workflows outside Temporal's sandbox (engine/sandbox.py): replaying what
such an agent recorded under the sandbox with all of its default restrictions is what shows
that the workflow code calls nothing they refuse on these paths (the clock, randomness, files,
`open`), and that it decides the same way in both.
"""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from waterflow.engine.converter import data_converter
from waterflow.engine.job_workflow import JobWorkflow
from waterflow.engine.run_workflow import RunWorkflow
from waterflow.engine.sandbox import workflow_runner
from waterflow.engine.types import CANCELLED, FAILURE, SKIPPED, SUCCESS

# Most of the language's decisions in two runs: needs and outputs, env at three levels and
# GITHUB_ENV, `if:` that skips, a failure kept by continue-on-error (a step's and a job's,
# which the jobs that need it see as `success`), a failure that skips what needs it, a matrix
# computed by an earlier job, and a local step.
_DECISIONS = """
name: replay
env: {LEVEL: workflow}
jobs:
  plan:
    runs-on: QUEUE
    env: {LEVEL: job}
    outputs:
      matrix: ${{ steps.make.outputs.matrix }}
    steps:
      - id: make
        env: {LEVEL: step}
        run: |
          test "$LEVEL" = step
          echo 'matrix={"n": [1, 2]}' >> "$GITHUB_OUTPUT"
          echo "FROM_ENV=yes" >> "$GITHUB_ENV"
      - run: test "$FROM_ENV" = yes
      - if: ${{ env.LEVEL == 'nowhere' }}
        run: exit 1
      - id: soft
        continue-on-error: true
        run: exit 3
      - local: true
        run: test "${{ steps.soft.outcome }}" = failure
  each:
    needs: plan
    runs-on: QUEUE
    strategy:
      matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}
    steps:
      - run: echo "n=${{ matrix.n }}"
  broken:
    runs-on: QUEUE
    steps:
      - run: exit 1
      - if: failure()
        run: echo cleaning up
  after:
    needs: broken
    runs-on: QUEUE
    steps:
      - run: echo never
  tolerated:
    runs-on: QUEUE
    continue-on-error: true
    steps:
      - run: exit 1
  sees:
    needs: tolerated
    runs-on: QUEUE
    steps:
      - run: test "${{ needs.tolerated.result }}" = success
"""


async def _histories(client: Client, run_id: str) -> list[WorkflowHistory]:
    """The run workflow's history and those of the job workflows it started."""
    run = await client.get_workflow_handle(run_id).fetch_history()
    out = [run]
    for event in run.events:
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
            out.append(await client.get_workflow_handle(child).fetch_history())
    return out


async def test_runs_replay_under_the_default_sandbox(
    run_workflow: Any, client: Client, make_agent: Any, queue: str
) -> None:
    # The agent as users run it: its workflows outside the sandbox.
    agent = await make_agent(
        [queue], **{"agent.id": f"replay-{queue}", "agent.workflow_sandbox": False}
    )
    assert isinstance(agent._common["workflow_runner"], UnsandboxedWorkflowRunner)
    result = await run_workflow(_DECISIONS)
    jobs = {key: job.result for key, job in result.jobs.items()}
    assert result.status == FAILURE, result
    assert jobs["plan"] == SUCCESS and jobs["broken"] == FAILURE and jobs["after"] == SKIPPED
    assert (jobs["tolerated"], jobs["sees"]) == (FAILURE, SUCCESS)
    assert [job for job in jobs if job.startswith("each")] == ["each (1)", "each (2)"], jobs
    plan = result.jobs["plan"].steps
    assert [s.conclusion for s in plan] == [SUCCESS, SUCCESS, SKIPPED, SUCCESS, SUCCESS]

    histories = await _histories(client, result.run_id)
    # The run; plan, two of each, broken, tolerated, sees (after never started).
    assert len(histories) == 1 + 6
    replayer = Replayer(
        workflows=[RunWorkflow, JobWorkflow],
        data_converter=data_converter,
        workflow_runner=workflow_runner(sandboxed=True),
    )
    failures = {}
    for history in histories:
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if replayed.replay_failure is not None:
            failures[history.workflow_id] = str(replayed.replay_failure)
    assert failures == {}
    assert CANCELLED not in jobs.values()
