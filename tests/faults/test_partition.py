"""A network partition between one agent and Temporal. Temporal and two agents each run in a
network namespace of their own, each agent joined to Temporal by a link this test creates: the
cut-off agent's step runs again on the other agent; the cut-off agent stops a step it can no
longer report on; when the link returns the agent rejoins, and a result it finished while cut
off arrives late and changes nothing."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from faultkit import (
    HEARTBEAT_TIMEOUT,
    Fleet,
    FleetAgent,
    NamespacedDevServer,
    NetworkLab,
    process_gone,
    skip_or_fail,
    submit,
    wait_until,
    why_failed,
)
from temporalio.client import Client

from waterflow.engine.converter import data_converter
from waterflow.engine.types import SUCCESS

pytestmark = pytest.mark.e2e


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for candidate in random.sample(range(1, 255), 254):
        if f"10.213.{candidate}." not in used:
            return candidate
    raise RuntimeError("no free /24 in 10.213.0.0/16")


@pytest.fixture
async def lab() -> AsyncIterator[NetworkLab]:
    problem = NetworkLab.problem()
    if problem is not None:
        skip_or_fail(problem)
    network = NetworkLab(uuid.uuid4().hex[:6], _free_subnet())
    try:
        try:
            network.open(["left", "right"])
        except RuntimeError as exc:
            skip_or_fail(f"cannot create network namespaces here: {exc}")
        yield network
    finally:
        network.close()


def _job(name: str, queue: str, marks: Path, first: str, more: str = "\n") -> str:
    """A job whose step `work` appends the agent's name to `marks`/attempts, runs the shell
    lines `first` on its first attempt only, and outputs `from` (the agent); then `more`."""
    return f"""
name: {name}
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: work
        run: |
          echo "$RUNNER_NAME" >> {marks}/attempts
          if [ "$(wc -l < {marks}/attempts)" -eq 1 ]; then{first}
          fi
          echo "from=$RUNNER_NAME" >> $GITHUB_OUTPUT{more}"""


@attrs.frozen
class Split:
    """Temporal alone in the lab's hub namespace, and agents `left` and `right` on `queue`,
    each in a namespace of its own, reaching it over its own link."""

    client: Client
    agents: dict[str, FleetAgent]
    marks: Path  # an empty directory, for the steps to leave marks in


@pytest.fixture
async def split(lab: NetworkLab, tmp_path: Path, queue: str) -> AsyncIterator[Split]:
    server = NamespacedDevServer(lab.hub, lab.server_ip(), log_file=tmp_path / "temporal.log")
    await server.start()
    fleet = Fleet(tmp_path / "agents", server.address)
    try:
        client = await Client.connect(server.address, data_converter=data_converter)
        agents = {
            a.name: a
            for a in await asyncio.gather(
                *(
                    fleet.start(
                        [queue],
                        side,
                        netns=lab.netns(side),
                        address=f"{lab.server_ip(side)}:{server.port}",
                    )
                    for side in ("left", "right")
                )
            )
        }
        marks = tmp_path / "marks"
        marks.mkdir()
        yield Split(client, agents, marks)
    finally:
        lab.heal_all()
        await fleet.stop_all()
        server.stop()


async def test_cut_off_agent_is_replaced_rejoins_and_its_late_result_is_ignored(
    split: Split, lab: NetworkLab, tmp_path: Path, queue: str
) -> None:
    client, agents, marks = split.client, split.agents, split.marks
    handle = await submit(
        client,
        _job(
            "partition",
            queue,
            marks,
            f"""
            touch {marks}/first-started
            timeout 60 sh -c 'until [ -e {marks}/cut ]; do sleep 0.05; done'
            touch {marks}/first-finished""",
            f"""
      - id: use
        run: |
          timeout 120 sh -c 'until [ -e {marks}/late-result-sent ]; do sleep 0.05; done'
          echo "saw=${{{{ steps.work.outputs.from }}}}" >> $GITHUB_OUTPUT
