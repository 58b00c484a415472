"""The server process: the gRPC endpoint (TLS when configured, tokens always), the SQLite store,
the Temporal link, JSON logs, and a graceful stop on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from loguru import logger
from temporalio.client import Client

from waterflow import _logging
from waterflow._proto.v1 import agent_pb2_grpc, user_pb2_grpc
from waterflow_server import __version__
from waterflow_server.auth import AuthInterceptor, Tokens
from waterflow_server.catalog import Catalog
from waterflow_server.config import (
    ConfigError,
    ServerConfig,
    duration_text,
    load_config,
    redacted,
)
from waterflow_server.logs import Logs
from waterflow_server.runs import Runs, TemporalUnavailable
from waterflow_server.service_agent import AgentService
from waterflow_server.service_user import UserService
from waterflow_server.store import Store, StoreError

__all__ = ["ServerError", "WaterflowServer", "run_server"]

STOP_GRACE = 5.0
#: How often the step logs of runs past `database.log_retention` are removed, and the agents
#: not heard from for `registry.forget_after` forgotten (and at start).
PRUNE_EVERY = 3600.0
EXIT_OK = 0
EXIT_ERROR = 1


class ServerError(Exception):
    """The server cannot start; one line for the operator."""


def _read(key: str, path: Path) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise ServerError(f"{key}: cannot read {path}: {exc.strerror}") from None


def _loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cannot_bind(address: str) -> str | None:
    """Why `address` (`host:port`) cannot be listened on, with what to do about it; None when
    it can. Bound here as gRPC binds it (one of the host's addresses is enough), because
    gRPC's own error names no cause and it logs its own lines besides."""
    host, _, port = address.rpartition(":")
    try:
        places = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"{exc.strerror or exc}; give a host name this machine resolves, or 0.0.0.0"
    error = None
    for family, kind, proto, _, where in places:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(where)
            return None
        except OSError as exc:
            error = error or exc
    if error is not None and error.errno == errno.EADDRINUSE:
        return (
            "another program uses that port (another waterflow server?); stop it or choose "
            "another listen.address"
        )
    if error is not None and error.errno == errno.EADDRNOTAVAIL:
        return "that is not an address of this machine; choose one of its own, or 0.0.0.0"
    return None if error is None else (error.strerror or str(error))


class WaterflowServer:
    """The gRPC server with its services; `start` binds, `stop` drains."""

    def __init__(self, config: ServerConfig, *, temporal_client: Client | None = None) -> None:
        self.config = config
        self.store = Store(config.database.path)
        self.catalog = Catalog(self.store, config.registry.agent_lease.total_seconds())
        self.logs = Logs(self.store)
        self.runs = Runs(config.temporal, client=temporal_client)
        self._server: grpc.aio.Server | None = None
        self._probe: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = self.config.listen.address.rpartition(":")[0]
        return f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    async def start(self) -> None:
        listen = self.config.listen
        credentials = None
        if listen.tls_cert is not None and listen.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [
                    (
                        _read("listen.tls_key", listen.tls_key),
                        _read("listen.tls_cert", listen.tls_cert),
                    )
                ]
            )
        try:
            await self.store.open()
        except StoreError as exc:
            raise ServerError(str(exc)) from None
        tokens = Tokens(self.config.auth.agent_tokens, self.config.auth.user_tokens)
        server = grpc.aio.server(
            interceptors=[AuthInterceptor(tokens)],
            # One server to a port: by default gRPC lets any other program of the same user
            # that asks share it, and two servers would silently split agents and users.
            options=[("grpc.so_reuseport", 0)],
        )
        agent_pb2_grpc.add_AgentServiceServicer_to_server(
            AgentService(self.catalog, self.logs), server
        )
        user_pb2_grpc.add_UserServiceServicer_to_server(
            UserService(self.catalog, self.runs, self.logs), server
        )
        why = _cannot_bind(listen.address)
        if why is None:
            try:
                if credentials is not None:
                    self.port = server.add_secure_port(listen.address, credentials)
                else:
                    self.port = server.add_insecure_port(listen.address)
            except RuntimeError as exc:
                # Taken since the check, or refused for another reason: then gRPC's words.
                why = _cannot_bind(listen.address) or str(exc).split(";")[0]
        if why is not None:
            await self.store.close()
            raise ServerError(f"listen.address: cannot listen on {listen.address}: {why}")
        await server.start()
        self._server = server
        if credentials is None and not _loopback(listen.address):
            logger.warning(
                "TLS is off: tokens and logs cross the network in clear text; set "
                "listen.tls_cert and listen.tls_key"
            )
        logger.info(
            "Server listening",
            address=listen.address,
            port=self.port,
            tls=credentials is not None,
            version=__version__,
        )
        self._probe = asyncio.create_task(self._probe_temporal())
        if self.config.database.log_retention or self.config.registry.forget_after:
            self._pruner = asyncio.create_task(self._prune())

    async def _probe_temporal(self) -> None:
        """Connect to Temporal now, in the background, to say early whether it is there."""
        try:
            await self.runs.client()
        except TemporalUnavailable as exc:
            logger.warning("{}; runs can be submitted once it is", str(exc))

    async def _prune(self) -> None:
        """At start, then every PRUNE_EVERY: drop the step logs of runs past the retention,
        and forget the agents whose lease ended longer ago than `registry.forget_after`."""
        retention = self.config.database.log_retention
        forget_after = self.config.registry.forget_after
        while True:
            if retention:
                runs = await self._prune_step(
                    self.store.prune_logs, retention, "Could not prune old step logs"
                )
                if runs:
                    logger.info(
                        "Pruned old step logs", runs=runs, retention=duration_text(retention)
                    )
            if forget_after:
                agents = await self._prune_step(
                    self.store.forget_agents, forget_after, "Could not forget old agents"
                )
                if agents:
                    logger.info(
                        "Forgot agents not heard from",
                        agents=agents,
                        forget_after=duration_text(forget_after),
                    )
            await asyncio.sleep(PRUNE_EVERY)

    async def _prune_step(self, prune: Callable[[float], int], age: timedelta, failure: str) -> int:
        """Run one pruning on the store for what is older than `age`; a failure is a warning
        (the next round tries again), and counts as nothing pruned."""
        try:
            return await self.store.call(prune, self.store.clock() - age.total_seconds())
        except (StoreError, sqlite3.Error) as exc:
            logger.warning("{}; trying again later: {}", failure, exc)
            return 0

    async def stop(self, grace: float = STOP_GRACE) -> None:
        for task in (self._probe, self._pruner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self.store.close()
        logger.info("Server stopped")

    async def wait(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


async def _serve(config: ServerConfig) -> int:
    server = WaterflowServer(config)
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            logger.info("Shutdown signal received", signal=signal.Signals(signum).name)
            stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await server.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    return EXIT_OK


def run_server(config_file: str | None, overrides: Mapping[str, Any]) -> int:
    """`waterflow server`: load the configuration, serve until SIGTERM; the exit code."""
    try:
        config = load_config(config_file, overrides=overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    _logging.setup_logging(level=config.log.level, fmt=config.log.format)
    _logging.intercept_stdlib_logging()
    logger.info("Configuration loaded", **redacted(config))
    try:
        return asyncio.run(_serve(config))
    except ServerError as exc:
        logger.error("Server stopped: {}", str(exc))
        return EXIT_ERROR
