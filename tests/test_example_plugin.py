"""The node author's guide, tested: the example plugin through run_node and through a real run."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from waterflow.dsl import parse_workflow, validate_workflow
from waterflow.engine.client import start_run
from waterflow.testing import TestRegistry, run_node

sys.path.insert(0, str(Path(__file__).parent.parent / "examples" / "waterflow-nodes-hello" / "src"))
import waterflow_nodes_hello


async def test_run_node_gives_outputs_and_log(
    tmp_path: Path, waterflow_registry: TestRegistry
) -> None:
    waterflow_registry.add_plugin(waterflow_nodes_hello)
    outcome = await run_node(
        "hello/greet", {"who": "Ada", "times": "2"}, registry=waterflow_registry, workspace=tmp_path
    )
    assert outcome.outputs == {"greeting": "Hello, Ada!"}
    log = Path(outcome.log_path).read_text()
    assert "Hello, Ada!" in log and log.count(" out again") == 2


async def test_run_node_checks_parameters(tmp_path: Path, waterflow_registry: TestRegistry) -> None:
    waterflow_registry.add_plugin(waterflow_nodes_hello)
    with pytest.raises(ApplicationError, match="'Yo' is not one of 'Hello', 'Hi', 'Howdy'"):
        await run_node(
            "hello/greet",
            {"who": "Ada", "greeting": "Yo"},
            registry=waterflow_registry,
            workspace=tmp_path,
        )
    with pytest.raises(ApplicationError, match="who: give a name to greet") as info:
        await run_node("hello/greet", {"who": " "}, registry=waterflow_registry, workspace=tmp_path)
    assert info.value.non_retryable


async def test_example_plugin_in_a_workflow(
    make_agent, client: Client, queue: str, tmp_path: Path
) -> None:
    registry = TestRegistry()
    registry.add_plugin(waterflow_nodes_hello)
    spec = parse_workflow(
        f"""
jobs:
  greet:
    runs-on: {queue}
    steps:
      - id: hi
        uses: hello/greet
        with: {{who: "${{{{ github.job }}}}", greeting: Howdy}}
""",
        file="greet.yaml",
    )
    assert validate_workflow(spec, registry.metadata()) == []
    bad = parse_workflow(
        spec_text := f"jobs:\n  g:\n    runs-on: {queue}\n    steps:\n"
        "      - uses: hello/greet\n        with: {greeting: Hey}\n",
        file="bad.yaml",
    )
    problems = [str(p) for p in validate_workflow(bad, registry.metadata())]
    assert any("needs parameter 'who'" in p for p in problems), problems
    assert any("'Hey' is not one of" in p for p in problems), (problems, spec_text)
    await make_agent([queue], registry=registry, **{"agent.id": "hello-agent"})
    handle = await start_run(client, spec, workspace=str(tmp_path / "ws"))
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == "success", result
    assert result.jobs["greet"].steps[0].outputs == {"greeting": "Howdy, greet!"}


async def test_run_node_gives_the_step_its_timeout(tmp_path: Path) -> None:
    import waterflow_nodes_shell

    registry = TestRegistry()
    registry.add_plugin(waterflow_nodes_shell)
    outcome = await run_node(
        "shell/run", {"run": "sleep 1.5; echo done"}, registry=registry, workspace=tmp_path
    )
    assert "done" in Path(outcome.log_path).read_text()
    with pytest.raises(ApplicationError, match="timed out after"):
        await run_node(
            "shell/run", {"run": "sleep 30"}, registry=registry, workspace=tmp_path, timeout=3
        )
