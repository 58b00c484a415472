"""The benchmark scenarios, in the order `bench/run.py` runs them.

Each module has `NAME`, `NEEDS_SERVER` (whether it uses the shared dev server) and
`async def run(bench: Bench) -> list[Row]`.
"""

from __future__ import annotations

from types import ModuleType

from scenarios import (
    agent_start,
    concurrent,
    end_to_end,
    hot_reload,
    js_action,
    memory,
    sequential,
)

SCENARIOS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (sequential, concurrent, end_to_end, js_action, agent_start, hot_reload, memory)
}
