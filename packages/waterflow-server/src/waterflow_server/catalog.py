"""The node schema registry: what each agent reported, and what each task queue offers.

An agent's report replaces everything known about it and starts its lease; heartbeats renew
the lease. Only agents whose lease has not expired count: a queue offers a node when at least
one live agent of the queue reported it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
from loguru import logger

from waterflow import _wire
from waterflow._node import NodeMetadata
from waterflow._proto.v1 import agent_pb2, nodes_pb2, user_pb2
from waterflow_server.store import AgentRecord, Store

__all__ = ["Catalog"]


@attrs.define
class _Offer:
    info: nodes_pb2.NodeInfo
    reported_at: float
    agents: list[str] = attrs.field(factory=list)
    versions: set[str] = attrs.field(factory=set)


class Catalog:
    def __init__(self, store: Store, lease: float, *, clock: Callable[[], float] = time.time):
        self.store = store
        self.lease = lease
        self.clock = clock

    async def report(self, request: agent_pb2.ReportNodesRequest) -> str:
        """Record the agent's report; "" or, when a live agent on another host has the same
        id, one line saying so for the agent's log (the server logs it too)."""
        agent = request.agent
        now = self.clock()
        others = await self.store.call(
            lambda: self.store.agents(live_at=now, agent_id=agent.agent_id)
        )
        conflict = ""
        if others and others[0].host != agent.host:
            other = others[0]
            conflict = (
                f"agent id {agent.agent_id!r} is also used by a live agent on {other.host} (pid "
                f"{other.pid}): agent ids must be unique, or a job's steps run on either agent; "
                "give each agent its own agent.id (WATERFLOW_AGENT_ID)"
            )
            logger.warning(
                "Two hosts report the same agent id",
                agent_id=agent.agent_id,
                host=agent.host,
                pid=agent.pid,
                other_host=other.host,
                other_pid=other.pid,
            )
        record = AgentRecord(
            agent_id=agent.agent_id,
            host=agent.host,
            agent_version=agent.agent_version,
            python_version=agent.python_version,
            pid=agent.pid,
            task_queues=tuple(agent.task_queues),
            versions=dict(agent.versions),
            reported_at=now,
            lease_until=now + self.lease,
        )
        nodes = [
            (n.metadata.name, n.metadata.version, n.SerializeToString()) for n in request.nodes
        ]
        await self.store.call(self.store.save_report, record, nodes)
        logger.info(
            "Agent reported",
            agent_id=agent.agent_id,
            host=agent.host,
            task_queues=list(agent.task_queues),
            nodes=[n[0] for n in nodes],
        )
        return conflict

    async def heartbeat(self, agent_id: str) -> bool:
        return await self.store.call(self.store.renew, agent_id, self.clock() + self.lease)

    async def _offers(self) -> tuple[dict[str, dict[str, _Offer]], dict[str, list[str]]]:
        """queue -> node -> offer, and queue -> live agent ids."""
        live = await self.store.call(lambda: self.store.agents(live_at=self.clock()))
        stored = await self.store.call(self.store.nodes_of, [a.agent_id for a in live])
        by_agent: dict[str, AgentRecord] = {a.agent_id: a for a in live}
        queues: dict[str, dict[str, _Offer]] = {}
        agents: dict[str, list[str]] = {}
        for record in live:
            for queue in record.task_queues:
                agents.setdefault(queue, []).append(record.agent_id)
                queues.setdefault(queue, {})
        for node in stored:
            record = by_agent[node.agent_id]
            for queue in record.task_queues:
                offers = queues[queue]
                offer = offers.get(node.name)
                if offer is None or record.reported_at > offer.reported_at:
                    info = nodes_pb2.NodeInfo.FromString(node.info)
                    fresh = _Offer(info, record.reported_at)
                    if offer is not None:
                        fresh.agents, fresh.versions = offer.agents, offer.versions
                    offer = offers[node.name] = fresh
                offer.agents.append(node.agent_id)
                offer.versions.add(node.version)
        return queues, agents

    async def queues(self, only: str = "") -> list[user_pb2.QueueNodes]:
        offers, agents = await self._offers()
        out = []
        for queue in sorted(offers):
            if only and queue != only:
                continue
            out.append(
                user_pb2.QueueNodes(
                    queue=queue,
                    live_agents=len(agents.get(queue, [])),
                    agent_ids=sorted(agents.get(queue, [])),
                    nodes=[
                        user_pb2.OfferedNode(
                            node=offer.info,
                            live_agents=len(offer.agents),
                            versions=sorted(offer.versions),
                        )
                        for _, offer in sorted(offers[queue].items())
                    ],
                )
            )
        return out

    async def offered(self) -> dict[str, dict[str, NodeMetadata]]:
        """queue -> node name -> metadata, over live agents: what validation checks against."""
        offers, _ = await self._offers()
        result: dict[str, dict[str, NodeMetadata]] = {}
        for queue, nodes in offers.items():
            result[queue] = {}
            for name, offer in nodes.items():
                try:
                    result[queue][name] = _wire.node_metadata(offer.info.metadata)
                except (ValueError, TypeError) as exc:
                    logger.warning(
                        "Node metadata cannot be read; the node is left out of validation",
                        node=name,
                        task_queue=queue,
                        error=str(exc),
                    )
        return result
