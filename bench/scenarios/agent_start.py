"""5. Agent start to first poll, and import time by package.

A real `waterflow-agent run` process, with every first-party node package installed, from spawn
to its "Agent started" log line (its workers are then polling), with the phases its own log
lines mark: "Configuration loaded" (imports and configuration), "Nodes loaded" (plugins) and
"Agent started" (connect, search attributes, workers). Baseline: a bare temporalio worker
process (bench/baseline_temporal.py) from spawn to its "Worker started" line. Each is started
once untimed first (bytecode caches).

Import time: `python -X importtime -c "import <the agent's modules and the node packages>"`,
its self times summed by package (by subpackage for `waterflow`), against
`import temporalio.client, temporalio.worker`.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import uuid

from scenarios._common import (
    Bench,
    Row,
    agent_process,
    bare_process,
    below,
    clean_environ,
    median,
    p95,
)

NAME = "agent-start"
NEEDS_SERVER = True
TARGET = below(1000, "ms")
TOP = 6

AGENT_IMPORTS = (
    "waterflow.agent.cli",
    "waterflow.agent._run",
    "waterflow_nodes_shell",
    "waterflow_nodes_docker",
    "waterflow_nodes_gha",
    "waterflow_nodes_slack",
)
BARE_IMPORTS = ("temporalio.client", "temporalio.worker")
PHASES = ("Configuration loaded", "Nodes loaded", "Agent started")


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "waterflow" and len(parts) > 1 else parts[0]


async def import_times(modules: tuple[str, ...]) -> tuple[float, dict[str, float]]:
    """Total import time (ms) of `modules` in a fresh interpreter, and self time by package."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "importtime",
        "-c",
        "import " + ", ".join(modules),
        env=clean_environ(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"importing {modules} failed:\n{err.decode()[-2000:]}")
    by_package: dict[str, float] = collections.defaultdict(float)
    for line in err.decode().splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:") :].split("|")
        by_package[package_of(fields[2].strip())] += int(fields[0]) / 1000
    return sum(by_package.values()), dict(by_package)


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    queue = f"bench-start-{uuid.uuid4().hex[:8]}"
    phases: dict[str, list[float]] = {p: [] for p in PHASES}
    bare: list[float] = []
    for i in range(0 if sizes.warmup else 1, sizes.agent_start_repeats + 1):
        agent = agent_process(bench, f"start{i}", [queue])
        try:
            moments = [await agent.wait_for(phase) for phase in PHASES]
        finally:
            agent.stop()
        worker = bare_process(bench, queue)
        try:
            ready = await worker.wait_for("Worker started")
        finally:
            worker.stop()
        if i:
            for phase, moment in zip(PHASES, moments, strict=True):
                phases[phase].append(moment * 1000)
            bare.append(ready * 1000)
            bench.log(f"agent start #{i}: {moments[-1]:.2f}s (bare worker {ready:.2f}s)")

    totals: list[float] = []
    bare_totals: list[float] = []
    packages: dict[str, list[float]] = collections.defaultdict(list)
    if sizes.warmup:
        await import_times(AGENT_IMPORTS)  # untimed: bytecode caches
    for _ in range(sizes.import_repeats):
        total, by_package = await import_times(AGENT_IMPORTS)
        totals.append(total)
        for name, ms in by_package.items():
            packages[name].append(ms)
        bare_totals.append((await import_times(BARE_IMPORTS))[0])

    n = f"median of {sizes.agent_start_repeats}"
    ready = phases["Agent started"]
    rows = [
        Row(
            "5 agent start",
            "spawn → “Agent started” (polling)",
            median(ready),
            "ms",
            median(bare),
            "bare worker process → “Worker started”",
            p95=p95(ready),
            baseline_p95=p95(bare),
            target=TARGET,
            note=f"all node packages installed, {n}",
        ),
        Row(
            "5 agent start",
            "  phase: spawn → “Configuration loaded” (imports, config)",
            median(phases["Configuration loaded"]),
            "ms",
            note=n,
        ),
        Row(
            "5 agent start",
            "  phase: → “Nodes loaded” (plugins)",
            median(phases["Nodes loaded"]) - median(phases["Configuration loaded"]),
            "ms",
            note=n,
        ),
        Row(
            "5 agent start",
            "  phase: → “Agent started” (connect, search attributes, workers)",
            median(ready) - median(phases["Nodes loaded"]),
            "ms",
            note=n,
        ),
        Row(
            "5 import time",
            "agent modules + 4 node packages, total",
            median(totals),
            "ms",
            median(bare_totals),
            "`import temporalio.client, temporalio.worker`",
            note=f"-X importtime, median of {sizes.import_repeats}",
        ),
    ]
    top = sorted(packages.items(), key=lambda kv: -median(kv[1]))[:TOP]
    for name, values in top:
        rows.append(Row("5 import time", f"  `{name}` (self time)", median(values), "ms"))
    return rows
