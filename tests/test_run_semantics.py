"""The language's run-time semantics, on a real Temporal dev server with a real agent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client

from waterflow.agent.worker import Agent
from waterflow.engine.types import CANCELLED, FAILURE, SKIPPED, SUCCESS

pytestmark = pytest.mark.usefixtures("agent")


async def test_outputs_flow_between_steps_and_jobs(run_workflow) -> None:
    result = await run_workflow(
        """
name: flow
env: {WHO: world}
jobs:
  one:
    runs-on: QUEUE
    outputs:
      greeting: ${{ steps.make.outputs.greeting }}
    steps:
      - id: make
        run: |
          echo "greeting=hello $WHO" >> "$GITHUB_OUTPUT"
          {
            echo 'notes<<EOF'
            echo 'line one'
            echo 'line two'
            echo EOF
          } >> "$WATERFLOW_OUTPUT"
      - id: check
        run: test "${{ steps.make.outputs.notes }}" = "$(printf 'line one\\nline two')"
  two:
    needs: one
    runs-on: QUEUE
    steps:
      - id: use
        run: echo "got=${{ needs.one.outputs.greeting }}/${{ needs.one.result }}" >> $GITHUB_OUTPUT
"""
    )
    assert result.status == SUCCESS, result
    assert result.jobs["one"].outputs == {"greeting": "hello world"}
    use = result.jobs["two"].steps[0]
    assert use.outputs == {"got": "hello world/success"}


async def test_env_at_three_levels_and_github_env_path(run_workflow, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "wf-hello").write_text("#!/bin/sh\necho hello-from-path\n")
    (tools / "wf-hello").chmod(0o755)
    result = await run_workflow(
        f"""
env: {{LEVEL: workflow, A: wa, B: wb}}
jobs:
  j:
    runs-on: QUEUE
    env: {{LEVEL: job, B: jb}}
    steps:
      - run: |
          echo "FROM_STEP=set by step one" >> $GITHUB_ENV
          echo "{tools}" >> $GITHUB_PATH
      - id: see
        env: {{LEVEL: step}}
        run: |
          echo "seen=$LEVEL,$A,$B,$FROM_STEP,$(wf-hello)" >> $GITHUB_OUTPUT
      - id: ctx
        run: echo "v=${{{{ env.LEVEL }}}}-${{{{ env.FROM_STEP }}}}" >> $GITHUB_OUTPUT
"""
    )
    assert result.status == SUCCESS, result
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["see"].outputs["seen"] == "step,wa,jb,set by step one,hello-from-path"
    assert steps["ctx"].outputs["v"] == "job-set by step one"


async def test_failure_skips_later_steps_unless_if_says_otherwise(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: boom
        run: echo about to fail; exit 3
      - id: skipped
        run: echo never
      - id: on_failure
        if: failure()
        run: echo "ran=yes" >> $GITHUB_OUTPUT
      - id: always
        if: ${{ always() }}
        run: echo "outcome=${{ steps.boom.outcome }}" >> $GITHUB_OUTPUT
  after:
    needs: j
    runs-on: QUEUE
    steps:
      - run: echo should not run
  cleanup:
    needs: j
    if: always()
    runs-on: QUEUE
    steps:
      - id: r
        run: echo "result=${{ needs.j.result }}" >> $GITHUB_OUTPUT
"""
    )
    assert result.status == FAILURE
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["boom"].outcome == FAILURE
    assert "exited with code 3" in (steps["boom"].error or "")
    assert "about to fail" in steps["boom"].log_tail
    assert steps["skipped"].outcome == SKIPPED
    assert steps["on_failure"].outputs == {"ran": "yes"}
    assert steps["always"].outputs == {"outcome": "failure"}
    assert result.jobs["after"].result == SKIPPED
    assert result.jobs["cleanup"].steps[0].outputs == {"result": "failure"}


