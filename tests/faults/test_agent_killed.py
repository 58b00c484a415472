"""An agent killed with SIGKILL in the middle of a step: the step runs again on another agent of
the queue within its heartbeat timeout (plus the claim of a new workspace), even when the step
has a retry policy of its own; the job completes, and the killed agent's step processes do not
outlive it. Then 20 kills across a stream of jobs."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from faultkit import (
    HEARTBEAT_TIMEOUT,
    Fleet,
    FleetAgent,
    percentile,
    process_gone,
    result_of,
    submit,
    wait_until,
    why_failed,
)
from temporalio.client import Client

from waterflow.agent._reaper import GRACE_PERIOD
from waterflow.engine.types import SUCCESS, StepDefaults

pytestmark = pytest.mark.e2e

# The step runs again once Temporal notices the silence (the heartbeat timeout) and the job has
# claimed a workspace on another agent; this bounds that second part on a loaded machine.
RECOVERY_SLACK = 4.0


async def test_sigkill_mid_step_moves_the_step_and_kills_its_processes(
    client: Client, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    agents = {
        a.name: a
        for a in await asyncio.gather(
            fleet.start([queue], "kill-a"), fleet.start([queue], "kill-b")
        )
    }
    marks = tmp_path / "marks"
    marks.mkdir()
    handle = await submit(
        client,
        f"""
name: killed
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: prepare
        run: echo "prepared=$RUNNER_NAME" >> $GITHUB_OUTPUT
      - id: work
        retry: {{max_attempts: 3, initial_interval: 1s}}
        run: |
          echo "$RUNNER_NAME $(date +%s.%N)" >> {marks}/attempts
          if [ "$(wc -l < {marks}/attempts)" -eq 1 ]; then
            sleep 300 &
            echo $! > {marks}/sleep.pid
            echo $$ > {marks}/shell.pid
            wait
          fi
          echo "ran-on=$RUNNER_NAME" >> $GITHUB_OUTPUT
      - id: after
        run: echo "after=$RUNNER_NAME" >> $GITHUB_OUTPUT
""",
        # The default pickup timeout (60 s): were the heartbeat timeout retried by Temporal on
        # the killed agent's own queue, the step would wait that long before moving.
        defaults=StepDefaults(heartbeat_timeout=HEARTBEAT_TIMEOUT),
    )

    def pids_written() -> bool:
        # The shell writes each file as it goes: wait until both hold a whole line.
        files = [marks / "sleep.pid", marks / "shell.pid"]
        return all(f.exists() and f.read_text().endswith("\n") for f in files)

    await wait_until(pids_written, 60, "the step starting")
    victim_name = (marks / "attempts").read_text().split()[0]
    victim, survivor = (
        agents[victim_name],
        next(a for a in agents.values() if a.name != victim_name),
    )
    pids = [int((marks / f).read_text()) for f in ("shell.pid", "sleep.pid")]
    killed_at = time.time()
    victim.kill()

    # The step's processes die with their agent (its reaper stops them).
    await wait_until(
        lambda: all(process_gone(p) for p in pids), GRACE_PERIOD + 5, "the step's processes dying"
    )
    result = await result_of(handle, 90)
    assert result.status == SUCCESS, result
    job = result.jobs["j"]
    steps = {s.key: s for s in job.steps}
    assert steps["prepare"].outputs == {"prepared": victim.name}
    assert steps["prepare"].attempts == 1  # a finished step is never run again
    assert steps["work"].outputs == {"ran-on": survivor.name}
    assert steps["work"].attempts == 2
    assert steps["after"].outputs == {"after": survivor.name}
    assert job.agent_id == survivor.name
    attempts = [line.split() for line in (marks / "attempts").read_text().splitlines()]
    assert [who for who, _ in attempts] == [victim.name, survivor.name]
    recovery = float(attempts[1][1]) - killed_at
    print(f"\nSIGKILL mid-step: the step ran again {recovery:.2f}s after the kill")
    assert recovery < HEARTBEAT_TIMEOUT + RECOVERY_SLACK
    log = Path(steps["work"].log_path).read_text()
    assert (
        f"the workspace of job j was lost: agent {victim.name} stopped answering during the "
        "step (heartbeat timeout)" in log
    )
    assert survivor.alive


async def test_twenty_kills_across_a_stream_of_jobs_lose_nothing(
    client: Client, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    """Three agents serve the queue while a job arrives every second; every 2 seconds, 20 times,
    one of the agents that are running steps is killed, and a new one started in its place.
    Every job completes, and every step that was running on a killed agent runs again."""
    kills, kill_every, job_every = 20, 2.0, 1.0
    chance = random.Random(6)
    marks = tmp_path / "marks"
    marks.mkdir()
    serial = 0

    def name() -> str:
        nonlocal serial
        serial += 1
        return f"chaos-{serial}"

    live: list[FleetAgent] = list(
        await asyncio.gather(*(fleet.start([queue], name()) for _ in range(3)))
    )
    text = f"""
