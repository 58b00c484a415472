"""Talking to a Docker engine from a step without blocking the agent's event loop.

The Docker SDK is blocking. Short calls go through `asyncio.to_thread`; calls that block as
long as the work lasts (a build's log, a push, a running container's output) get a thread of
their own, so that many long steps never starve the shared thread pool.
"""

from __future__ import annotations

import asyncio
import codecs
import contextvars
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import docker  # type: ignore[import-untyped]
import docker.auth  # type: ignore[import-untyped]
import docker.errors  # type: ignore[import-untyped]
import docker.utils  # type: ignore[import-untyped]
import requests
import urllib3

from waterflow import NodeError, StepContext

T = TypeVar("T")

DEFAULT_HOST = "unix:///var/run/docker.sock"
API_TIMEOUT = 60
"""Seconds an ordinary engine call may take (streams and waits have no limit)."""

MAX_LINE_CHARS = 64 * 1024
"""A longer line of output is split into pieces of at most this many characters."""

LABEL_PREFIX = "io.waterflow."


def engine_address(params: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The engine a step talks to: its `docker-host` parameter, else DOCKER_HOST, else the
    local default socket."""
    return str(params.get("docker-host") or env.get("DOCKER_HOST") or DEFAULT_HOST)


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure, in a few words."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, FileNotFoundError):
            return "no such socket"
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, PermissionError):
            return "permission denied (may this user use the Docker socket?)"
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return last_line(str(exc)) or type(exc).__name__


def last_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of an engine message, at most `limit` characters."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else "..." + line[-limit:]


def unreachable(address: str, exc: BaseException) -> NodeError:
    return NodeError(
        f"cannot reach the Docker engine at {address}: {_reason(exc)}; "
        "set DOCKER_HOST or docker-host",
        retryable=True,
    )


def api_error_message(exc: BaseException) -> str:
    """The engine's own words from an SDK error."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return last_line(explanation if isinstance(explanation, str) else str(explanation))
    return last_line(str(exc)) or type(exc).__name__


def may_pass(exc: BaseException) -> bool:
    """Whether an engine's refusal may pass on its own (a 5xx), unlike a bad request (4xx)."""
    status = getattr(exc, "status_code", None)
    return not (isinstance(status, int) and 400 <= status < 500)


def _caused_by_connection(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, kinds):
            return True
        current = current.__cause__ or current.__context__
    return False


_CONNECTION_TROUBLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    ConnectionError,
)


def is_connection_failure(exc: BaseException) -> bool:
    """Whether an SDK call failed because the engine went away (not because it said no)."""
    if isinstance(exc, docker.errors.APIError):
        return False
    return _caused_by_connection(exc, _CONNECTION_TROUBLE)


class Engine:
    """One step's connection to a Docker engine (the SDK's low-level client)."""

    def __init__(self, api: Any, address: str) -> None:
        self.api = api
        self.address = address

    @classmethod
    async def connect(cls, params: Mapping[str, Any], context: StepContext) -> Engine:
        """Connect as the step says (docker-host, or DOCKER_HOST and DOCKER_TLS_VERIFY and
        DOCKER_CERT_PATH of the step's environment) and agree on an API version.

        Raises `NodeError` (retryable) when the engine does not answer.
        """
        address = engine_address(params, context.env)
        settings = docker.utils.kwargs_from_env(environment=dict(context.env))
        settings["base_url"] = address

        def connect() -> Any:
            return docker.APIClient(version="auto", timeout=API_TIMEOUT, **settings)

        try:
            api = await asyncio.to_thread(connect)
        except Exception as exc:
            if _caused_by_connection(exc, (requests.exceptions.RequestException, OSError)):
                raise unreachable(address, exc) from None
            message = last_line(str(exc)) or type(exc).__name__
            if message.startswith("Invalid bind address"):
                raise NodeError(
                    f"{address!r} is not a Docker engine address: use unix:///path/to/socket "
                    "or tcp://host:port",
                    retryable=False,
                ) from None
            raise NodeError(
                f"cannot use the Docker engine at {address}: {message}", retryable=False
            ) from None
        return cls(api, address)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short SDK call in a worker thread; connection failures become NodeError."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            if is_connection_failure(exc):
                raise unreachable(self.address, exc) from None
            raise

    async def stream(self, fn: Callable[[], T], *, name: str) -> T:
        """Run a long blocking call in a thread of its own; connection failures become
        NodeError. Cancelling the caller does not stop the thread: stop what it waits on."""
        try:
            return await in_own_thread(fn, name=name)
        except Exception as exc:
            if is_connection_failure(exc):
                raise unreachable(self.address, exc) from None
            raise

    def close(self) -> None:
        self.api.close()