async def test_continue_on_error_keeps_the_job_green(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: flaky
        continue-on-error: true
        run: exit 1
      - id: next
        run: echo "saw=${{ steps.flaky.outcome }}/${{ steps.flaky.conclusion }}" >> $GITHUB_OUTPUT
"""
    )
    assert result.status == SUCCESS
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["flaky"].outcome == FAILURE and steps["flaky"].conclusion == SUCCESS
    assert steps["next"].outputs == {"saw": "failure/success"}


async def test_a_job_that_continues_on_error_is_success_to_the_jobs_that_need_it(
    run_workflow,
) -> None:
    result = await run_workflow(
        """
jobs:
  flaky:
    runs-on: QUEUE
    continue-on-error: true
    steps:
      - run: exit 1
  next:
    needs: flaky
    runs-on: QUEUE
    steps:
      - id: seen
        run: echo "result=${{ needs.flaky.result }}" >> "$GITHUB_OUTPUT"
  on_failure:
    needs: flaky
    if: failure()
    runs-on: QUEUE
    steps:
      - run: echo never
"""
    )
    assert result.status == SUCCESS
    assert result.jobs["flaky"].result == FAILURE  # its own result: what happened
    assert result.jobs["next"].steps[0].outputs == {"result": "success"}  # as on GitHub
    assert result.jobs["on_failure"].result == SKIPPED


async def test_retry_runs_the_step_again_until_it_passes(run_workflow, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    result = await run_workflow(
        f"""
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: flaky
        retry: {{max_attempts: 3, initial_interval: 100ms, backoff_coefficient: 1}}
        run: |
          echo x >> {counter}
          test $(wc -l < {counter}) -ge 3
"""
    )
    assert result.status == SUCCESS, result
    assert counter.read_text().count("x") == 3
    assert result.jobs["j"].steps[0].attempts == 3


async def test_step_timeout_kills_the_process(run_workflow, tmp_path: Path) -> None:
    marker = tmp_path / "survived"
    result = await run_workflow(
        f"""
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: slow
        timeout: 2s
        run: |
          echo started
          sleep 30
          touch {marker}
"""
    )
    assert result.status == FAILURE
    slow = result.jobs["j"].steps[0]
    assert "timed out" in (slow.error or "")
    assert "started" in slow.log_tail
    assert slow.duration is not None and slow.duration < 20
    assert not marker.exists()


async def test_job_timeout_fails_the_job(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    timeout: 3s
    steps:
      - run: sleep 60
"""
    )
    assert result.status == FAILURE
    # Temporal caps a step's timeout at what is left of its job's: the step reports it, with
    # its log tail, just before the job itself would time out.
    job = result.jobs["j"]
    assert job.steps and (job.steps[0].error or "").startswith("step timed out after"), job
    assert job.duration is not None and job.duration < 10


async def test_secrets_are_masked_everywhere_and_never_in_history(
    run_workflow, client: Client, agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-value-Zq9"
    monkeypatch.setenv("WATERFLOW_SECRET_API_TOKEN", secret)
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: leak
        env: {TOKEN: "${{ secrets.API_TOKEN }}"}
        run: |
          echo "the token is $TOKEN"
          echo "out=$TOKEN" >> $GITHUB_OUTPUT
          echo "LEAKED=$TOKEN" >> $GITHUB_ENV
      - id: fail
        run: echo "failing with ${{ secrets.api_token }}"; exit 1
"""
    )
    assert result.status == FAILURE
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["leak"].outputs == {"out": "***"}
    log = Path(steps["leak"].log_path).read_text()
    assert "the token is ***" in log and secret not in log
    assert secret not in (steps["fail"].error or "") + "".join(steps["fail"].log_tail)
    for workflow_id in (result.run_id, f"{result.run_id}.j"):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        assert secret not in json.dumps(history.to_json_dict())


async def test_unknown_node_at_run_time_is_not_retried(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - uses: shell/rnu
        retry: {max_attempts: 5}
""",
        validate=False,
    )
    assert result.status == FAILURE
    step = result.jobs["j"].steps[0]
    assert "unknown node 'shell/rnu'" in (step.error or "")
    assert "did you mean 'shell/run'" in (step.error or "")


