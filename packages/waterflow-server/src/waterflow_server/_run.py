"""`waterflow run`: validate, start the run (on the embedded default or a given server), follow.

With `--temporal-address` this process only starts and follows a run: what the embedded
default alone needs (the agent, with Temporal's worker, and the node plugins) is imported
inside `_embedded` and `run_command`, so that the warm path starts about a third faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from temporalio.client import Client, WorkflowHandle

from waterflow import _logging, expressions
from waterflow.devserver import DevServer, DevServerError
from waterflow.dsl import (
    MatrixError,
    WorkflowError,
    WorkflowSpec,
    apply_inputs,
    expand_matrix,
    load_workflow,
    validate_workflow,
)
from waterflow.engine import converter
from waterflow.engine.client import follow, start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.search import how_to_register, missing_search_attributes
from waterflow.engine.types import SUCCESS, RunResult
from waterflow_server._local import (
    LocalError,
    LocalOptions,
    agent_environment,
    github_context,
    select_jobs,
)
from waterflow_server._render import Renderer
from waterflow_server._signals import RunLeft, stop_signals, unless_left

if TYPE_CHECKING:
    from waterflow._node import NodeMetadata
    from waterflow.agent.worker import Agent


class RunError(Exception):
    """Stops `waterflow run` with one line."""


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise RunError(f"--input {pair!r}: write it as NAME=VALUE")
        given[name.strip()] = value
    return given


def embedded_queues(spec: WorkflowSpec, inputs: Mapping[str, Any]) -> list[str]:
    """Every queue the workflow's jobs can run on, for the in-process agent to serve.

    A `runs-on` expression is rendered for each combination of a written matrix (with the
    inputs); one that depends on an earlier job cannot be known before the run.
    """
    queues: set[str] = set()
    for job in spec.jobs.values():
        if "${{" not in job.runs_on:
            queues.add(job.runs_on)
            continue
        matrix = job.strategy.matrix if job.strategy is not None else None
        contexts: dict[str, Any] = {"inputs": dict(inputs), "github": {}, "vars": {}}
        try:
            if isinstance(matrix, str):
                raise RunError(
                    f"job {job.id!r}: runs-on {job.runs_on!r} depends on a matrix computed "
                    "during the run, so the embedded agent cannot know its queues; give "
                    "--temporal-address of a fleet serving them"
                )
            combos = expand_matrix(expressions.render_tree(matrix, contexts)) if matrix else [{}]
            for combo in combos:
                queues.add(expressions.render_string(job.runs_on, {**contexts, "matrix": combo}))
        except (expressions.ExpressionError, MatrixError) as exc:
            raise RunError(f"job {job.id!r}: runs-on {job.runs_on!r}: {exc}") from None
    return sorted(queues)


async def start_embedded_agent(server: DevServer, namespace: str, queues: list[str]) -> Agent:
    """The agent of the embedded default, started on `server`, serving `queues`."""
    from waterflow.agent.config import ConfigError, load_config
    from waterflow.agent.worker import Agent, AgentError

    try:
        config = load_config(
            None,
            overrides={
                "temporal.address": server.address,
                "temporal.namespace": namespace,
                "agent.id": "embedded",
                "agent.task_queues": queues,
                "agent.shutdown_timeout": "10s",
            },
        )
    except ConfigError as exc:
        raise RunError(str(exc)) from None
    agent = Agent(config)
    try:
        await agent.start()
    except AgentError as exc:
        raise RunError(str(exc)) from None
    return agent


@contextlib.asynccontextmanager
async def _embedded(
    spec: WorkflowSpec, namespace: str, inputs: Mapping[str, Any]
) -> AsyncIterator[Client]:
    """A local dev server and an in-process agent serving every queue the workflow names."""
    from waterflow.agent.worker import AgentError

    state = Path(os.environ.get("WATERFLOW_EMBEDDED_DIR") or tempfile.mkdtemp(prefix="waterflow-"))
    state.mkdir(parents=True, exist_ok=True)
    server = DevServer(namespace=namespace, log_file=state / "temporal.log")
    await server.start()
    agent: Agent | None = None
    try:
        agent = await start_embedded_agent(server, namespace, embedded_queues(spec, inputs))
        assert agent.client is not None
        yield agent.client
    finally:
        try:
            if agent is not None:
                await agent.shutdown()
        except AgentError as exc:
            raise RunError(str(exc)) from None
        finally:
            server.stop()


async def _remote(address: str, namespace: str) -> Client:
    try:
        return await asyncio.wait_for(
            Client.connect(address, namespace=namespace, data_converter=data_converter), 15
        )
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"cannot connect to Temporal at {address}: {reason}") from None


def check_workflow(
    file: str,
    inputs: tuple[str, ...],
    *,
    jobs: tuple[str, ...],
    nodes: Callable[[], Mapping[str, NodeMetadata]] | None,
    err: TextIO,
    path: str | None = None,
) -> tuple[WorkflowSpec, dict[str, Any]] | None:
    """The workflow FILE (read from `path` when given) with its jobs selected, checked
    against `nodes` (when given) and its inputs applied; None once its problems are printed.

    `nodes` is called only once the file itself is sound: loading the installed plugins costs
    more than reading most workflows.
    """
    try:
        spec = select_jobs(load_workflow(path or file, name=file), jobs)
        problems = validate_workflow(spec, nodes() if nodes is not None else None)
        if not problems:
            return spec, apply_inputs(spec, parse_inputs(inputs))
    except WorkflowError as exc:
        problems = list(exc.problems)
    for problem in problems:
        click.echo(str(problem), file=err)
    return None


async def follow_run(
    client: Client,
    handle: WorkflowHandle[Any, RunResult],
    renderer: Renderer,
    cancel: asyncio.Event,
    *,
    again: str = "leave it running",
    leave: asyncio.Event | None = None,
) -> RunResult:
    """Follow the run to its result; once `cancel` is set, ask Temporal to cancel it.
    `again` says what a second Ctrl-C does. Once `leave` is set, stop following: raises
    `RunLeft`, and the caller's cleanup runs as on any other way out."""

    async def cancel_when_asked() -> None:
        await cancel.wait()
        renderer.note(f"cancelling the run (Ctrl-C again to {again})")
        await handle.cancel()

    canceller = asyncio.ensure_future(cancel_when_asked())
    try:
        return await unless_left(
            # --json: nothing to show until the end, nothing to ask for
            handle.result() if renderer.quiet else follow(client, handle, renderer.event),
            leave,
        )
    finally:
        canceller.cancel()
        await asyncio.gather(canceller, return_exceptions=True)


