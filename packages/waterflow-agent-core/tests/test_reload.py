"""Hot reload: the rescans, the directory watcher, installed distributions, and reaching a
running agent through its pidfile."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from waterflow._registry import NodeRegistry
from waterflow._reload import PluginReloader, ReloadReport
from waterflow.agent._run import PidFile, signal_agent
from waterflow.agent.config import load_config
from waterflow.agent.worker import Agent, AgentError
from waterflow.testing import run_node

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown or switch users")
DEADLINE = 15.0

PLUGIN = """
from waterflow import NodeMetadata, NodeResult, hookimpl

MARK = "VERSION"

class Node:
    async def execute(self, params, context):
        return NodeResult(outputs={"version": MARK})

@hookimpl
def node_metadata():
    return [NodeMetadata(name="NAME", version="VERSION")]

@hookimpl
def register_nodes(registry):
    registry.add("NAME", Node)
"""

# The node of version 1 announces that it runs, then waits for the test to open a gate.
GATED = """
import asyncio
from pathlib import Path
from waterflow import NodeMetadata, NodeResult, hookimpl

MARK = "VERSION"

class Node:
    async def execute(self, params, context):
        Path(params["started"]).touch()
        gate = Path(params["gate"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not gate.exists():
            if loop.time() > deadline:
                raise TimeoutError("the gate never opened")
            await asyncio.sleep(0.01)
        return NodeResult(outputs={"version": MARK})

@hookimpl
def node_metadata():
    from waterflow import Parameter
    return [NodeMetadata(name="NAME", version="VERSION", additional_parameters=True)]

@hookimpl
def register_nodes(registry):
    registry.add("NAME", Node)
"""


def plugin_source(name: str, version: str = "1", template: str = PLUGIN) -> str:
    return textwrap.dedent(template).replace("NAME", name).replace("VERSION", version)


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    for sub in ("", "core", "custom"):
        (directory / sub).mkdir(exist_ok=True)
        (directory / sub).chmod(0o755)
    return directory


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """The log records of the test (message, level, extra)."""
    records: list[dict[str, Any]] = []
    handler = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(handler)


def messages(records: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [r for r in records if r["message"].startswith(text)]


class Reports:
    """The reports a reloader's listener receives, awaited with a deadline."""

    def __init__(self, reloader: PluginReloader) -> None:
        self.seen: list[ReloadReport] = []
        self._arrived = asyncio.Event()
        reloader.add_listener(self._on_report)

    def _on_report(self, report: ReloadReport) -> None:
        self.seen.append(report)
        self._arrived.set()

    async def wait(self, check: Callable[[ReloadReport], bool]) -> ReloadReport:
        async def first() -> ReloadReport:
            index = 0
            while True:
                while index < len(self.seen):
                    report = self.seen[index]
                    index += 1
                    if check(report):
                        return report
                self._arrived.clear()
                await self._arrived.wait()

        try:
            return await asyncio.wait_for(first(), DEADLINE)
        except TimeoutError:
            raise AssertionError(f"no such reload within {DEADLINE}s; saw {self.seen}") from None


def make_reloader(plugin_dir: Path | None, tmp_path: Path, **env: str) -> PluginReloader:
    return PluginReloader(
        NodeRegistry(), plugin_dir=plugin_dir, cache_dir=tmp_path / "cache", env=env
    )


async def version_of(reloader: PluginReloader, node: str, tmp_path: Path) -> str:
    outcome = await run_node(node, registry=reloader.registry, workspace=tmp_path / "ws")
    return outcome.outputs["version"]


@pytest.fixture(autouse=True)
def _no_leaked_plugin_modules() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in [n for n in list(sys.modules) if n.startswith("waterflow_plugin_")]:
        if name not in before:
            sys.modules.pop(name, None)


# --- rescans -------------------------------------------------------------------------------------


async def test_a_changed_file_is_imported_again_and_swapped_in(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "custom" / "hot.py", plugin_source("hot/node", "1"))
    reloader = make_reloader(plugin_dir, tmp_path)
    first = reloader.rescan(installed=False, trigger="start")
    assert (first.added, first.generation) == (("hot",), 1)
    old = reloader.registry.get("hot/node")
    write(path, plugin_source("hot/node", "2"))
    report = reloader.rescan(installed=False, force=False)
    assert (report.changed, report.nodes_changed, report.generation) == (
        ("hot",),
        ("hot/node",),
        2,
    )
    new = reloader.registry.get("hot/node")
    assert new is not None and old is not None
    assert new.factory.__module__ != old.factory.__module__
    assert old.factory.__module__ not in sys.modules  # forgotten, but alive for its users
    assert await version_of(reloader, "hot/node", tmp_path) == "2"
    (line,) = messages(logs, "Plugins reloaded")
    assert line["level"].name == "INFO"
    extra = line["extra"]
    assert (extra["changed"], extra["nodes_changed"], extra["generation"]) == (
        ["hot"],
        ["hot/node"],
        2,
    )
    assert extra["duration_ms"] >= 0


async def test_nothing_changed_means_no_new_generation(plugin_dir: Path, tmp_path: Path) -> None:
    path = write(plugin_dir / "same.py", plugin_source("same/node"))
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    module = reloader.registry.get("same/node")
    os.utime(path)  # touched, same bytes
    report = reloader.rescan(installed=False)
    assert (report.generation, report.changed_registry) == (1, False)
    assert reloader.registry.get("same/node") is module


async def test_a_broken_change_leaves_the_previous_version_working(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "hot.py", plugin_source("hot/node", "1"))
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    write(path, "def broken(:\n")
    report = reloader.rescan(installed=False)
    (problem,) = report.problems
    assert problem.message == (
        "SyntaxError: invalid syntax (hot.py, line 1); the previous version of hot stays"
    )
    assert str(path) in str(problem)
    assert not report.changed_registry
    assert await version_of(reloader, "hot/node", tmp_path) == "1"
    (line,) = messages(logs, "Plugin failed to load")
    assert line["message"] == f"Plugin failed to load: {problem}"
    assert line["extra"]["origin"] == str(path)
    # Hooks that disagree are refused the same way.
    write(path, plugin_source("hot/node", "3").replace('registry.add("hot/node", Node)', "pass"))
    (problem,) = reloader.rescan(installed=False).problems
    assert "describes hot/node but registers no executor" in problem.message
    assert await version_of(reloader, "hot/node", tmp_path) == "1"


async def test_a_plugin_that_exits_at_import_is_only_a_failure(
    plugin_dir: Path, tmp_path: Path
) -> None:
    write(plugin_dir / "quitter.py", "import sys\nsys.exit(3)\n")
    (problem,) = make_reloader(plugin_dir, tmp_path).rescan(installed=False).problems
    assert problem.message == "SystemExit: 3"


async def test_deleting_a_plugin_removes_its_nodes(plugin_dir: Path, tmp_path: Path) -> None:
    path = write(plugin_dir / "core" / "gone.py", plugin_source("gone/node"))
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    path.unlink()
    report = reloader.rescan(installed=False)
    assert (report.removed, report.nodes_removed) == (("gone",), ("gone/node",))
    assert "gone/node" not in reloader.registry
    assert reloader.plugins() == []


async def test_a_step_that_runs_keeps_its_version_and_the_next_step_gets_the_new_one(
    plugin_dir: Path, tmp_path: Path
) -> None:
    path = write(plugin_dir / "hot.py", plugin_source("hot/node", "1", GATED))
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    started, gate = tmp_path / "started", tmp_path / "gate"
    running = asyncio.create_task(
        run_node(
            "hot/node",
            {"started": str(started), "gate": str(gate)},
            registry=reloader.registry,
            workspace=tmp_path / "ws1",
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not started.exists():
        assert loop.time() < deadline and not running.done(), "the first step never started"
        await asyncio.sleep(0.01)
    write(path, plugin_source("hot/node", "2"))
    assert reloader.rescan(installed=False).changed == ("hot",)
    gc.collect()  # the old module is only referenced by the running step now
    assert await version_of(reloader, "hot/node", tmp_path) == "2"
    gate.touch()
    outcome = await asyncio.wait_for(running, DEADLINE)
    assert outcome.outputs == {"version": "1"}


async def test_the_first_of_two_files_with_one_name_wins_and_the_other_follows_it(
    plugin_dir: Path, tmp_path: Path
) -> None:
    core = write(plugin_dir / "core" / "dup.py", plugin_source("dup/node", "core"))
    custom = write(plugin_dir / "custom" / "dup.py", plugin_source("dup/node", "custom"))
    reloader = make_reloader(plugin_dir, tmp_path)
    (problem,) = reloader.rescan(installed=False).problems
    assert problem.message == (
        f"plugin name 'dup' is already used by the plugin file {core}; rename {custom}"
    )
    assert await version_of(reloader, "dup/node", tmp_path) == "core"
    core.unlink()  # the name is free: the other one loads in the same rescan
    report = reloader.rescan(installed=False, force=False)
    assert report.problems == ()
    assert await version_of(reloader, "dup/node", tmp_path) == "custom"


async def test_a_failed_plugin_is_tried_again_on_reload(
    plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = f"wf_dep_{uuid.uuid4().hex[:8]}"
    write(plugin_dir / "needy.py", f"import {dep}\n" + plugin_source("needy/node"))
    reloader = make_reloader(plugin_dir, tmp_path, WATERFLOW_LOAD_PLUGINS="needy")
    (problem,) = reloader.rescan(installed=False).problems
    assert problem.message == f"ModuleNotFoundError: No module named '{dep}'"
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{dep}.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    # The file did not change: watching does not try it again, a reload does.
    assert reloader.rescan(installed=False, force=False).problems == ()
    assert "needy/node" not in reloader.registry
    report = await reloader.reload()
    assert report.added == ("needy",)


async def test_a_refused_file_loads_once_its_mode_is_fixed(
    plugin_dir: Path, tmp_path: Path
) -> None:
    path = write(plugin_dir / "loose.py", plugin_source("loose/node"), mode=0o666)
    reloader = make_reloader(plugin_dir, tmp_path)
    (problem,) = reloader.rescan(installed=False).problems
    assert "is writable by group and others (mode 0666); refusing to load it" in problem.message
    path.chmod(0o644)
    assert reloader.rescan(installed=False, force=False).added == ("loose",)


async def test_the_plugin_switches_apply_to_plugin_files(plugin_dir: Path, tmp_path: Path) -> None:
    write(plugin_dir / "keep.py", plugin_source("keep/node"))
    write(plugin_dir / "skip.py", plugin_source("skip/node"))
    reloader = make_reloader(plugin_dir, tmp_path, WATERFLOW_DISABLE_PLUGINS="skip")
    report = reloader.rescan(installed=False)
    assert (report.added, report.problems) == (("keep",), ())


async def test_a_listener_that_fails_is_logged_and_the_others_still_hear(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)

    def broken(report: ReloadReport) -> None:
        raise RuntimeError("listener down")

    reloader.add_listener(broken)
    reports = Reports(reloader)
    await reloader.load()
    assert [r.trigger for r in reports.seen] == ["start"]
    assert [r["message"] for r in messages(logs, "A plugin reload listener failed")] == [
        "A plugin reload listener failed: RuntimeError: listener down"
    ]


# --- installed distributions ---------------------------------------------------------------------


def make_distribution(site: Path, dist: str, module: str, source: str, version: str) -> None:
    """Install a distribution the way pip leaves it: a module and a .dist-info."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[waterflow.nodes]\n{module} = {module}\n")


def uninstall(site: Path, dist: str, module: str, version: str) -> None:
    (site / f"{module}.py").unlink()
    shutil.rmtree(site / f"{dist.replace('-', '_')}-{version}.dist-info")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


async def test_a_reload_finds_installed_upgraded_and_uninstalled_distributions(
    site: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    module = f"wf_site_{uuid.uuid4().hex[:8]}"
    reloader = make_reloader(None, tmp_path, WATERFLOW_LOAD_PLUGINS=module)
    await reloader.load()
    assert reloader.registry.names() == []

    make_distribution(site, "waterflow-nodes-site", module, plugin_source("site/echo", "1"), "1.0")
    report = await reloader.reload(trigger="signal")
    assert (report.added, report.nodes_added) == ((module,), ("site/echo",))
    node = reloader.registry.get("site/echo")
    assert node is not None and (node.source.distribution, node.source.version) == (
        "waterflow-nodes-site",
        "1.0",
    )
    assert await version_of(reloader, "site/echo", tmp_path) == "1"

    # An upgrade (the source differs in length: a bytecode cache is never mistaken for it).
    uninstall(site, "waterflow-nodes-site", module, "1.0")
    make_distribution(
        site, "waterflow-nodes-site", module, plugin_source("site/echo", "2.0"), "2.0"
    )
    report = await reloader.reload(trigger="signal")
    assert report.changed == (module,)
    assert await version_of(reloader, "site/echo", tmp_path) == "2.0"

    uninstall(site, "waterflow-nodes-site", module, "2.0")
    report = await reloader.reload(trigger="signal")
    assert (report.removed, report.nodes_removed) == ((module,), ("site/echo",))
    assert reloader.registry.names() == []
    reloaded = messages(logs, "Plugins reloaded")
    assert [r["extra"]["trigger"] for r in reloaded] == ["signal", "signal", "signal"]
    assert reloaded[-1]["extra"]["removed"] == [module]


async def test_a_plugin_file_may_not_take_an_installed_plugins_name_or_node(
    site: Path, plugin_dir: Path, tmp_path: Path
) -> None:
    module = f"wf_taken_{uuid.uuid4().hex[:8]}"
    make_distribution(site, "waterflow-nodes-taken", module, plugin_source("taken/node"), "3.1")
    write(plugin_dir / f"{module}.py", plugin_source("other/node"))
    write(plugin_dir / "thief.py", plugin_source("taken/node", "9"))
    reloader = make_reloader(plugin_dir, tmp_path, WATERFLOW_LOAD_PLUGINS=f"{module},thief")
    report = await reloader.load()
    messages_ = sorted(p.message for p in report.problems)
    assert messages_[0] == (
        f"node 'taken/node' is claimed by both waterflow-nodes-taken 3.1 (plugin {module!r}) "
        f"and {plugin_dir / 'thief.py'} {report.problems[1].source.version} (plugin 'thief'); "
        "uninstall or block one of them (WATERFLOW_DISABLE_PLUGINS)"
    )
    assert messages_[1] == (
        f"plugin name {module!r} is already used by the distribution waterflow-nodes-taken 3.1; "
        f"rename {plugin_dir / (module + '.py')}"
    )
    assert await version_of(reloader, "taken/node", tmp_path) == "1"


async def test_the_agent_lists_its_plugins_with_source_version_and_nodes(
    site: Path, plugin_dir: Path, tmp_path: Path
) -> None:
    module = f"wf_listed_{uuid.uuid4().hex[:8]}"
    make_distribution(site, "waterflow-nodes-listed", module, plugin_source("listed/a"), "0.7")
    path = write(plugin_dir / "filed.py", '__version__ = "2.5"\n' + plugin_source("filed/b"))
    reloader = make_reloader(plugin_dir, tmp_path, WATERFLOW_LOAD_PLUGINS=f"{module},filed")
    await reloader.load()
    rows = [(p.name, p.kind, p.version, p.source_text, p.nodes) for p in reloader.plugins()]
    assert rows == [
        ("filed", "module file", "2.5", f"file {path}", ("filed/b",)),
        (module, "entry point", "0.7", "entry point of waterflow-nodes-listed", ("listed/a",)),
    ]


# --- watching ------------------------------------------------------------------------------------


async def test_the_watcher_picks_up_create_modify_and_delete(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    reports = Reports(reloader)
    reloader.rescan(installed=False)
    assert await reloader.start_watching()
    try:
        path = write(plugin_dir / "custom" / "hot.py", plugin_source("hot/node", "1"))
        report = await reports.wait(lambda r: "hot/node" in r.nodes_added)
        assert (report.added, report.trigger) == (("hot",), "watch")
        assert await version_of(reloader, "hot/node", tmp_path) == "1"

        write(path, plugin_source("hot/node", "2"))
        await reports.wait(lambda r: "hot/node" in r.nodes_changed)
        assert await version_of(reloader, "hot/node", tmp_path) == "2"

        path.unlink()
        report = await reports.wait(lambda r: "hot/node" in r.nodes_removed)
        assert report.removed == ("hot",)
        assert "hot/node" not in reloader.registry
    finally:
        await reloader.stop()
    assert not reloader.watching
    assert [r["extra"]["plugin_dir"] for r in messages(logs, "Watching the plugin directory")] == [
        str(plugin_dir)
    ]


async def test_a_file_written_before_the_watch_is_live_is_not_missed(
    plugin_dir: Path, tmp_path: Path
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    write(plugin_dir / "early.py", plugin_source("early/node"))
    try:
        assert await reloader.start_watching()
        assert "early/node" in reloader.registry  # by the time the watch is live
    finally:
        await reloader.stop()


async def test_a_burst_of_writes_is_read_once_it_is_complete(
    plugin_dir: Path, tmp_path: Path
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    reports = Reports(reloader)
    reloader.rescan(installed=False)
    assert await reloader.start_watching()
    try:
        text = plugin_source("burst/node", "final")
        with (plugin_dir / "burst.py").open("w") as handle:  # an editor writing in steps
            for start in range(0, len(text), 40):
                handle.write(text[start : start + 40])
                handle.flush()
        report = await reports.wait(lambda r: "burst/node" in r.nodes_added)
        assert report.problems == ()
        assert await version_of(reloader, "burst/node", tmp_path) == "final"
    finally:
        await reloader.stop()


async def test_a_broken_file_seen_by_the_watcher_keeps_the_previous_version(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "hot.py", plugin_source("hot/node", "1"))
    reloader = make_reloader(plugin_dir, tmp_path)
    reloader.rescan(installed=False)
    assert await reloader.start_watching()
    try:
        write(path, "import does_not_exist_anywhere\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not messages(logs, "Plugin failed to load"):
            assert loop.time() < deadline, "the broken file was never tried"
            await asyncio.sleep(0.01)
        assert await version_of(reloader, "hot/node", tmp_path) == "1"
    finally:
        await reloader.stop()


async def test_watching_a_missing_directory_starts_once_it_exists_and_sighup(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    plugin_dir = tmp_path / "later"
    reloader = make_reloader(plugin_dir, tmp_path)
    reports = Reports(reloader)
    await reloader.load()
    assert not await reloader.start_watching()
    assert [r["message"] for r in messages(logs, "Not watching")] == [
        "Not watching the plugin directory: No such file or directory; create it, then send SIGHUP"
    ]
    plugin_dir.mkdir(mode=0o755)
    await reloader.reload(trigger="signal")
    try:
        assert reloader.watching
        write(plugin_dir / "late.py", plugin_source("late/node"))
        await reports.wait(lambda r: "late/node" in r.nodes_added)
    finally:
        await reloader.stop()


async def test_a_replaced_directory_is_watched_again_after_a_reload(
    plugin_dir: Path, tmp_path: Path
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    reports = Reports(reloader)
    reloader.rescan(installed=False)
    assert await reloader.start_watching()
    try:
        plugin_dir.rename(tmp_path / "old-plugins")
        plugin_dir.mkdir(mode=0o755)
        await reloader.reload(trigger="signal")
        write(plugin_dir / "fresh.py", plugin_source("fresh/node"))
        await reports.wait(lambda r: "fresh/node" in r.nodes_added)
    finally:
        await reloader.stop()


async def test_an_agent_with_a_fixed_registry_has_nothing_to_reload(tmp_path: Path) -> None:
    config = load_config(
        None, environ={}, overrides={"agent.task_queues": ["q"], "agent.work_dir": str(tmp_path)}
    )
    agent = Agent(config, registry=NodeRegistry())
    with pytest.raises(AgentError, match=r"^this agent has no plugins to reload: it was given"):
        await agent.reload()


# --- the pidfile and `waterflow-agent plugins reload` --------------------------------------------

HOLDER = """
import signal, sys
from pathlib import Path
from waterflow.agent._run import PidFile

work, out = Path(sys.argv[1]), Path(sys.argv[2])

def on_hangup(*_):
    out.write_text("SIGHUP")
    sys.exit(0)

signal.signal(signal.SIGHUP, on_hangup)
pidfile = PidFile(work)
assert pidfile.acquire("holder")
try:
    print("ready", flush=True)
    while True:
        signal.pause()
finally:
    pidfile.release()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """A process that holds an agent pidfile the way `waterflow-agent run` does."""
    started: list[subprocess.Popen[str]] = []

    def start(work: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(work), str(tmp_path / "got")],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"  # bounded by the test timeout
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_reload_signals_the_agent_that_holds_the_pidfile(
    tmp_path: Path, holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    work = tmp_path / "work"
    proc = holder(work)
    assert json.loads((work / "agent.pid").read_text()) == {"pid": proc.pid, "agent_id": "holder"}
    assert signal_agent(work) == f"sent SIGHUP to agent 'holder' (pid {proc.pid}, work dir {work})"
    assert proc.wait(timeout=DEADLINE) == 0
    assert (tmp_path / "got").read_text() == "SIGHUP"
    assert not (work / "agent.pid").exists()  # released on the way out
    with pytest.raises(AgentError) as info:
        signal_agent(work)
    assert str(info.value) == (
        f"no agent is running with work dir {work} (no {work / 'agent.pid'}); point this "
        "command at the agent's configuration (--config, or WATERFLOW_AGENT_WORK_DIR)"
    )


def test_a_pidfile_left_by_a_dead_agent_is_never_signalled(
    tmp_path: Path, holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    work = tmp_path / "work"
    proc = holder(work)
    proc.kill()
    proc.wait()
    with pytest.raises(AgentError) as info:
        signal_agent(work)
    assert str(info.value) == (
        f"no agent is running with work dir {work}: {work / 'agent.pid'} is left from pid "
        f"{proc.pid}, which has stopped"
    )


def test_a_pidfile_writable_by_others_is_not_trusted(
    tmp_path: Path, holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    work = tmp_path / "work"
    holder(work)
    (work / "agent.pid").chmod(0o666)
    with pytest.raises(AgentError) as info:
        signal_agent(work)
    assert str(info.value) == (
        f"refusing to trust {work / 'agent.pid'}: it is writable by group or others (mode 0666)"
    )


@ROOT_ONLY
def test_a_pidfile_of_another_user_may_not_name_our_process(
    tmp_path: Path, holder: Callable[[Path], subprocess.Popen[str]]
) -> None:
    work = tmp_path / "work"
    proc = holder(work)
    os.chown(work / "agent.pid", 4242, -1)
    with pytest.raises(AgentError) as info:
        signal_agent(work)
    assert str(info.value) == (
        f"refusing to signal pid {proc.pid}: {work / 'agent.pid'} belongs to uid 4242, the "
        "process to uid 0"
    )
    assert proc.poll() is None


@ROOT_ONLY
def test_a_user_who_may_not_signal_the_agent_is_told_so(
    holder: Callable[[Path], subprocess.Popen[str]],
) -> None:
    top = Path(tempfile.mkdtemp(prefix="waterflow-pidfile-"))
    try:
        top.chmod(0o755)
        proc = holder(top / "work")
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # nobody tries to signal root's agent
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    signal_agent(top / "work")
                except AgentError as exc:
                    os.write(write_end, str(exc).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            said = pipe.read()
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert said == (
            f"cannot signal agent 'holder' (pid {proc.pid}): permission denied; run this as the "
            "agent's user or root"
        )
        assert proc.poll() is None
    finally:
        shutil.rmtree(top)


def test_a_second_agent_on_one_work_dir_is_warned_and_writes_no_pidfile(
    tmp_path: Path, holder: Callable[[Path], subprocess.Popen[str]], logs: list[dict[str, Any]]
) -> None:
    work = tmp_path / "work"
    proc = holder(work)
    second = PidFile(work)
    assert not second.acquire("second")
    second.release()
    assert json.loads((work / "agent.pid").read_text())["pid"] == proc.pid
    (line,) = messages(logs, "Another agent holds the pidfile")
    assert (line["extra"]["other_pid"], line["extra"]["other_agent_id"]) == (proc.pid, "holder")


def test_a_work_dir_that_cannot_hold_a_pidfile_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AgentError) as info:
        PidFile(blocker / "work").acquire("x")
    assert str(info.value) == (
        f"cannot write the pidfile {blocker / 'work' / 'agent.pid'}: Not a directory; check "
        "agent.work_dir"
    )


async def test_a_watcher_that_is_not_live_in_time_is_given_up_with_a_warning(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    assert not await reloader.start_watching(timeout=0)
    assert not reloader.watching
    assert [r["message"] for r in messages(logs, "The plugin directory watcher")] == [
        "The plugin directory watcher did not start within 0s"
    ]
    await reloader.stop()


async def test_a_watch_that_fails_is_one_warning_and_sighup_watches_again(
    plugin_dir: Path, tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    reloader = make_reloader(plugin_dir, tmp_path)
    reports = Reports(reloader)
    # The directory goes away between the agent's look at it and the start of the watch.
    asyncio.get_running_loop().call_soon(shutil.rmtree, plugin_dir)
    assert not await reloader.start_watching()
    (line,) = messages(logs, "Stopped watching the plugin directory")
    assert line["message"].startswith("Stopped watching the plugin directory: FileNotFoundError")
    assert line["message"].endswith("; send SIGHUP to rescan and watch it again")
    plugin_dir.mkdir(mode=0o755)
    await reloader.reload(trigger="signal")
    try:
        assert reloader.watching
        write(plugin_dir / "back.py", plugin_source("back/node"))
        await reports.wait(lambda r: "back/node" in r.nodes_added)
    finally:
        await reloader.stop()


def _hold(path: Path, content: bytes) -> int:
    """Lock a pidfile the way a running agent does (another open file: flock conflicts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, content)
    return fd


def test_a_pidfile_being_written_is_not_signalled(tmp_path: Path) -> None:
    work = tmp_path / "work"
    fd = _hold(work / "agent.pid", b"")
    try:
        with pytest.raises(AgentError) as info:
            signal_agent(work)
        assert str(info.value) == (
            f"{work / 'agent.pid'} holds no pid; the agent may be starting: try again"
        )
    finally:
        os.close(fd)


def test_an_agent_that_just_stopped_is_said_so(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    work = tmp_path / "work"
    fd = _hold(work / "agent.pid", json.dumps({"pid": gone.pid, "agent_id": "gone"}).encode())
    try:
        with pytest.raises(AgentError) as info:
            signal_agent(work)
        assert str(info.value) == f"agent 'gone' (pid {gone.pid}) has just stopped"
    finally:
        os.close(fd)


def test_a_pidfile_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "agent.pid").symlink_to(tmp_path / "elsewhere.pid")
    with pytest.raises(AgentError) as info:
        signal_agent(work)
    assert str(info.value) == (
        f"cannot read {work / 'agent.pid'}: Too many levels of symbolic links"
    )
