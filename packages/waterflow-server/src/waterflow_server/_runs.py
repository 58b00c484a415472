"""`waterflow runs`, `waterflow show RUN`, `waterflow cancel RUN`: runs through the server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC
from typing import Any

import click
from google.protobuf import json_format, timestamp_pb2

from waterflow._proto.v1 import user_pb2
from waterflow_server._client import ClientError, ServerOptions, connect
from waterflow_server._table import print_table

_MARK = {"success": "✓", "failure": "✗", "cancelled": "⊘", "skipped": "-", "running": "…"}


def _when(stamp: timestamp_pb2.Timestamp, present: bool) -> str:
    if not present:
        return "-"
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _as_dict(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _fail(exc: ClientError) -> int:
    click.echo(f"error: {exc}", err=True)
    return 1


def runs_command(
    options: ServerOptions, *, workflow: str, status: str, limit: int, as_json: bool
) -> int:
    async def fetch() -> list[user_pb2.RunSummary]:
        async with connect(options) as server:
            response = await server.stub.ListRuns(
                user_pb2.ListRunsRequest(workflow=workflow, status=status, limit=limit),
                metadata=server.metadata,
                timeout=30,
            )
        return list(response.runs)

    try:
        runs = asyncio.run(fetch())
    except ClientError as exc:
        return _fail(exc)
    if as_json:
        click.echo(json.dumps([_as_dict(r) for r in runs], indent=2, sort_keys=True))
        return 0
    if not runs:
        click.echo("no runs")
        return 0
    rows = []
    for run in runs:
        duration = "-"
        if run.HasField("close_time"):
            seconds = (run.close_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
            duration = f"{seconds:.1f}s"
        rows.append(
            [
                run.run_id,
                run.workflow,
                run.status,
                _when(run.start_time, run.HasField("start_time")),
                duration,
            ]
        )
    print_table(["RUN", "WORKFLOW", "STATUS", "STARTED (UTC)", "DURATION"], rows)
    return 0


def _show(run: user_pb2.Run) -> None:
    summary = run.summary
    duration = f" in {run.duration:.1f}s" if run.HasField("duration") else ""
    click.echo(f"Run {summary.run_id} of {summary.workflow or '?'}: {summary.status}{duration}")
    click.echo(f"  started {_when(summary.start_time, summary.HasField('start_time'))} UTC")
    if summary.HasField("close_time"):
        click.echo(f"  ended   {_when(summary.close_time, True)} UTC")
    for job in run.jobs:
        where = f" on {job.runs_on}" if job.runs_on else ""
        agent = f" (agent {job.agent_id})" if job.agent_id else ""
        duration = f" {job.duration:.1f}s" if job.HasField("duration") else ""
        label = job.name or job.job
        click.echo(f"{_MARK.get(job.status, '?')} {label}{where}{agent}: {job.status}{duration}")
        if job.error:
            click.echo(f"    {job.error}")
        for step in job.steps:
            took = f"  {step.duration:.2f}s" if step.HasField("duration") else ""
            attempts = f" after {step.attempts} attempts" if step.attempts > 1 else ""
            mark = _MARK.get(step.conclusion, "?")
            click.echo(f"    {mark} {step.name} ({step.uses}){took}{attempts}")
            if step.error:
                click.echo(f"        {step.error.splitlines()[0]}")
        if job.current_step:
            click.echo(f"    … {job.current_step}")
        for name, value in sorted(job.outputs.items()):
            click.echo(f"    {job.job}.outputs.{name} = {value}")


def show_command(options: ServerOptions, run_id: str, as_json: bool) -> int:
    async def fetch() -> user_pb2.Run:
        async with connect(options) as server:
            run: user_pb2.Run = await server.stub.GetRun(
                user_pb2.GetRunRequest(run_id=run_id), metadata=server.metadata, timeout=30
            )
            return run

    try:
        run = asyncio.run(fetch())
    except ClientError as exc:
        return _fail(exc)
    if as_json:
        click.echo(json.dumps(_as_dict(run), indent=2, sort_keys=True))
    else:
        _show(run)
    return 0


def cancel_command(options: ServerOptions, run_id: str) -> int:
    async def cancel() -> str:
        async with connect(options) as server:
            response = await server.stub.CancelRun(
                user_pb2.CancelRunRequest(run_id=run_id), metadata=server.metadata, timeout=30
            )
        return response.status

    try:
        status = asyncio.run(cancel())
    except ClientError as exc:
        return _fail(exc)
    if status == "running":
        click.echo(f"cancelling run {run_id}")
        return 0
    click.echo(f"run {run_id} has already ended: {status}")
    return 0
