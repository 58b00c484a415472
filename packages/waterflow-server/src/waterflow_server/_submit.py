"""`waterflow run FILE --server ADDR`: the server validates against the fleet and submits; the
CLI follows the run through the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

import click

from waterflow import _logging
from waterflow.dsl import WorkflowError, WorkflowSpec, load_workflow
from waterflow.engine.types import SUCCESS, RunResult
from waterflow_server._client import ClientError, ServerOptions, connect
from waterflow_server._render import Renderer

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunLeft(Exception):
    """The command stopped following its run (a second Ctrl-C or SIGTERM)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


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
        loop = asyncio.get_running_loop()
        cancelling: list[asyncio.Future[object]] = []
        leave = asyncio.Event()

        async def cancel() -> object:
            return await server.stub.CancelRun(
                user_pb2.CancelRunRequest(run_id=run_id), metadata=server.metadata, timeout=30
            )

        def on_interrupt() -> None:
            # The second one stops following through the normal way out, not by an
            # exception raised inside the event loop.
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

        # SIGTERM (a service manager, a CI system cancelling its job) is taken as Ctrl-C is.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for signum in _STOP_SIGNALS:
                loop.add_signal_handler(signum, on_interrupt)
        watching = asyncio.ensure_future(watch())
        leaving = asyncio.ensure_future(leave.wait())
        try:
            await asyncio.wait({watching, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                for signum in _STOP_SIGNALS:
                    loop.remove_signal_handler(signum)
            left = not watching.done()
            for task in (watching, leaving):
                task.cancel()
            await asyncio.gather(watching, leaving, return_exceptions=True)
            # The cancellation asked for is sent, however the command ends.
            await asyncio.gather(*cancelling, return_exceptions=True)
        if left:
            raise RunLeft(run_id)
        result = watching.result()
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
