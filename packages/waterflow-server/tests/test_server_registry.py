"""The node schema registry: agents report through the real ServerLink; the catalog answers."""

from __future__ import annotations

import grpc
import pytest
from server_testing import (
    AGENT,
    DOCKER_BUILD,
    SHELL,
    USER,
    free_port,
    registry_of,
    server_config,
)

from waterflow import _wire
from waterflow._node import NodeMetadata, Parameter
from waterflow._proto.v1 import agent_pb2, user_pb2
from waterflow_server.server import WaterflowServer

LOCAL_NOOP = NodeMetadata("test/noop", "1.0.0", "Returns at once", local=True)


def catalog(response: user_pb2.ListNodesResponse) -> dict[str, dict[str, tuple[int, int]]]:
    """queue -> node -> (agents offering it, live agents of the queue)."""
    return {
        q.queue: {n.node.metadata.name: (n.live_agents, q.live_agents) for n in q.nodes}
        for q in response.queues
    }


async def test_agents_report_and_the_catalog_answers_by_queue(server, user, link) -> None:
    a = link("cpu-1", ["linux-amd64", "linux-common"], registry_of(SHELL, DOCKER_BUILD))
    b = link("cpu-2", ["linux-amd64"], registry_of(SHELL))
    g = link("gpu-1", ["gpu-a100"], registry_of(SHELL))
    for agent in (a, b, g):
        await agent.start()
        await agent.wait_reported(1, timeout=10)
    response = await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)
    assert catalog(response) == {
        "gpu-a100": {"shell/run": (1, 1)},
        "linux-amd64": {"docker/build": (1, 2), "shell/run": (2, 2)},
        "linux-common": {"docker/build": (1, 1), "shell/run": (1, 1)},
    }
    only = await user.ListNodes(user_pb2.ListNodesRequest(queue="gpu-a100"), metadata=USER)
    assert [q.queue for q in only.queues] == ["gpu-a100"]
    assert list(only.queues[0].agent_ids) == ["gpu-1"]


async def test_metadata_travels_whole(server, user, link) -> None:
    agent = link("a", ["q"], registry_of(DOCKER_BUILD, LOCAL_NOOP))
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    response = await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)
    nodes = {o.node.metadata.name: o for o in response.queues[0].nodes}
    offered = nodes["docker/build"]
    assert _wire.node_metadata(offered.node.metadata) == DOCKER_BUILD
    # A node that runs its steps as local activities says so to the fleet's catalog too.
    assert _wire.node_metadata(nodes["test/noop"].node.metadata) == LOCAL_NOOP
    assert (offered.node.distribution, offered.node.distribution_version) == (
        "waterflow-nodes-test",
        "1.2.3",
    )
    assert list(offered.versions) == ["0.2.0"]


async def test_a_report_after_a_reload_replaces_the_nodes(server, user, link) -> None:
    registry = registry_of(SHELL)
    agent = link("a", ["q"], registry)
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    newer = NodeMetadata("shell/run", "0.2.0", parameters=[Parameter("run", required=True)])
    registry_b = registry_of(newer, DOCKER_BUILD)
    registry.replace_plugin("test", registry_b.all())
    agent.report()
    await agent.wait_reported(2, timeout=10)
    response = await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)
    assert catalog(response) == {"q": {"docker/build": (1, 1), "shell/run": (1, 1)}}
    versions = {n.node.metadata.name: list(n.versions) for n in response.queues[0].nodes}
    assert versions["shell/run"] == ["0.2.0"]


async def test_expired_agents_do_not_count_and_heartbeats_renew(
    server: WaterflowServer, user, agent_stub
) -> None:
    now = [1000.0]
    server.catalog.clock = lambda: now[0]
    info = _wire.node_info(registry_of(SHELL).all()[0])
    await agent_stub.ReportNodes(
        agent_pb2.ReportNodesRequest(
            agent=agent_pb2.AgentInfo(agent_id="a", host="h", task_queues=["q"]), nodes=[info]
        ),
        metadata=AGENT,
    )
    assert catalog(await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)) == {
        "q": {"shell/run": (1, 1)}
    }
    now[0] += server.catalog.lease + 1
    assert catalog(await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)) == {}
    beat = await agent_stub.Heartbeat(agent_pb2.HeartbeatRequest(agent_id="a"), metadata=AGENT)
    assert beat.known
    assert beat.lease.ToTimedelta().total_seconds() == server.catalog.lease
    assert catalog(await user.ListNodes(user_pb2.ListNodesRequest(), metadata=USER)) == {
        "q": {"shell/run": (1, 1)}
    }
    stranger = await agent_stub.Heartbeat(
        agent_pb2.HeartbeatRequest(agent_id="nobody"), metadata=AGENT
    )
    assert not stranger.known


