"""One HTTP call to Slack, tried again on rate limits, server errors and broken connections.

Every attempt is one line in the step log. A 429 waits what `Retry-After` asks; a 5xx or a
connection failure waits an exponentially growing, jittered delay. No wait runs past the
node's time budget: when the next attempt would not fit, the node gives up with a message that
says why. Heartbeats go out while waiting.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.metadata
import math
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import SplitResult, urlsplit

import attrs

from waterflow import NodeError, StepContext
from waterflow_nodes_slack._budget import Budget

if TYPE_CHECKING:
    # httpx (with what it pulls in) costs about a tenth of a second to import, paid by every
    # agent that loads this plugin: it is imported by the functions below, when a step first
    # sends a request.
    import httpx

T = TypeVar("T")

DISTRIBUTION = "waterflow-nodes-slack"

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 30.0
MIN_DELAY = 0.1
# An attempt is not started with less time than this left; a single request never waits longer
# than REQUEST_TIMEOUT for its answer.
MIN_ATTEMPT = 0.5
REQUEST_TIMEOUT = 30.0
HEARTBEAT_EVERY = 1.0
_DETAIL_LIMIT = 200


@attrs.frozen
class Done(Generic[T]):
    """The call succeeded; `summary` is what the attempt's log line says."""

    value: T
    summary: str


@attrs.frozen
class Retry:
    """Worth another attempt: after `wait` seconds if the service said so, else a backoff."""

    reason: str
    wait: float | None = None


@attrs.frozen
class Fail:
    """No attempt can fix this; `message` is the step's error."""

    reason: str
    message: str


Verdict = Done[T] | Retry | Fail


def first_line(text: str, limit: int = _DETAIL_LIMIT) -> str:
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff(attempt: int, rng: random.Random) -> float:
    """The wait after failed attempt `attempt` (1-based): 1s, 2s, 4s... up to 30s, jittered
    down to half so that many agents retrying at once spread out."""
    ceiling = min(MAX_BACKOFF, INITIAL_BACKOFF * 2.0 ** (attempt - 1))
    return ceiling * rng.uniform(0.5, 1.0)


def parse_url(name: str, value: str, *, secret: bool, example: str) -> SplitResult:
    """Check an http(s) URL parameter; a secret one is never quoted in the error."""
    if not value:
        raise NodeError(
            f"parameter {name!r} is empty: if it comes from a secret, is that secret set on "
            "the agent that ran the step?",
            retryable=False,
        )
    shown = "" if secret else f" {value!r}"
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise NodeError(
            f"parameter {name!r}{shown} contains spaces or line breaks; expected a URL like "
            f"{example}",
            retryable=False,
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise NodeError(
            f"parameter {name!r}{shown} is not an http(s) URL; expected a URL like {example}",
            retryable=False,
        )
    return parts


def _origin(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}"


def redacted_url(parts: SplitResult) -> str:
    """The URL as far as it may be shown: scheme, host and port, and the first path segment
    only when more follow (`https://hooks.slack.com/services/***`)."""
    segments = [s for s in parts.path.split("/") if s]
    prefix = f"/{segments[0]}" if len(segments) > 1 else ""
    return f"{_origin(parts)}{prefix}/***"


def shown_url(parts: SplitResult) -> str:
    """A URL that is no secret, without the user information or query it may hold."""
    return f"{_origin(parts)}{parts.path}"


def secret_parts(parts: SplitResult) -> list[str]:
    """What of a secret URL is secret on its own: the path past its first segment, the query
    and any user information. Masked in addition to the whole URL."""
    segments = [s for s in parts.path.split("/") if s]
    values = ["/".join(segments[1:]) if len(segments) > 1 else "/".join(segments)]
    values += [parts.query, parts.username or "", parts.password or ""]
    return [v for v in values if v]


def client() -> httpx.AsyncClient:
    """An HTTP client for one step. Proxies and CA bundles come from the agent's environment
    (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE); redirects are not followed."""
    import httpx

    version = importlib.metadata.version(DISTRIBUTION)
    return httpx.AsyncClient(
        headers={"User-Agent": f"{DISTRIBUTION}/{version}"}, follow_redirects=False
    )


def _describe_transport(exc: httpx.HTTPError, timeout: float) -> tuple[str, bool]:
    """(what went wrong, whether another attempt may help) for a failed request."""
    import httpx

    detail = first_line(str(exc)) or type(exc).__name__
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {first_line(str(cause.verify_message))}", False
        if isinstance(cause, OSError) and cause.errno is not None:
            # The system's own words ("Connection refused") rather than a wrapper's.
            detail = os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectTimeout):
        return f"could not connect within {timeout:.1f}s", True
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:.1f}s", True
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {detail}", True
    if isinstance(exc, httpx.ProxyError):
        return f"the proxy failed: {detail}", True
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return f"the connection broke: {detail}", True
    return f"{type(exc).__name__}: {detail}", False


