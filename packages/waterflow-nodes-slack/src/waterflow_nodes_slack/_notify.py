"""`slack/notify`: a message to a Slack incoming webhook."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from waterflow import NodeError, NodeMetadata, NodeResult, Output, Parameter, StepContext
from waterflow_nodes_slack import _http, _params
from waterflow_nodes_slack._budget import Budget, step_time_left
from waterflow_nodes_slack._hints import WEBHOOK_HINTS

if TYPE_CHECKING:
    # Annotations only: httpx is imported when a step sends its request (see _http).
    import httpx

NODE_NAME = "slack/notify"
WEBHOOK_EXAMPLE = "https://hooks.slack.com/services/T…/B…/…"

# What `payload` replaces; `webhook_url` and `timeout` go with either.
MESSAGE_PARAMETERS = ("message", "blocks", "attachments", "username", "icon_emoji", "channel")


def metadata() -> NodeMetadata:
    return NodeMetadata(
        name=NODE_NAME,
        version=importlib.metadata.version(_http.DISTRIBUTION),
        description=(
            "Post a message to a Slack incoming webhook: text, Block Kit blocks, attachments, "
            "or a raw payload. Retries rate limits and server errors within its time budget."
        ),
        parameters=(
            Parameter(
                "webhook_url",
                required=True,
                description=(
                    "The incoming webhook's URL. It grants posting: keep it in a secret, "
                    "`${{ secrets.SLACK_WEBHOOK }}`. Never shown in logs or errors."
                ),
            ),
            Parameter(
                "message",
                description="The message text (Slack mrkdwn). With blocks, the text of "
                "notifications.",
            ),
            Parameter(
                "blocks",
                type="array",
                description="Block Kit blocks: a list, or JSON text of a list.",
            ),
            Parameter(
                "attachments",
                type="array",
                description="Secondary attachments: a list, or JSON text of a list.",
            ),
            Parameter(
                "username",
                description="Shown as the sender's name (legacy webhooks; app webhooks use "
                "the app's name).",
            ),
            Parameter(
                "icon_emoji",
                description="Shown as the sender's icon, e.g. ':rocket:' (legacy webhooks).",
            ),
            Parameter(
                "channel",
                description="Post to this channel instead of the webhook's own (legacy "
                "webhooks; app webhooks always post to their channel).",
            ),
            Parameter(
                "payload",
                type="object",
                description=(
                    "The whole JSON body, sent as is: a mapping, or JSON text of an object. "
                    "When given, leave out message, blocks, attachments, username, "
                    "icon_emoji and channel."
                ),
            ),
            _params.TIMEOUT,
        ),
        outputs=(
            Output("status", "The HTTP status of Slack's answer, `200`."),
            Output("response", "The body of Slack's answer, `ok`."),
            Output("attempts", "How many requests it took."),
        ),
    )


def build_payload(params: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body to send, from the step's parameters."""
    payload = params.get("payload")
    given = [name for name in MESSAGE_PARAMETERS if params.get(name) not in (None, "")]
    if payload is not None:
        if given:
            raise NodeError(
                "parameter 'payload' is sent as is: leave out "
                + ", ".join(given)
                + ", or put them into the payload",
                retryable=False,
            )
        return dict(payload)

    message = _params.text(params, "message")
    blocks = _params.objects(params, "blocks", '{"type": "section", "text": {...}}')
    attachments = _params.objects(params, "attachments", '{"color": "good", "text": "..."}')
    if message is None and blocks is None and attachments is None:
        empty = " (message is empty)" if params.get("message") == "" else ""
        raise NodeError(
            f"{NODE_NAME} has nothing to send{empty}: give message, blocks, attachments or "
            "payload under with:",
            retryable=False,
        )
    body: dict[str, Any] = {}
    if message is not None:
        body["text"] = message
    if blocks is not None:
        body["blocks"] = blocks
    if attachments is not None:
        body["attachments"] = attachments
    for name in ("username", "channel"):
        value = _params.text(params, name)
        if value is not None:
            body[name] = value
    icon = _params.text(params, "icon_emoji")
    if icon is not None:
        body["icon_emoji"] = icon if icon.startswith(":") else f":{icon.strip(':')}:"
    return body


def _contents(body: Mapping[str, Any]) -> str:
    parts = []
    if "text" in body:
        parts.append("text")
    for key, one in (("blocks", "block"), ("attachments", "attachment")):
        items = body.get(key)
        if isinstance(items, list):
            parts.append(f"{len(items)} {one}" + ("" if len(items) == 1 else "s"))
    return ", ".join(parts) or "a payload"


def _judge(what: str) -> Callable[[httpx.Response], _http.Verdict[tuple[int, str]]]:
    def judge(response: httpx.Response) -> _http.Verdict[tuple[int, str]]:
        status = response.status_code
        body = _http.first_line(response.text)
        if 200 <= status < 300:
            return _http.Done((status, body), f"HTTP {status} {body}".rstrip())
        if status == 429:
            return _http.Retry(
                "HTTP 429 rate limited", _http.retry_after(response.headers.get("Retry-After"))
            )
        if status >= 500:
            return _http.Retry(
                f"HTTP {status} {body or response.reason_phrase}".rstrip(),
                _http.retry_after(response.headers.get("Retry-After")),
            )
        reason = f"HTTP {status} {body or response.reason_phrase}".rstrip()
        hint = WEBHOOK_HINTS.get(body)
        if hint is None and 300 <= status < 400:
            hint = "the webhook URL redirects elsewhere; copy it again into the secret"
        return _http.Fail(reason, f"{what} answered {reason}" + (f": {hint}" if hint else ""))

    return judge


class SlackNotify:
    """Executor of `slack/notify`."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        url = str(params.get("webhook_url") or "").strip()
        # Before anything can log it, whether or not it came from a secret.
        context.masker.add(url)
        parts = _http.parse_url("webhook_url", url, secret=True, example=WEBHOOK_EXAMPLE)
        for value in _http.secret_parts(parts):
            context.masker.add(value)
        body = build_payload(params)
        budget = Budget.for_step(_params.timeout(params), step_left=step_time_left())
        what = f"Slack webhook {_http.redacted_url(parts)}"
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        context.log.stdout(f"{what}: sending {_contents(body)} ({len(content)} bytes)")
        async with _http.client() as client:

            async def send(timeout: float) -> httpx.Response:
                return await client.post(
                    url,
                    content=content,
                    headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=timeout,
                )

            (status, answer), attempts = await _http.call(
                context, what=what, budget=budget, send=send, judge=_judge(what)
            )
        return NodeResult(
            outputs={"status": str(status), "response": answer, "attempts": str(attempts)}
        )
