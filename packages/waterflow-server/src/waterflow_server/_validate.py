"""`waterflow validate`."""

from __future__ import annotations

import click

from waterflow._plugins import load_installed_plugins
from waterflow._registry import NodeRegistry
from waterflow.dsl import WorkflowError, load_workflow, validate_workflow


def installed_nodes() -> NodeRegistry:
    registry = NodeRegistry()
    # Problems are shown here, once, as warnings: no agent-style log lines in a CLI.
    for problem in load_installed_plugins(registry, log=False):
        click.echo(f"warning: {problem}", err=True)
    return registry


def validate_command(files: tuple[str, ...]) -> int:
    registry = installed_nodes()
    failed = False
    for file in files:
        try:
            spec = load_workflow(file)
        except WorkflowError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            failed = True
            continue
        problems = validate_workflow(spec, registry.metadata())
        if problems:
            for problem in problems:
                click.echo(str(problem), err=True)
            failed = True
            continue
        steps = sum(len(job.steps) for job in spec.jobs.values())
        click.echo(f"{file}: ok ({len(spec.jobs)} jobs, {steps} steps)")
    return 1 if failed else 0
