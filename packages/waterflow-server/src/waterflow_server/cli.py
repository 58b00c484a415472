"""`waterflow`: run and validate workflows.

A thin layer: each command lives in its own module and imports its heavy parts inside the
command; every error ends here as one line on stderr and an exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from waterflow_server import __version__

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """An error for the user: printed as one line, exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="waterflow")
def main() -> None:
    """Run YAML workflows on Temporal, on your own servers."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="A workflow input.")
@click.option(
    "--temporal-address",
    envvar="WATERFLOW_TEMPORAL_ADDRESS",
    metavar="HOST:PORT",
    help="A running Temporal server; without it, a local dev server and agent are started.",
)
@click.option(
    "--namespace", envvar="WATERFLOW_TEMPORAL_NAMESPACE", default="default", show_default=True
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    help="The jobs' workspace (embedded default: the current directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as one JSON object.")
def run(
    file: str,
    inputs: tuple[str, ...],
    temporal_address: str | None,
    namespace: str,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Run the workflow FILE and follow it to the end (exit 0 on success, 1 on failure)."""
    from waterflow._exit import exit_process
    from waterflow_server._run import run_command

    code = run_command(
        file,
        inputs=inputs,
        temporal_address=temporal_address,
        namespace=namespace,
        workspace=workspace,
        as_json=as_json,
    )
    exit_process(code)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check workflow FILES against the language and the nodes installed here."""
    from waterflow_server._validate import validate_command

    sys.exit(validate_command(files))
