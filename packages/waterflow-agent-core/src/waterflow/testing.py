"""Testing helpers for node authors, shipped as a pytest plugin (`-p waterflow.testing` is
automatic once waterflow-agent is installed).

`run_node` runs a step through the very code the agent runs (`execute_node`: expression
resolution, parameter checks, env files, masking), inside Temporal's `ActivityEnvironment`,
without a server::

    async def test_greet(tmp_path, waterflow_registry):
        waterflow_registry.add_plugin(my_plugin_module)
        outcome = await run_node(
            "hello/greet", {"who": "world"}, registry=waterflow_registry, workspace=tmp_path
        )
        assert outcome.outputs["greeting"] == "hello world"

A failing step raises `temporalio.exceptions.ApplicationError` whose message is the step's error
and log tail, as in a real run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from waterflow._plugins import install_plugin
from waterflow._registry import NodeRegistry, PluginSource
from waterflow.dsl.model import Pos, StepSpec
from waterflow.engine.activities import Activities
from waterflow.engine.executor import AgentRuntime
from waterflow.engine.types import StepInput, StepOutcome

__all__ = ["TestRegistry", "run_node", "waterflow_registry"]


class TestRegistry(NodeRegistry):
    """A node registry for one test; `add_plugin(obj)` loads a plugin object through its hooks."""

    __test__ = False  # not a test class

    def add_plugin(self, plugin: object, name: str | None = None) -> None:
        plugin_name = name or str(getattr(plugin, "__name__", type(plugin).__name__))
        install_plugin(self, plugin, PluginSource(plugin_name, "(test)", "0", origin="test"))


async def run_node(
    uses: str,
    with_: Mapping[str, Any] | None = None,
    *,
    registry: NodeRegistry,
    workspace: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    contexts: Mapping[str, Any] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    timeout: float = 300.0,
) -> StepOutcome:
    """Run one step of node `uses` with parameters `with_` and return its outcome.

    The step starts now with `timeout` seconds (its start-to-close timeout), as on an agent.
    """
    workspace = Path(workspace)
    logs = Path(log_dir) if log_dir is not None else workspace.parent / "waterflow-test-logs"
    runtime = AgentRuntime(
        agent_id="test-agent",
        registry=registry,
        secrets=lambda: dict(secrets or {}),
        log_dir=logs,
    )
    activities = Activities(runtime, private_queue="test", work_dir=workspace.parent)
    step = StepSpec(
        index=0,
        key="test",
        id="test",
        name=None,
        display_name=uses,
        uses=uses,
        with_=dict(with_ or {}),
        env=dict(env or {}),
        if_=None,
        continue_on_error=False,
        timeout=None,
        heartbeat_timeout=None,
        retry=None,
        pos=Pos(1, 1),
    )
    inp = StepInput(
        run_id="test-run",
        workflow="test",
        job="test",
        step=step,
        contexts=dict(contexts or {}),
        env_layers=[],
        job_env={},
        job_path=[],
        workspace=str(workspace),
        temp_dir=str(workspace.parent / "waterflow-test-temp"),
    )
    environment = ActivityEnvironment()
    now = datetime.now(UTC)
    environment.info = dataclasses.replace(
        ActivityEnvironment.default_info(),
        activity_type="execute_node",
        scheduled_time=now,
        current_attempt_scheduled_time=now,
        started_time=now,
        start_to_close_timeout=timedelta(seconds=timeout),
        schedule_to_close_timeout=None,
    )
    result: StepOutcome = await environment.run(activities.execute_node, inp)
    return result


@pytest.fixture
def waterflow_registry() -> TestRegistry:
    """An empty node registry for this test."""
    return TestRegistry()
