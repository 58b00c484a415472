"""What each step's activity input carries of the `steps` context: the entries its expressions
name, so that a long job's history grows with its length, not with its square."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import SUCCESS


async def test_steps_get_the_step_entries_they_name_and_history_stays_linear(
    agent, client: Client, queue: str, tmp_path: Path
) -> None:
    filler = "\n".join(f'      - run: echo "n=${{{i}}}" >> "$GITHUB_OUTPUT"' for i in range(30))
    text = f"""
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: first
        run: echo "word=hello" >> "$GITHUB_OUTPUT"
{filler}
      - id: named
        run: echo "got=${{{{ steps.first.outputs.word }}}}" >> "$GITHUB_OUTPUT"
      - id: whole
        env:
          COUNT: ${{{{ join(steps.*.outcome, ',') }}}}
        run: echo "count=$(echo "$COUNT" | tr ',' '\\n' | wc -l)" >> "$GITHUB_OUTPUT"
"""
    spec = parse_workflow(text, file="contexts.yaml")
    handle = await start_run(client, spec, workspace=str(tmp_path / "ws"))
    result = await asyncio.wait_for(handle.result(), 120)
    assert result.status == SUCCESS
    steps = {s.key: s for s in result.jobs["j"].steps}
    assert steps["named"].outputs == {"got": "hello"}
    # `steps.*` is not one named step: that step saw every earlier one.
    assert steps["whole"].outputs == {"count": "32"}

    children: dict[str, str] = await handle.query("children")
    job = client.get_workflow_handle(next(iter(children.values())))
    sizes = [
        event.activity_task_scheduled_event_attributes.input.ByteSize()
        async for event in job.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "execute_node"
    ]
    assert len(sizes) == 33
    # The 31st filler step carries no more than the first one did (give or take its text).
    assert sizes[30] < sizes[1] * 1.2, sizes
    assert sizes[32] > sizes[30] * 2, sizes
