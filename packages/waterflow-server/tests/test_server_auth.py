"""Every call needs a token of the right role; TLS when configured."""

from __future__ import annotations

import grpc
import pytest
import trustme
from server_testing import (
    AGENT,
    AGENT_TOKEN,
    SHELL,
    USER,
    USER_TOKEN,
    bearer,
    cli_env,
    registry_of,
    run_cli,
    server_config,
)

from waterflow._proto.v1 import agent_pb2, agent_pb2_grpc, user_pb2, user_pb2_grpc
from waterflow.agent.config import ServerSettings
from waterflow.agent.reporting import ServerLink
from waterflow_server.auth import Tokens, role_of_method
from waterflow_server.server import ServerError, WaterflowServer


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def test_a_call_without_token_is_unauthenticated(server, user, log_lines) -> None:
    error = await refused(user.ListNodes(user_pb2.ListNodesRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith("missing token: send 'authorization: Bearer <token>'")
    record = await log_lines.wait_for("Call refused")
    assert record["method"] == "/waterflow.v1.UserService/ListNodes"
    assert record["status"] == "UNAUTHENTICATED"
    assert record["peer"].startswith("ipv4:127.0.0.1:")


async def test_a_wrong_token_is_unauthenticated_and_not_logged(server, user, log_lines) -> None:
    error = await refused(
        user.ListNodes(user_pb2.ListNodesRequest(), metadata=bearer("guess-guess-guess-1"))
    )
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAUTHENTICATED, "invalid token")
    await log_lines.wait_for("Call refused")
    assert "guess-guess-guess-1" not in repr(list(log_lines))


async def test_a_malformed_authorization_is_unauthenticated(server, user) -> None:
    error = await refused(
        user.ListNodes(user_pb2.ListNodesRequest(), metadata=(("authorization", USER_TOKEN),))
    )
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "malformed authorization metadata: expected 'Bearer <token>'"


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("SubmitRun", user_pb2.SubmitRunRequest(file="w.yaml", text="jobs: {}")),
        ("CancelRun", user_pb2.CancelRunRequest(run_id="r")),
        ("ListRuns", user_pb2.ListRunsRequest()),
        ("ValidateWorkflow", user_pb2.ValidateWorkflowRequest()),
    ],
)
async def test_an_agent_token_cannot_act_as_a_user(
    server, user, method: str, request_, log_lines
) -> None:
    error = await refused(getattr(user, method)(request_, metadata=AGENT))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == f"an agent token may not call {method}; use a user token"
    record = await log_lines.wait_for("Call refused")
    assert record["status"] == "PERMISSION_DENIED"


async def test_a_streaming_call_is_refused_too(server, user) -> None:
    stream = user.GetLogs(user_pb2.GetLogsRequest(run_id="r"), metadata=AGENT)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stream:
            pass
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "an agent token may not call GetLogs; use a user token"


async def test_a_user_token_cannot_act_as_an_agent(server, agent_stub) -> None:
    report = agent_pb2.ReportNodesRequest(agent=agent_pb2.AgentInfo(agent_id="forged"))
    error = await refused(agent_stub.ReportNodes(report, metadata=USER))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "a user token may not call ReportNodes; use an agent token"
    error = await refused(agent_stub.PushLogs(agent_pb2.PushLogsRequest(), metadata=USER))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_right_tokens_pass(server, user, agent_stub) -> None:
    await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)
    beat = await agent_stub.Heartbeat(agent_pb2.HeartbeatRequest(agent_id="x"), metadata=AGENT)
    assert not beat.known


def test_roles_by_method_and_tokens() -> None:
    assert role_of_method("/waterflow.v1.UserService/SubmitRun") == "user"
    assert role_of_method("/waterflow.v1.AgentService/PushLogs") == "agent"
    assert role_of_method("/grpc.health.v1.Health/Check") is None
    tokens = Tokens([AGENT_TOKEN], [USER_TOKEN])
    assert tokens.role(AGENT_TOKEN) == "agent"
    assert tokens.role(USER_TOKEN) == "user"
    assert tokens.role(USER_TOKEN[:-1]) is None
    assert tokens.role("") is None


