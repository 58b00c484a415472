"""The agent's link to the Waterflow server: node reports, its lease, and step log lines.

The server is optional and never in the way of a step. `ServerLink` works in two background
tasks on the agent's event loop:

- the *report* task sends the agent's nodes when the agent starts and again after every plugin
  (re)load (`report()`), then renews the agent's lease with heartbeats at a third of the lease
  the server grants;
- the *log* task ships step log lines in batches while the steps run. Lines wait in a bounded
  buffer (`buffer_lines`); when the server is away and the buffer is full the oldest lines are
  dropped and counted, so a step never waits and the agent's memory stays bounded. The per-step
  log files are complete either way.

Both retry with backoff (1 s doubling to 30 s) while the server cannot be reached, and log the
change of state once, not every attempt. The channel's own reconnection backoff is capped at
5 s, so that the agent's next attempt after the server's return reaches it. A refused token
is logged as an error naming `server.token`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import platform
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

# gRPC's native core writes its own lines to stderr, outside the JSON log; keep them to errors.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import attrs
import grpc
from google.protobuf import timestamp_pb2
from loguru import logger

from waterflow import _wire
from waterflow._proto.v1 import agent_pb2, agent_pb2_grpc
from waterflow._registry import NodeRegistry
from waterflow._steplog import LineListener
from waterflow._version import __version__
from waterflow.agent.config import ServerSettings
from waterflow.engine.types import StepInput

__all__ = ["BUFFER_LINES", "ServerLink", "ServerLinkError", "channel_for"]

BUFFER_LINES = 10_000
BATCH_LINES = 500
MAX_BACKOFF = 30.0
_CALL_TIMEOUT = 10.0


class ServerLinkError(Exception):
    """The server link cannot be set up (an unreadable CA file); one line for the operator."""


def channel_for(address: str, *, tls: bool, tls_ca: Path | None) -> grpc.aio.Channel:
    """A gRPC channel to the server: TLS when `tls` or a CA file is given."""
    options = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # gRPC's own wait between connection attempts grows to 120 s by default, and a call
        # made meanwhile fails at once without trying: after a long outage the agent could
        # take minutes to see the server back. Kept under the agent's own retry backoff.
        ("grpc.initial_reconnect_backoff_ms", 1_000),
        ("grpc.min_reconnect_backoff_ms", 1_000),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]
    if not tls and tls_ca is None:
        return grpc.aio.insecure_channel(address, options=options)
    root = None
    if tls_ca is not None:
        try:
            root = Path(tls_ca).expanduser().read_bytes()
        except OSError as exc:
            raise ServerLinkError(f"server.tls_ca: cannot read {tls_ca}: {exc.strerror}") from None
    credentials = grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.aio.secure_channel(address, credentials, options=options)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        details = (exc.details() or "").splitlines()
        return f"{exc.code().name}: {details[0] if details else ''}".rstrip(": ")
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


@attrs.frozen
class _Step:
    run_id: str
    job: str
    step: str
    index: int
    name: str
    attempt: int

    def ref(self) -> agent_pb2.StepRef:
        return agent_pb2.StepRef(
            run_id=self.run_id,
            job=self.job,
            step=self.step,
            index=self.index,
            name=self.name,
            attempt=self.attempt,
        )


@attrs.frozen
class _Entry:
    step: _Step
    seq: int = 0  # 0: the end of the step attempt, with `total` lines
    stamp: float = 0.0
    stream: str = ""
    text: str = ""
    total: int = 0


class _Backoff:
    def __init__(self) -> None:
        self.delay = 1.0

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, MAX_BACKOFF)
        return delay

    def reset(self) -> None:
        self.delay = 1.0


class _StepListener:
    """What one step attempt's log tells the link (see `LineListener`)."""

    def __init__(self, link: ServerLink, step: _Step) -> None:
        self._link = link
        self._step = step

    def line(self, number: int, stamp: float, stream: str, text: str) -> None:
        self._link._put(_Entry(self._step, number, stamp, stream, text))

    def closed(self, total: int) -> None:
        self._link._put(_Entry(self._step, 0, total=total))


