"""Hot reload in a real `waterflow-agent run` process: plugins dropped into, changed in and
removed from its plugin directory while it runs; SIGHUP and `waterflow-agent plugins reload`
for distributions installed or removed while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.types import FAILURE, SUCCESS, RunResult

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
DEADLINE = 30.0

# Version 1 can be held: it announces that it runs, then waits for the test to open a gate.
NODE = """
import asyncio
from pathlib import Path
from waterflow import NodeMetadata, NodeResult, hookimpl

MARK = "VERSION"

class Node:
    async def execute(self, params, context):
        if params.get("started"):
            Path(params["started"]).touch()
            gate = Path(params["gate"])
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not gate.exists():
                if loop.time() > deadline:
                    raise TimeoutError("the gate never opened")
                await asyncio.sleep(0.02)
        return NodeResult(outputs={"version": MARK})

@hookimpl
def node_metadata():
    return [NodeMetadata(name="NAME", version="VERSION", additional_parameters=True)]

@hookimpl
def register_nodes(registry):
    registry.add("NAME", Node)
"""


def node_source(name: str, version: str) -> str:
    return textwrap.dedent(NODE).replace("NAME", name).replace("VERSION", version)


def write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)


def make_plugin_dir(tmp_path: Path) -> Path:
    plugin_dir = tmp_path / "plugins"
    (plugin_dir / "custom").mkdir(parents=True)
    for directory in (plugin_dir, plugin_dir / "custom"):
        directory.chmod(0o755)
    return plugin_dir


def matching(agent: Any, needle: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in agent.lines() if needle in line]


async def next_line(agent: Any, needle: str, seen: int) -> dict[str, Any]:
    """The first log line with `needle` after the `seen` ones already there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        found = matching(agent, needle)
        if len(found) > seen:
            return found[seen]
        assert agent.proc.poll() is None, "the agent exited:\n" + "\n".join(agent.lines()[-20:])
        assert loop.time() < deadline, f"no new {needle!r} line within {DEADLINE}s:\n" + "\n".join(
            agent.lines()[-20:]
        )
        await asyncio.sleep(0.05)


async def run_steps(client: Client, queue: str, steps: str, **kw: Any) -> RunResult:
    spec = parse_workflow(
        f"""
name: hot
jobs:
  j:
    runs-on: {queue}
    steps:
{textwrap.indent(textwrap.dedent(steps).strip(), " " * 6)}
""",
        file="hot.yaml",
    )
    handle = await start_run(client, spec, **kw)
    result: RunResult = await asyncio.wait_for(handle.result(), 120)
    return result


