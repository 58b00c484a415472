"""1. Sequential dispatch: one job of N steps against one bare workflow of N activities.

Waterflow: a run of one job of N identical steps (`uses: bench/noop`, then `run: "true"`) on an
in-process agent, from starting the run to its result: the run workflow, the job's child
workflow, its `claim_workspace` and N `execute_node` activities. Bare temporalio: one workflow
of N activities doing the same work (returning at once; running the same `bash -e <script>`),
worker and starter in the same process, on the same dev server, interleaved run by run.

Bare temporalio gets Temporal's eager activity dispatch: an activity on the workflow's own task
queue comes back in the reply to the workflow task that scheduled it, skipping one trip
through the server's matching. Waterflow's steps get it too while the agent deciding the job
holds its workspace (they are scheduled on the job's own queue); steps with `retry:`, and
those of a job whose workspace another agent holds, go to that agent's private queue. The third
baseline, bare activities on another task queue, shows what eager dispatch is worth. The
fourth runs the bare workflow outside Temporal's sandbox, as the agent runs Waterflow's
(`agent.workflow_sandbox: false`): the bare baseline keeps the SDK's default, the sandbox, and
against it Waterflow gains what the runner saves; this row shows the layer's cost without that.
Also one step alone end to end, which shows the fixed cost of a run; from it and the N-step
run, what each step after the first adds (the fixed cost taken out); and the no-op step with
`local: true`: a Temporal local activity in the agent deciding the job, below the floor of
remote activities by design.
"""

from __future__ import annotations

import functools
import uuid

import baseline_temporal as bare
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

from scenarios._common import Bench, Row, in_turn, median, paired, ratio_at_most
from scenarios._waterflow import (
    inprocess_agent,
    local_step,
    noop_step,
    run_workflow,
    step_cost,
    steps_workflow,
    true_step,
)

