"""6. Hot reload: from a plugin file's write to a new step running the new version.

Runs `bench/hot_reload.py` (which still runs alone: `python bench/hot_reload.py`) and puts its
figures in the table: write → new step (p50, p95) against the raw watchfiles event for the
same write, the baseline any watcher pays. Its own detailed table goes to stderr.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
from pathlib import Path

import hot_reload as hr
from loguru import logger

from scenarios._common import Bench, Row, below
from waterflow._registry import NodeRegistry
from waterflow._reload import PluginReloader

NAME = "hot-reload"
NEEDS_SERVER = False
TARGET = below(hr.TARGET_P95_MS, "ms", on="p95")


async def run(bench: Bench) -> list[Row]:
    sizes = bench.sizes
    logger.remove()  # the steps' own log lines are not the measurement
    results = await hr.measure(sizes.hot_reloads, sizes.hot_reload_warmup)
    probe = PluginReloader(NodeRegistry(), plugin_dir=None, cache_dir=Path("."), log=False)
    with contextlib.redirect_stdout(sys.stderr):
        code = hr.report(results, sizes.hot_reloads, probe.step_ms, probe.quiet_ms)
    if code:
        bench.failed.append("hot-reload: p95 over the seed's promise of one second")

    def p95(values: list[float]) -> float:
        return hr.percentile(values, 95) if len(values) > 1 else values[0]

    step, raw = results["step"], results["raw"]
    return [
        Row(
            "6 hot reload",
            "plugin file write → new step runs the new version",
            statistics.median(step),
            "ms",
            statistics.median(raw),
            "raw watchfiles event for the same write",
            p95=p95(step),
            baseline_p95=p95(raw),
            target=TARGET,
            note=f"p50, {sizes.hot_reloads} reloads",
        ),
    ]
