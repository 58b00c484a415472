"""2. Concurrent throughput: J jobs of M no-op steps at once, against J bare workflows.

Waterflow: one run of J independent jobs of M `uses: bench/noop` steps on an in-process agent.
Bare temporalio: J workflows of M no-op activities started at once, worker and starter in one
process; and again with the activities on another task queue (no eager dispatch, as for
Waterflow's steps). The figure is steps (activities) completed per second, from the start to
the last result; Waterflow's `claim_workspace` activities are not counted as steps.

The two cores are saturated here, so the CPU each side spends per step is what sets the rate:
the CPU time of this process (the agent, or the bare worker, with the starter) and of the dev
server, over each run, divided by its steps.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import baseline_temporal as bare
from temporalio.client import Client

from scenarios._common import Bench, Row, cpu_seconds, in_turn, median, paired, ratio_at_least
from scenarios._waterflow import inprocess_agent, noop_step, run_workflow, steps_workflow

NAME = "concurrent"
NEEDS_SERVER = True
# "Within 1.15× of bare temporalio": at least 1/1.15 of its throughput.
TARGET = ratio_at_least(1 / 1.15, "≥ 0.87× (1/1.15)")


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    jobs, steps = sizes.concurrent_jobs, sizes.concurrent_steps
    total = jobs * steps
    queue = f"bench-conc-{uuid.uuid4().hex[:8]}"
    bare_queue = f"bare-conc-{uuid.uuid4().hex[:8]}"
    other_queue = f"bare-cact-{uuid.uuid4().hex[:8]}"
    text = steps_workflow(queue, noop_step(), steps, jobs=jobs)
    rates: dict[str, list[float]] = {"wf": [], "bare": [], "other": []}
    cpu: dict[str, list[float]] = {"wf": [], "bare": [], "wf-server": [], "bare-server": []}

    async def timed(side: str, run: Awaitable[float]) -> float:
        """Seconds `run` took; notes the CPU per step of this process and of the server."""
        own, server = cpu_seconds(), cpu_seconds(bench.server_pid) if bench.server_pid else 0.0
        elapsed = await run
        if side in cpu:
            cpu[side].append((cpu_seconds() - own) / total * 1000)
            if bench.server_pid:
                spent = cpu_seconds(bench.server_pid) - server
                cpu[f"{side}-server"].append(spent / total * 1000)
        return elapsed

    bare_client = await Client.connect(bench.address)
    async with (
        inprocess_agent(bench, queue) as agent,
        bare.worker(bare_client, bare_queue),
        bare.activity_worker(bare_client, other_queue),
    ):
        client = agent.client
        assert client is not None
        await run_workflow(client, steps_workflow(queue, noop_step(), 2, jobs=2))  # warm-up
        await bare.run_many(bare_client, bare_queue, bare.NOOP, 2, 2)
        for rep in range(sizes.repeats):
            wf, base = await in_turn(
                rep,
                lambda: timed("wf", _seconds(run_workflow(client, text))),
                lambda: timed(
                    "bare", bare.run_many(bare_client, bare_queue, bare.NOOP, jobs, steps)
                ),
            )
            other = await bare.run_many(
                bare_client, bare_queue, bare.NOOP, jobs, steps, activity_queue=other_queue
            )
            rates["wf"].append(total / wf)
            rates["bare"].append(total / base)
            rates["other"].append(total / other)
            bench.log(
                f"concurrent #{rep + 1}: Waterflow {wf:.2f}s, bare {base:.2f}s, bare with "
                f"activities on another queue {other:.2f}s ({jobs}×{steps} steps)"
            )
    note = f"{jobs} jobs × {steps} steps, median of {sizes.repeats}"
    ratio, pairs = paired(rates["wf"], rates["bare"])
    rows = [
        Row(
            "2 concurrent",
            "no-op steps per second",
            median(rates["wf"]),
            "/s",
            median(rates["bare"]),
            "bare temporalio",
            target=TARGET,
            note=note + pairs,
            paired_ratio=ratio,
        ),
        Row(
            "2 concurrent",
            "no-op steps per second",
            median(rates["wf"]),
            "/s",
            median(rates["other"]),
            "bare, activities on another task queue",
            note=note,
        ),
        Row(
            "2 concurrent",
            "CPU per step, worker process (agent / bare worker)",
            median(cpu["wf"]),
            "ms",
            median(cpu["bare"]),
            "bare temporalio",
            note=note,
        ),
    ]
    if cpu["wf-server"]:
        rows.append(
            Row(
                "2 concurrent",
                "CPU per step, Temporal dev server",
                median(cpu["wf-server"]),
                "ms",
                median(cpu["bare-server"]),
                "bare temporalio",
                note=note,
            )
        )
    return rows


async def _seconds(run: Awaitable[tuple[float, object]]) -> float:
    return (await run)[0]
