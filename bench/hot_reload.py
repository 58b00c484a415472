"""Hot reload latency: from the write of a plugin file to a new step running the new version.

    nox -s bench -- hot-reload          (or: .venv/bin/python bench/hot_reload.py --reloads 50)

A plugin file in a fresh plugin directory is rewritten N times, each time with a new version.
For each write this measures, from just before the write:

- the raw watchfiles event for that write (a plain `awatch` on the same directory with the
  same step): the baseline, what any watcher pays;
- the new version in the registry (the reloader's listener sees it);
- a new step, run through `waterflow.testing.run_node`, returning the new version;

and, as a second baseline, loading and installing the same bytes directly (no watching).
Prints p50, p95 and max, and the ratio of the reload to the raw event. Exits 1 when the p95 of
"write -> new step" misses the seed's promise of one second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import watchfiles
from loguru import logger

from waterflow._plugindir import import_module_file, read_plugin_file
from waterflow._plugins import install_plugin
from waterflow._registry import NodeRegistry, PluginSource
from waterflow._reload import PluginReloader, ReloadReport
from waterflow.testing import run_node

PROMISE_S = 1.0
TARGET_P95_MS = 250.0

PLUGIN = """
from waterflow import NodeMetadata, NodeResult, hookimpl

MARK = "{version}"

class Node:
    async def execute(self, params, context):
        return NodeResult(outputs={{"version": MARK}})

@hookimpl
def node_metadata():
    return [NodeMetadata(name="bench/node", version="{version}")]

@hookimpl
def register_nodes(registry):
    registry.add("bench/node", Node)
"""


def source(version: int) -> str:
    return textwrap.dedent(PLUGIN).format(version=version)


class _Live:
    """A stop event for the baseline `awatch` whose first poll says its watch is live."""

    def __init__(self, loop: asyncio.AbstractEventLoop, live: asyncio.Event) -> None:
        self._loop, self._live, self._told, self.stop = loop, live, False, False

    def is_set(self) -> bool:
        if not self._told:
            self._told = True
            self._loop.call_soon_threadsafe(self._live.set)
        return self.stop

    def set(self) -> None:
        self.stop = True


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def measure(reloads: int, warmup: int) -> dict[str, list[float]]:
    top = Path(tempfile.mkdtemp(prefix="waterflow-bench-"))
    plugin_dir = top / "plugins"
    plugin_dir.mkdir(mode=0o755)
    path = plugin_dir / "bench.py"
    loop = asyncio.get_running_loop()

    registry = NodeRegistry()
    reloader = PluginReloader(
        registry, plugin_dir=plugin_dir, cache_dir=top / "cache", env={}, log=False
    )
    seen: list[tuple[float, str]] = []  # when a rescan ended, and the version it left
    arrived = asyncio.Event()

    def on_reload(report: ReloadReport) -> None:
        node = registry.get("bench/node")
        seen.append((time.perf_counter(), node.metadata.version if node else ""))
        arrived.set()

    reloader.add_listener(on_reload)
    await reloader.load()

    raw: list[float] = []
    raw_arrived = asyncio.Event()
    raw_live = asyncio.Event()
    raw_stop = _Live(loop, raw_live)

    async def raw_watch() -> None:
        async for _ in watchfiles.awatch(plugin_dir, step=reloader.step_ms, stop_event=raw_stop):
            raw.append(time.perf_counter())
            raw_arrived.set()

    raw_task = asyncio.create_task(raw_watch())
    await asyncio.wait_for(raw_live.wait(), 10)
    assert await reloader.start_watching()

    async def first_after(times: list[float], event: asyncio.Event, since: float) -> float:
        while True:
            later = [t for t in times if t >= since]
            if later:
                return later[0]
            event.clear()
            await asyncio.wait_for(event.wait(), 10)

    async def registry_has(version: int, since: float) -> float:
        while True:
            for moment, found in list(seen):
                if moment >= since and found == str(version):
                    return moment
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 10)

    results: dict[str, list[float]] = {"raw": [], "registry": [], "step": [], "direct": []}
    direct_registry = NodeRegistry()
    try:
        for i in range(1, warmup + reloads + 1):
            text = source(i)
            start = time.perf_counter()
            with path.open("w") as handle:
                handle.write(text)
            raw_at = await first_after(raw, raw_arrived, start)
            registry_at = await registry_has(i, start)
            outcome = await run_node("bench/node", registry=registry, workspace=top / "ws")
            step_at = time.perf_counter()
            if outcome.outputs != {"version": str(i)}:
                raise AssertionError(f"write {i}: the step ran {outcome.outputs}")
            direct_start = time.perf_counter()
            imported, module = import_module_file(read_plugin_file(path))
            install_plugin(
                direct_registry, module, PluginSource("bench", str(path), str(i), origin="bench")
            )
            direct = time.perf_counter() - direct_start
            sys.modules.pop(imported.module_root, None)
            if i > warmup:
                results["raw"].append((raw_at - start) * 1000)
                results["registry"].append((registry_at - start) * 1000)
                results["step"].append((step_at - start) * 1000)
                results["direct"].append(direct * 1000)
    finally:
        raw_stop.set()
        await raw_task
        await reloader.stop()
        shutil.rmtree(top)
    return results


def report(results: dict[str, list[float]], reloads: int, step_ms: int, quiet_ms: int) -> int:
    rows = [
        ("baseline: raw watchfiles event", results["raw"]),
        ("baseline: direct load + install", results["direct"]),
        ("write -> new node in the registry", results["registry"]),
        ("write -> new step ran new version", results["step"]),
    ]
    print(
        f"hot reload: {reloads} reloads of one plugin file "
        f"(watchfiles step {step_ms} ms, quiet window {quiet_ms} ms; "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]})"
    )
    print(f"{'':36}{'p50':>10}{'p95':>10}{'max':>10}")
    for label, values in rows:
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(f"{label:36}{p50:>7.1f} ms{p95:>7.1f} ms{max(values):>7.1f} ms")
    raw50, raw95 = statistics.median(results["raw"]), percentile(results["raw"], 95)
    reg50, reg95 = statistics.median(results["registry"]), percentile(results["registry"], 95)
    print(f"{'registry / raw event (ratio)':36}{reg50 / raw50:>9.2f}x{reg95 / raw95:>9.2f}x")
    step95 = percentile(results["step"], 95)
    verdict = "meets" if step95 < TARGET_P95_MS else "misses"
    print(f"p95 write -> new step: {step95:.1f} ms ({verdict} the {TARGET_P95_MS:g} ms aim)")
    if step95 >= PROMISE_S * 1000:
        print(f"FAIL: over the seed's promise of {PROMISE_S:g} s", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=50, help="measured reloads (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="reloads not measured (default 3)")
    args = parser.parse_args()
    logger.remove()  # the steps' own log lines are not the measurement
    probe = PluginReloader(NodeRegistry(), plugin_dir=None, cache_dir=Path("."), log=False)
    results = asyncio.run(measure(args.reloads, args.warmup))
    return report(results, args.reloads, probe.step_ms, probe.quiet_ms)


if __name__ == "__main__":
    sys.exit(main())
