"""What the server removes from its database, at start and every hour: the step logs of runs
whose last line is older than `database.log_retention`, and the agents not heard from for
`registry.forget_after` (both 30 days by default, `0s`: never). An agent that comes back
reports again and is known again (test_server_registry)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from server_testing import server_config

from waterflow_server.server import WaterflowServer
from waterflow_server.store import AgentRecord, NewLine, Store

DAY = 86_400.0


async def _store(path: Path, now: float) -> Store:
    """Runs `old` (last line 40 days ago), `fresh` (an hour ago) and `long` (first line 40
    days ago, last a minute ago), each with its step's end; agents gone 40 days, gone an
    hour, and live, each with one node."""
    store = Store(path)
    await store.open()
    runs = {
        "old": [now - 40 * DAY, now - 40 * DAY + 1],
        "fresh": [now - 3600],
        "long": [now - 40 * DAY, now - 60],
    }
    for run_id, times in runs.items():
        lines = [
            NewLine(run_id, "build", "s", 0, "Step s", 1, seq, stamp, "out", f"line {seq}")
            for seq, stamp in enumerate(times, 1)
        ]
        await store.call(store.add_lines, "agent-1", lines, [(run_id, "build", "s", 1, len(times))])
    leases = {"gone-long": now - 40 * DAY, "gone-lately": now - 3600, "live": now + 30}
    for agent_id, lease_until in leases.items():
        agent = AgentRecord(
            agent_id=agent_id, host="h", agent_version="1", python_version="3.11", pid=1,
            task_queues=("linux",), versions={}, reported_at=lease_until - 30,
            lease_until=lease_until,
        )  # fmt: skip
        await store.call(store.save_report, agent, [("shell/run", "1", b"")])
    return store


async def _agent_ids(store: Store) -> list[str]:
    return [a.agent_id for a in await store.call(store.agents)]


async def _old_lines(store: Store) -> int:
    return len(await store.call(store.lines, "old"))


# --- the store ----------------------------------------------------------------------------------


NOW = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """The helper store (see _store) as of NOW, closed after the test."""
    opened = await _store(tmp_path / "s.db", NOW)
    try:
        yield opened
    finally:
        await opened.close()


async def test_pruning_removes_whole_runs_whose_last_line_is_past_the_retention(
    store: Store,
) -> None:
    assert await store.call(store.prune_logs, NOW - 30 * DAY) == 1
    kept = {run: len(await store.call(store.lines, run)) for run in ("old", "fresh", "long")}
    assert kept == {"old": 0, "fresh": 1, "long": 2}
    ends = store.db.execute("SELECT run_id FROM log_ends ORDER BY run_id").fetchall()
    assert ends == [("fresh",), ("long",)]
    assert await store.call(store.prune_logs, NOW - 30 * DAY) == 0


async def test_forgetting_removes_agents_gone_longer_than_the_age_with_their_nodes(
    store: Store,
) -> None:
    assert await store.call(store.forget_agents, NOW - 30 * DAY) == 1
    assert await _agent_ids(store) == ["gone-lately", "live"]
    nodes = await store.call(store.nodes_of, ["gone-long", "gone-lately", "live"])
    assert sorted(n.agent_id for n in nodes) == ["gone-lately", "live"]
    assert await store.call(store.forget_agents, NOW - 30 * DAY) == 0


# --- the server ---------------------------------------------------------------------------------


async def _old_and_long_lines(store: Store) -> tuple[int, int]:
    return await _old_lines(store), len(await store.call(store.lines, "long"))


# What each pruning is set by, logs when it removes something (with which fields), and what
# the database then holds: removed (30d) and kept (0s).
PRUNINGS = {
    "logs": (
        "database.log_retention",
        "Pruned old step logs",
        {"runs": 1, "retention": "30d"},
        _old_and_long_lines,
        (0, 2),
        (2, 2),
    ),
    "agents": (
        "registry.forget_after",
        "Forgot agents not heard from",
        {"agents": 1, "forget_after": "30d"},
        _agent_ids,
        ["gone-lately", "live"],
        ["gone-lately", "gone-long", "live"],
    ),
}


@pytest.mark.parametrize("what", PRUNINGS)
@pytest.mark.parametrize(("age", "removed"), [("30d", True), ("0s", False)])
async def test_the_server_prunes_when_it_starts(
    tmp_path: Path, log_lines, what: str, age: str, removed: bool
) -> None:
    key, message, fields, held, after_removal, untouched = PRUNINGS[what]
    store = await _store(tmp_path / "server.db", time.time())
    await store.close()
    server = WaterflowServer(server_config(tmp_path, **{key: age}))
    await server.start()
    try:
        if removed:
            record = await log_lines.wait_for(message)
            assert {name: record[name] for name in fields} == fields
        # The store runs its calls one at a time, in order: a pruning started with the server
        # has been handed to it by the time this first call returns, and ends before the next.
        await server.store.call(server.store.open_steps, "fresh")
        assert await held(server.store) == (after_removal if removed else untouched)
    finally:
        await server.stop(grace=0.5)
    if not removed:
        assert not [r for r in log_lines if r["message"] == message]


@pytest.mark.parametrize(
    ("method", "warning", "kept"),
    [
        ("prune_logs", "Could not prune old step logs", _old_lines),
        ("forget_agents", "Could not forget old agents", _agent_ids),
    ],
)
async def test_a_pruning_that_fails_is_logged_and_the_server_goes_on(
    tmp_path: Path, log_lines, monkeypatch: pytest.MonkeyPatch, method: str, warning: str, kept
) -> None:
    def locked(self: Store, before: float) -> int:
        raise sqlite3.OperationalError("database is locked")

    store = await _store(tmp_path / "server.db", time.time())
    before = await kept(store)
    await store.close()
    # A real lock would also stop the server's start (its schema is written then).
    monkeypatch.setattr(Store, method, locked)
    server = WaterflowServer(server_config(tmp_path))
    await server.start()
    try:
        record = await log_lines.wait_for(warning)
        assert record["level"] == "WARNING"
        assert record["message"].endswith("trying again later: database is locked")
        assert await kept(server.store) == before
    finally:
        await server.stop(grace=0.5)
