"""`waterflow.v1.UserService`: the node catalog, validation against the fleet, runs and logs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc
from loguru import logger

from waterflow import _wire
from waterflow._proto.v1 import user_pb2, user_pb2_grpc
from waterflow.dsl import (
    Problem,
    WorkflowError,
    WorkflowSpec,
    apply_inputs,
    parse_workflow,
    validate_on_queues,
)
from waterflow_server.catalog import Catalog
from waterflow_server.logs import Logs
from waterflow_server.runs import STATUSES, NoSuchRun, Runs, TemporalUnavailable

__all__ = ["UserService"]

Context = grpc.aio.ServicerContext[Any, Any]


async def _abort(context: Context, exc: Exception, run_id: str = "") -> NoReturn:
    if isinstance(exc, NoSuchRun):
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no run {run_id!r}")
    if isinstance(exc, TemporalUnavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    logger.exception("Call failed")
    await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
    raise AssertionError("abort returns only by raising")  # pragma: no cover


class UserService(user_pb2_grpc.UserServiceServicer):
    def __init__(self, catalog: Catalog, runs: Runs, logs: Logs) -> None:
        self.catalog = catalog
        self.runs = runs
        self.logs = logs

    async def _check(self, file: str, text: str) -> tuple[WorkflowSpec | None, list[Problem]]:
        """The workflow parsed and checked against what each job's queue offers."""
        try:
            spec = parse_workflow(text, file or "<workflow>")
        except WorkflowError as exc:
            return None, exc.problems
        return spec, validate_on_queues(spec, await self.catalog.offered())

    async def ListNodes(
        self, request: user_pb2.ListNodesRequest, context: Context
    ) -> user_pb2.ListNodesResponse:
        return user_pb2.ListNodesResponse(queues=await self.catalog.queues(request.queue))

    async def ValidateWorkflow(
        self, request: user_pb2.ValidateWorkflowRequest, context: Context
    ) -> user_pb2.ValidateWorkflowResponse:
        spec, problems = await self._check(request.file, request.text)
        response = user_pb2.ValidateWorkflowResponse(
            problems=[_wire.problem_message(p) for p in problems]
        )
        if spec is not None:
            response.jobs = len(spec.jobs)
            response.steps = sum(len(job.steps) for job in spec.jobs.values())
        return response

    async def SubmitRun(
        self, request: user_pb2.SubmitRunRequest, context: Context
    ) -> user_pb2.SubmitRunResponse:
        spec, problems = await self._check(request.file, request.text)
        if spec is None or problems:
            return user_pb2.SubmitRunResponse(problems=[_wire.problem_message(p) for p in problems])
        try:
            values = apply_inputs(spec, dict(request.inputs))
        except WorkflowError as exc:
            return user_pb2.SubmitRunResponse(
                problems=[_wire.problem_message(p) for p in exc.problems]
            )
        try:
            run_id = await self.runs.submit(spec, values, dict(request.inputs))
        except Exception as exc:
            await _abort(context, exc)
        return user_pb2.SubmitRunResponse(run_id=run_id, workflow=spec.name)

    async def ListRuns(
        self, request: user_pb2.ListRunsRequest, context: Context
    ) -> user_pb2.ListRunsResponse:
        if request.status and request.status not in STATUSES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown status {request.status!r}; use one of {', '.join(STATUSES)}",
            )
        limit = request.limit if request.limit > 0 else 20
        try:
            runs = await self.runs.list(
                workflow=request.workflow, status=request.status, limit=min(limit, 1000)
            )
        except Exception as exc:
            await _abort(context, exc)
        return user_pb2.ListRunsResponse(runs=runs)

    async def GetRun(self, request: user_pb2.GetRunRequest, context: Context) -> user_pb2.Run:
        try:
            return await self.runs.get(request.run_id)
        except Exception as exc:
            await _abort(context, exc, request.run_id)

    async def WatchRun(
        self, request: user_pb2.WatchRunRequest, context: Context
    ) -> AsyncIterator[user_pb2.RunEvent]:
        try:
            async for event in self.runs.watch(request.run_id):
                yield event
        except Exception as exc:
            await _abort(context, exc, request.run_id)

    async def CancelRun(
        self, request: user_pb2.CancelRunRequest, context: Context
    ) -> user_pb2.CancelRunResponse:
        try:
            status = await self.runs.cancel(request.run_id)
        except Exception as exc:
            await _abort(context, exc, request.run_id)
        return user_pb2.CancelRunResponse(status=status)

    async def GetLogs(
        self, request: user_pb2.GetLogsRequest, context: Context
    ) -> AsyncIterator[user_pb2.LogEntry]:
        run_id = request.run_id
        try:
            if not await self.logs.has_lines(run_id):
                try:
                    known = await self.runs.exists(run_id)
                except TemporalUnavailable:
                    known = True  # cannot tell: an empty stream, or a wait for lines
                if not known:
                    raise NoSuchRun(run_id)
            async for entry in self.logs.stream(
                run_id,
                job=request.job,
                step=request.step,
                follow=request.follow,
                closed=self.runs.closed,
            ):
                yield entry
        except Exception as exc:
            await _abort(context, exc, run_id)