def report(result: RunResult, renderer: Renderer, *, as_json: bool, elapsed: float) -> int:
    """Print the result (one JSON object with --json) and return the exit code."""
    if as_json:
        click.echo(json.dumps(converter.unstructure(result)), file=renderer.stream)
    else:
        renderer.finished(result, elapsed)
    return 0 if result.status == SUCCESS else 1


async def _run(
    spec: WorkflowSpec,
    inputs: dict[str, Any],
    *,
    given_inputs: dict[str, str],
    temporal_address: str | None,
    namespace: str,
    workspace: str | None,
    renderer: Renderer,
    local: LocalOptions,
) -> RunResult:
    async with contextlib.AsyncExitStack() as stack:
        if temporal_address:
            client = await _remote(temporal_address, namespace)
            missing = await missing_search_attributes(client, namespace)
            if missing:
                renderer.note(
                    f"search attributes {', '.join(missing)} are not registered on "
                    f"{namespace}; runs will not be listable by them. Register with: "
                    f"{how_to_register(namespace)}"
                )
            with_sa = not missing
        else:
            renderer.note("starting the embedded Temporal dev server and agent")
            client = await stack.enter_async_context(_embedded(spec, namespace, inputs))
            workspace = workspace or os.getcwd()
            # The embedded agent runs in this process: what it is given goes into its
            # environment here, never through Temporal.
            os.environ.update(agent_environment(local))
            with_sa = True
        handle = await start_run(
            client,
            spec,
            inputs=inputs,
            given_inputs=given_inputs,
            github=github_context(workspace, local),
            workspace=str(Path(workspace).resolve()) if workspace else None,
            with_search_attributes=with_sa,
        )
        renderer.started(spec, handle.id)
        cancel, leave = asyncio.Event(), asyncio.Event()

        def on_interrupt() -> None:
            # The second one leaves through the same cleanup (the agent, the dev server).
            (leave if cancel.is_set() else cancel).set()

        # The embedded dev server ends with this command, and the run with it.
        again = "leave it running" if temporal_address else "stop at once"
        with stop_signals(on_interrupt):
            return await follow_run(client, handle, renderer, cancel, again=again, leave=leave)


def run_command(
    file: str,
    *,
    inputs: tuple[str, ...],
    temporal_address: str | None,
    namespace: str,
    workspace: str | None,
    as_json: bool,
    local: LocalOptions | None = None,
) -> int:
    _logging.setup_logging(level="warning", fmt="console", stream=sys.stderr)
    renderer = Renderer(quiet=as_json)
    started = time.monotonic()
    try:
        local = local or LocalOptions()
        if temporal_address and local.gives_agent_settings:
            raise RunError(
                "--secret, --secrets-file and --local-repository give values to the embedded "
                "agent; agents of --temporal-address use their own (WATERFLOW_SECRET_<NAME>, "
                "agent.secrets_dir, WATERFLOW_GHA_LOCAL_REPOSITORIES)"
            )
        # Steps run on the embedded agent: check them against the nodes installed here. The
        # agents of --temporal-address have nodes of their own that this process cannot see,
        # so it loads no plugins then.
        checked = check_workflow(
            file,
            inputs,
            jobs=local.jobs,
            nodes=None if temporal_address else _installed_metadata,
            err=renderer.err,
        )
        if checked is None:
            return 1
        spec, values = checked
        result = asyncio.run(
            _run(
                spec,
                values,
                given_inputs=parse_inputs(inputs),
                temporal_address=temporal_address,
                namespace=namespace,
                workspace=workspace,
                renderer=renderer,
                local=local,
            )
        )
    # The embedded agent's own errors (AgentError, ConfigError) arrive as RunError.
    except (RunError, DevServerError, LocalError) as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except (KeyboardInterrupt, RunLeft):
        if temporal_address:
            click.echo("interrupted; the run goes on in Temporal", err=True)
        else:
            click.echo("interrupted; the run ended with the embedded dev server", err=True)
        return 130
    return report(result, renderer, as_json=as_json, elapsed=time.monotonic() - started)


def _installed_metadata() -> dict[str, NodeMetadata]:
    from waterflow_server._validate import installed_nodes

    return installed_nodes().metadata()
