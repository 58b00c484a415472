"""What the server says when Temporal, the database or a CA file is not there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from server_testing import AGENT_TOKEN, USER, registry_of, server_config

from waterflow._proto.v1 import user_pb2
from waterflow.agent.config import ServerSettings
from waterflow.agent.reporting import ServerLink, ServerLinkError
from waterflow_server.server import ServerError, WaterflowServer
from waterflow_server.store import SCHEMA_VERSION


async def test_calls_that_need_temporal_say_it_is_away(server, user) -> None:
    address = server.config.temporal.address
    for call in (
        user.ListRuns(user_pb2.ListRunsRequest(), metadata=USER),
        user.GetRun(user_pb2.GetRunRequest(run_id="r"), metadata=USER),
        user.CancelRun(user_pb2.CancelRunRequest(run_id="r"), metadata=USER),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert info.value.details().startswith(f"Temporal at {address} is not reachable: ")


async def test_a_submission_is_validated_before_temporal_is_asked(server, user, link) -> None:
    agent = link("a", ["q"], registry_of())
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    text = "name: w\njobs:\n  a:\n    runs-on: q\n    steps:\n      - run: echo\n"
    response = await user.SubmitRun(
        user_pb2.SubmitRunRequest(file="w.yaml", text=text), metadata=USER
    )
    assert response.run_id == ""
    assert [p.message for p in response.problems] == [
        "step 1: unknown node 'shell/run'; no live agent on any queue offers it"
    ]


async def test_a_valid_submission_with_temporal_away(server, user, link) -> None:
    from server_testing import SHELL

    agent = link("a", ["q"], registry_of(SHELL))
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    text = (
        "name: w\non:\n  workflow_dispatch:\n    inputs:\n      who: {required: true}\n"
        "jobs:\n  a:\n    runs-on: q\n    steps:\n      - run: echo\n"
    )
    missing_input = await user.SubmitRun(
        user_pb2.SubmitRunRequest(file="w.yaml", text=text), metadata=USER
    )
    assert [p.message for p in missing_input.problems] == ["input 'who' is required"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await user.SubmitRun(
            user_pb2.SubmitRunRequest(file="w.yaml", text=text, inputs={"who": "me"}),
            metadata=USER,
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_an_unknown_status_is_an_invalid_argument(server, user) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await user.ListRuns(user_pb2.ListRunsRequest(status="lost"), metadata=USER)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "unknown status 'lost'; use one of running, cancelled, terminated, timed_out, success, "
        "failure"
    )


async def test_a_database_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    config = server_config(tmp_path, **{"database.path": str(tmp_path / "file" / "server.db")})
    with pytest.raises(ServerError) as info:
        await WaterflowServer(config).start()
    assert str(info.value).startswith(f"database {tmp_path / 'file' / 'server.db'}: ")


async def test_a_database_from_a_newer_server(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ServerError) as info:
        await WaterflowServer(server_config(tmp_path)).start()
    assert str(info.value) == (
        f"database {path} has schema version {SCHEMA_VERSION + 1}, newer than this server's "
        f"{SCHEMA_VERSION}; upgrade waterflow-server"
    )


async def test_an_agent_with_an_unreadable_ca(tmp_path: Path) -> None:
    link = ServerLink(
        ServerSettings(address="localhost:1", token=AGENT_TOKEN, tls_ca=tmp_path / "ca.pem"),
        agent_id="a",
        task_queues=["q"],
        registry=lambda: None,
    )
    with pytest.raises(ServerLinkError) as info:
        await link.start()
    assert str(info.value) == (
        f"server.tls_ca: cannot read {tmp_path / 'ca.pem'}: No such file or directory"
    )
