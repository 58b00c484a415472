"""The real `waterflow run` CLI against act on one workflow file (scenarios 3 and 4).

- cold: `waterflow run FILE` with the embedded default: a dev server and an in-process agent
  are started by the command (both included in its time);
- up: `waterflow run FILE` while `waterflow up` runs (the embedded default kept running: its
  dev server, agent and plugins are up; the command hands the run to it over a Unix socket);
- warm: `waterflow run FILE --temporal-address A` while the shared dev server runs and a real
  `waterflow-agent run` process polls the file's queue;
- act: `act workflow_dispatch -W FILE -P ubuntu-latest=-self-hosted` (host mode) in the same
  folder, a git repository.

Each command is run once untimed first (caches), then timed from spawn to exit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scenarios._common import (
    BIN,
    Bench,
    agent_process,
    clean_environ,
    find_act,
    git_repo,
    timed_command,
)


@dataclass
class CliTimes:
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    up: list[float] = field(default_factory=list)
    act: list[float] = field(default_factory=list)
    #: Per step name: Waterflow's step durations (warm runs, from `--json`) and act's
    #: `executionTime` (from `--json`), in seconds.
    wf_steps: dict[str, list[float]] = field(default_factory=dict)
    act_steps: dict[str, list[float]] = field(default_factory=dict)
    act_found: bool = True


def _waterflow_steps(output: str, into: dict[str, list[float]]) -> None:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON result from waterflow run:\n{output[-2000:]}")
    result = json.loads(lines[-1])
    if result.get("status") != "success":
        raise RuntimeError(f"waterflow run ended {result.get('status')}")
    for job in result["jobs"].values():
        for step in job["steps"]:
            into.setdefault(step["uses"], []).append(float(step.get("duration") or 0.0))


def _act_steps(output: str, into: dict[str, list[float]]) -> None:
    for line in output.splitlines():
        if not line.startswith("{") or "executionTime" not in line:
            continue
        record = json.loads(line)
        if record.get("stage") == "Main":
            into.setdefault(record["step"], []).append(record["executionTime"] / 1e9)


async def measure(
    bench: Bench,
    name: str,
    folder: Path,
    workflow: str,
    *,
    queue: str,
    cold_repeats: int,
    warm_repeats: int,
    local_repository: str | None = None,
) -> CliTimes:
    """Time the workflow file `folder/workflow` cold, warm and under act."""
    git_repo(folder)
    times = CliTimes()
    waterflow = str(BIN / "waterflow")
    up_dir = bench.scratch(f"{name}-up")

    def cli_env(tag: str, **extra: str) -> dict[str, str]:
        home = bench.scratch(f"{name}-cli-{tag}")
        return clean_environ(
            **extra,
            # Never a `waterflow up` of the machine's user: only the one started below.
            WATERFLOW_UP_DIR=str(up_dir),
            WATERFLOW_EMBEDDED_DIR=str(home / "embedded"),
            WATERFLOW_AGENT_WORK_DIR=str(home / "work"),
            WATERFLOW_LOG_OUTPUT_PATH=str(home / "logs"),
            WATERFLOW_AGENT_PLUGIN_DIR=str(home / "plugins"),
        )

    cold = [waterflow, "run", workflow]
    if local_repository:
        cold += ["--local-repository", local_repository]
    first = 0 if bench.sizes.warmup else 1
    for i in range(first, cold_repeats + 1):
        elapsed, _ = await timed_command(cold, cwd=folder, env=cli_env(f"cold{i}"))
        if i:
            times.cold.append(elapsed)
            bench.log(f"{name} cold #{i}: {elapsed:.2f}s")

    settings = {"WATERFLOW_GHA_LOCAL_REPOSITORIES": local_repository} if local_repository else {}
    # `waterflow up` gets the action folder in its environment, as its agent's steps do.
    await timed_command([waterflow, "up", "--detach"], cwd=folder, env=cli_env("up", **settings))
    try:
        for i in range(first, warm_repeats + 1):
            elapsed, out = await timed_command(
                [waterflow, "run", workflow, "--json"], cwd=folder, env=cli_env("up")
            )
            if i:
                times.up.append(elapsed)
                bench.log(f"{name} up #{i}: {elapsed:.3f}s")
    finally:
        await timed_command([waterflow, "down"], cwd=folder, env=cli_env("up"))

    agent = agent_process(bench, f"{name}-warm", [queue], **settings)
    try:
        await agent.wait_for("Agent started")
        warm = [waterflow, "run", workflow, "--temporal-address", bench.address, "--json"]
        for i in range(first, warm_repeats + 1):
            elapsed, out = await timed_command(warm, cwd=folder, env=cli_env("warm"))
            if i:
                times.warm.append(elapsed)
                _waterflow_steps(out, times.wf_steps)
                bench.log(f"{name} warm #{i}: {elapsed:.2f}s")
    finally:
        agent.stop()

    act = find_act()
    if act is None:
        times.act_found = False
        return times
    argv = [
        act,
        "workflow_dispatch",
        "-W",
        workflow,
        "-P",
        "ubuntu-latest=-self-hosted",
        "--no-cache-server",
        "--json",
    ]
    if local_repository:
        argv += ["--local-repository", local_repository]
    for i in range(first, warm_repeats + 1):
        elapsed, out = await timed_command(argv, cwd=folder, env=clean_environ())
        if '"jobResult":"success"' not in out and "Job succeeded" not in out:
            raise RuntimeError(f"act did not succeed:\n{out[-2000:]}")
        if i:
            times.act.append(elapsed)
            _act_steps(out, times.act_steps)
            bench.log(f"{name} act #{i}: {elapsed:.2f}s")
    return times
