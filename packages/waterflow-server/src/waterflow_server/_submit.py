"""`waterflow run FILE --server ADDR`: the server validates against the fleet and submits; the
CLI follows the run through the server."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import click

from waterflow import _logging
from waterflow.dsl import WorkflowError, WorkflowSpec, load_workflow
from waterflow.engine.types import SUCCESS, RunResult
from waterflow_server._client import ClientError, ServerOptions, connect
from waterflow_server._render import Renderer
from waterflow_server._signals import RunLeft, stop_signals, unless_left


async def _submit_and_follow(
    spec: WorkflowSpec,
    text: str,
    inputs: dict[str, str],
    options: ServerOptions,
    renderer: Renderer,
) -> RunResult | None:
    from waterflow import _wire
    from waterflow._proto.v1 import user_pb2
    from waterflow_server import _convert

    async with connect(options) as server:
        submitted = await server.stub.SubmitRun(
            user_pb2.SubmitRunRequest(file=spec.file, text=text, inputs=inputs),
            metadata=server.metadata,
            timeout=60,
        )
        if submitted.problems or not submitted.run_id:
            for problem in submitted.problems:
                click.echo(str(_wire.problem(problem)), err=True)
            return None
        run_id = submitted.run_id
        renderer.started(spec, run_id)
        cancelling: list[asyncio.Future[object]] = []
        leave = asyncio.Event()

        async def cancel() -> object:
            return await server.stub.CancelRun(
                user_pb2.CancelRunRequest(run_id=run_id), metadata=server.metadata, timeout=30
            )

        def on_interrupt() -> None:
            if cancelling:
                leave.set()
                return
            renderer.note("cancelling the run (Ctrl-C again to stop following it)")
            cancelling.append(asyncio.ensure_future(cancel()))

        async def watch() -> RunResult | None:
            stream = server.stub.WatchRun(
                user_pb2.WatchRunRequest(run_id=run_id), metadata=server.metadata
            )
            async for event in stream:
                if event.kind == "finished":
                    return _convert.run_result(event.run)
                renderer.event(_convert.event(event))
            return None

        with stop_signals(on_interrupt):
            try:
                result = await unless_left(watch(), leave)
            except RunLeft:
                raise RunLeft(run_id) from None  # named, for the last line
            finally:
                # The cancellation asked for is sent, however the command ends.
                await asyncio.gather(*cancelling, return_exceptions=True)
        if result is None:
            raise ClientError(f"the server ended the watch of run {run_id} before its end")
        return result


def remote_run_command(
    file: str,
    *,
    inputs: tuple[str, ...],
    options: ServerOptions,
    as_json: bool,
) -> int:
    from waterflow.engine import converter
    from waterflow_server._run import RunError, parse_inputs

    _logging.setup_logging(level="warning", fmt="console", stream=sys.stderr)
    renderer = Renderer(quiet=as_json)
    started = time.monotonic()
    try:
        spec = load_workflow(file)  # the language's own problems, before asking the server
    except WorkflowError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return 1
    text = Path(file).read_bytes().decode("utf-8-sig")
    try:
        given = parse_inputs(inputs)
        result = asyncio.run(_submit_and_follow(spec, text, given, options, renderer))
    except (ClientError, RunError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except RunLeft as left:
        click.echo(
            f"interrupted; its cancellation was asked for "
            f"(waterflow show {left.run_id} shows how the run ended)",
            err=True,
        )
        return 130
    except KeyboardInterrupt:  # before the run was submitted, or no signal handlers here
        click.echo("interrupted", err=True)
        return 130
    if result is None:
        return 1
    if as_json:
        click.echo(json.dumps(converter.unstructure(result), sort_keys=True))
    else:
        renderer.finished(result, time.monotonic() - started)
    return 0 if result.status == SUCCESS else 1
