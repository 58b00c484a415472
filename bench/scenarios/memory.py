"""7. Memory: the RSS of a real agent process, idle and with N steps sleeping at once.

Waterflow: a `waterflow-agent run` process (every node package installed); its VmRSS from
/proc/<pid>/status once it has started and settled, then while a run of N one-step jobs
(`run: sleep 60`) has all N steps running (its log shows N "Step started"); the run is then
terminated. Baseline: a bare temporalio worker process (bench/baseline_temporal.py), idle and
while N one-activity workflows each run `sleep 60` as a child process. Only the agent's (or
worker's) own process is measured, not the step processes.
"""

from __future__ import annotations

import asyncio
import uuid

import baseline_temporal as bare_wf
from temporalio.client import Client

from scenarios._common import Bench, Proc, Row, agent_process, bare_process, below, median

NAME = "memory"
NEEDS_SERVER = True
TARGET = below(120, "MB")
SLEEP = "60"


async def sample(proc: Proc, times: int = 5, every: float = 0.2) -> float:
    """The median of a few VmRSS readings, in MB."""
    values = []
    for _ in range(times):
        values.append(proc.rss_mb())
        await asyncio.sleep(every)
    return median(values)


def sleeping_workflow(queue: str, jobs: int) -> str:
    lines = ["name: sleepers", "on: workflow_dispatch", "jobs:"]
    for j in range(jobs):
        lines += [f"  s{j}:", f"    runs-on: {queue}", "    steps:", f"      - run: sleep {SLEEP}"]
    return "\n".join(lines) + "\n"


async def _waterflow(bench: Bench, n: int, settle: float) -> tuple[float, float]:
    from waterflow.dsl import parse_workflow
    from waterflow.engine.client import start_run
    from waterflow.engine.converter import data_converter

    queue = f"bench-mem-{uuid.uuid4().hex[:8]}"
    client = await Client.connect(bench.address, data_converter=data_converter)
    agent = agent_process(bench, "memory", [queue], WATERFLOW_AGENT_STEP_HEARTBEAT_INTERVAL="1s")
    handle = None
    try:
        await agent.wait_for("Agent started")
        await asyncio.sleep(settle)
        idle = await sample(agent)
        spec = parse_workflow(sleeping_workflow(queue, n), file="sleepers.yaml")
        handle = await start_run(client, spec, run_id=f"sleepers-{uuid.uuid4().hex[:10]}")
        await agent.wait_for('"Step started"', times=n, timeout=180)
        busy = await sample(agent)
    finally:
        if handle is not None:
            await handle.terminate("benchmark done")
        agent.stop()
    return idle, busy


async def _bare(bench: Bench, n: int, settle: float) -> tuple[float, float]:
    queue = f"bare-mem-{uuid.uuid4().hex[:8]}"
    client = await Client.connect(bench.address)
    worker = bare_process(bench, queue)
    ids: list[str] = []
    try:
        await worker.wait_for("Worker started")
        await asyncio.sleep(settle)
        idle = await sample(worker)
        ids = await bare_wf.start_many(client, queue, bare_wf.SLEEP, n, SLEEP)
        await worker.wait_for("Activity started", times=n, timeout=180)
        busy = await sample(worker)
    finally:
        await asyncio.gather(
            *(client.get_workflow_handle(i).terminate("benchmark done") for i in ids),
            return_exceptions=True,
        )
        worker.stop()
    return idle, busy


async def run(bench: Bench) -> list[Row]:
    n = bench.sizes.memory_concurrent
    settle = 3.0 if n >= 10 else 0.5
    wf_idle, wf_busy = await _waterflow(bench, n, settle)
    bench.log(f"memory: agent {wf_idle:.1f} MB idle, {wf_busy:.1f} MB with {n} steps")
    bare_idle, bare_busy = await _bare(bench, n, settle)
    bench.log(f"memory: bare worker {bare_idle:.1f} MB idle, {bare_busy:.1f} MB with {n}")
    return [
        Row(
            "7 memory",
            "agent RSS, idle",
            wf_idle,
            "MB",
            bare_idle,
            "bare worker process",
            target=TARGET,
            note="all node packages installed",
        ),
        Row(
            "7 memory",
            f"agent RSS, {n} steps sleeping at once",
            wf_busy,
            "MB",
            bare_busy,
            f"bare worker, {n} activities running `sleep`",
        ),
    ]
