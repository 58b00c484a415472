"""The CLI's side of the server: the channel with the user token, one-line errors. The options
that say which server live in `_options`, re-exported here."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import grpc

from waterflow._proto.v1 import user_pb2_grpc
from waterflow.agent.reporting import ServerLinkError, channel_for
from waterflow_server._options import ServerOptions, server_options

__all__ = ["ClientError", "Connection", "ServerOptions", "connect", "server_options"]


class ClientError(Exception):
    """A call to the server failed; one line for the user."""


def call_error(exc: grpc.aio.AioRpcError, address: str) -> ClientError:
    details = " ".join((exc.details() or "").split())
    code = exc.code()
    if code == grpc.StatusCode.UNAVAILABLE and "failed to connect" in details.lower():
        return ClientError(f"cannot reach the Waterflow server at {address}: {details}")
    if code == grpc.StatusCode.UNAVAILABLE:
        return ClientError(f"server at {address}: unavailable: {details}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClientError(f"the Waterflow server at {address} did not answer in time")
    return ClientError(f"server at {address}: {code.name}: {details}")


@attrs.define
class Connection:
    address: str
    stub: user_pb2_grpc.UserServiceAsyncStub
    metadata: tuple[tuple[str, str], ...]


@contextlib.asynccontextmanager
async def connect(options: ServerOptions) -> AsyncIterator[Connection]:
    """The user service of the server, with the token in every call's metadata."""
    if not options.address:
        raise ClientError("no server given: use --server HOST:PORT or set WATERFLOW_SERVER_ADDRESS")
    if not options.token:
        raise ClientError("no token given: set WATERFLOW_SERVER_TOKEN (or use --token)")
    try:
        channel = channel_for(
            options.address,
            tls=options.tls,
            tls_ca=Path(options.tls_ca) if options.tls_ca else None,
        )
    except ServerLinkError as exc:
        raise ClientError(str(exc).replace("server.tls_ca", "--tls-ca")) from None
    try:
        yield Connection(
            address=options.address,
            stub=user_pb2_grpc.UserServiceStub(channel),
            metadata=(("authorization", f"Bearer {options.token}"),),
        )
    except grpc.aio.AioRpcError as exc:
        raise call_error(exc, options.address) from None
    finally:
        await channel.close()
