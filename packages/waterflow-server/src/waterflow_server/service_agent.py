"""`waterflow.v1.AgentService`: node reports, lease heartbeats and step log lines from agents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import duration_pb2

from waterflow._proto.v1 import agent_pb2, agent_pb2_grpc
from waterflow_server.catalog import Catalog
from waterflow_server.logs import Logs

__all__ = ["AgentService"]

Context = grpc.aio.ServicerContext[Any, Any]


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, catalog: Catalog, logs: Logs) -> None:
        self.catalog = catalog
        self.logs = logs

    def _lease(self) -> duration_pb2.Duration:
        lease = duration_pb2.Duration()
        lease.FromTimedelta(timedelta(seconds=self.catalog.lease))
        return lease

    async def ReportNodes(
        self, request: agent_pb2.ReportNodesRequest, context: Context
    ) -> agent_pb2.ReportNodesResponse:
        if not request.agent.agent_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "agent.agent_id is empty")
        conflict = await self.catalog.report(request)
        return agent_pb2.ReportNodesResponse(lease=self._lease(), conflict=conflict)

    async def Heartbeat(
        self, request: agent_pb2.HeartbeatRequest, context: Context
    ) -> agent_pb2.HeartbeatResponse:
        known = await self.catalog.heartbeat(request.agent_id)
        return agent_pb2.HeartbeatResponse(known=known, lease=self._lease())

    async def PushLogs(
        self, request: agent_pb2.PushLogsRequest, context: Context
    ) -> agent_pb2.PushLogsResponse:
        return agent_pb2.PushLogsResponse(stored=await self.logs.push(request))
