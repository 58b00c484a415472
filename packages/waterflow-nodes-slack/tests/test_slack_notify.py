"""slack/notify against a real HTTP server that answers as Slack's incoming webhooks do."""

from __future__ import annotations

import json

import pytest
from slack_fake import WEBHOOK_PATH, FakeSlack, Reply
from slack_steps import Run

WEBHOOK = "${{ secrets.SLACK_WEBHOOK }}"


def shown_url(slack: FakeSlack) -> str:
    return f"{slack.url}/services/***"


def secret_path() -> str:
    return WEBHOOK_PATH.removeprefix("/services/")


async def test_message_is_posted(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "Deployed *v1.2*"})
    assert ran.error is None, ran.message
    assert ran.outputs == {"status": "200", "response": "ok", "attempts": "1"}
    (request,) = slack.to(WEBHOOK_PATH)
    assert request.method == "POST"
    assert request.json() == {"text": "Deployed *v1.2*"}
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["user-agent"].startswith("waterflow-nodes-slack/")
    assert f"Slack webhook {shown_url(slack)}: sending text (" in ran.log
    assert f"Slack webhook {shown_url(slack)}: attempt 1: HTTP 200 ok\n" in ran.log
    ran.assert_hides(slack.webhook_url, secret_path())


async def test_unicode_is_sent_as_utf8(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "déployé ✅"})
    assert ran.error is None, ran.message
    (request,) = slack.to(WEBHOOK_PATH)
    assert "déployé ✅".encode() in request.body
    assert request.json() == {"text": "déployé ✅"}


async def test_webhook_url_given_literally_is_hidden_too(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": slack.webhook_url, "message": "hi"}, secrets={})
    assert ran.outputs["status"] == "200"
    assert f"{shown_url(slack)}: attempt 1: HTTP 200 ok" in ran.log
    ran.assert_hides(slack.webhook_url, secret_path())


async def test_blocks_attachments_and_legacy_fields(run: Run, slack: FakeSlack) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*v1.2* is live"}},
    ]
    attachments = [{"color": "good", "text": "all checks passed"}]
    ran = await run(
        "slack/notify",
        {
            "webhook_url": WEBHOOK,
            "message": "Deploy v1.2",
            "blocks": blocks,
            "attachments": json.dumps(attachments),  # JSON text, as an expression renders it
            "username": "deploy-bot",
            "icon_emoji": "rocket",
            "channel": "#deploys",
        },
    )
    assert ran.error is None, ran.message
    assert slack.to(WEBHOOK_PATH)[0].json() == {
        "text": "Deploy v1.2",
        "blocks": blocks,
        "attachments": attachments,
        "username": "deploy-bot",
        "icon_emoji": ":rocket:",
        "channel": "#deploys",
    }
    assert ": sending text, 2 blocks, 1 attachment (" in ran.log


async def test_blocks_alone_as_json_text(run: Run, slack: FakeSlack) -> None:
    blocks = [{"type": "divider"}]
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "blocks": json.dumps(blocks)})
    assert ran.error is None, ran.message
    assert slack.to(WEBHOOK_PATH)[0].json() == {"blocks": blocks}


@pytest.mark.parametrize("as_text", [True, False], ids=["json-text", "mapping"])
async def test_payload_is_sent_as_is(run: Run, slack: FakeSlack, as_text: bool) -> None:
    payload = {
        "text": "fallback",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
        "unfurl_links": False,
        "metadata": {"event_type": "deploy", "event_payload": {"version": "1.2"}},
    }
    ran = await run(
        "slack/notify",
        {"webhook_url": WEBHOOK, "payload": json.dumps(payload) if as_text else payload},
    )
    assert ran.error is None, ran.message
    assert slack.to(WEBHOOK_PATH)[0].json() == payload
    assert ": sending text, 1 block (" in ran.log


async def test_payload_with_message_parameters_is_refused(run: Run, slack: FakeSlack) -> None:
    ran = await run(
        "slack/notify",
        {"webhook_url": WEBHOOK, "payload": {"text": "a"}, "message": "b", "channel": "#c"},
    )
    assert ran.error == (
        "parameter 'payload' is sent as is: leave out message, channel, or put them into the "
        "payload"
    )
    assert not ran.retryable
    assert slack.requests == []


async def test_nothing_to_send(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "username": "bot"})
    assert ran.error == (
        "slack/notify has nothing to send: give message, blocks, attachments or payload under with:"
    )
    assert not ran.retryable
    empty = await run("slack/notify", {"webhook_url": WEBHOOK, "message": ""})
    assert empty.error is not None
    assert empty.error.startswith("slack/notify has nothing to send (message is empty): ")
    assert slack.requests == []


async def test_invalid_json_in_blocks(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "blocks": '[{"type": "divider"'})
    assert ran.error == (
        "parameter 'blocks' of 'slack/notify': expected an array (a list, JSON text, or values "
        "one per line or separated by commas), "
        """got '[{"type": "divider"'"""
    )
    assert not ran.retryable
    assert slack.requests == []


async def test_block_that_is_not_an_object(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "blocks": ["hello"]})
    assert ran.error == (
        "parameter 'blocks': item 0 is a string, not an object like "
        '{"type": "section", "text": {...}}'
    )
    attachments = await run("slack/notify", {"webhook_url": WEBHOOK, "attachments": "[1]"})
    assert attachments.error is not None
    assert attachments.error.startswith("parameter 'attachments': item 0 is a number, not an")
    assert slack.requests == []