async def test_a_report_without_agent_id_is_refused(server, agent_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_stub.ReportNodes(agent_pb2.ReportNodesRequest(), metadata=AGENT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "agent.agent_id is empty"


async def test_the_registry_survives_a_server_restart(tmp_path, link) -> None:
    config = server_config(tmp_path, **{"listen.address": f"127.0.0.1:{free_port()}"})
    first = WaterflowServer(config)
    await first.start()
    agent = link("a", ["q"], registry_of(SHELL), address=first.address)
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    await first.stop(grace=0)
    second = WaterflowServer(config)
    await second.start()
    try:
        queues = await second.catalog.queues()
        assert [(q.queue, q.live_agents) for q in queues] == [("q", 1)]
    finally:
        await second.stop(grace=0)


async def test_an_agent_reports_once_the_server_comes_up(tmp_path, link, log_lines) -> None:
    """The agent starts first; the server later: the report arrives without a restart."""
    config = server_config(tmp_path, **{"listen.address": f"127.0.0.1:{free_port()}"})
    address = config.listen.address
    agent = link("early", ["q"], registry_of(SHELL), address=address)
    await agent.start()  # returns at once: nobody listens yet
    assert agent.reports == 0
    # The server starts once the agent has found it away (not while it first tries).
    await log_lines.wait_for("Cannot reach the Waterflow server", 30)
    server = WaterflowServer(config)
    await server.start()
    try:
        await agent.wait_reported(1, timeout=30)
        assert [q.queue for q in await server.catalog.queues()] == ["q"]
    finally:
        await server.stop(grace=0)
    assert "Nodes reported to the Waterflow server" in [r["message"] for r in log_lines]


async def test_a_forgotten_agent_reports_again(tmp_path, link) -> None:
    """A server with a new database answers heartbeats with known=False; the agent reports."""
    address = f"127.0.0.1:{free_port()}"
    lease = {"registry.agent_lease": "1s", "listen.address": address}
    first = WaterflowServer(server_config(tmp_path / "one", **lease))
    await first.start()
    agent = link("a", ["q"], registry_of(SHELL), address=address)
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    await first.stop(grace=0)
    second = WaterflowServer(server_config(tmp_path / "two", **lease))
    await second.start()
    try:
        await agent.wait_reported(2, timeout=30)
        assert [q.queue for q in await second.catalog.queues()] == ["q"]
    finally:
        await second.stop(grace=0)


async def test_a_refused_agent_token_is_logged_by_the_agent(server, link, log_lines) -> None:
    agent = link("a", ["q"], registry_of(SHELL), token="not-the-agent-token-at-all")
    await agent.start()
    error = await log_lines.wait_for("refuses this agent's token")
    assert error["level"] == "ERROR"
    assert error["error"] == "UNAUTHENTICATED: invalid token"
    assert agent.reports == 0


async def test_an_agent_id_live_on_another_host_is_reported_to_both_logs(
    server, agent_stub, link, log_lines
) -> None:
    # Another agent (host "build-7") holds the id "web", as a scaled service with a fixed
    # WATERFLOW_AGENT_ID does; it speaks the real protocol from this test.
    other = agent_pb2.AgentInfo(agent_id="web", host="build-7", pid=41, task_queues=["q"])
    first = await agent_stub.ReportNodes(agent_pb2.ReportNodesRequest(agent=other), metadata=AGENT)
    assert first.conflict == ""
    agent = link("web", ["q"], registry_of(SHELL))
    await agent.start()
    await agent.wait_reported(1, timeout=10)
    said = await log_lines.wait_for("is also used by a live agent on build-7")
    assert said["level"] == "ERROR"
    assert said["message"] == (
        "agent id 'web' is also used by a live agent on build-7 (pid 41): agent ids must be "
        "unique, or a job's steps run on either agent; give each agent its own agent.id "
        "(WATERFLOW_AGENT_ID)"
    )
    warned = await log_lines.wait_for("Two hosts report the same agent id")
    assert (warned["level"], warned["other_host"], warned["other_pid"]) == (
        "WARNING",
        "build-7",
        41,
    )


async def test_the_same_host_reporting_again_is_no_conflict(server, agent_stub) -> None:
    # An agent that restarted (new pid) within its old lease, or reported again on a reload.
    for pid in (41, 42):
        again = await agent_stub.ReportNodes(
            agent_pb2.ReportNodesRequest(
                agent=agent_pb2.AgentInfo(agent_id="web", host="build-7", pid=pid)
            ),
            metadata=AGENT,
        )
        assert again.conflict == ""
