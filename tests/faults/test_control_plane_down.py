"""The control plane (the Waterflow server) is down: agents keep executing steps, and when it
returns, node reports and log shipping resume without losing the lines buffered meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from faultkit import ControlPlane, Fleet, result_of, steady_port, submit, wait_until, why_failed
from temporalio.client import Client

from waterflow.agent.reporting import BUFFER_LINES
from waterflow.devserver import DevServer
from waterflow.engine.types import SUCCESS

pytestmark = pytest.mark.e2e

# Lines a step prints while the server is away: many batches, well within the agent's buffer.
LINES = 3000


async def test_agent_runs_steps_while_its_server_is_unreachable(
    client: Client, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    agent = await fleet.start(
        [queue],
        "serverless",
        WATERFLOW_SERVER_ADDRESS=f"127.0.0.1:{steady_port()}",  # nothing listens there
        WATERFLOW_SERVER_TOKEN="fault-test-token-0123456789",
    )
    handle = await submit(
        client,
        f"""
name: no-server
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: one
        run: echo "n=1" >> $GITHUB_OUTPUT
      - id: two
        run: echo "n=$(( ${{{{ steps.one.outputs.n }}}} + 1 ))" >> $GITHUB_OUTPUT
""",
    )
    result = await result_of(handle, 60)
    assert result.status == SUCCESS, why_failed(result)
    assert result.jobs["j"].steps[1].outputs == {"n": "2"}
    await agent.wait_for("Cannot reach the Waterflow server", 30)
    # The step logs on the agent are complete without the server.
    assert "step finished in" in Path(result.jobs["j"].steps[1].log_path).read_text()
    assert agent.alive


async def test_reports_and_buffered_lines_resume_when_the_server_returns(
    client: Client, temporal: DevServer, fleet: Fleet, queue: str, tmp_path: Path
) -> None:
    assert LINES < BUFFER_LINES
    # The server comes back on its address: a port nobody else can be given meanwhile.
    server = await ControlPlane(
        tmp_path / "server", f"127.0.0.1:{steady_port()}", temporal.address
    ).ready()
    try:
        agent = await fleet.start(
            [queue], "reporter", WATERFLOW_LOAD_PLUGINS="shell", **server.agent_settings()
        )
        await agent.wait_for("Nodes reported to the Waterflow server", 30)
        await server.stop()

        handle = await submit(
            client,
            f"""
name: server-away
jobs:
  j:
    runs-on: {queue}
    steps:
      - name: Count
        run: seq 1 {LINES} | sed 's/^/line /'
      - name: Last
        run: echo last line
""",
        )
        result = await result_of(handle, 60)
        assert result.status == SUCCESS, why_failed(result)
        await agent.wait_for("Cannot ship step logs to the Waterflow server", 30)
        # The node reports see the outage too (a heartbeat a second): an outage shorter than
        # that is one the agent never notices, and has nothing to resume from.
        await agent.wait_for("Cannot reach the Waterflow server", 30)

        server = await server.restart()
        back = time.monotonic()
        # Node reports resume: the server lists the agent's nodes for the queue again once a
        # report or heartbeat of the agent renewed its (3 s) lease after the restart.
        await agent.wait_for("Connected to the Waterflow server", 60)
        catalog = await wait_until(
            lambda: _offered(server, queue), 30, "the server listing the agent's nodes"
        )
        assert "shell" in catalog, catalog
        # Log shipping resumes, and the lines buffered while the server was away all arrive,
        # in order, once.
        expected = [f"j | Count | line {n}" for n in range(1, LINES + 1)]
        expected.append("j | Last | last line")
        lines: list[str] = []

        async def all_shipped() -> bool:
            nonlocal lines
            out = await server.cli("logs", handle.id)
            lines = [line for line in out.splitlines() if "line" in line.split(" | ")[-1]]
            return len(lines) >= len(expected)

        await wait_until(all_shipped, 60, f"{len(expected)} lines reaching the server")
        shipped_after = time.monotonic() - back
        assert lines == expected
        await agent.wait_for("Step logs reach the Waterflow server again", 10)
        assert not agent.has("Step log lines were dropped")
        assert agent.alive
        print(
            f"\nserver restarted: the {len(expected)} lines buffered while it was away were all "
            f"there {shipped_after:.1f}s after it was back, and the agent listed as live again"
        )
    finally:
        if server.alive:
            await server.stop()


async def _offered(server: ControlPlane, queue: str) -> str | None:
    """`waterflow nodes --queue` as the server answers it, or None while no agent is live."""
    out = await server.cli("nodes", "--server", server.address, "--queue", queue)
    return out if "shell" in out else None