async def test_bad_parameter_type_fails_before_running(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - uses: shell/run
        with: {run: echo hi, shell: [bash]}
""",
        validate=False,
    )
    assert result.status == FAILURE
    assert "parameter 'shell'" in (result.jobs["j"].steps[0].error or "")


async def test_inputs_and_expressions(run_workflow) -> None:
    result = await run_workflow(
        """
on:
  workflow_dispatch:
    inputs:
      name: {required: true}
      loud: {type: boolean, default: false}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: e
        run: >-
          echo "v=${{ format('{0}-{1}', inputs.name, inputs.loud) }}
          ${{ contains(fromJSON('["a","b"]'), 'b') }} ${{ startsWith(github.workflow, 'wf') }}"
          >> $GITHUB_OUTPUT
""",
        inputs={"name": "ada", "loud": True},
    )
    assert result.status == SUCCESS, result
    assert result.jobs["j"].steps[0].outputs["v"] == "ada-true true false"


async def test_steps_of_a_job_share_one_workspace(run_workflow, tmp_path: Path) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - run: echo built > artifact.txt
      - id: read
        run: echo "content=$(cat artifact.txt)" >> $GITHUB_OUTPUT
      - id: where
        working-directory: sub
        run: pwd
""",
        workspace=str(tmp_path / "ws2"),
    )
    assert result.jobs["j"].steps[1].outputs == {"content": "built"}
    assert (tmp_path / "ws2" / "artifact.txt").read_text() == "built\n"
    assert result.jobs["j"].steps[2].conclusion == FAILURE  # `sub` does not exist
    assert "does not exist" in (result.jobs["j"].steps[2].error or "")


async def test_cancelling_a_run_stops_its_step(client: Client, queue: str, tmp_path: Path) -> None:
    from waterflow.dsl import parse_workflow
    from waterflow.engine.client import start_run

    marker = tmp_path / "started"
    spec = parse_workflow(
        f"""
jobs:
  j:
    runs-on: {queue}
    steps:
      - run: touch {marker}; sleep 120
      - if: cancelled()
        id: after
        run: echo "ran=after-cancel" >> $GITHUB_OUTPUT
""",
        file="cancel.yaml",
    )
    handle = await start_run(client, spec, workspace=str(tmp_path / "ws"))
    import asyncio

    deadline = asyncio.get_running_loop().time() + 30
    while not marker.exists():
        assert asyncio.get_running_loop().time() < deadline, "the step never started"
        await asyncio.sleep(0.05)
    await handle.cancel()
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == CANCELLED
    steps = result.jobs["j"].steps
    assert steps[0].outcome == CANCELLED
    assert steps[1].outputs == {"ran": "after-cancel"}


def test_env_is_not_polluted_by_agent_secrets(tmp_path: Path) -> None:
    from waterflow.secrets import load_secrets, without_secret_variables

    env = {"WATERFLOW_SECRET_X": "v", "PATH": os.environ.get("PATH", "")}
    assert "WATERFLOW_SECRET_X" not in without_secret_variables(env)
    (tmp_path / "DB_PASSWORD").write_text("pw\n")
    assert load_secrets(env, tmp_path) == {"X": "v", "DB_PASSWORD": "pw"}


async def test_runs_are_listed_by_search_attributes(run_workflow, client: Client) -> None:
    result = await run_workflow(
        "name: listed-wf\njobs:\n  j:\n    runs-on: QUEUE\n    steps:\n      - run: 'true'\n"
    )
    assert result.status == SUCCESS
    query = "WaterflowWorkflow = 'listed-wf' AND WaterflowStatus = 'success'"
    import asyncio

    # Visibility is eventually consistent: wait for the run to be indexed, with a deadline.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        found = {w.id async for w in client.list_workflows(query)}
        if {result.run_id, f"{result.run_id}.j"} <= found:
            break
        assert loop.time() < deadline, f"not listed: {found}"
        await asyncio.sleep(0.2)
    jobs = {w.id async for w in client.list_workflows("WaterflowJob = 'j'")}
    assert f"{result.run_id}.j" in jobs


