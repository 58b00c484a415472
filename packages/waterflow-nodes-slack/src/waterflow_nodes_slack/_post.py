"""`slack/post`: a message through Slack's Web API (`chat.postMessage`, or `chat.update`)."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from waterflow import NodeError, NodeMetadata, NodeResult, Output, Parameter, StepContext
from waterflow_nodes_slack import _http, _params
from waterflow_nodes_slack._budget import Budget, step_time_left
from waterflow_nodes_slack._hints import API_HINTS, API_TRANSIENT

if TYPE_CHECKING:
    # Annotations only: httpx is imported when a step sends its request (see _http).
    import httpx

NODE_NAME = "slack/post"
DEFAULT_API_URL = "https://slack.com/api"


def metadata() -> NodeMetadata:
    return NodeMetadata(
        name=NODE_NAME,
        version=importlib.metadata.version(_http.DISTRIBUTION),
        description=(
            "Post a message with Slack's Web API (chat.postMessage), reply in a thread, or "
            "update a message (chat.update). Puts out the message's ts and channel for later "
            "steps. Retries rate limits and server errors within its time budget."
        ),
        parameters=(
            Parameter(
                "token",
                required=True,
                description=(
                    "A bot token (xoxb-…) with the chat:write scope: keep it in a secret, "
                    "`${{ secrets.SLACK_BOT_TOKEN }}`. Never shown in logs or errors."
                ),
            ),
            Parameter(
                "channel",
                required=True,
                description="The channel's ID (C0123…), or its name for chat.postMessage. "
                "The bot must be in it.",
            ),
            Parameter(
                "text",
                description="The message text (Slack mrkdwn). With blocks, the text of "
                "notifications.",
            ),
            Parameter(
                "blocks",
                type="array",
                description="Block Kit blocks: a list, or JSON text of a list.",
            ),
            Parameter(
                "thread_ts",
                description="Reply in the thread of this message: the `ts` (or `thread_ts`) "
                "output of an earlier slack/post step.",
            ),
            Parameter(
                "update_ts",
                description="Update this message (chat.update) instead of posting: the `ts` "
                "output of an earlier slack/post step. channel must then be that step's "
                "`channel` output.",
            ),
            Parameter(
                "api_url",
                default=DEFAULT_API_URL,
                description="Base URL of the Web API; set it for a proxy or an Enterprise "
                "Grid gateway.",
            ),
            _params.TIMEOUT,
        ),
        outputs=(
            Output("ts", "The message's timestamp, Slack's ID of the message."),
            Output("channel", "The ID of the channel the message is in."),
            Output(
                "thread_ts",
                "The thread the message is in: for a reply, its parent's ts; else its own.",
            ),
            Output("attempts", "How many requests it took."),
        ),
    )


def _token(params: Mapping[str, Any]) -> str:
    token = str(params.get("token") or "").strip()
    if not token:
        raise NodeError(
            "parameter 'token' is empty: if it comes from a secret, is that secret set on the "
            "agent that ran the step?",
            retryable=False,
        )
    if not token.isascii() or any(c.isspace() or not c.isprintable() for c in token):
        raise NodeError(
            "parameter 'token' is not a Slack token: it holds spaces, line breaks or "
            "characters that are not ASCII (expected one word like xoxb-…)",
            retryable=False,
        )
    return token


def build_request(params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(Web API method, JSON body) for the step's parameters."""
    channel = _params.text(params, "channel")
    if channel is None:
        raise NodeError(f"{NODE_NAME} needs parameter 'channel' under with:", retryable=False)
    text = _params.text(params, "text")
    blocks = _params.objects(params, "blocks", '{"type": "section", "text": {...}}')
    if text is None and blocks is None:
        empty = " (text is empty)" if params.get("text") == "" else ""
        raise NodeError(
            f"{NODE_NAME} has nothing to send{empty}: give text or blocks under with:",
            retryable=False,
        )
    thread_ts = _params.text(params, "thread_ts")
    update_ts = _params.text(params, "update_ts")
    body: dict[str, Any] = {"channel": channel}
    if update_ts is not None:
        if thread_ts is not None:
            raise NodeError(
                "give update_ts (to update a message) or thread_ts (to reply), not both",
                retryable=False,
            )
        body["ts"] = update_ts
    elif thread_ts is not None:
        body["thread_ts"] = thread_ts
    if text is not None:
        body["text"] = text
    if blocks is not None:
        body["blocks"] = blocks
    return ("chat.update" if update_ts is not None else "chat.postMessage"), body


