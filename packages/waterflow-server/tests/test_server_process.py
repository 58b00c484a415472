"""The real `waterflow server` process: JSON logs, refusals logged, graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_testing import (
    AGENT_TOKEN,
    BIN,
    USER_TOKEN,
    cli_env,
    free_port,
    run_cli,
    server_config,
)

from waterflow._proto.v1 import user_pb2, user_pb2_grpc
from waterflow_server import server as server_module
from waterflow_server.server import ServerError, WaterflowServer


async def next_record(stream: asyncio.StreamReader, message: str, timeout: float = 30) -> Any:
    """Read JSON log lines until one has this message."""
    async with asyncio.timeout(timeout):
        while True:
            line = await stream.readline()
            assert line, f"the server's log ended before {message!r}"
            record = json.loads(line)
            if record["message"] == message:
                return record


async def test_serve_refuse_and_stop(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "server.yaml").write_text(
        f"listen:\n  address: 127.0.0.1:{port}\ndatabase:\n  path: state/server.db\n"
        f"temporal:\n  address: 127.0.0.1:{free_port()}\n"
    )
    env = cli_env(
        WATERFLOW_AUTH_AGENT_TOKENS=AGENT_TOKEN,
        WATERFLOW_AUTH_USER_TOKENS=USER_TOKEN,
    )
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "waterflow"),
        "server",
        "--config",
        str(tmp_path / "server.yaml"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        loaded = await next_record(proc.stdout, "Configuration loaded")
        assert loaded["auth"] == {"agent_tokens": "1 token(s)", "user_tokens": "1 token(s)"}
        listening = await next_record(proc.stdout, "Server listening")
        assert (listening["port"], listening["tls"]) == (port, False)
        assert (tmp_path / "state" / "server.db").exists()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListNodes(
                    user_pb2.ListNodesRequest(), metadata=(("authorization", "Bearer nope-nope"),)
                )
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            refused = await next_record(proc.stdout, "Call refused")
            assert refused["level"] == "warning"
            assert refused["reason"] == "invalid token"
            assert "nope-nope" not in json.dumps(refused)
            await stub.ListNodes(
                user_pb2.ListNodesRequest(), metadata=(("authorization", f"Bearer {USER_TOKEN}"),)
            )
        proc.send_signal(signal.SIGTERM)
        await next_record(proc.stdout, "Server stopped")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_bad_configuration_is_one_line(tmp_path: Path) -> None:
    code, out, err = await run_cli("server", env=cli_env(WATERFLOW_AUTH_AGENT_TOKENS=AGENT_TOKEN))
    assert (code, out) == (1, "")
    assert err == (
        "error: auth.user_tokens: no user token given; every call needs one (make one with "
        "`waterflow token`, set WATERFLOW_AUTH_USER_TOKENS)\n"
    )


async def serve(tmp_path: Path, address: str) -> tuple[int, str]:
    """Run `waterflow server` on `address` until it stops by itself: its exit code and the
    message of its last log line."""
    code, out, _ = await run_cli(
        "server",
        "--listen",
        address,
        "--database",
        str(tmp_path / "s.db"),
        env=cli_env(WATERFLOW_AUTH_AGENT_TOKENS=AGENT_TOKEN, WATERFLOW_AUTH_USER_TOKENS=USER_TOKEN),
        timeout=30,
    )
    last = json.loads(out.splitlines()[-1])
    assert last["level"] == "error"
    return code, last["message"]


IN_USE = "another program uses that port (another waterflow server?); stop it or choose another "


async def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, message = await serve(tmp_path, f"127.0.0.1:{port}")
    assert (code, message) == (
        1,
        f"Server stopped: listen.address: cannot listen on 127.0.0.1:{port}: {IN_USE}"
        "listen.address",
    )


async def test_a_second_server_on_the_same_port_stops_instead_of_sharing_it(
    tmp_path: Path,
) -> None:
    # gRPC servers share a port by default; two Waterflow servers on one would each get some
    # of the agents and users, with nothing said.
    first = grpc.aio.server()
    port = first.add_insecure_port("127.0.0.1:0")
    await first.start()
    try:
        code, message = await serve(tmp_path, f"127.0.0.1:{port}")
    finally:
        await first.stop(None)
    assert (code, message) == (
        1,
        f"Server stopped: listen.address: cannot listen on 127.0.0.1:{port}: {IN_USE}"
        "listen.address",
    )


async def test_an_address_not_of_this_machine_is_one_line(tmp_path: Path) -> None:
    code, message = await serve(tmp_path, "192.0.2.1:7000")  # TEST-NET-1: nobody's
    assert (code, message) == (
        1,
        "Server stopped: listen.address: cannot listen on 192.0.2.1:7000: that is not an "
        "address of this machine; choose one of its own, or 0.0.0.0",
    )


async def test_a_host_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    code, message = await serve(tmp_path, "no-such-host.invalid:7000")
    assert code == 1
    assert message.startswith(
        "Server stopped: listen.address: cannot listen on no-such-host.invalid:7000: "
    )
    assert message.endswith("; give a host name this machine resolves, or 0.0.0.0")
    assert "\n" not in message


async def test_a_port_taken_between_the_check_and_the_bind_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server looks at the port first (for a cause gRPC does not give); another program
    # may take it just after, and gRPC's bind then fails instead.
    real = server_module._cannot_bind
    answers: list[str | None] = [None]  # the check: the port is free
    monkeypatch.setattr(
        server_module, "_cannot_bind", lambda address: answers.pop() if answers else real(address)
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WaterflowServer(server_config(tmp_path, **{"listen.address": f"127.0.0.1:{port}"}))
        with pytest.raises(ServerError) as info:
            await server.start()
    assert str(info.value) == f"listen.address: cannot listen on 127.0.0.1:{port}: {IN_USE}" + (
        "listen.address"
    )


async def test_token_makes_distinct_strong_tokens() -> None:
    first = await run_cli("token")
    second = await run_cli("token")
    assert first[0] == second[0] == 0
    assert first[1] != second[1]
    assert len(first[1].strip()) >= 40
