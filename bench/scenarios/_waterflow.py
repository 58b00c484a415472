"""Waterflow's side of the dispatch scenarios: an in-process agent (as `waterflow run`'s
embedded default runs it) with the installed node packages and a trivial `bench/noop` node
loaded from its plugin directory, and workflows of N steps started through the engine."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from scenarios._common import Bench
from waterflow import _logging
from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent
from waterflow.dsl import parse_workflow
from waterflow.dsl.model import Pos, StepSpec
from waterflow.engine.client import start_run
from waterflow.engine.types import SUCCESS, RunResult, StepInput

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


async def step_cost(agent: Agent, steps: int) -> tuple[float, float]:
    """Thread CPU seconds a no-op step costs in `agent`'s `execute_node`, and a bare no-op
    activity run the same way: both through temporalio's ActivityEnvironment (no server, no
    payloads), the best of 10 batches, so that what is left is the agent's own work a step
    (its log file and lines, environment, parameters, masking)."""
    activities = agent.activities
    assert activities is not None
    home = activities.work_dir / "step-cost"
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, task_queue=agent.private_queue, start_to_close_timeout=timedelta(hours=1)
    )
    run_id = f"bench-{uuid.uuid4().hex[:12]}"

    def step_input(index: int) -> StepInput:
        key = f"_{index + 1}"
        step = StepSpec(
            index=index, key=key, id=None, name=None, display_name=NOOP_NODE, uses=NOOP_NODE,
            with_={}, env={}, if_=None, continue_on_error=False, timeout=None,
            heartbeat_timeout=None, retry=None, pos=Pos(1, 1),
        )  # fmt: skip
        github = {"workflow": "bench", "run_id": run_id, "event_name": "workflow_dispatch"}
        contexts = {"inputs": {}, "needs": {}, "github": github, "steps": {}}
        return StepInput(
            run_id=run_id, workflow="bench", job="job0", step=step,
            workspace=str(home / "ws"), temp_dir=str(home / "tmp"), contexts=contexts,
        )  # fmt: skip

    @activity.defn(name="bench_noop_in_process")
    async def bare_noop(inp: StepInput) -> None:
        return None

    async def best(run: Callable[[int], Awaitable[object]]) -> float:
        per_batch = max(steps // 10, 1)
        times = []
        for batch in range(10):
            started = time.thread_time()
            for i in range(per_batch):
                await run(batch * per_batch + i)
            times.append((time.thread_time() - started) / per_batch)
        return min(times)

    inputs = [step_input(i) for i in range(max(steps // 10, 1) * 10)]
    for i in range(min(20, len(inputs))):  # warm-up: the node's first step imports it
        await env.run(activities.execute_node, inputs[i])
    wf = await best(lambda i: env.run(activities.execute_node, inputs[i]))
    base = await best(lambda i: env.run(bare_noop, inputs[i]))
    return wf, base
