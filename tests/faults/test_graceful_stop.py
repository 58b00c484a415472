"""SIGTERM while 50 steps run: they finish within shutdown_timeout, the agent starts no new step
(the next steps of its jobs are refused unstarted and move at once), it exits 0, and a second
agent takes the queue."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from faultkit import HEARTBEAT_TIMEOUT, Fleet, submit, wait_until, why_failed
from temporalio.client import Client

from waterflow.engine.types import SUCCESS, StepDefaults

pytestmark = pytest.mark.e2e

STEPS = 50
SHUTDOWN_TIMEOUT = 30.0


async def test_sigterm_under_load_finishes_running_steps_and_hands_over(
    client: Client, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    started.mkdir()
    leaving = await fleet.start(
        [queue], "leaving", WATERFLOW_AGENT_SHUTDOWN_TIMEOUT=f"{SHUTDOWN_TIMEOUT:g}s"
    )
    # The default pickup timeout (60 s): a job whose next step waited for the stopped agent
    # would take that long; refused steps move at once.
    defaults = StepDefaults(heartbeat_timeout=HEARTBEAT_TIMEOUT)
    text = f"""
name: drain
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: long
        run: |
          touch {started}/$GITHUB_RUN_ID
          timeout 60 sh -c 'until [ -e {tmp_path}/release ]; do sleep 0.1; done'
          echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
      - id: next
        run: echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
"""
    handles = await asyncio.gather(
        *(submit(client, text, defaults=defaults, name="drain.yaml") for _ in range(STEPS))
    )
    await wait_until(
        lambda: len(list(started.iterdir())) == STEPS, 90, f"{STEPS} steps running at once"
    )
    successor = await fleet.start([queue], "successor")

    signalled = time.monotonic()
    leaving.terminate()
    await leaving.wait_for("Shutdown signal received", 10)
    (tmp_path / "release").touch()  # the running steps may finish now
    code = await leaving.exit_code(SHUTDOWN_TIMEOUT + 10)
    stopped_after = time.monotonic() - signalled
    assert code == 0, leaving.messages()[-10:]
    assert stopped_after < SHUTDOWN_TIMEOUT

    # A job submitted now runs on the agent that stays.
    late = await submit(client, text.replace("name: drain", "name: late"), defaults=defaults)
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in [*handles, late])), 45)
    done_after = time.monotonic() - signalled
    failed = [why_failed(r) for r in results if r.status != SUCCESS]
    assert not failed, failed
    for result in results[:STEPS]:
        long, following = result.jobs["j"].steps
        assert (long.agent_id, long.attempts, long.outputs) == ("leaving", 1, {"by": "leaving"})
        assert following.outputs == {"by": "successor"}
        note = Path(following.log_path).read_text()
        assert "agent leaving was stopping and did not start the step" in note
    assert {s.agent_id for s in results[-1].jobs["j"].steps} == {"successor"}
    # Nothing started on the leaving agent after the signal.
    messages = leaving.messages()
    after_signal = messages[messages.index("Shutdown signal received") :]
    assert "Step started" not in after_signal
    refused = after_signal.count("Step refused: the agent is stopping")
    print(
        f"\nSIGTERM with {STEPS} steps running: exit 0 after {stopped_after:.1f}s; "
        f"{refused} next steps refused and moved; all jobs done {done_after:.1f}s after SIGTERM"
    )
    assert refused == STEPS
    assert successor.alive
