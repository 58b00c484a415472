"""A finished step leaves nothing for the garbage collector: its objects go when it ends.

An agent runs thousands of steps; whatever a step leaves in a reference cycle (with the
activity's context that a timer handle copies) stays in memory until a collection finds it,
and every collection then has more to walk."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from waterflow import NodeMetadata, NodeResult
from waterflow._registry import NodeRegistry, PluginSource, RegisteredNode
from waterflow.dsl.model import Pos, StepSpec
from waterflow.engine.activities import Activities
from waterflow.engine.executor import AgentRuntime
from waterflow.engine.types import StepInput


class _Quiet:
    async def execute(self, params: Any, context: Any) -> NodeResult:
        context.log.stdout("one line")
        return NodeResult(outputs={"ok": "yes"})


def _step(index: int, tmp_path: Path) -> StepInput:
    step = StepSpec(
        index=index, key=f"_{index + 1}", id=None, name=None, display_name="test/quiet",
        uses="test/quiet", with_={}, env={}, if_=None, continue_on_error=False, timeout=None,
        heartbeat_timeout=None, retry=None, pos=Pos(1, 1),
    )  # fmt: skip
    return StepInput(
        run_id="memory-run", workflow="memory", job="j", step=step,
        workspace=str(tmp_path / "ws"), temp_dir=str(tmp_path / "tmp"),
        contexts={"github": {"workflow": "memory"}, "steps": {}},
    )  # fmt: skip


def _of_a_step(thing: object) -> bool:
    """Whether `thing` is one of a step's objects: its input, its activity's context, or
    a function of Waterflow's (a closure made for the step)."""
    if isinstance(thing, StepInput | StepSpec | activity.Info):
        return True
    return isinstance(thing, types.FunctionType) and thing.__module__.startswith("waterflow")


async def test_a_finished_step_leaves_no_reference_cycles(tmp_path: Path) -> None:
    registry = NodeRegistry()
    registry.replace_plugin(
        "test",
        [
            RegisteredNode(
                NodeMetadata(name="test/quiet", version="1"),
                _Quiet,
                PluginSource("test", "test", "1"),
            )
        ],
    )
    runtime = AgentRuntime(agent_id="a", registry=registry, secrets=dict, log_dir=tmp_path / "l")
    activities = Activities(runtime, private_queue="a-private", work_dir=tmp_path / "work")
    env = ActivityEnvironment()
    # On the agent's private queue, with heartbeats: as a step the agent holds runs.
    env.info = dataclasses.replace(
        env.info,
        task_queue="a-private",
        start_to_close_timeout=timedelta(hours=1),
        heartbeat_timeout=timedelta(seconds=30),
    )
    steps = [_step(i, tmp_path) for i in range(6)]
    outcome = await env.run(activities.execute_node, steps[0])  # first use: imports, caches
    assert outcome.outputs == {"ok": "yes"}
    loop = asyncio.get_running_loop()
    gc.collect()
    gc.disable()
    try:
        for inp in steps[1:]:
            await env.run(activities.execute_node, inp)
        # What a step leaves for the loop's next turn (its cleanup) runs before this.
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
        # Only what the steps left counts: the test's event loop is shared with the session's
        # agents, whose own garbage is not this test's business.
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if _of_a_step(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
    logs = sorted((tmp_path / "l").rglob("*.log"))
    assert len(logs) == 6 and all("one line" in p.read_text() for p in logs)
