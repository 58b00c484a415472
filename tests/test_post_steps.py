"""Post steps: any node may ask to run again at the end of the job (what GitHub's `post:` is)."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import Client

import waterflow_nodes_shell
from waterflow import NodeMetadata, NodeResult, Parameter, StepContext, hookimpl
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import FAILURE, SKIPPED, SUCCESS
from waterflow.testing import TestRegistry


class Tracked:
    """Main phase: record, save state, ask for a post step. Post phase: record the state."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        journal = Path(params["journal"])
        name = params["name"]
        if context.step.phase == "post":
            with journal.open("a") as f:
                token = context.state.get("token", "")
                f.write(f"post {name} state={token} job={context.step.job_status}\n")
            return NodeResult()
        with journal.open("a") as f:
            f.write(f"main {name} job=[{context.step.job_status}]\n")
        with open(context.files.state, "a") as f:
            f.write(f"token=from-{name}\n")
        context.add_post_step(params["post_if"])
        return NodeResult(outputs={"name": name})


plugin = types.SimpleNamespace(
    node_metadata=hookimpl(
        lambda: [
            NodeMetadata(
                name="test/tracked",
                version="1",
                parameters=[
                    Parameter("journal", required=True),
                    Parameter("name", required=True),
                    Parameter("post_if", default="always()"),
                ],
            )
        ]
    ),
    register_nodes=hookimpl(lambda registry: registry.add("test/tracked", Tracked)),
)


async def test_post_steps_run_at_the_end_in_reverse_order_with_state(
    make_agent, client: Client, queue: str, tmp_path: Path
) -> None:
    registry = TestRegistry()
    registry.add_plugin(waterflow_nodes_shell)
    registry.add_plugin(plugin, name="tracked")
    await make_agent([queue], registry=registry)
    journal = tmp_path / "journal"
    spec = parse_workflow(
        f"""
jobs:
  j:
    runs-on: {queue}
    steps:
      - uses: test/tracked
        with: {{journal: {journal}, name: first}}
      - uses: test/tracked
        with: {{journal: {journal}, name: second, post_if: success()}}
      - uses: test/tracked
        with: {{journal: {journal}, name: third}}
      - run: echo main-step-fails; exit 1
""",
        file="post.yaml",
    )
    handle = await start_run(client, spec, workspace=str(tmp_path / "ws"))
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == FAILURE
    assert journal.read_text().splitlines() == [
        "main first job=[]",
        "main second job=[]",
        "main third job=[]",
        # A post step sees the job's status then: the last main step failed.
        "post third state=from-third job=failure",
        "post first state=from-first job=failure",
    ]
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["post-_3"].name == "Post test/tracked"
    assert steps["post-_3"].conclusion == SUCCESS
    assert steps["post-_2"].conclusion == SKIPPED  # success() is false once the job failed