async def in_own_thread(fn: Callable[[], T], *, name: str) -> T:
    """Run `fn` in a new daemon thread and await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for this any more

    # Like asyncio.to_thread: the thread sees the caller's context variables (Temporal's
    # activity context among them, which heartbeats need).
    caller = contextvars.copy_context()
    threading.Thread(target=caller.run, args=(target,), name=name, daemon=True).start()
    return await future


def threadsafe(loop: asyncio.AbstractEventLoop, fn: Callable[..., None]) -> Callable[..., None]:
    """`fn` made callable from another thread: it runs on `loop`."""

    def call(*args: Any) -> None:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is closed

    return call


class LineWriter:
    """Turns chunks of text or bytes into whole lines for the step log.

    Bytes are decoded as UTF-8 (invalid sequences become U+FFFD), a trailing carriage return is
    dropped, and a line longer than MAX_LINE_CHARS is cut into pieces.
    """

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: str | bytes) -> None:
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        if not text:
            return
        pending = self._pending + text
        *lines, pending = pending.split("\n")
        for line in lines:
            self._line(line)
        while len(pending) > MAX_LINE_CHARS:
            self._line(pending[:MAX_LINE_CHARS])
            pending = pending[MAX_LINE_CHARS:]
        self._pending = pending

    def flush(self) -> None:
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            self._line(self._pending)
            self._pending = ""

    def _line(self, line: str) -> None:
        line = line.removesuffix("\r")
        while len(line) > MAX_LINE_CHARS:
            self._emit(line[:MAX_LINE_CHARS])
            line = line[MAX_LINE_CHARS:]
        self._emit(line)


def step_labels(context: StepContext) -> dict[str, str]:
    """The labels Waterflow puts on every container it creates for a step."""
    step = context.step
    return {
        f"{LABEL_PREFIX}workflow": step.workflow,
        f"{LABEL_PREFIX}run": step.run_id,
        f"{LABEL_PREFIX}job": step.job,
        f"{LABEL_PREFIX}step": step.step_id,
        f"{LABEL_PREFIX}attempt": str(step.attempt),
    }


_DENIED = (
    "denied",
    "unauthorized",
    "authentication required",
    "no basic auth credentials",
    "forbidden",
)
_NOT_FOUND = ("not found", "manifest unknown", "does not exist", "name unknown")
_UNREACHABLE = (
    "dial tcp",
    "connection refused",
    "connection reset",
    "no such host",
    "timeout",
    "network is unreachable",
    "server gave http response",
    "x509:",
    "tls:",
)


def registry_problem(message: str) -> str:
    """What a registry error means: "denied", "not-found", "unreachable" or "other"."""
    lowered = message.lower()
    if any(word in lowered for word in _UNREACHABLE):
        return "unreachable"
    if any(word in lowered for word in _DENIED):
        return "denied"
    if any(word in lowered for word in _NOT_FOUND):
        return "not-found"
    return "other"


def registry_of(repository: str) -> str:
    """The registry a repository name points at (host[:port])."""
    index: str = docker.auth.resolve_repository_name(repository)[0]
    return index
