"""`waterflow`: run and validate workflows; the server and its client commands.

A thin layer: each command lives in its own module and imports its heavy parts inside the
command; every error ends here as one line on stderr and an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from waterflow_server._options import ServerOptions, server_options

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """An error for the user: printed as one line, exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The version is read from the installed distribution when --version asks for it: reading it
# here would import importlib.metadata at every start of every command.
@click.version_option(package_name="waterflow-server", prog_name="waterflow")
def main() -> None:
    """Run YAML workflows on Temporal, on your own servers."""
    # gRPC's native core writes its own lines to stderr (a failed TLS handshake, say); the
    # commands say what went wrong in one line of their own.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


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
@click.option("--event", metavar="NAME", help="github.event_name (e.g. push).")
@click.option(
    "--event-path",
    type=click.Path(dir_okay=False),
    help="A JSON file: the github.event payload.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME=VALUE",
    help="A secret for the embedded agent (never sent through Temporal).",
)
@click.option(
    "--secrets-file",
    type=click.Path(dir_okay=False),
    help="A file of NAME=VALUE lines: secrets for the embedded agent.",
)
@click.option(
    "--local-repository",
    "local_repositories",
    multiple=True,
    metavar="OWNER/REPO@REF=DIR",
    help="Serve this action from a folder instead of fetching it.",
)
@click.option("--job", "jobs", multiple=True, metavar="ID", help="Run this job (and its needs).")
@server_options(required=False)
def run(
    file: str,
    inputs: tuple[str, ...],
    temporal_address: str | None,
    namespace: str,
    workspace: str | None,
    as_json: bool,
    event: str | None,
    event_path: str | None,
    secrets: tuple[str, ...],
    secrets_file: str | None,
    local_repositories: tuple[str, ...],
    jobs: tuple[str, ...],
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """Run the workflow FILE and follow it to the end (exit 0 on success, 1 on failure).

    With --server, the server checks FILE against what its agents offer, submits it, and the
    run is followed through the server.
    """
    if not server_address and not temporal_address:
        from waterflow_server._up_client import run_request

        _run_through_up(
            run_request(
                file,
                inputs=inputs,
                namespace=namespace,
                workspace=workspace,
                as_json=as_json,
                event=event,
                event_path=event_path,
                jobs=jobs,
            ),
            agent_settings=bool(secrets or secrets_file or local_repositories),
        )
    from waterflow._exit import exit_process

    if server_address:
        if temporal_address or workspace:
            raise UserError(
                "--server submits through the server: drop --temporal-address/--workspace"
            )
        if secrets or secrets_file or local_repositories or jobs or event or event_path:
            raise UserError(
                "--server runs the whole workflow with the fleet's own secrets and actions: "
                "drop --secret, --secrets-file, --local-repository, --job, --event and "
                "--event-path"
            )
        from waterflow_server._submit import remote_run_command

        exit_process(
            remote_run_command(
                file,
                inputs=inputs,
                options=ServerOptions(server_address, token, tls, tls_ca),
                as_json=as_json,
            )
        )
    from waterflow_server._local import LocalOptions
    from waterflow_server._run import run_command

    code = run_command(
        file,
        inputs=inputs,
        temporal_address=temporal_address,
        namespace=namespace,
        workspace=workspace,
        as_json=as_json,
        local=LocalOptions(
            event=event,
            event_path=event_path,
            secrets=secrets,
            secrets_file=secrets_file,
            local_repositories=local_repositories,
            jobs=jobs,
        ),
    )
    exit_process(code)


def _run_through_up(request: dict[str, Any], *, agent_settings: bool) -> None:
    """When `waterflow up` runs, the run is its: exits with the run's code. Returns when the
    command must run the workflow itself."""
    from waterflow_server import _up_client

    if agent_settings:
        if os.path.exists(_up_client.socket_path()):
            click.echo(
                "note: --secret, --secrets-file and --local-repository are for an agent of this "
                "command's own: not running through waterflow up",
                err=True,
            )
        return
    if _up_client.tried:  # by `entry` already, which found no service for this command
        return
    try:
        code = _up_client.run(request)
    except _up_client.UpError as exc:
        raise UserError(str(exc)) from None
    if code is not None:
        sys.exit(code)


@main.command()
@click.option("--detach", "-d", is_flag=True, help="Run in the background; return once ready.")
@click.option(
    "--namespace", envvar="WATERFLOW_TEMPORAL_NAMESPACE", default="default", show_default=True
)
@click.option("--ready-fd", type=int, hidden=True)
def up(detach: bool, namespace: str, ready_fd: int | None) -> None:
    """Keep the embedded default running: a local Temporal dev server and an agent.

    While it runs, `waterflow run FILE` (without --temporal-address or --server) hands its run
    to it instead of starting its own, and so starts in a fraction of the time. Steps run with
    the environment `waterflow up` was started in. Ctrl-C or `waterflow down` stops it.
    """
    if detach:
        from waterflow_server._up_client import detach as start_detached

        sys.exit(start_detached(namespace))
    from waterflow._exit import exit_process
    from waterflow_server._up import up_command

    exit_process(up_command(namespace=namespace, ready_fd=ready_fd))


@main.command()
def down() -> None:
    """Stop the running `waterflow up` (its steps are stopped with it)."""
    from waterflow_server._up_client import down_command

    sys.exit(down_command())


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@server_options(required=False)
def validate(
    files: tuple[str, ...],
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """Check workflow FILES against the language and the nodes installed here, or with
    --server against the nodes that each job's runs-on queue offers in the fleet."""
    from waterflow_server._validate import validate_command

    sys.exit(validate_command(files, ServerOptions(server_address, token, tls, tls_ca)))


@main.command()
@click.option("--queue", help="Only this task queue (needs --server).")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@server_options(required=False)
def nodes(
    queue: str | None,
    as_json: bool,
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """List nodes as a table: the fleet's by queue (--server), or those installed here."""
    from waterflow_server._nodes import nodes_command

    sys.exit(nodes_command(ServerOptions(server_address, token, tls, tls_ca), queue, as_json))


@main.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout)."
)
@server_options(required=False)
def schema(
    output: str | None,
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """Write a JSON Schema of workflow files, with every known node's parameters, for editors."""
    from waterflow_server._schema import schema_command

    sys.exit(schema_command(ServerOptions(server_address, token, tls, tls_ca), output))


@main.command()
@click.option("--workflow", default="", help="Only runs of this workflow name.")
@click.option(
    "--status",
    default="",
    type=click.Choice(
        ["", "running", "success", "failure", "cancelled", "terminated", "timed_out"]
    ),
    help="Only runs with this status.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@server_options(required=True)
def runs(
    workflow: str,
    status: str,
    limit: int,
    as_json: bool,
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """List runs, newest first."""
    from waterflow_server._runs import runs_command

    sys.exit(
        runs_command(
            ServerOptions(server_address, token, tls, tls_ca),
            workflow=workflow,
            status=status,
            limit=limit,
            as_json=as_json,
        )
    )


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@server_options(required=True)
def show(
    run_id: str,
    as_json: bool,
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """Show a run: its status, jobs and steps."""
    from waterflow_server._runs import show_command

    sys.exit(show_command(ServerOptions(server_address, token, tls, tls_ca), run_id, as_json))


@main.command()
@click.argument("run_id", metavar="RUN")
@server_options(required=True)
def cancel(
    run_id: str, server_address: str | None, token: str | None, tls: bool, tls_ca: str | None
) -> None:
    """Cancel a run; its running steps are cancelled."""
    from waterflow_server._runs import cancel_command

    sys.exit(cancel_command(ServerOptions(server_address, token, tls, tls_ca), run_id))


@main.command()
@click.argument("run_id", metavar="RUN")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--job", default="", help="Only this job.")
@click.option("--step", default="", help="Only this step (its id or name).")
@click.option("--timestamps", is_flag=True, help="Prefix each line with its time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@server_options(required=True)
def logs(
    run_id: str,
    follow: bool,
    job: str,
    step: str,
    timestamps: bool,
    as_json: bool,
    server_address: str | None,
    token: str | None,
    tls: bool,
    tls_ca: str | None,
) -> None:
    """Print the step log lines of a run, as the agents sent them to the server."""
    from waterflow_server._logs import logs_command

    sys.exit(
        logs_command(
            ServerOptions(server_address, token, tls, tls_ca),
            run_id,
            job=job,
            step=step,
            follow=follow,
            as_json=as_json,
            timestamps=timestamps,
        )
    )


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="A YAML file.")
@click.option("--listen", help="host:port to listen on (listen.address).")
@click.option("--database", type=click.Path(dir_okay=False), help="SQLite file (database.path).")
@click.option("--temporal-address", help="host:port of Temporal (temporal.address).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "warn", "error"]))
def server(
    config_file: str | None,
    listen: str | None,
    database: str | None,
    temporal_address: str | None,
    log_level: str | None,
) -> None:
    """Run the Waterflow server (node registry, submission, logs) until SIGINT or SIGTERM."""
    from waterflow._exit import exit_process
    from waterflow_server.server import run_server

    overrides = {
        "listen.address": listen,
        "database.path": database,
        "temporal.address": temporal_address,
        "log.level": log_level,
    }
    exit_process(run_server(config_file, overrides))


@main.command()
def token() -> None:
    """Print a new random token, for auth.agent_tokens or auth.user_tokens."""
    import secrets

    click.echo(secrets.token_urlsafe(32))
