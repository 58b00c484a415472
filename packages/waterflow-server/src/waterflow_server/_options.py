"""The server options of the CLI's commands (`--server`, `--token`, `--tls`, `--tls-ca`).

Apart from `_client`, which talks to the server: `cli` needs these to declare its commands,
and every command, `waterflow run` on Temporal too, would otherwise import gRPC and the
server's protocol at start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import click

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class ServerOptions:
    address: str | None
    token: str | None
    tls: bool
    tls_ca: str | None


def server_options(required: bool) -> Callable[[F], F]:
    """`--server`, `--token`, `--tls` and `--tls-ca`, each with its variable."""

    def decorate(fn: F) -> F:
        hint = "" if required else " Without it, the nodes installed here."
        for option in reversed(
            [
                click.option(
                    "--server",
                    "server_address",
                    envvar="WATERFLOW_SERVER_ADDRESS",
                    metavar="HOST:PORT",
                    help=f"The Waterflow server (WATERFLOW_SERVER_ADDRESS).{hint}",
                ),
                click.option(
                    "--token",
                    envvar="WATERFLOW_SERVER_TOKEN",
                    metavar="TOKEN",
                    help="A user token of the server; prefer WATERFLOW_SERVER_TOKEN.",
                ),
                click.option(
                    "--tls",
                    is_flag=True,
                    envvar="WATERFLOW_SERVER_TLS",
                    help="Connect over TLS, checking the server against the system's CAs.",
                ),
                click.option(
                    "--tls-ca",
                    envvar="WATERFLOW_SERVER_TLS_CA",
                    type=click.Path(dir_okay=False),
                    help="PEM file of the CA of the server's certificate (turns TLS on).",
                ),
            ]
        ):
            fn = option(fn)
        return fn

    return decorate