async def test_the_cli_says_what_the_server_refused(server) -> None:
    env = cli_env(WATERFLOW_SERVER_ADDRESS=server.address, WATERFLOW_SERVER_TOKEN=AGENT_TOKEN)
    code, _, err = await run_cli("runs", env=env)
    assert code == 1
    assert err == (
        f"error: server at {server.address}: PERMISSION_DENIED: an agent token may not call "
        "ListRuns; use a user token\n"
    )
    code, _, err = await run_cli(
        "nodes", "--server", server.address, env=cli_env(WATERFLOW_SERVER_TOKEN="x" * 20)
    )
    assert (code, err) == (
        1,
        f"error: server at {server.address}: UNAUTHENTICATED: invalid token\n",
    )
    code, _, err = await run_cli("nodes", "--server", server.address, env=cli_env())
    assert (code, err) == (
        1,
        "error: no token given: set WATERFLOW_SERVER_TOKEN (or use --token)\n",
    )
    code, _, err = await run_cli("logs", "some-run", env=cli_env())
    assert code == 1
    assert err == "error: no server given: use --server HOST:PORT or set WATERFLOW_SERVER_ADDRESS\n"


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_serves_clients_that_trust_the_ca_only(tmp_path, ca: trustme.CA) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = server_config(
        tmp_path,
        **{
            "listen.tls_cert": str(tmp_path / "server.pem"),
            "listen.tls_key": str(tmp_path / "server.key"),
        },
    )
    server = WaterflowServer(config)
    await server.start()
    try:
        port = server.port
        credentials = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            await stub.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)
        async with grpc.aio.insecure_channel(f"localhost:{port}") as channel:
            stub = user_pb2_grpc.UserServiceStub(channel)
            error = await refused(stub.ListNodes(user_pb2.ListNodesRequest(), metadata=USER))
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        env = cli_env(WATERFLOW_SERVER_TOKEN=USER_TOKEN)
        address = f"localhost:{port}"
        code, out, err = await run_cli(
            "nodes", "--server", address, "--tls-ca", str(tmp_path / "ca.pem"), env=env
        )
        assert (code, err) == (0, "")
        assert out == f"no live agent serves any queue on {address}\n"
        code, _, err = await run_cli("nodes", "--server", address, "--tls", env=env)
        assert code == 1
        assert err.startswith(f"error: cannot reach the Waterflow server at {address}: ")
        # The agent's side, with the same CA.
        link = ServerLink(
            ServerSettings(address=address, token=AGENT_TOKEN, tls_ca=tmp_path / "ca.pem"),
            agent_id="tls-agent",
            task_queues=["q"],
            registry=lambda: registry_of(SHELL),
        )
        await link.start()
        try:
            await link.wait_reported(1, timeout=10)
        finally:
            await link.stop()
        assert [q.queue for q in await server.catalog.queues()] == ["q"]
        async with grpc.aio.secure_channel(address, credentials) as channel:
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            beat = await agents.Heartbeat(
                agent_pb2.HeartbeatRequest(agent_id="tls-agent"), metadata=AGENT
            )
            assert beat.known
    finally:
        await server.stop(grace=0)


async def test_an_unreadable_certificate_stops_the_start(tmp_path) -> None:
    config = server_config(
        tmp_path,
        **{"listen.tls_cert": str(tmp_path / "no.pem"), "listen.tls_key": str(tmp_path / "no.key")},
    )
    with pytest.raises(ServerError) as info:
        await WaterflowServer(config).start()
    assert str(info.value) == (
        f"listen.tls_key: cannot read {tmp_path / 'no.key'}: No such file or directory"
    )


async def test_the_cli_names_an_unreadable_ca(tmp_path) -> None:
    code, _, err = await run_cli(
        "nodes",
        "--server",
        "localhost:1",
        "--tls-ca",
        str(tmp_path / "missing.pem"),
        env=cli_env(WATERFLOW_SERVER_TOKEN=USER_TOKEN),
    )
    assert (code, err) == (
        1,
        f"error: --tls-ca: cannot read {tmp_path / 'missing.pem'}: No such file or directory\n",
    )
