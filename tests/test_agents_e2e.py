"""Real `waterflow-agent` processes: two queues, graceful stop, stop past the deadline."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import SUCCESS

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def _queues() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"amd64-{tag}", f"gpu-{tag}"


async def _wait_for(path: Path, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        assert loop.time() < deadline, f"{path} did not appear within {timeout}s"
        await asyncio.sleep(0.05)


async def test_two_agents_on_two_queues_each_run_their_jobs(
    client: Client, agent_process, tmp_path: Path
) -> None:
    cpu, gpu = _queues()
    # A misspelt variable configures nothing; the agent says so when it starts.
    cpu_agent = agent_process([cpu], name="cpu-agent", WATERFLOW_AGENT_TASK_QUEUE="ignored")
    agent_process([gpu], name="gpu-agent")
    warnings = [line for line in cpu_agent.lines() if '"level":"warning"' in line]
    assert any(
        "ignoring WATERFLOW_AGENT_TASK_QUEUE: it is not a configuration variable; "
        "did you mean WATERFLOW_AGENT_TASK_QUEUES?" in line
        for line in warnings
    ), cpu_agent.lines()
    spec = parse_workflow(
        f"""
name: two-queues
jobs:
  build:
    runs-on: {cpu}
    outputs: {{who: "${{{{ steps.w.outputs.agent }}}}"}}
    steps:
      - id: w
        run: echo "agent=$RUNNER_NAME" >> $GITHUB_OUTPUT
  train:
    needs: build
    runs-on: {gpu}
    steps:
      - id: w
        run: echo "agent=$RUNNER_NAME after ${{{{ needs.build.outputs.who }}}}" >> $GITHUB_OUTPUT
""",
        file="two.yaml",
    )
    handle = await start_run(client, spec)
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.status == SUCCESS, result
    assert result.jobs["build"].agent_id == "cpu-agent"
    assert result.jobs["train"].agent_id == "gpu-agent"
    assert result.jobs["train"].steps[0].outputs == {"agent": "gpu-agent after cpu-agent"}
    # Each step's log is on the agent that ran it.
    assert Path(result.jobs["train"].steps[0].log_path).is_relative_to(tmp_path / "gpu-agent")


async def test_sigterm_lets_the_running_step_finish_then_exits_0(
    client: Client, agent_process, tmp_path: Path
) -> None:
    cpu, _ = _queues()
    agent = agent_process([cpu], name="graceful", WATERFLOW_AGENT_SHUTDOWN_TIMEOUT="30s")
    started = tmp_path / "started"
    spec = parse_workflow(
        f"""
jobs:
  j:
    runs-on: {cpu}
    steps:
      - id: s
        run: touch {started}; sleep 2; echo "done=yes" >> $GITHUB_OUTPUT
""",
        file="graceful.yaml",
    )
    handle = await start_run(client, spec)
    await _wait_for(started)
    agent.signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, agent.proc.wait, 40)
    assert code == 0
    # The step's result is in Temporal; the job goes on with whichever agent polls next.
    agent_process([cpu], name="successor")
    result = await asyncio.wait_for(handle.result(), 30)
    assert result.status == SUCCESS
    assert result.jobs["j"].steps[0].outputs == {"done": "yes"}
    logs = [json.loads(line) for line in agent.lines() if line.startswith("{")]
    messages = [entry["message"] for entry in logs]
    assert "Shutdown signal received" in messages
    assert "Agent shutdown complete" in messages


async def test_sigterm_past_shutdown_timeout_exits_2_and_the_step_moves(
    client: Client, agent_process, tmp_path: Path
) -> None:
    cpu, _ = _queues()
    first = agent_process([cpu], name="leaving", WATERFLOW_AGENT_SHUTDOWN_TIMEOUT="1s")
    marker = tmp_path / "attempts"
    spec = parse_workflow(
        f"""
jobs:
  j:
    runs-on: {cpu}
    steps:
      - id: s
        run: |
          echo "$RUNNER_NAME" >> {marker}
          if [ "$RUNNER_NAME" = leaving ]; then sleep 60; fi
          echo "ran-on=$RUNNER_NAME" >> $GITHUB_OUTPUT
""",
        file="moves.yaml",
    )
    handle = await start_run(client, spec)
    await _wait_for(marker)
    first.signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, first.proc.wait, 30)
    assert code == 2
    agent_process([cpu], name="staying")
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.status == SUCCESS, result
    assert result.jobs["j"].steps[0].outputs == {"ran-on": "staying"}
    assert marker.read_text().split() == ["leaving", "staying"]
    # The step log on the new agent says why it ran there, in a new workspace.
    log = Path(result.jobs["j"].steps[0].log_path).read_text()
    assert "the workspace of job j was lost: agent leaving shut down during the step" in log


def test_agent_exits_1_with_one_line_when_temporal_is_unreachable(tmp_path: Path) -> None:
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "WATERFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1",
        "WATERFLOW_TEMPORAL_MAX_RETRIES": "1",
        "WATERFLOW_TEMPORAL_RETRY_INTERVAL": "100ms",
        "WATERFLOW_TEMPORAL_CONNECTION_TIMEOUT": "2s",
    }
    proc = subprocess.run(
        [str(BIN / "waterflow-agent"), "run", "--task-queues", "a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["level"] == "error"
    assert "cannot connect to Temporal at 127.0.0.1:1 after 2 attempts" in last["message"]
    assert "Traceback" not in proc.stdout + proc.stderr
