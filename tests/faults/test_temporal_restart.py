"""The Temporal server restarts in the middle of jobs (a dev server with a database file,
started again on the same port) and steps end while it is away: the agents reconnect by
themselves, deliver those results, and every job completes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from faultkit import Fleet, steady_port, submit, wait_until, why_failed
from temporalio.client import Client

from waterflow.devserver import DevServer
from waterflow.engine.converter import data_converter
from waterflow.engine.types import SUCCESS

pytestmark = pytest.mark.e2e

JOBS = 6


async def test_agents_reconnect_after_temporal_restarts_and_jobs_complete(
    tmp_path: Path, queue: str
) -> None:
    db = tmp_path / "temporal.db"
    # Started again on its port: one nobody else can be given while it is away.
    server = DevServer(port=steady_port(), db_file=db, log_file=tmp_path / "temporal.log")
    await server.start()
    fleet = Fleet(tmp_path / "agents", server.address)
    try:
        client = await Client.connect(server.address, data_converter=data_converter)
        agents = await asyncio.gather(
            fleet.start([queue], "steady-1"), fleet.start([queue], "steady-2")
        )
        marks = tmp_path / "marks"
        marks.mkdir()
        finished = tmp_path / "finished"
        finished.mkdir()
        text = f"""
name: through-restart
jobs:
  j:
    runs-on: {queue}
    steps:
      - id: before
        run: |
          touch {marks}/$GITHUB_RUN_ID
          timeout 60 sh -c 'until [ -e {tmp_path}/release ]; do sleep 0.1; done'
          echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
          touch {finished}/$GITHUB_RUN_ID
      - id: after
        run: echo "by=$RUNNER_NAME" >> $GITHUB_OUTPUT
"""
        handles = [await submit(client, text) for _ in range(JOBS)]
        await wait_until(lambda: len(list(marks.iterdir())) == JOBS, 60, f"{JOBS} steps running")

        down = time.monotonic()
        server.stop()
        # The steps end while Temporal is away: their results wait in the agents.
        (tmp_path / "release").touch()
        await wait_until(lambda: len(list(finished.iterdir())) == JOBS, 30, "the steps ending")
        await server.start()  # same port, same database
        # The old client reconnects as the agents do; a new one would do as well.
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 90)
        took = time.monotonic() - down
        failed = [why_failed(r) for r in results if r.status != SUCCESS]
        assert not failed, failed
        assert all(a.alive for a in agents), [a.messages()[-5:] for a in agents]
        # A job submitted after the restart runs too.
        late = await submit(client, text.replace("through-restart", "after-restart"))
        assert (await asyncio.wait_for(late.result(), 60)).status == SUCCESS
        moved = sum(1 for r in results for s in r.jobs["j"].steps if s.attempts > 1)
        print(
            f"\nTemporal restarted under {JOBS} running jobs: all done {took:.1f}s later; "
            f"{moved} steps ran again elsewhere (their results were late)"
        )
    finally:
        await fleet.stop_all()
        server.stop()