async def test_payload_that_is_not_an_object(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "payload": "[1, 2]"})
    assert ran.error == (
        "parameter 'payload' of 'slack/notify': expected an object (a mapping), got [1, 2]"
    )
    assert slack.requests == []


async def test_missing_webhook_url(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"message": "hi"})
    assert ran.error == "node 'slack/notify' needs parameter 'webhook_url' under with:"
    assert not ran.retryable
    assert slack.requests == []


async def test_webhook_secret_not_set_on_the_agent(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "hi"}, secrets={})
    assert ran.error == (
        "parameter 'webhook_url' is empty: if it comes from a secret, is that secret set on the "
        "agent that ran the step?"
    )
    assert not ran.retryable


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("hooks.slack.com/services/T0/B0/abcdef", "is not an http(s) URL"),
        ("ftp://hooks.slack.com/services/T0/B0/abcdef", "is not an http(s) URL"),
        ("https://hooks.slack.com:port/services/T0/B0/abcdef", "is not an http(s) URL"),
        ("https://hooks.slack.com/services/T0/B0/abc def", "contains spaces or line breaks"),
    ],
)
async def test_webhook_url_that_is_not_a_url(
    run: Run, slack: FakeSlack, value: str, problem: str
) -> None:
    ran = await run(
        "slack/notify",
        {"webhook_url": WEBHOOK, "message": "hi"},
        secrets={"SLACK_WEBHOOK": value},
    )
    assert ran.error == (
        f"parameter 'webhook_url' {problem}; expected a URL like "
        "https://hooks.slack.com/services/T…/B…/…"
    )
    assert not ran.retryable
    ran.assert_hides(value, "abcdef", "abc def")


# --- Slack's refusals: 4xx with a plain-text reason, never retried ----------------------------

REFUSALS = [
    (400, "invalid_payload", "Slack could not read the message; check blocks and attachments "),
    (400, "too_many_attachments", "a message takes at most 100 attachments"),
    (403, "action_prohibited", "a workspace admin restricts posting to that channel"),
    (403, "invalid_token", "the webhook URL is not valid; copy it again into the secret"),
    (404, "channel_not_found", "the webhook's channel no longer exists; create a webhook for "),
    (404, "no_service", "the webhook was removed or its app disabled; create a new webhook "),
    (410, "channel_is_archived", "the webhook's channel is archived; unarchive it or create "),
]


@pytest.mark.parametrize(("status", "code", "hint"), REFUSALS, ids=[r[1] for r in REFUSALS])
async def test_refusal_is_a_clear_failure_without_retry(
    run: Run, slack: FakeSlack, status: int, code: str, hint: str
) -> None:
    slack.script(WEBHOOK_PATH, Reply(status, code))
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "hi"})
    assert ran.error is not None
    assert ran.error.startswith(f"Slack webhook {shown_url(slack)} answered HTTP {status} {code}: ")
    assert hint in ran.error
    assert "\n" not in ran.error
    assert not ran.retryable
    assert len(slack.to(WEBHOOK_PATH)) == 1
    assert f": attempt 1: HTTP {status} {code}\n" in ran.log
    ran.assert_hides(slack.webhook_url, secret_path())


async def test_removed_webhook(run: Run, slack: FakeSlack) -> None:
    removed = slack.url + "/services/T0AB12CD3/B0EF45GH6/removedRemovedRemoved123"
    ran = await run(
        "slack/notify",
        {"webhook_url": WEBHOOK, "message": "hi"},
        secrets={"SLACK_WEBHOOK": removed},
    )
    assert ran.error == (
        f"Slack webhook {shown_url(slack)} answered HTTP 404 no_service: the webhook was removed "
        "or its app disabled; create a new webhook and update the secret"
    )
    ran.assert_hides(removed, "removedRemovedRemoved123")


async def test_empty_payload_is_refused_by_slack(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "payload": "{}"})
    assert ran.error == (
        f"Slack webhook {shown_url(slack)} answered HTTP 400 no_text: the message is empty; "
        "give message, blocks or attachments"
    )


async def test_blocks_slack_rejects(run: Run, slack: FakeSlack) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "blocks": [{"text": "no type"}]})
    assert ran.error == (
        f"Slack webhook {shown_url(slack)} answered HTTP 400 invalid_blocks: Slack rejected "
        "the blocks; check them in Block Kit Builder"
    )


async def test_unknown_refusal_and_redirect(run: Run, slack: FakeSlack) -> None:
    slack.script(
        WEBHOOK_PATH,
        Reply(418, "teapot"),
        Reply(302, "", headers={"Location": "https://example.invalid/login"}),
    )
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "hi"})
    assert ran.error == f"Slack webhook {shown_url(slack)} answered HTTP 418 teapot"
    moved = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "hi"})
    assert moved.error == (
        f"Slack webhook {shown_url(slack)} answered HTTP 302 Found: the webhook URL redirects "
        "elsewhere; copy it again into the secret"
    )
    assert len(slack.to(WEBHOOK_PATH)) == 2


@pytest.mark.parametrize("value", [0, -5, "nan"])
async def test_timeout_must_be_above_zero(run: Run, slack: FakeSlack, value: object) -> None:
    ran = await run("slack/notify", {"webhook_url": WEBHOOK, "message": "hi", "timeout": value})
    assert ran.error == (
        f"parameter 'timeout' must be a number of seconds above 0, got {float(str(value)):g}"
    )
    assert not ran.retryable
    assert slack.requests == []
