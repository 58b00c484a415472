"""Load, at test scale: bench/fleet_load.py's two runs against the session's Temporal server.

One agent with the default 100 concurrent steps runs 100 sleeping shell steps at once, their
heartbeats stay on time and its memory stays bounded; three agents share a queue of 30 jobs of
5 steps, all complete and none starves. `nox -s bench -- fleet-load` runs the full size.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.client import Client

from waterflow.devserver import DevServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# The agent's RSS with 100 steps running; it measured about 120 MiB here (idle: about 90).
RSS_BOUND_MIB = 400


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_load", ROOT / "bench" / "fleet_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_one_agent_runs_100_steps_at_once_with_heartbeats_on_time(
    client: Client, temporal: DevServer, tmp_path: Path
) -> None:
    bench = _bench()
    figures = await bench.concurrency(
        client,
        temporal.address,
        tmp_path,
        steps=100,
        heartbeat_interval=1.0,
        heartbeat_timeout=30.0,
        samples=2,
    )
    print("\n" + bench.table(figures, None))
    assert not figures["failed"]
    # No running step lost its heartbeat (the SDK would have cancelled it), and every sample
    # was far from the heartbeat timeout. (A step may still move when its task is lost before
    # it starts, on a machine loaded beyond this one: that is what the timeout is for.)
    assert figures["cancelled"] == 0
    assert figures["staleness_max_s"] < 10.0, figures
    assert figures["peak_rss_mib"] < RSS_BOUND_MIB


async def test_three_agents_share_a_queue_and_none_starves(
    client: Client, temporal: DevServer, tmp_path: Path
) -> None:
    bench = _bench()
    figures = await bench.throughput(client, temporal.address, tmp_path, agents=3, jobs=30)
    print("\n" + bench.table(None, figures))
    assert bench.verdict(None, figures) == []
