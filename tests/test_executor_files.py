"""A step's temp dir and env files exist from its node's first look at `env`, `files` or
`temp_dir`, as on GitHub's runner; a node that looks at none of them costs no file work, and
leaves nothing behind."""

from __future__ import annotations

import asyncio
import subprocess
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loguru import logger
from waiting import wait_until

import waterflow_nodes_shell
from waterflow import NodeMetadata, NodeResult, StepContext, hookimpl
from waterflow.engine.types import SUCCESS
from waterflow.testing import TestRegistry


class Quiet:
    """A pure-Python node: never looks at its environment, files or temp dir."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        return NodeResult(outputs={"said": "nothing"})


class Writer:
    """A node that writes in its temp dir and talks back through the paths in its `env`,
    without starting a program."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        note = context.temp_dir / "note"
        note.write_text("kept in the temp dir", encoding="utf-8")
        with open(context.env["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
            out.write(f"note={note.read_text(encoding='utf-8')}\ntemp={context.temp_dir}\n")
        with open(context.env["GITHUB_ENV"], "a", encoding="utf-8") as env:
            env.write("FROM_WRITER=yes\n")
        return NodeResult()


test_nodes = types.SimpleNamespace(
    node_metadata=hookimpl(
        lambda: [NodeMetadata(name="test/quiet", version="1"), NodeMetadata("test/writer", "1")]
    ),
    register_nodes=hookimpl(
        lambda registry: (registry.add("test/quiet", Quiet), registry.add("test/writer", Writer))
    ),
)


def registry() -> TestRegistry:
    r = TestRegistry()
    r.add_plugin(waterflow_nodes_shell)
    r.add_plugin(test_nodes, name="test-nodes")
    return r


def job_temp_dirs(tmp_path: Path) -> list[Path]:
    """The temp dirs (RUNNER_TEMP) of the jobs the agent under tmp_path claimed."""
    return sorted((tmp_path / "work" / "_temp").glob("*/*"))


CHECK_FILES = """\
for f in "$GITHUB_OUTPUT" "$GITHUB_ENV" "$GITHUB_PATH" "$GITHUB_STATE" "$GITHUB_STEP_SUMMARY"
do
  test -f "$f" || { echo "missing $f"; exit 3; }
  test ! -s "$f" || { echo "not empty: $f"; exit 4; }
done
cat "$GITHUB_OUTPUT" "$GITHUB_STATE"
test -d "$RUNNER_TEMP" && test -f "$GITHUB_EVENT_PATH"
case "$GITHUB_OUTPUT" in
  "$RUNNER_TEMP"/_runner_file_commands/*) ;;
  *) echo "not in the job's _runner_file_commands: $GITHUB_OUTPUT"; exit 5 ;;
esac
echo "writer=$FROM_WRITER" >> "$GITHUB_OUTPUT"
"""


async def test_env_files_and_temp_dir_are_there_when_a_node_looks(
    make_agent: Callable[..., Any], run_workflow: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    await make_agent([queue], registry=registry())
    script = "\n".join("          " + line for line in CHECK_FILES.splitlines())
    result = await run_workflow(
        f"""
jobs:
  j:
    runs-on: QUEUE
    steps:
      - id: quiet
        uses: test/quiet
      - id: writer
        uses: test/writer
      - id: shell
        run: |
{script}
""",
        validate=False,
    )
    job = result.jobs["j"]
    assert result.status == SUCCESS, [(s.key, s.error, s.log_tail) for s in job.steps]
    quiet, writer, shell = job.steps
    assert quiet.outputs == {"said": "nothing"}
    assert writer.outputs["note"] == "kept in the temp dir"
    assert shell.outputs == {"writer": "yes"}
    # Each step's private temp dir and env files are gone after it; the job's temp dir keeps
    # the event file and the folder its steps' env files share, as on GitHub's runner.
    assert not Path(writer.outputs["temp"]).exists()
    (temp,) = job_temp_dirs(tmp_path)
    assert sorted(p.name for p in temp.iterdir()) == ["_runner_file_commands", "event.json"]
    assert list((temp / "_runner_file_commands").iterdir()) == []


async def test_a_node_that_needs_no_files_leaves_no_trace(
    make_agent: Callable[..., Any], run_workflow: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    await make_agent([queue], registry=registry())
    result = await run_workflow(
        """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - {id: one, uses: test/quiet}
      - {id: two, uses: test/quiet}
""",
        validate=False,
    )
    assert result.status == SUCCESS
    assert [s.outputs for s in result.jobs["j"].steps] == [{"said": "nothing"}] * 2
    (temp,) = job_temp_dirs(tmp_path)
    assert list(temp.iterdir()) == []


async def test_a_folder_a_step_leaves_in_place_of_an_env_file_is_cleaned_up_without_traceback(
    make_agent: Callable[..., Any], run_workflow: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    # The step's files are removed by a callback of the agent's loop after the step: what
    # that raised was an asyncio traceback in the agent's log (on the terminal under
    # `waterflow run`).
    await make_agent([queue], registry=registry())
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    unhandled: list[dict[str, Any]] = []
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    stuck: list[Path] = []
    try:
        result = await run_workflow(
            """
jobs:
  j:
    runs-on: QUEUE
    steps:
      - run: rm "$GITHUB_STATE" && mkdir "$GITHUB_STATE" && touch "$GITHUB_STATE/x"
      - if: always()
        run: |
          rm "$GITHUB_OUTPUT" && mkdir "$GITHUB_OUTPUT" && touch "$GITHUB_OUTPUT/x"
          chattr +i "$GITHUB_OUTPUT/x" && echo "$GITHUB_OUTPUT/x" > "$RUNNER_TEMP/stuck"
""",
            validate=False,
        )
        (temp,) = job_temp_dirs(tmp_path)
        stuck = [Path((temp / "stuck").read_text().strip())]
        commands = temp / "_runner_file_commands"
        # The first step's folder goes; the second's cannot (an immutable file): one line.
        await wait_until(
            lambda: [p.name for p in commands.iterdir()] == [stuck[0].parent.name] and warnings,
            10,
            "the step's files removed, or a line saying why not",
        )
    finally:
        loop.set_exception_handler(previous)
        logger.remove(sink)
        for path in stuck:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    assert unhandled == []
    assert warnings == [
        f"Could not clean up after a step: [Errno 1] Operation not permitted: '{stuck[0].parent}'"
    ]
    first, second = result.jobs["j"].steps
    assert first.error is not None and "GITHUB_STATE: cannot read" in first.error
    assert second.error is not None and "GITHUB_OUTPUT: cannot read" in second.error