def _attempts(n: int) -> str:
    return f"{n} attempt" + ("" if n == 1 else "s")


async def _pause(context: StepContext, seconds: float, note: str) -> None:
    """Wait `seconds`, heartbeating so that Temporal sees the step alive and why it waits."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        context.heartbeat(note)
        await asyncio.sleep(min(HEARTBEAT_EVERY, left))


async def call(
    context: StepContext,
    *,
    what: str,
    budget: Budget,
    send: Callable[[float], Awaitable[httpx.Response]],
    judge: Callable[[httpx.Response], Verdict[T]],
    rng: random.Random | None = None,
) -> tuple[T, int]:
    """Send until `judge` says done or fail, or the budget runs out; return (value, attempts).

    `what` names the target in log lines and errors and must hold no secret; `send(timeout)`
    makes one request. Raises NodeError: not retryable for what no attempt can fix, retryable
    when the budget ran out on a rate limit or a transient failure.
    """
    import httpx

    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        timeout = min(REQUEST_TIMEOUT, max(budget.left(), MIN_ATTEMPT))
        asked: float | None = None
        try:
            response = await send(timeout)
        except httpx.HTTPError as exc:
            reason, retryable = _describe_transport(exc, timeout)
            reason = context.masker.mask(reason)
            if not retryable:
                context.log.stdout(f"{what}: attempt {attempt}: {reason}")
                raise NodeError(f"{what}: {reason}", retryable=False) from None
        else:
            verdict = judge(response)
            if isinstance(verdict, Done):
                context.log.stdout(f"{what}: attempt {attempt}: {verdict.summary}")
                return verdict.value, attempt
            if isinstance(verdict, Fail):
                context.log.stdout(f"{what}: attempt {attempt}: {verdict.reason}")
                raise NodeError(verdict.message, retryable=False)
            reason, asked = verdict.reason, verdict.wait

        delay = max(MIN_DELAY, asked if asked is not None else backoff(attempt, rng))
        left = budget.left()
        if delay + MIN_ATTEMPT > left:
            if asked is not None:
                why = (
                    f"Slack asks to wait {asked:g}s; only {max(left, 0.0):.1f}s is left of the "
                    f"time budget ({budget.describe()})"
                )
            else:
                why = f"no time left for another attempt (time budget {budget.describe()})"
            context.log.stdout(f"{what}: attempt {attempt}: {reason}; giving up: {why}")
            raise NodeError(
                f"{what}: gave up after {_attempts(attempt)} in {budget.elapsed():.1f}s, "
                f"last: {reason}; {why}"
            )
        source = " as Retry-After asks" if asked is not None else ""
        context.log.stdout(f"{what}: attempt {attempt}: {reason}; retrying in {delay:.1f}s{source}")
        note = f"waiting {delay:.1f}s before attempt {attempt + 1}: {reason}"
        await _pause(context, delay, context.masker.mask(note))
