"""The real `waterflow server` process: JSON logs, refusals logged, graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_testing import AGENT_TOKEN, BIN, USER_TOKEN, cli_env, free_port, run_cli

from waterflow._proto.v1 import user_pb2, user_pb2_grpc


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


async def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, _ = await run_cli(
            "server",
            "--listen",
            f"127.0.0.1:{port}",
            "--database",
            str(tmp_path / "s.db"),
            env=cli_env(
                WATERFLOW_AUTH_AGENT_TOKENS=AGENT_TOKEN, WATERFLOW_AUTH_USER_TOKENS=USER_TOKEN
            ),
        )
    assert code == 1
    last = json.loads(out.splitlines()[-1])
    assert last["level"] == "error"
    assert last["message"].startswith(
        f"Server stopped: listen.address: cannot listen on 127.0.0.1:{port}: "
    )


async def test_token_makes_distinct_strong_tokens() -> None:
    first = await run_cli("token")
    second = await run_cli("token")
    assert first[0] == second[0] == 0
    assert first[1] != second[1]
    assert len(first[1].strip()) >= 40
