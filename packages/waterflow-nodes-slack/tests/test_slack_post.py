"""slack/post against a real HTTP server that answers as Slack's Web API does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_fake import TOKEN, FakeSlack, Reply
from slack_steps import Run

POST = "/api/chat.postMessage"
UPDATE = "/api/chat.update"


@pytest.fixture
def post(run: Run, slack: FakeSlack) -> Any:
    """`await post(**with_)`: slack/post with the bot token secret and the fake's API URL."""

    async def post_step(**with_: Any) -> Any:
        params = {"token": "${{ secrets.SLACK_BOT_TOKEN }}", "api_url": slack.api_url, **with_}
        return await run("slack/post", params)

    return post_step


async def test_post_puts_out_ts_and_channel(post: Any, slack: FakeSlack) -> None:
    ran = await post(channel="C1", text="Deploying v1.2")
    assert ran.error is None, ran.message
    assert ran.outputs == {
        "ts": "1700000000.000100",
        "channel": "C1",
        "thread_ts": "1700000000.000100",
        "attempts": "1",
    }
    (request,) = slack.to(POST)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.json() == {"channel": "C1", "text": "Deploying v1.2"}
    api = f"Slack chat.postMessage at {slack.api_url}"
    assert f"{api}: to C1\n" in ran.log
    assert f"{api}: attempt 1: ok, ts 1700000000.000100 in C1\n" in ran.log
    ran.assert_hides(TOKEN)


async def test_channel_by_name_puts_out_its_id(post: Any, slack: FakeSlack) -> None:
    ran = await post(channel="#general", blocks=json.dumps([{"type": "divider"}]), text="fb")
    assert ran.outputs["channel"] == "C1"
    assert slack.to(POST)[0].json() == {
        "channel": "#general",
        "text": "fb",
        "blocks": [{"type": "divider"}],
    }


async def test_reply_in_the_thread_of_an_earlier_post(post: Any, slack: FakeSlack) -> None:
    first = await post(channel="#general", text="Deploying")
    reply = await post(
        channel=first.outputs["channel"], thread_ts=first.outputs["ts"], text="Deployed"
    )
    assert reply.error is None, reply.message
    assert reply.outputs["ts"] == "1700000000.000101"
    assert reply.outputs["thread_ts"] == first.outputs["ts"]
    assert slack.to(POST)[1].json() == {
        "channel": "C1",
        "thread_ts": "1700000000.000100",
        "text": "Deployed",
    }
    assert slack.messages["1700000000.000101"]["thread_ts"] == "1700000000.000100"
    assert "in thread 1700000000.000100\n" in reply.log


async def test_update_a_message(post: Any, slack: FakeSlack) -> None:
    first = await post(channel="C1", text="Deploying…")
    updated = await post(channel="C1", update_ts=first.outputs["ts"], text="Deployed ✅")
    assert updated.error is None, updated.message
    assert updated.outputs["ts"] == first.outputs["ts"]
    (request,) = slack.to(UPDATE)
    assert request.json() == {"channel": "C1", "ts": first.outputs["ts"], "text": "Deployed ✅"}
    assert slack.messages[first.outputs["ts"]]["text"] == "Deployed ✅"
    assert f"Slack chat.update at {slack.api_url}: to C1 updating " in updated.log


async def test_update_of_an_unknown_message(post: Any, slack: FakeSlack) -> None:
    ran = await post(channel="C1", update_ts="1699999999.000001", text="x")
    assert ran.error == (
        f"Slack chat.update at {slack.api_url} failed: message_not_found: no message with that "
        "update_ts in this channel; update_ts must be the ts a slack/post step put out, and "
        "channel its channel ID"
    )
    assert not ran.retryable


# --- Slack's refusals: HTTP 200 with ok: false, never retried --------------------------------

ERRORS = [
    (
        {"channel": "C404"},
        "channel_not_found: the channel does not exist or the bot cannot see it; use the "
        "channel's ID (C0123…) and invite the bot to the channel (/invite @your-bot)",
    ),
    ({"channel": "C2"}, "not_in_channel: the bot is not in the channel; invite it"),
    (
        {"token": "xoxb-not-the-right-one"},
        "invalid_auth: the token is not valid; check the secret holds a bot token (xoxb-…) of "
        "this workspace",
    ),
    (
        {"blocks": [{"text": "no type"}]},
        "invalid_blocks ([ERROR] missing required field: type [json-pointer:/blocks/0]): "
        "Slack rejected the blocks; check them in Block Kit Builder",
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), ERRORS, ids=["channel", "member", "auth", "blocks"]
)
async def test_error_is_a_clear_failure_without_retry(
    run: Run, slack: FakeSlack, change: dict[str, Any], expected: str
) -> None:
    params = {"token": TOKEN, "channel": "C1", "text": "hi", "api_url": slack.api_url, **change}
    ran = await run("slack/post", params)
    assert ran.error is not None
    assert ran.error.startswith(f"Slack chat.postMessage at {slack.api_url} failed: {expected}")
    assert not ran.retryable
    assert len(slack.to(POST)) == 1
    assert f": attempt 1: error {expected.split()[0].rstrip(':')}\n" in ran.log
    ran.assert_hides(TOKEN, "xoxb-not-the-right-one")


async def test_missing_scope_names_the_scope(post: Any, slack: FakeSlack) -> None:
    slack.script(POST, Reply(200, {"ok": False, "error": "missing_scope", "needed": "chat:write"}))
    ran = await post(channel="C1", text="hi")
    assert ran.error == (
        f"Slack chat.postMessage at {slack.api_url} failed: missing_scope (needs chat:write): "
        "the token lacks a scope; add chat:write to the app and reinstall it"
    )