async def test_a_dropped_plugin_runs_and_a_change_waits_for_the_running_step(
    client: Client, agent_process: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    plugin_dir = make_plugin_dir(tmp_path)
    agent = agent_process(
        [queue],
        name="hot",
        WATERFLOW_AGENT_PLUGIN_DIR=str(plugin_dir),
        WATERFLOW_AGENT_AUTO_RELOAD_PLUGINS="true",
    )
    assert matching(agent, "Watching the plugin directory")
    reloaded = len(matching(agent, "Plugins reloaded"))

    path = plugin_dir / "custom" / "hot.py"
    write(path, node_source("hot/node", "1"))
    line = await next_line(agent, "Plugins reloaded", reloaded)
    assert (line["added"], line["nodes_added"], line["trigger"]) == (["hot"], ["hot/node"], "watch")

    started, gate = tmp_path / "started", tmp_path / "gate"
    run = asyncio.create_task(
        run_steps(
            client,
            queue,
            f"""
            - id: first
              uses: hot/node
              with: {{started: "{started}", gate: "{gate}"}}
            - id: second
              uses: hot/node
            """,
            workspace=str(tmp_path / "ws"),
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not started.exists():
        assert loop.time() < deadline and not run.done(), "the first step never started"
        await asyncio.sleep(0.05)

    write(path, node_source("hot/node", "2"))
    line = await next_line(agent, "Plugins reloaded", reloaded + 1)
    assert (line["changed"], line["nodes_changed"]) == (["hot"], ["hot/node"])
    gate.touch()
    result = await asyncio.wait_for(run, 120)
    assert result.status == SUCCESS, result
    first, second = result.jobs["j"].steps
    assert first.outputs == {"version": "1"}  # started with version 1, finished with it
    assert second.outputs == {"version": "2"}
    assert agent.stop() == 0


async def test_a_broken_change_keeps_the_old_version_and_removal_fails_later_steps(
    client: Client, agent_process: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    plugin_dir = make_plugin_dir(tmp_path)
    path = plugin_dir / "custom" / "hot.py"
    write(path, node_source("hot/node", "1"))
    agent = agent_process(
        [queue],
        name="broken",
        WATERFLOW_AGENT_PLUGIN_DIR=str(plugin_dir),
        WATERFLOW_AGENT_AUTO_RELOAD_PLUGINS="true",
    )
    (loaded,) = matching(agent, "Nodes loaded")
    assert "hot/node" in loaded["nodes"]

    write(path, "def broken(:\n")
    line = await next_line(agent, "Plugin failed to load", 0)
    assert str(path) in line["message"]
    assert "SyntaxError" in line["message"]
    assert "the previous version of hot stays" in line["message"]
    result = await run_steps(client, queue, "- uses: hot/node")
    assert result.status == SUCCESS, result
    assert result.jobs["j"].steps[0].outputs == {"version": "1"}

    reloaded = len(matching(agent, "Plugins reloaded"))
    path.unlink()
    line = await next_line(agent, "Plugins reloaded", reloaded)
    assert (line["removed"], line["nodes_removed"]) == (["hot"], ["hot/node"])
    result = await run_steps(client, queue, "- uses: hot/node")
    assert result.status == FAILURE
    assert "unknown node 'hot/node'" in (result.jobs["j"].steps[0].error or "")


def make_distribution(site: Path, dist: str, module: str, source: str, version: str) -> Path:
    """Install a distribution the way pip leaves it: a module and a .dist-info."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[waterflow.nodes]\n{module} = {module}\n")
    return info


async def test_sighup_and_plugins_reload_follow_installed_distributions(
    client: Client, agent_process: Callable[..., Any], queue: str, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    module = f"wf_late_{uuid.uuid4().hex[:8]}"
    agent = agent_process(
        [queue],
        name="late",
        PYTHONPATH=str(site),
        WATERFLOW_AGENT_PLUGIN_DIR=str(tmp_path / "no-plugins"),
    )
    info = make_distribution(
        site, "waterflow-nodes-late", module, node_source("late/node", "1"), "1.0"
    )

    reloaded = len(matching(agent, "Plugins reloaded"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env["WATERFLOW_AGENT_WORK_DIR"] = str(tmp_path / "late" / "work")
    proc = subprocess.run(
        [str(BIN / "waterflow-agent"), "plugins", "reload"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"sent SIGHUP to agent 'late' (pid {agent.proc.pid}, work dir "
        f'{tmp_path / "late" / "work"}); it rescans its plugins and logs "Plugins reloaded"'
    )
    line = await next_line(agent, "Plugins reloaded", reloaded)
    assert (line["added"], line["nodes_added"], line["trigger"]) == (
        [module],
        ["late/node"],
        "signal",
    )
    result = await run_steps(client, queue, "- uses: late/node")
    assert result.status == SUCCESS, result
    assert result.jobs["j"].steps[0].outputs == {"version": "1"}

    (site / f"{module}.py").unlink()
    shutil.rmtree(info)
    agent.signal(signal.SIGHUP)
    line = await next_line(agent, "Plugins reloaded", reloaded + 1)
    assert (line["removed"], line["nodes_removed"]) == ([module], ["late/node"])
    result = await run_steps(client, queue, "- uses: late/node")
    assert result.status == FAILURE
    assert "unknown node 'late/node'" in (result.jobs["j"].steps[0].error or "")
    assert agent.stop() == 0
    # The pidfile goes with the agent; the command says so.
    proc = subprocess.run(
        [str(BIN / "waterflow-agent"), "plugins", "reload"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f"error: no agent is running with work dir {tmp_path / 'late' / 'work'} (no "
    )
