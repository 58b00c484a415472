"""The server forgets agents it has not heard from for `registry.forget_after` (30 days by
default): their entries and nodes go, at start and every hour. One that comes back reports
again and is known again (test_server_registry)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from server_testing import server_config

from waterflow_server.server import WaterflowServer
from waterflow_server.store import AgentRecord, Store

DAY = 86_400.0


def _agent(agent_id: str, lease_until: float) -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id, host="h", agent_version="1", python_version="3.11", pid=1,
        task_queues=("linux",), versions={}, reported_at=lease_until - 30,
        lease_until=lease_until,
    )  # fmt: skip


async def _store_with_agents(path: Path, now: float) -> Store:
    """Agents gone 40 days, gone an hour, and live; each with one node."""
    store = Store(path)
    await store.open()
    leases = {"gone-long": now - 40 * DAY, "gone-lately": now - 3600, "live": now + 30}
    for agent_id, lease_until in leases.items():
        await store.call(
            store.save_report, _agent(agent_id, lease_until), [("shell/run", "1", b"")]
        )
    return store


async def test_forgetting_removes_agents_gone_longer_than_the_age_with_their_nodes(
    tmp_path: Path,
) -> None:
    now = 1_800_000_000.0
    store = await _store_with_agents(tmp_path / "s.db", now)
    try:
        assert await store.call(store.forget_agents, now - 30 * DAY) == 1
        kept = [a.agent_id for a in await store.call(store.agents)]
        assert kept == ["gone-lately", "live"]
        nodes = await store.call(store.nodes_of, ["gone-long", "gone-lately", "live"])
        assert sorted(n.agent_id for n in nodes) == ["gone-lately", "live"]
        assert await store.call(store.forget_agents, now - 30 * DAY) == 0
    finally:
        await store.close()


@pytest.mark.parametrize(("forget_after", "forgotten"), [("30d", True), ("0s", False)])
async def test_the_server_forgets_old_agents_when_it_starts(
    tmp_path: Path, log_lines, forget_after: str, forgotten: bool
) -> None:
    store = await _store_with_agents(tmp_path / "server.db", time.time())
    await store.close()
    server = WaterflowServer(server_config(tmp_path, **{"registry.forget_after": forget_after}))
    await server.start()
    try:
        if forgotten:
            record = await log_lines.wait_for("Forgot agents not heard from")
            assert (record["agents"], record["forget_after"]) == (1, "30d")
        # The store runs its calls one at a time, in order: a pruning started with the server
        # has been handed to it by the time this first call returns, and ends before the next.
        await server.store.call(server.store.open_steps, "none")
        kept = [a.agent_id for a in await server.store.call(server.store.agents)]
        assert kept == (
            ["gone-lately", "live"] if forgotten else ["gone-lately", "gone-long", "live"]
        )
    finally:
        await server.stop(grace=0.5)
    if not forgotten:
        assert not [r for r in log_lines if "Forgot" in r["message"]]


async def test_a_forgetting_that_fails_is_logged_and_the_server_goes_on(
    tmp_path: Path, log_lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(self: Store, before: float) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Store, "forget_agents", locked)
    store = await _store_with_agents(tmp_path / "server.db", time.time())
    await store.close()
    server = WaterflowServer(server_config(tmp_path))
    await server.start()
    try:
        record = await log_lines.wait_for("Could not forget old agents")
        assert record["level"] == "WARNING"
        assert record["message"].endswith("trying again later: database is locked")
        assert len(await server.store.call(server.store.agents)) == 3
    finally:
        await server.stop(grace=0.5)
