"""`waterflow logs RUN [--follow]`: a run's step log lines, from the server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC

import click

from waterflow._proto.v1 import user_pb2
from waterflow_server._client import ClientError, ServerOptions, connect


def _line(entry: user_pb2.LogEntry, *, timestamps: bool) -> str:
    step = entry.step
    attempt = f" #{step.attempt}" if step.attempt > 1 else ""
    prefix = f"{step.job} | {step.name}{attempt} | "
    if timestamps:
        when = entry.time.ToDatetime(tzinfo=UTC).strftime("%H:%M:%S.%f")[:-3]
        prefix = f"{when} {prefix}"
    return prefix + entry.text


async def _stream(
    options: ServerOptions,
    request: user_pb2.GetLogsRequest,
    *,
    as_json: bool,
    timestamps: bool,
) -> int:
    count = 0
    async with connect(options) as server:
        async for entry in server.stub.GetLogs(request, metadata=server.metadata):
            count += 1
            if as_json:
                data = {
                    "run_id": entry.step.run_id,
                    "job": entry.step.job,
                    "step": entry.step.step,
                    "step_name": entry.step.name,
                    "attempt": entry.step.attempt,
                    "seq": entry.seq,
                    "time": entry.time.ToDatetime(tzinfo=UTC).isoformat(),
                    "stream": entry.stream,
                    "text": entry.text,
                    "agent_id": entry.agent_id,
                }
                click.echo(json.dumps(data, sort_keys=True))
            else:
                click.echo(_line(entry, timestamps=timestamps))
    return count


def logs_command(
    options: ServerOptions,
    run_id: str,
    *,
    job: str,
    step: str,
    follow: bool,
    as_json: bool,
    timestamps: bool,
) -> int:
    request = user_pb2.GetLogsRequest(run_id=run_id, job=job, step=step, follow=follow)
    try:
        count = asyncio.run(_stream(options, request, as_json=as_json, timestamps=timestamps))
    except ClientError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    if count == 0 and not as_json:
        click.echo(f"no log lines for run {run_id}" + (f" job {job}" if job else ""), err=True)
    return 0