async def test_unknown_error_is_shown_as_slack_says_it(post: Any, slack: FakeSlack) -> None:
    slack.script(POST, Reply(200, {"ok": False, "error": "some_new_error"}))
    ran = await post(channel="C1", text="hi")
    assert ran.error == f"Slack chat.postMessage at {slack.api_url} failed: some_new_error"


async def test_slack_warnings_are_logged(post: Any, slack: FakeSlack) -> None:
    slack.script(
        POST,
        Reply(200, {"ok": True, "channel": "C1", "ts": "1.2", "warning": "superfluous_charset"}),
    )
    ran = await post(channel="C1", text="hi")
    assert ran.outputs["ts"] == "1.2"
    assert ": Slack warns: superfluous_charset\n" in ran.log


async def test_api_url_that_is_not_slack(post: Any, slack: FakeSlack) -> None:
    ran = await run_with_api(post, slack.url + "/nowhere")
    assert ran.error == (
        f"Slack chat.postMessage at {slack.url}/nowhere answered HTTP 404 Not Found 'no_service'; "
        "check api_url"
    )
    assert not ran.retryable
    slack.script(POST, Reply(200, "<html>Sign in to the proxy</html>"))
    html = await post(channel="C1", text="hi")
    assert html.error == (
        f"Slack chat.postMessage at {slack.api_url} answered HTTP 200 with text/html, not "
        "Slack's JSON; check api_url"
    )
    slack.script(POST, Reply(200, {"ok": True}))
    incomplete = await post(channel="C1", text="hi")
    assert incomplete.error == (
        f"Slack chat.postMessage at {slack.api_url} answered ok without the message's ts and "
        "channel; check api_url"
    )


async def run_with_api(post: Any, api_url: str) -> Any:
    return await post(channel="C1", text="hi", api_url=api_url)


async def test_api_url_with_a_trailing_slash(post: Any, slack: FakeSlack) -> None:
    ran = await run_with_api(post, slack.api_url + "/")
    assert ran.error is None, ran.message
    assert len(slack.to(POST)) == 1


async def test_api_url_that_is_not_a_url(post: Any, slack: FakeSlack) -> None:
    ran = await run_with_api(post, "slack.com/api")
    assert ran.error == (
        "parameter 'api_url' 'slack.com/api' is not an http(s) URL; expected a URL like "
        "https://slack.com/api"
    )
    assert slack.requests == []


# --- parameters ------------------------------------------------------------------------------


async def test_token_secret_not_set_on_the_agent(run: Run, slack: FakeSlack) -> None:
    ran = await run(
        "slack/post",
        {"token": "${{ secrets.SLACK_BOT_TOKEN }}", "channel": "C1", "text": "hi"},
        secrets={},
    )
    assert ran.error == (
        "parameter 'token' is empty: if it comes from a secret, is that secret set on the agent "
        "that ran the step?"
    )
    assert not ran.retryable


async def test_token_that_is_not_one_word(run: Run, slack: FakeSlack) -> None:
    broken = "xoxb-1234\nxoxb-5678"
    ran = await run(
        "slack/post",
        {"token": "${{ secrets.SLACK_BOT_TOKEN }}", "channel": "C1", "text": "hi"},
        secrets={"SLACK_BOT_TOKEN": broken},
    )
    assert ran.error == (
        "parameter 'token' is not a Slack token: it holds spaces, line breaks or characters "
        "that are not ASCII (expected one word like xoxb-…)"
    )
    ran.assert_hides(broken, "xoxb-1234", "xoxb-5678")
    assert slack.requests == []


async def test_missing_parameters(run: Run, post: Any, slack: FakeSlack) -> None:
    no_token = await run("slack/post", {"channel": "C1", "text": "hi"})
    assert no_token.error == "node 'slack/post' needs parameter 'token' under with:"
    no_channel = await post(text="hi")
    assert no_channel.error == "node 'slack/post' needs parameter 'channel' under with:"
    empty_channel = await post(channel="", text="hi")
    assert empty_channel.error == "slack/post needs parameter 'channel' under with:"
    nothing = await post(channel="C1")
    assert nothing.error == "slack/post has nothing to send: give text or blocks under with:"
    empty = await post(channel="C1", text="")
    assert empty.error == (
        "slack/post has nothing to send (text is empty): give text or blocks under with:"
    )
    both = await post(channel="C1", text="x", thread_ts="1.1", update_ts="1.2")
    assert both.error == "give update_ts (to update a message) or thread_ts (to reply), not both"
    assert not any(r.retryable for r in (no_token, no_channel, nothing, empty, both))
    assert slack.requests == []


async def test_invalid_json_in_blocks(post: Any, slack: FakeSlack) -> None:
    ran = await post(channel="C1", blocks="{not json")
    assert ran.error == (
        "parameter 'blocks' of 'slack/post': expected an array (a list, JSON text, or values "
        "one per line or separated by commas), got "
        "'{not json'"
    )
    assert slack.requests == []


async def test_credentials_in_api_url_are_refused_unshown(post: Any, slack: FakeSlack) -> None:
    with_credentials = slack.api_url.replace("://", "://proxyuser:pr0xy-pa55@")
    ran = await run_with_api(post, with_credentials)
    assert ran.error == (
        f"parameter 'api_url' '{slack.api_url}' must not hold a user name or password: the "
        "request carries the token instead; a proxy's credentials go in HTTPS_PROXY on the agent"
    )
    assert not ran.retryable
    ran.assert_hides("pr0xy-pa55")
    assert slack.requests == []
