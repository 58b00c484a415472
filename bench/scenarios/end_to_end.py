"""3. One small workflow end to end through the real CLI, cold and warm, against act.

Three `run:` steps, the second and third reading outputs of the one before, in a GitHub
workflow file both tools run unchanged (`runs-on: ubuntu-latest`; for Waterflow that is the
task queue, for act host mode). See `_cli.py` for what cold, warm and act mean. Also the same
run started in-process on the warm agent (no CLI process), which shows what the CLI's own start
costs.
"""

from __future__ import annotations

import time
import uuid

from scenarios._cli import measure
from scenarios._common import ACT_MISSING, Bench, Row, agent_process, median, p95, ratio_at_most

NAME = "end-to-end"
NEEDS_SERVER = True
TARGET = ratio_at_most(3)
QUEUE = "ubuntu-latest"

WORKFLOW = """\
name: small
on: workflow_dispatch
jobs:
  small:
    runs-on: ubuntu-latest
    steps:
      - id: one
        run: echo "value=41" >> "$GITHUB_OUTPUT"
      - id: two
        run: echo "next=$(( ${{ steps.one.outputs.value }} + 1 ))" >> "$GITHUB_OUTPUT"
      - run: test "${{ steps.two.outputs.next }}" = 42
"""


async def _in_process(bench: Bench, repeats: int) -> list[float]:
    """The same run started through the engine on a warm agent process: no CLI start."""
    from temporalio.client import Client

    from waterflow.dsl import parse_workflow
    from waterflow.engine.client import start_run
    from waterflow.engine.converter import data_converter

    spec = parse_workflow(WORKFLOW, file="small.yaml")
    client = await Client.connect(bench.address, data_converter=data_converter)
    agent = agent_process(bench, "e2e-inproc", [QUEUE])
    times: list[float] = []
    try:
        await agent.wait_for("Agent started")
        for i in range(0 if bench.sizes.warmup else 1, repeats + 1):
            started = time.perf_counter()
            handle = await start_run(client, spec, run_id=f"small-{uuid.uuid4().hex[:10]}")
            result = await handle.result()
            if result.status != "success":
                raise RuntimeError(f"in-process run ended {result.status}")
            if i:
                times.append(time.perf_counter() - started)
                bench.log(f"e2e in-process #{i}: {times[-1]:.2f}s")
    finally:
        agent.stop()
    return times


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    folder = bench.scratch("e2e-repo")
    (folder / "small.yaml").write_text(WORKFLOW)
    times = await measure(
        bench,
        "e2e",
        folder,
        "small.yaml",
        queue=QUEUE,
        cold_repeats=sizes.cli_cold_repeats,
        warm_repeats=sizes.cli_warm_repeats,
    )
    engine = await _in_process(bench, sizes.cli_warm_repeats)
    act = median(times.act) * 1000 if times.act_found else None
    act_p95 = p95(times.act) * 1000 if times.act_found else None
    act_name = "act (host mode)" if times.act_found else ACT_MISSING
    warm_n = f"3 `run:` steps, median of {sizes.cli_warm_repeats}"
    return [
        Row(
            "3 end to end",
            "`waterflow run`, warm (`waterflow up` running)",
            median(times.up) * 1000,
            "ms",
            act,
            act_name,
            p95=p95(times.up) * 1000,
            baseline_p95=act_p95,
            target=TARGET,
            note=warm_n,
        ),
        Row(
            "3 end to end",
            "`waterflow run --temporal-address`, warm (running server and agent process)",
            median(times.warm) * 1000,
            "ms",
            act,
            act_name,
            p95=p95(times.warm) * 1000,
            baseline_p95=act_p95,
            note=warm_n,
        ),
        Row(
            "3 end to end",
            "the same run started in-process (no CLI start)",
            median(engine) * 1000,
            "ms",
            act,
            act_name,
            p95=p95(engine) * 1000,
            note=warm_n,
        ),
        Row(
            "3 end to end",
            "`waterflow run`, cold (embedded dev server + agent started)",
            median(times.cold) * 1000,
            "ms",
            act,
            act_name,
            p95=p95(times.cold) * 1000,
            note=f"median of {sizes.cli_cold_repeats}",
        ),
    ]
