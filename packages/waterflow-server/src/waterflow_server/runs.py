"""Runs on Temporal: submit, list (visibility, by search attributes), show, cancel, watch.

The server connects to Temporal when it first needs to and again after a failure, so it starts
and serves the registry and logs while Temporal is away; a call that needs Temporal then fails
with UNAVAILABLE and one line naming the address.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2
from loguru import logger
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from waterflow._proto.v1 import user_pb2
from waterflow.dsl import WorkflowSpec
from waterflow.engine.client import Event, follow, start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.search import ensure_search_attributes
from waterflow.engine.types import SA_STATUS, SA_WORKFLOW, WORKFLOW_RUN, RunProgress, RunResult
from waterflow_server import _convert
from waterflow_server.config import TemporalSettings

__all__ = ["NoSuchRun", "Runs", "TemporalUnavailable"]

_KEY_WORKFLOW = SearchAttributeKey.for_keyword(SA_WORKFLOW)
_KEY_STATUS = SearchAttributeKey.for_keyword(SA_STATUS)
_QUERY_TIMEOUT = 5.0
_STATUS_OF: dict[WorkflowExecutionStatus, str] = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.FAILED: "failure",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
_STATUS_QUERY = {
    "running": "ExecutionStatus = 'Running'",
    "cancelled": "ExecutionStatus = 'Canceled'",
    "terminated": "ExecutionStatus = 'Terminated'",
    "timed_out": "ExecutionStatus = 'TimedOut'",
    "success": f"ExecutionStatus = 'Completed' AND {SA_STATUS} = 'success'",
    "failure": f"(ExecutionStatus = 'Failed' OR {SA_STATUS} = 'failure')",
}
STATUSES = tuple(_STATUS_QUERY)


class TemporalUnavailable(Exception):
    """Temporal cannot be reached; one line naming the address."""


class NoSuchRun(Exception):
    """No run has this id."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Runs:
    def __init__(self, settings: TemporalSettings, *, client: Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()
        self.search_attributes = client is None  # checked on connect

    async def client(self) -> Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            address = self.settings.address
            try:
                client = await asyncio.wait_for(
                    Client.connect(
                        address, namespace=self.settings.namespace, data_converter=data_converter
                    ),
                    10,
                )
            except Exception as exc:
                raise TemporalUnavailable(
                    f"Temporal at {address} is not reachable: {_first_line(exc)}"
                ) from None
            self.search_attributes = await ensure_search_attributes(client, self.settings.namespace)
            logger.info("Connected to Temporal", temporal_address=address)
            self._client = client
            return client

    async def _call(self, coro: Any) -> Any:
        """Await a Temporal call; an unreachable Temporal becomes TemporalUnavailable."""
        try:
            return await coro
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NoSuchRun(str(exc)) from None
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise TemporalUnavailable(
                    f"Temporal at {self.settings.address} is not reachable: {_first_line(exc)}"
                ) from None
            raise

    # -- submit ----------------------------------------------------------------------------

    async def submit(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], given: Mapping[str, str]
    ) -> str:
        """Start a run: `inputs` the `inputs` context, `given` the inputs as the user gave
        them."""
        client = await self.client()
        handle = await self._call(
            start_run(
                client,
                spec,
                inputs=inputs,
                given_inputs=given,
                with_search_attributes=self.search_attributes,
            )
        )
        logger.info("Run submitted", run_id=handle.id, workflow=spec.name, file=spec.file)
        return str(handle.id)

    # -- list ------------------------------------------------------------------------------

    def _summary(self, execution: WorkflowExecution) -> user_pb2.RunSummary:
        attributes = execution.typed_search_attributes
        workflow = attributes.get(_KEY_WORKFLOW) or ""
        status = _STATUS_OF.get(execution.status or WorkflowExecutionStatus.RUNNING, "")
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            status = attributes.get(_KEY_STATUS) or "completed"
        summary = user_pb2.RunSummary(run_id=execution.id, workflow=workflow, status=status)
        start = _timestamp(execution.start_time)
        if start is not None:
            summary.start_time.CopyFrom(start)
        close = _timestamp(execution.close_time)
        if close is not None:
            summary.close_time.CopyFrom(close)
        return summary

    async def list(
        self, *, workflow: str = "", status: str = "", limit: int = 20
    ) -> list[user_pb2.RunSummary]:
        client = await self.client()
        clauses = [f"WorkflowType = {_quote(WORKFLOW_RUN)}"]
        if workflow:
            clauses.append(f"{SA_WORKFLOW} = {_quote(workflow)}")
        if status:
            clauses.append(_STATUS_QUERY[status])
        query = " AND ".join(clauses)

        async def collect() -> list[user_pb2.RunSummary]:
            return [self._summary(e) async for e in client.list_workflows(query, limit=limit)]

        result: list[user_pb2.RunSummary] = await self._call(collect())
        return result

    # -- show ------------------------------------------------------------------------------

    async def get(self, run_id: str) -> user_pb2.Run:
        client = await self.client()
        handle = client.get_workflow_handle(run_id)
        description = await self._call(handle.describe())
        if description.workflow_type != WORKFLOW_RUN:
            raise NoSuchRun(f"{run_id} is a {description.workflow_type} workflow, not a run")
        summary = self._summary(description)
        result: RunResult | None = None
        progress: RunProgress | None = None
        if description.status == WorkflowExecutionStatus.COMPLETED:
            typed = client.get_workflow_handle(run_id, result_type=RunResult)
            result = await self._call(typed.result())
        else:
            with contextlib.suppress(Exception):
                progress = await asyncio.wait_for(
                    handle.query("progress", result_type=RunProgress), _QUERY_TIMEOUT
                )
        run = user_pb2.Run(summary=summary, jobs=_convert.run_jobs(result, progress))
        if result is not None:
            summary.workflow = summary.workflow or result.workflow
            if result.duration is not None:
                run.duration = result.duration
        return run

    async def closed(self, run_id: str) -> bool:
        """Whether the run has ended (an unknown run has); False when Temporal is away."""
        try:
            client = await self.client()
            description = await self._call(client.get_workflow_handle(run_id).describe())
        except NoSuchRun:
            return True
        except TemporalUnavailable:
            return False
        return bool(description.status != WorkflowExecutionStatus.RUNNING)

    async def exists(self, run_id: str) -> bool:
        client = await self.client()
        try:
            await self._call(client.get_workflow_handle(run_id).describe())
        except NoSuchRun:
            return False
        return True

    # -- cancel ----------------------------------------------------------------------------

    async def cancel(self, run_id: str) -> str:
        run = await self.get(run_id)
        if run.summary.status == "running":
            client = await self.client()
            await self._call(client.get_workflow_handle(run_id).cancel())
            logger.info("Run cancellation requested", run_id=run_id)
        return run.summary.status

    # -- watch -----------------------------------------------------------------------------

    async def watch(self, run_id: str) -> AsyncIterator[user_pb2.RunEvent]:
        """The run's progress events as they happen, then `finished` with the whole run."""
        await self.get(run_id)  # NoSuchRun before the stream starts
        client = await self.client()
        handle = client.get_workflow_handle(run_id, result_type=RunResult)
        events: asyncio.Queue[Event] = asyncio.Queue()
        following = asyncio.create_task(follow(client, handle, events.put_nowait))
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, following}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield _convert.event_message(getter.result())
                    continue
                getter.cancel()
                break
            while not events.empty():
                yield _convert.event_message(events.get_nowait())
            final = user_pb2.RunEvent(kind="finished")
            try:
                result = following.result()
            except WorkflowFailureError:
                final.run.CopyFrom(await self.get(run_id))
            else:
                run = await self.get(run_id)
                run.ClearField("jobs")
                run.jobs.extend(_convert.run_jobs(result, None))
                final.run.CopyFrom(run)
            yield final
        finally:
            following.cancel()
            with contextlib.suppress(BaseException):
                await following
