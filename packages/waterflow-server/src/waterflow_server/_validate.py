"""`waterflow validate`: against the nodes installed here, or (`--server`) against what each
job's `runs-on` queue offers in the fleet."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.dsl import Problem, WorkflowError, WorkflowSpec, load_workflow, validate_workflow
from waterflow_server._client import ClientError, ServerOptions, connect


def installed_nodes() -> NodeRegistry:
    registry = NodeRegistry()
    # Problems are shown here, once, as warnings: no agent-style log lines in a CLI.
    for problem in load_installed_plugins(registry, log=False):
        click.echo(f"warning: {problem}", err=True)
    return registry


def _ok(file: str, spec: WorkflowSpec) -> str:
    steps = sum(len(job.steps) for job in spec.jobs.values())
    return f"{file}: ok ({_count(len(spec.jobs), 'job')}, {_count(steps, 'step')})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


async def server_problems(
    options: ServerOptions, specs: list[tuple[str, WorkflowSpec]]
) -> list[list[Problem]]:
    """The problems of each file, as the server sees them against its fleet."""
    from waterflow import _wire
    from waterflow._proto.v1 import user_pb2

    found = []
    async with connect(options) as server:
        for file, _ in specs:
            text = Path(file).read_bytes().decode("utf-8-sig")
            response = await server.stub.ValidateWorkflow(
                user_pb2.ValidateWorkflowRequest(file=file, text=text),
                metadata=server.metadata,
                timeout=60,
            )
            found.append([_wire.problem(p) for p in response.problems])
    return found


def validate_command(files: tuple[str, ...], options: ServerOptions | None = None) -> int:
    registry = None if options is not None and options.address else installed_nodes()
    failed = False
    loaded: list[tuple[str, WorkflowSpec]] = []
    for file in files:
        try:
            spec = load_workflow(file)
        except WorkflowError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            failed = True
            continue
        if registry is None:
            loaded.append((file, spec))
            continue
        problems = validate_workflow(spec, registry.metadata())
        if problems:
            for problem in problems:
                click.echo(str(problem), err=True)
            failed = True
            continue
        click.echo(_ok(file, spec))
    if loaded and options is not None:
        try:
            results = asyncio.run(server_problems(options, loaded))
        except (ClientError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            return 1
        for (file, spec), problems in zip(loaded, results, strict=True):
            for problem in problems:
                click.echo(str(problem), err=True)
            if problems:
                failed = True
            else:
                click.echo(_ok(file, spec))
    return 1 if failed else 0
