"""4. A JavaScript action step, through the real CLI, against the same action under act.

A tiny `node20` action in a folder (it appends an output to $GITHUB_OUTPUT), used as
`bench/hello@v1` and served from that folder by `--local-repository` for both tools (the warm
agent gets the same mapping through WATERFLOW_GHA_LOCAL_REPOSITORIES). A second `run:` step
checks the action's output. Rows: the whole command, warm and cold, and the action step alone
as each tool reports it (Waterflow: the step's duration in the run's result, which includes
its dispatch; act: its `executionTime`).
"""

from __future__ import annotations

from scenarios._cli import measure
from scenarios._common import ACT_MISSING, Bench, Row, median, p95

NAME = "js-action"
NEEDS_SERVER = True
ACTION = "bench/hello@v1"

ACTION_YML = """\
name: hello
description: a tiny JavaScript action for the benchmark
inputs:
  who:
    default: world
outputs:
  greeting:
    description: the greeting
runs:
  using: node20
  main: index.js
"""

INDEX_JS = """\
const fs = require("fs");
const who = process.env["INPUT_WHO"] || "world";
fs.appendFileSync(process.env["GITHUB_OUTPUT"], `greeting=hello ${who}\\n`);
console.log(`hello ${who}`);
"""

WORKFLOW = """\
name: js
on: workflow_dispatch
jobs:
  js:
    runs-on: ubuntu-latest
    steps:
      - id: hello
        uses: bench/hello@v1
        with:
          who: bench
      - run: test "${{ steps.hello.outputs.greeting }}" = "hello bench"
"""


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    action = bench.scratch("js-action")
    (action / "action.yml").write_text(ACTION_YML)
    (action / "index.js").write_text(INDEX_JS)
    folder = bench.scratch("js-repo")
    (folder / "js.yaml").write_text(WORKFLOW)
    times = await measure(
        bench,
        "js",
        folder,
        "js.yaml",
        queue="ubuntu-latest",
        cold_repeats=sizes.cli_cold_repeats,
        warm_repeats=sizes.cli_warm_repeats,
        local_repository=f"{ACTION}={action}",
    )
    found = times.act_found

    def act(values: list[float]) -> float | None:
        return median(values) * 1000 if found and values else None

    act_name = "act (host mode)" if found else ACT_MISSING
    n = f"median of {sizes.cli_warm_repeats}"
    return [
        Row(
            "4 JS action",
            "the action step alone, as each tool reports it",
            median(times.wf_steps[ACTION]) * 1000,
            "ms",
            act(times.act_steps.get(ACTION, [])),
            "act's `executionTime`" if found else ACT_MISSING,
            note=n,
        ),
        Row(
            "4 JS action",
            "`waterflow run`, warm (`waterflow up` running)",
            median(times.up) * 1000,
            "ms",
            act(times.act),
            act_name,
            p95=p95(times.up) * 1000,
            baseline_p95=p95(times.act) * 1000 if found else None,
            note=n,
        ),
        Row(
            "4 JS action",
            "`waterflow run --temporal-address`, warm",
            median(times.warm) * 1000,
            "ms",
            act(times.act),
            act_name,
            p95=p95(times.warm) * 1000,
            baseline_p95=p95(times.act) * 1000 if found else None,
            note=n,
        ),
        Row(
            "4 JS action",
            "`waterflow run --local-repository`, cold",
            median(times.cold) * 1000,
            "ms",
            act(times.act),
            act_name,
            note=f"median of {sizes.cli_cold_repeats}",
        ),
    ]