async def test_values_written_to_github_env_are_never_rendered(
    run_workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_SECRET_TOKEN", "tok-Zq9-value")
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      # The script writes the text of an expression (it is not in the script as such).
      - run: |
          printf 'SNEAKY=%s{{ secrets.TOKEN }}\\n' '$' >> $GITHUB_ENV
      - id: see
        run: echo "got=$SNEAKY" >> $GITHUB_OUTPUT
      - id: ctx
        if: ${{ env.SNEAKY != '' }}
        run: echo 'ctx=${{ env.SNEAKY }}' >> $GITHUB_OUTPUT
"""
    )
    assert result.status == SUCCESS, result
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["see"].outputs == {"got": "${{ secrets.TOKEN }}"}
    assert steps["ctx"].outputs == {"ctx": "${{ secrets.TOKEN }}"}


async def test_job_if_and_step_if_see_github_and_runner(run_workflow) -> None:
    result = await run_workflow(
        """
name: ctx-wf
jobs:
  j:
    runs-on: QUEUE
    if: github.workflow == 'ctx-wf'
    steps:
      - run: 'true'
      - id: s
        if: github.job == 'j' && runner.os == 'Linux' && github.workspace != ''
        run: echo "ran=yes" >> $GITHUB_OUTPUT
"""
    )
    assert result.jobs["j"].steps[1].outputs == {"ran": "yes"}


async def test_job_continue_on_error_expression_and_retry_attempts(
    run_workflow, tmp_path: Path
) -> None:
    counter = tmp_path / "n"
    result = await run_workflow(
        f"""
on:
  workflow_dispatch:
    inputs:
      tolerate: {{type: boolean, default: true}}
jobs:
  j:
    runs-on: QUEUE
    continue-on-error: ${{{{ inputs.tolerate }}}}
    steps:
      - id: twice
        retry: {{max_attempts: 2, initial_interval: 100ms}}
        run: echo x >> {counter}; test $(wc -l < {counter}) -ge 2
      - run: exit 1
""",
        inputs={"tolerate": True},
    )
    assert result.status == SUCCESS  # the failing job is tolerated
    assert result.jobs["j"].result == FAILURE
    assert result.jobs["j"].steps[0].attempts == 2


async def test_a_step_ends_itself_before_its_job_times_out(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    timeout: 8s
    steps:
      - run: sleep 2
      - id: long
        run: echo before-the-deadline; sleep 60
"""
    )
    job = result.jobs["j"]
    assert job.result == FAILURE
    long = job.steps[1]
    assert "timed out" in (long.error or "")
    assert "before-the-deadline" in long.log_tail


DISPATCHED = """
on:
  workflow_dispatch:
    inputs:
      who: {default: x}
      loud: {type: boolean}
      count: {type: number, default: 2}
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: e
        run: |
          echo 'event=${{ toJSON(github.event.inputs) }}' | tr -d ' \\n' >> $GITHUB_OUTPUT
          echo >> $GITHUB_OUTPUT
          echo "typed=${{ inputs.loud == true && inputs.count == 2 }}" >> $GITHUB_OUTPUT
"""


async def test_dispatch_inputs_are_in_the_event_payload_as_text(run_workflow) -> None:
    # As on GitHub: the event holds text; the inputs context keeps the types. Started with
    # only the inputs context (an embedder's start_run), the event holds every input.
    result = await run_workflow(DISPATCHED, inputs={"who": "ada", "loud": True, "count": 2})
    assert result.jobs["j"].steps[0].outputs == {
        "event": '{"who":"ada","loud":"true","count":"2"}',
        "typed": "true",
    }


async def test_dispatch_event_holds_only_the_inputs_given(run_workflow) -> None:
    # As GitHub does for a dispatch through its API (and act): defaults are in the inputs
    # context only.
    result = await run_workflow(
        DISPATCHED,
        inputs={"who": "x", "loud": True, "count": 2},
        given_inputs={"loud": "true"},
    )
    assert result.jobs["j"].steps[0].outputs == {"event": '{"loud":"true"}', "typed": "true"}