def _details(data: Mapping[str, Any]) -> str:
    """What Slack adds to an error: the scope it needed, its first message about the input."""
    extra = []
    needed = data.get("needed")
    if isinstance(needed, str) and needed:
        extra.append(f"needs {needed}")
    metadata = data.get("response_metadata")
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    if isinstance(messages, list) and messages:
        extra.append(_http.first_line(str(messages[0])))
    return f" ({'; '.join(extra)})" if extra else ""


def _judge(
    context: StepContext, what: str
) -> Callable[[httpx.Response], _http.Verdict[dict[str, Any]]]:
    def judge(response: httpx.Response) -> _http.Verdict[dict[str, Any]]:
        status = response.status_code
        wait = _http.retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return _http.Retry("HTTP 429 ratelimited", wait)
        if status >= 500:
            return _http.Retry(f"HTTP {status} {response.reason_phrase}".rstrip(), wait)
        if not 200 <= status < 300:
            reason = f"HTTP {status} {response.reason_phrase}".rstrip()
            body = _http.first_line(response.text, 100)
            return _http.Fail(
                reason,
                f"{what} answered {reason}" + (f" {body!r}" if body else "") + "; check api_url",
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
            kind = response.headers.get("Content-Type", "no content type")
            return _http.Fail(
                f"HTTP {status}, not a Slack API answer",
                f"{what} answered HTTP {status} with {kind}, not Slack's JSON; check api_url",
            )
        warning = data.get("warning")
        if warning:
            context.log.stdout(f"{what}: Slack warns: {_http.first_line(str(warning))}")
        if data["ok"]:
            ts, channel = data.get("ts"), data.get("channel")
            if not isinstance(ts, str) or not isinstance(channel, str):
                return _http.Fail(
                    "ok without ts or channel",
                    f"{what} answered ok without the message's ts and channel; check api_url",
                )
            return _http.Done(data, f"ok, ts {ts} in {channel}")
        error = _http.first_line(str(data.get("error") or "unknown_error"), 100)
        if error in API_TRANSIENT:
            return _http.Retry(f"error {error}", wait)
        hint = API_HINTS.get(error)
        return _http.Fail(
            f"error {error}",
            f"{what} failed: {error}{_details(data)}" + (f": {hint}" if hint else ""),
        )

    return judge


class SlackPost:
    """Executor of `slack/post`."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        raw = str(params.get("token") or "")
        # Before anything can log it, whether or not it came from a secret.
        context.masker.add(raw)
        context.masker.add(raw.strip())
        token = _token(params)
        method, body = build_request(params)
        api_url = str(params.get("api_url") or DEFAULT_API_URL).strip().rstrip("/")
        parts = _http.parse_url("api_url", api_url, secret=False, example=DEFAULT_API_URL)
        context.masker.add(parts.password)
        if parts.username or parts.password:
            raise NodeError(
                f"parameter 'api_url' {_http.shown_url(parts)!r} must not hold a user name or "
                "password: the request carries the token instead; a proxy's credentials go in "
                "HTTPS_PROXY on the agent",
                retryable=False,
            )
        endpoint = f"{api_url}/{method}"
        budget = Budget.for_step(_params.timeout(params), step_left=step_time_left())
        what = f"Slack {method} at {_http.shown_url(parts)}"
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        where = f" in thread {body['thread_ts']}" if "thread_ts" in body else ""
        if "ts" in body:
            where = f" updating {body['ts']}"
        context.log.stdout(f"{what}: to {body['channel']}{where}")
        async with _http.client() as client:

            async def send(timeout: float) -> httpx.Response:
                return await client.post(
                    endpoint,
                    content=content,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json; charset=utf-8",
                    },
                    timeout=timeout,
                )

            data, attempts = await _http.call(
                context, what=what, budget=budget, send=send, judge=_judge(context, what)
            )
        ts, channel = str(data["ts"]), str(data["channel"])
        message = data.get("message")
        thread = message.get("thread_ts") if isinstance(message, dict) else None
        thread_ts = str(thread or body.get("thread_ts") or ts)
        return NodeResult(
            outputs={
                "ts": ts,
                "channel": channel,
                "thread_ts": thread_ts,
                "attempts": str(attempts),
            }
        )
