"""`waterflow-agent`: run the agent, list its nodes and plugins, reload its plugins.

Every error ends here as one line and an exit code; library code never exits the process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from waterflow._buildinfo import version_text

if TYPE_CHECKING:
    from waterflow.agent.config import AgentConfig


class UserError(click.ClickException):
    """An error for the user: printed as one line, exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _load_config(config_file: str | None) -> AgentConfig:
    from waterflow.agent.config import ConfigError, load_config

    try:
        return load_config(config_file)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


_CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="The agent's YAML file (else WATERFLOW_* variables and defaults).",
)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit(0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show version, commit and build time.",
)
def main() -> None:
    """The Waterflow agent: a Temporal worker that runs workflow steps on this server."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("--task-queues", help="Comma-separated queues to poll (agent.task_queues).")
@click.option("--temporal-address", help="host:port of Temporal (temporal.address).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "warn", "error"]))
def run(
    config_file: str | None,
    task_queues: str | None,
    temporal_address: str | None,
    log_level: str | None,
) -> None:
    """Poll the task queues and run steps until SIGINT or SIGTERM."""
    from waterflow._exit import exit_process
    from waterflow.agent._run import run_agent

    overrides: dict[str, Any] = {}
    if task_queues is not None:
        overrides["agent.task_queues"] = [q.strip() for q in task_queues.split(",") if q.strip()]
    if temporal_address is not None:
        overrides["temporal.address"] = temporal_address
    if log_level is not None:
        overrides["log.level"] = log_level
    exit_process(run_agent(config_file, overrides))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def nodes(as_json: bool) -> None:
    """List the nodes this agent offers, with their distribution, version and parameters."""
    from waterflow._plugins import load_installed_plugins
    from waterflow._registry import NodeRegistry
    from waterflow.engine.converter import unstructure

    registry = NodeRegistry()
    problems = load_installed_plugins(registry, log=False)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        catalog = [
            {
                "name": node.name,
                "distribution": node.source.distribution,
                "distribution_version": node.source.version,
                "plugin": node.source.name,
                "metadata": unstructure(node.metadata),
            }
            for node in registry.all()
        ]
        click.echo(json.dumps(catalog, indent=2, sort_keys=True, default=str))
        return
    if not registry.all():
        click.echo("no nodes installed (install a node package, e.g. waterflow-nodes-shell)")
        return
    for node in registry.all():
        meta = node.metadata
        click.echo(f"{meta.name}  {meta.version}  ({node.source.describe()})")
        if meta.description:
            click.echo(f"    {meta.description}")
        for p in meta.parameters:
            flags = "required" if p.required else f"default {p.default!r}"
            enum = f", one of {list(p.enum)}" if p.enum else ""
            desc = f": {p.description}" if p.description else ""
            click.echo(f"    - {p.name} ({p.type}, {flags}{enum}){desc}")
        for o in meta.outputs:
            click.echo(f"    > {o.name}" + (f": {o.description}" if o.description else ""))


@main.group()
def plugins() -> None:
    """The plugins of this host's agent: list them, reload them in the running agent."""


@plugins.command("list")
@_CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the plugins as JSON.")
def plugins_list(config_file: str | None, as_json: bool) -> None:
    """List the plugins an agent with this configuration loads: entry points of installed
    distributions and files in agent.plugin_dir, with their source, version and nodes."""
    import tempfile

    from waterflow._registry import NodeRegistry
    from waterflow._reload import PluginReloader

    config = _load_config(config_file)
    with tempfile.TemporaryDirectory(prefix="waterflow-plugins-") as cache:
        reloader = PluginReloader(
            NodeRegistry(), plugin_dir=config.agent.plugin_dir, cache_dir=Path(cache), log=False
        )
        report = reloader.rescan(trigger="start")
        found = reloader.plugins()
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        rows = [
            {
                "name": p.name,
                "kind": p.kind,
                "distribution": p.distribution,
                "version": p.version,
                "origin": p.origin,
                "nodes": list(p.nodes),
            }
            for p in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    if not found:
        click.echo(
            "no plugins (install a node package, or put one in "
            f"{config.agent.plugin_dir} or its core/ and custom/)"
        )
        return
    for p in found:
        click.echo(f"{p.name}  {p.version}  ({p.source_text})")
        click.echo(f"    nodes: {', '.join(p.nodes) or 'none'}")


@plugins.command("reload")
@_CONFIG_OPTION
def plugins_reload(config_file: str | None) -> None:
    """Make the agent running on this host rescan its plugins now (sends it SIGHUP).

    The agent is found through the pidfile in its agent.work_dir: give the configuration it
    runs with (--config, or the same WATERFLOW_* variables).
    """
    from waterflow.agent._run import signal_agent
    from waterflow.agent.worker import AgentError

    config = _load_config(config_file)
    try:
        done = signal_agent(config.agent.work_dir)
    except AgentError as exc:
        raise UserError(str(exc)) from None
    click.echo(f'{done}; it rescans its plugins and logs "Plugins reloaded"')