class ServerLink:
    """Reports the agent's nodes to the server, keeps its lease, ships its step logs."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        agent_id: str,
        task_queues: Sequence[str],
        registry: Callable[[], NodeRegistry | None],
        buffer_lines: int = BUFFER_LINES,
        batch_lines: int = BATCH_LINES,
    ) -> None:
        if settings.address is None:
            raise ServerLinkError("server.address is not set")
        self.address = settings.address
        self._settings = settings
        self._metadata = (("authorization", f"Bearer {settings.token or ''}"),)
        self.agent_id = agent_id
        self.task_queues = list(task_queues)
        self._registry = registry
        self._batch_lines = batch_lines
        self._lock = threading.Lock()
        self._buffer: collections.deque[_Entry] = collections.deque()
        self._buffer_lines = buffer_lines
        self._retry: list[_Entry] = []
        self.dropped = 0
        self.reports = 0
        self.lines_sent = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._channel: grpc.aio.Channel | None = None
        self._stub: agent_pb2_grpc.AgentServiceAsyncStub | None = None
        self._report_wanted: asyncio.Event | None = None
        self._lines_waiting: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lease = 30.0
        self._report_count: asyncio.Condition | None = None
        self._dropped_told = 0

    # -- the agent's side ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the channel and start the background tasks; returns at once, server or not."""
        self._loop = asyncio.get_running_loop()
        self._channel = channel_for(
            self.address, tls=self._settings.tls, tls_ca=self._settings.tls_ca
        )
        self._stub = agent_pb2_grpc.AgentServiceStub(self._channel)
        self._report_wanted = asyncio.Event()
        self._report_wanted.set()
        self._lines_waiting = asyncio.Event()
        self._stopping = asyncio.Event()
        self._report_count = asyncio.Condition()
        with self._lock:
            if self._buffer:
                self._lines_waiting.set()
        self._tasks = [
            asyncio.create_task(self._report_loop(), name="waterflow-server-report"),
            asyncio.create_task(self._log_loop(), name="waterflow-server-logs"),
        ]
        logger.info("Reporting to the Waterflow server", server_address=self.address)

    def report(self) -> None:
        """Send the nodes again soon (after a plugin reload); never blocks."""
        if self._report_wanted is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._report_wanted.set)

    async def wait_reported(self, count: int = 1, timeout: float | None = None) -> None:
        """Until `count` reports in all have been accepted by the server (for tests)."""
        assert self._report_count is not None, "start() first"
        async with asyncio.timeout(timeout), self._report_count:
            await self._report_count.wait_for(lambda: self.reports >= count)

    def listener(self, inp: StepInput, attempt: int) -> LineListener:
        """The listener for one step attempt's log (`AgentRuntime.log_listener`)."""
        step = _Step(
            run_id=inp.run_id,
            job=inp.job,
            step=inp.step.key,
            index=inp.step.index,
            name=inp.step.display_name,
            attempt=attempt,
        )
        return _StepListener(self, step)

    async def stop(self, timeout: float = 5.0) -> None:
        """Ship what the buffer holds (for at most `timeout` seconds), then close."""
        if self._stopping is None:
            return
        self._stopping.set()
        assert self._lines_waiting is not None
        self._lines_waiting.set()
        log_task = self._tasks[1] if len(self._tasks) > 1 else None
        if log_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(log_task), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with self._lock:
            left = len(self._buffer) + len(self._retry)
        if left:
            logger.warning(
                "Step log lines not shipped to the Waterflow server before stopping",
                lines=left,
                server_address=self.address,
            )
        if self._channel is not None:
            await self._channel.close()

    # -- the buffer ------------------------------------------------------------------------

    def _put(self, entry: _Entry) -> None:
        wake = False
        with self._lock:
            if len(self._buffer) >= self._buffer_lines:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(entry)
            wake = len(self._buffer) == 1
        if wake and self._loop is not None and self._lines_waiting is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is gone
                self._loop.call_soon_threadsafe(self._lines_waiting.set)

    def _take(self) -> list[_Entry]:
        with self._lock:
            if self._retry:
                return self._retry
            batch: list[_Entry] = []
            while self._buffer and len(batch) < self._batch_lines:
                batch.append(self._buffer.popleft())
            self._retry = batch
            return batch

    def _done(self) -> bool:
        with self._lock:
            self._retry = []
            return not self._buffer

    @staticmethod
    def _request(agent_id: str, batch: list[_Entry]) -> agent_pb2.PushLogsRequest:
        steps: dict[_Step, agent_pb2.StepLines] = {}
        for entry in batch:
            lines = steps.get(entry.step)
            if lines is None:
                lines = steps[entry.step] = agent_pb2.StepLines(step=entry.step.ref())
            if entry.seq == 0:
                lines.ended = True
                lines.total = entry.total
                continue
            stamp = timestamp_pb2.Timestamp()
            stamp.FromNanoseconds(int(entry.stamp * 1e9))
            lines.lines.append(
                agent_pb2.LogLine(seq=entry.seq, time=stamp, stream=entry.stream, text=entry.text)
            )
        return agent_pb2.PushLogsRequest(agent_id=agent_id, steps=list(steps.values()))

    # -- the loops -------------------------------------------------------------------------

    async def _pause(self, delay: float) -> bool:
        """Wait `delay` seconds or until stopping; True when stopping."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return self._stopping.is_set()

    def _refused(self, exc: BaseException) -> bool:
        return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )

    def _node_report(self) -> agent_pb2.ReportNodesRequest:
        registry = self._registry()
        nodes = registry.all() if registry is not None else []
        versions = {n.source.distribution: n.source.version for n in nodes}
        return agent_pb2.ReportNodesRequest(
            agent=agent_pb2.AgentInfo(
                agent_id=self.agent_id,
                host=socket.gethostname(),
                agent_version=__version__,
                python_version=platform.python_version(),
                task_queues=self.task_queues,
                versions=versions,
                pid=os.getpid(),
            ),
            nodes=[_wire.node_info(n) for n in nodes],
        )

    async def _report_loop(self) -> None:
        assert self._stub is not None
        assert self._report_wanted is not None
        assert self._report_count is not None
        backoff = _Backoff()
        down: str | None = None
        while True:
            try:
                if self._report_wanted.is_set():
                    self._report_wanted.clear()
                    request = self._node_report()
                    try:
                        answer = await self._stub.ReportNodes(
                            request, metadata=self._metadata, timeout=_CALL_TIMEOUT
                        )
                    except BaseException:
                        self._report_wanted.set()  # not accepted: send it again
                        raise
                    self._lease = max(answer.lease.ToTimedelta().total_seconds(), 0.3)
                    if answer.conflict:
                        logger.error(answer.conflict, server_address=self.address)
                    logger.info(
                        "Nodes reported to the Waterflow server",
                        server_address=self.address,
                        nodes=len(request.nodes),
                        lease_seconds=self._lease,
                    )
                    async with self._report_count:
                        self.reports += 1
                        self._report_count.notify_all()
                else:
                    beat = await self._stub.Heartbeat(
                        agent_pb2.HeartbeatRequest(agent_id=self.agent_id),
                        metadata=self._metadata,
                        timeout=_CALL_TIMEOUT,
                    )
                    if not beat.known:
                        logger.info("The Waterflow server does not know this agent; reporting")
                        self._report_wanted.set()
                        continue
                    self._lease = max(beat.lease.ToTimedelta().total_seconds(), 0.3)
                if down is not None:
                    logger.info("Connected to the Waterflow server", server_address=self.address)
                down = None
                backoff.reset()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._report_wanted.wait(), self._lease / 3)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = _reason(exc)
                if reason != down:
                    self._log_down(exc, reason)
                down = reason
                if await self._pause(backoff.next()):
                    return

    def _log_down(self, exc: BaseException, reason: str) -> None:
        if self._refused(exc):
            logger.error(
                "The Waterflow server refuses this agent's token; check server.token "
                "(WATERFLOW_SERVER_TOKEN). Steps run on; retrying in the background",
                server_address=self.address,
                error=reason,
            )
        else:
            logger.warning(
                "Cannot reach the Waterflow server; steps run on, and the agent reports "
                "when it can",
                server_address=self.address,
                error=reason,
            )

    async def _log_loop(self) -> None:
        assert self._stub is not None
        assert self._lines_waiting is not None
        assert self._stopping is not None
        backoff = _Backoff()
        failing = False
        while True:
            batch = self._take()
            if not batch:
                if self._stopping.is_set():
                    return
                self._lines_waiting.clear()
                with self._lock:
                    empty = not self._buffer
                if empty:
                    await self._lines_waiting.wait()
                continue
            try:
                await self._stub.PushLogs(
                    self._request(self.agent_id, batch),
                    metadata=self._metadata,
                    timeout=_CALL_TIMEOUT,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    logger.warning(
                        "Cannot ship step logs to the Waterflow server; keeping up to {} lines "
                        "and retrying",
                        self._buffer_lines,
                        server_address=self.address,
                        error=_reason(exc),
                    )
                failing = True
                if self._stopping.is_set():
                    return  # stop() says how many lines are left
                await self._pause(backoff.next())
                continue
            self.lines_sent += sum(1 for e in batch if e.seq)
            self._done()
            if failing:
                logger.info("Step logs reach the Waterflow server again")
            if self.dropped > self._dropped_told:
                logger.warning(
                    "Step log lines were dropped while the server was away (the step log "
                    "files have them)",
                    lines=self.dropped - self._dropped_told,
                )
                self._dropped_told = self.dropped
            failing = False
            backoff.reset()
