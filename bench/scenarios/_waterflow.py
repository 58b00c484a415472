"""Waterflow's side of the dispatch scenarios: an in-process agent (as `waterflow run`'s
embedded default runs it) with the installed node packages and a trivial `bench/noop` node
loaded from its plugin directory, and workflows of N steps started through the engine."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import Client

from scenarios._common import Bench
from waterflow import _logging
from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import SUCCESS, RunResult

NOOP_NODE = "bench/noop"

NOOP_PLUGIN = '''\
"""The benchmark's no-op node: returns at once."""

from waterflow import NodeMetadata, NodeResult, hookimpl

__version__ = "1.0"


class Noop:
    async def execute(self, params, context):
        return NodeResult()


@hookimpl
def node_metadata():
    return [NodeMetadata(name="bench/noop", version=__version__)]


@hookimpl
def register_nodes(registry):
    registry.add("bench/noop", Noop)
'''


def plugin_dir(bench: Bench) -> Path:
    """A plugin directory holding the no-op node (private to us, as the agent requires)."""
    folder = bench.scratch("plugins")
    folder.chmod(0o755)
    path = folder / "bench_noop.py"
    if not path.exists():
        path.write_text(NOOP_PLUGIN)
        path.chmod(0o644)
    return folder


@contextlib.asynccontextmanager
async def inprocess_agent(bench: Bench, queue: str) -> AsyncIterator[Agent]:
    """An agent in this process on `queue`, logging JSON lines to a file as a real agent
    logs them to stdout (the formatting and writing are part of the cost)."""
    home = bench.scratch(f"inproc-{queue}")
    log = (home / "agent.log").open("w")
    _logging.setup_logging(level="info", fmt="json", stream=log)
    config = load_config(
        None,
        environ={},
        overrides={
            "temporal.address": bench.address,
            "agent.id": f"bench-{queue}",
            "agent.task_queues": [queue],
            "agent.work_dir": str(home / "work"),
            "agent.plugin_dir": str(plugin_dir(bench)),
            "log.output_path": str(home / "logs"),
            "agent.shutdown_timeout": "5s",
        },
    )
    agent = Agent(config)
    await agent.start()
    try:
        yield agent
    finally:
        await agent.shutdown()
        _logging.setup_logging(level="warning", fmt="console")
        log.close()


def steps_workflow(queue: str, step: str, steps: int, jobs: int = 1) -> str:
    """A workflow of `jobs` independent jobs of `steps` identical steps each."""
    lines = ["name: bench", "on: workflow_dispatch", "jobs:"]
    for j in range(jobs):
        lines += [f"  job{j}:", f"    runs-on: {queue}", "    steps:"]
        lines += [f"      - {step}"] * steps
    return "\n".join(lines) + "\n"


def noop_step() -> str:
    return f"uses: {NOOP_NODE}"


def local_step() -> str:
    """The no-op node as a Temporal local activity (`local: true`)."""
    return f"{{uses: {NOOP_NODE}, local: true}}"


def true_step() -> str:
    return 'run: "true"'


async def run_workflow(client: Client, text: str) -> tuple[float, RunResult]:
    """Seconds from starting the run to its result, and the result (which must succeed)."""
    spec = parse_workflow(text, file="bench.yaml")
    started = time.perf_counter()
    handle = await start_run(client, spec, run_id=f"bench-{uuid.uuid4().hex[:12]}")
    result: RunResult = await handle.result()
    elapsed = time.perf_counter() - started
    if result.status != SUCCESS:
        errors = [
            step.error or job.error
            for job in result.jobs.values()
            for step in (job.steps or [])
            if step.error or job.error
        ]
        raise RuntimeError(f"bench run ended {result.status}: {errors[:3]}")
    return elapsed, result