name: stream
jobs:
  j:
    runs-on: {queue}
    steps:
""" + "".join(
        f"""      - id: s{i}
        run: |
          m={marks}/$GITHUB_RUN_ID.s{i}
          echo "start $RUNNER_NAME $(date +%s.%N)" >> $m
          sleep 2
          echo "end $RUNNER_NAME $(date +%s.%N)" >> $m
          echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
"""
        for i in range(3)
    )

    handles = []
    kills_done = asyncio.Event()

    async def feed() -> None:
        while not kills_done.is_set():
            handles.append(await submit(client, text, name="stream.yaml"))
            await asyncio.sleep(job_every)  # the stream's pace

    def running_on(agent: FleetAgent) -> list[str]:
        """Marks of steps started on `agent` and not finished."""
        out = []
        for mark in marks.iterdir():
            events = [line.split() for line in mark.read_text().splitlines()]
            if events and events[-1][:2] == ["start", agent.name]:
                out.append(mark.name)
        return out

    feeder = asyncio.create_task(feed())
    killed: list[tuple[str, float, str]] = []  # (mark, kill time, victim)
    try:
        for _ in range(kills):

            def busy_agents() -> list[FleetAgent]:
                return [a for a in live if running_on(a)]

            busy = chance.choice(await wait_until(busy_agents, 60, "an agent running a step"))
            steps = running_on(busy)
            at = time.time()
            busy.kill()
            live.remove(busy)
            killed += [(mark, at, busy.name) for mark in steps]
            live.append(fleet.launch([queue], name()))  # starts while the chaos goes on
            await asyncio.sleep(kill_every)  # the chaos' pace
    finally:
        kills_done.set()
        await feeder
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    lost = [why_failed(r) for r in results if r.status != SUCCESS]
    assert not lost, f"{len(lost)} jobs did not succeed: {lost}"
    jobs_total = len(results)

    recoveries = []
    for mark, at, victim in killed:
        events = [line.split() for line in (marks / mark).read_text().splitlines()]
        if any(kind == "end" and who == victim and float(t) <= at for kind, who, t in events):
            # Its script ended between the look at the marks and the kill: the step may have
            # completed, and then it rightly never runs again.
            continue
        later = [float(t) for kind, who, t in events if kind == "start" and float(t) > at]
        assert later, f"{mark} (on {victim}) never ran again"
        recoveries.append(later[0] - at)
    p50, p95, top = (percentile(recoveries, q) for q in (50, 95, 100))
    print(
        f"\n{kills} kills, {jobs_total} jobs, {len(recoveries)} interrupted steps: "
        f"recovery p50 {p50:.2f}s, p95 {p95:.2f}s, max {top:.2f}s"
    )
    # Typically the heartbeat timeout and a claim; the tail is steps whose new agent was also
    # killed (or that took a job's workflow task down with it) before they could start again.
    assert p50 < HEARTBEAT_TIMEOUT + RECOVERY_SLACK + 2.0