""",
        ),
    )
    await wait_until(lambda: (marks / "first-started").exists(), 60, "the step starting")
    cut_name = (marks / "attempts").read_text().split()[0]
    cut_off = agents[cut_name]
    other = next(a for a in agents.values() if a is not cut_off)

    lab.cut(cut_name)
    cut_at = time.monotonic()
    (marks / "cut").touch()  # the cut-off agent's step now ends, while it cannot report
    await wait_until(lambda: (marks / "first-finished").exists(), 30, "the first run ending")
    # The heartbeat timeout, then each workflow task Temporal hands to one of the cut-off
    # agent's pending polls (it cannot know they are dead) costs its 10 s task timeout.
    await wait_until(
        lambda: len((marks / "attempts").read_text().split()) == 2,
        HEARTBEAT_TIMEOUT + 60,
        "the step running again",
    )
    moved_after = time.monotonic() - cut_at
    assert (marks / "attempts").read_text().split() == [cut_name, other.name]

    lab.heal(cut_name)
    healed_at = time.monotonic()
    # Once the link is back, the SDK delivers the late result and Temporal refuses it, or the
    # old connection fails and the SDK drops it; either way it never reaches the job.
    await cut_off.wait_for("Step finished", 10)
    fate = await wait_until(
        lambda: _late_result_fate(cut_off.log_path), 120, "the late result being discarded"
    )
    discarded_after = time.monotonic() - healed_at
    (marks / "late-result-sent").touch()

    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == SUCCESS, why_failed(result)
    work, use = result.jobs["j"].steps
    assert (work.agent_id, work.attempts, work.outputs) == (
        other.name,
        2,
        {"from": other.name},
    )
    assert use.outputs == {"saw": other.name}
    assert cut_off.alive

    # The agent that was cut off serves the queue again: with the other one stopped, a new
    # job runs on it.
    other.terminate()
    assert await other.exit_code(30) == 0
    again = await submit(
        client,
        f"""
name: rejoined
jobs:
  j:
    runs-on: {queue}
    steps:
      - run: echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
        id: s
""",
    )
    rejoined = await asyncio.wait_for(again.result(), 90)
    assert rejoined.status == SUCCESS, why_failed(rejoined)
    assert rejoined.jobs["j"].steps[0].outputs == {"by": cut_name}
    print(
        f"\npartition: step moved {moved_after:.1f}s after the cut; the late result was "
        f"discarded ({fate}) {discarded_after:.1f}s after the link returned"
    )


def _late_result_fate(log: Path) -> str | None:
    """What the SDK logged of the late result: refused by Temporal (its attempt had timed out),
    or dropped when its old connection failed."""
    text = log.read_text(errors="replace")
    for line, fate in (
        ("Activity not found on completion", "refused by Temporal"),
        ("Network error while completing activity", "dropped by the SDK"),
    ):
        if line in text:
            return fate
    return None


async def test_cut_off_agent_stops_its_step_by_itself(
    split: Split, lab: NetworkLab, tmp_path: Path, queue: str
) -> None:
    """A step still running on the cut-off agent does not run on for long beside its new run:
    no heartbeat gets through, so within the step's heartbeat timeout the agent's SDK cancels
    it, and the agent stops its processes; meanwhile Temporal gives it to the other agent."""
    client, agents, marks = split.client, split.agents, split.marks
    handle = await submit(
        client,
        _job(
            "stale",
            queue,
            marks,
            f"""
            sleep 300 &
            echo $! > {marks}/sleep.pid
            wait""",
        ),
    )
    await wait_until(lambda: (marks / "sleep.pid").exists(), 60, "the step starting")
    cut_name = (marks / "attempts").read_text().split()[0]
    other = next(a for a in agents.values() if a.name != cut_name)
    stale = int((marks / "sleep.pid").read_text())
    lab.cut(cut_name)
    cut_at = time.monotonic()
    await wait_until(
        lambda: process_gone(stale), HEARTBEAT_TIMEOUT + 15, "the cut-off step stopping"
    )
    stopped_after = time.monotonic() - cut_at
    await agents[cut_name].wait_for("Step cancelled", 10)
    reasons = [
        r.get("reason") for r in agents[cut_name].records() if r.get("message") == "Step cancelled"
    ]
    assert reasons and str(reasons[0]).startswith("timed out"), reasons
    result = await asyncio.wait_for(handle.result(), HEARTBEAT_TIMEOUT + 60)
    assert result.status == SUCCESS, why_failed(result)
    assert result.jobs["j"].steps[0].outputs == {"from": other.name}
    print(f"\npartition: the cut-off agent stopped its step {stopped_after:.1f}s after the cut")
