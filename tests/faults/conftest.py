"""Fault tests: real `waterflow-agent` processes that are killed, stopped, cut off and restarted.

Builds on tests/conftest.py (the session's Temporal dev server `temporal`, its `client`, a fresh
`queue`). `fleet` starts agent processes on that server (faultkit.Fleet does it for any other);
every wait is for an event, with a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faultkit import Fleet

from waterflow.devserver import DevServer


@pytest.fixture
async def fleet(temporal: DevServer, tmp_path: Path) -> AsyncIterator[Fleet]:
    """Agent processes on the session's Temporal server."""
    f = Fleet(tmp_path / "agents", temporal.address)
    try:
        yield f
    finally:
        await f.stop_all()