NAME = "sequential"
NEEDS_SERVER = True
TARGET = ratio_at_most(1.15)


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    n = sizes.sequential_steps
    queue = f"bench-seq-{uuid.uuid4().hex[:8]}"
    bare_queue = f"bare-seq-{uuid.uuid4().hex[:8]}"
    other_queue = f"bare-act-{uuid.uuid4().hex[:8]}"
    plain_queue = f"bare-plain-{uuid.uuid4().hex[:8]}"
    kinds = {
        "noop": (noop_step(), bare.NOOP, ""),
        "true": (true_step(), bare.SCRIPT, "true\n"),
        "local": (local_step(), bare.NOOP, ""),
    }
    times: dict[str, list[float]] = {f"{side}-{k}": [] for side in ("wf", "bare") for k in kinds}
    times["other-noop"] = []
    times["plain-noop"] = []
    one: dict[str, list[float]] = {"wf": [], "bare": []}
    bare_client = await Client.connect(bench.address)
    async with (
        inprocess_agent(bench, queue) as agent,
        bare.worker(bare_client, bare_queue),
        bare.activity_worker(bare_client, other_queue),
        # As Waterflow's agent runs its workflows by default: outside Temporal's sandbox.
        bare.worker(bare_client, plain_queue, workflow_runner=UnsandboxedWorkflowRunner()),
    ):
        client = agent.client
        assert client is not None
        # Warm-up, not measured: the first task of a workflow type imports its module in the
        # sandbox, the first step of a node imports the node.
        for step, activity, argument in kinds.values():
            await run_workflow(client, steps_workflow(queue, step, 2))
            await bare.run_sequence(bare_client, bare_queue, activity, 2, argument)
        await bare.run_sequence(bare_client, bare_queue, bare.NOOP, 2, activity_queue=other_queue)
        await bare.run_sequence(bare_client, plain_queue, bare.NOOP, 2)
        for rep in range(sizes.repeats):
            for kind, (step, activity, argument) in kinds.items():
                (wf, _), base = await in_turn(
                    rep,
                    functools.partial(run_workflow, client, steps_workflow(queue, step, n)),
                    functools.partial(
                        bare.run_sequence, bare_client, bare_queue, activity, n, argument
                    ),
                )
                times[f"wf-{kind}"].append(wf)
                times[f"bare-{kind}"].append(base)
                bench.log(
                    f"sequential {kind} #{rep + 1}: Waterflow {wf:.2f}s, bare {base:.2f}s "
                    f"({n} steps)"
                )
            other = await bare.run_sequence(
                bare_client, bare_queue, bare.NOOP, n, activity_queue=other_queue
            )
            times["other-noop"].append(other)
            bench.log(f"sequential noop #{rep + 1}: bare, activities on another queue {other:.2f}s")
            plain = await bare.run_sequence(bare_client, plain_queue, bare.NOOP, n)
            times["plain-noop"].append(plain)
            bench.log(
                f"sequential noop #{rep + 1}: bare, workflow outside the sandbox {plain:.2f}s"
            )
        cost, bare_cost = await step_cost(agent, sizes.step_cost_steps)
        for _ in range(sizes.one_step_repeats):
            wf, _ = await run_workflow(client, steps_workflow(queue, noop_step(), 1))
            one["wf"].append(wf)
            one["bare"].append(await bare.run_sequence(bare_client, bare_queue, bare.NOOP, 1))

    def per_step(key: str) -> float:
        return median(times[key]) / n * 1000

    def after_the_first(key: str, side: str) -> float:
        """What each step after the first adds to a run (ms): the run's fixed cost (for
        Waterflow its run and job workflows and the claim) taken out."""
        return (median(times[key]) - median(one[side])) / max(n - 1, 1) * 1000

    runs = f"{n} steps, median of {sizes.repeats}"
    noop_ratio, noop_pairs = paired(times["wf-noop"], times["bare-noop"])
    true_ratio, true_pairs = paired(times["wf-true"], times["bare-true"])
    return [
        Row(
            "1 sequential",
            "`uses: bench/noop`, per step",
            per_step("wf-noop"),
            "ms",
            per_step("bare-noop"),
            "bare no-op activity",
            target=TARGET,
            note=runs + noop_pairs,
            paired_ratio=noop_ratio,
        ),
        Row(
            "1 sequential",
            '`run: "true"`, per step',
            per_step("wf-true"),
            "ms",
            per_step("bare-true"),
            "bare activity `bash -e script`",
            target=TARGET,
            note=runs + true_pairs,
            paired_ratio=true_ratio,
        ),
        Row(
            "1 sequential",
            "`uses: bench/noop`, per step",
            per_step("wf-noop"),
            "ms",
            per_step("other-noop"),
            "bare no-op activity on another task queue (no eager dispatch)",
            note=runs,
        ),
        Row(
            "1 sequential",
            "`uses: bench/noop`, per step",
            per_step("wf-noop"),
            "ms",
            per_step("plain-noop"),
            "bare no-op activity, its workflow outside Temporal's sandbox as Waterflow's are",
            note=runs + "; the layer's own cost, without what the runner saves",
        ),
        Row(
            "1 sequential",
            "`uses: bench/noop` with `local: true`, per step",
            per_step("wf-local"),
            "ms",
            per_step("bare-local"),
            "bare no-op activity (Temporal's floor for remote activities)",
            note=runs + "; a local activity: below the floor by design",
        ),
        Row(
            "1 sequential",
            "`execute_node` of a no-op step, in process (no server), agent thread CPU",
            cost * 1e6,
            "µs",
            bare_cost * 1e6,
            "bare no-op activity, run the same way",
            note=f"best of 10 batches of {sizes.step_cost_steps // 10}",
        ),
        Row(
            "1 sequential",
            "one no-op step, whole run",
            median(one["wf"]) * 1000,
            "ms",
            median(one["bare"]) * 1000,
            "bare 1-activity workflow",
            note=f"median of {sizes.one_step_repeats}",
        ),
        Row(
            "1 sequential",
            "`uses: bench/noop`, each step after the first",
            after_the_first("wf-noop", "wf"),
            "ms",
            after_the_first("bare-noop", "bare"),
            "bare no-op activity",
            note=f"(median {n}-step run − median 1-step run) / {n - 1}: a run's fixed cost "
            "taken out",
        ),
    ]
