"""Rate limits, server errors and broken connections: retried within the step's time budget."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import re
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from slack_fake import TOKEN, WEBHOOK_PATH, FakeSlack, Reply
from slack_steps import Run
from temporalio.testing import ActivityEnvironment

from waterflow import SecretMasker, StepContext, StepInfo, StepLog
from waterflow.envfiles import create_env_files
from waterflow_nodes_slack import SlackNotify
from waterflow_nodes_slack._budget import step_time_left
from waterflow_nodes_slack._http import backoff, redacted_url, retry_after

WEBHOOK = "${{ secrets.SLACK_WEBHOOK }}"
NOTIFY = {"webhook_url": WEBHOOK, "message": "hi"}
POST = "/api/chat.postMessage"


def gaps(slack: FakeSlack, path: str) -> list[float]:
    """Seconds between the requests the server got, by its own clock."""
    times = [r.at for r in slack.to(path)]
    return [b - a for a, b in itertools.pairwise(times)]


# --- webhook ---------------------------------------------------------------------------------


async def test_429_waits_what_retry_after_asks(run: Run, slack: FakeSlack) -> None:
    slack.script(WEBHOOK_PATH, Reply(429, "rate_limited", headers={"Retry-After": "1"}))
    ran = await run("slack/notify", NOTIFY)
    assert ran.error is None, ran.message
    assert ran.outputs == {"status": "200", "response": "ok", "attempts": "2"}
    (gap,) = gaps(slack, WEBHOOK_PATH)
    assert 1.0 <= gap < 3.0
    assert ": attempt 1: HTTP 429 rate limited; retrying in 1.0s as Retry-After asks\n" in ran.log
    assert ": attempt 2: HTTP 200 ok\n" in ran.log
    ran.assert_hides(slack.webhook_url)


async def test_5xx_then_success(run: Run, slack: FakeSlack) -> None:
    slack.script(WEBHOOK_PATH, Reply(500, ""), Reply(503, "upstream down"))
    ran = await run("slack/notify", NOTIFY)
    assert ran.error is None, ran.message
    assert ran.outputs["attempts"] == "3"
    first, second = gaps(slack, WEBHOOK_PATH)
    assert 0.5 <= first <= 1.7  # backoff 1s, jittered down to half
    assert 1.0 <= second <= 2.7  # then 2s
    assert re.search(
        r": attempt 1: HTTP 500 Internal Server Error; retrying in 0\.\d+s|1\.0s", ran.log
    )
    assert ": attempt 2: HTTP 503 upstream down; retrying in " in ran.log
    assert ": attempt 3: HTTP 200 ok\n" in ran.log


async def test_5xx_forever_gives_up_within_the_timeout_parameter(
    run: Run, slack: FakeSlack
) -> None:
    slack.always(WEBHOOK_PATH, Reply(500, ""))
    started = time.monotonic()
    ran = await run("slack/notify", {**NOTIFY, "timeout": 2})
    took = time.monotonic() - started
    attempts = len(slack.to(WEBHOOK_PATH))
    assert ran.error is not None
    assert re.fullmatch(
        rf"Slack webhook {re.escape(slack.url)}/services/\*\*\*: gave up after {attempts} "
        r"attempts in \d\.\ds, last: HTTP 500 Internal Server Error; no time left for another "
        r"attempt \(time budget 2s, the node's timeout parameter\)",
        ran.error,
    )
    assert attempts >= 2
    assert took < 3.0
    assert ran.retryable  # a later attempt of the step may find Slack well again
    assert "; giving up: no time left for another attempt" in ran.log
    ran.assert_hides(slack.webhook_url)


async def test_5xx_forever_gives_up_before_the_step_times_out(
    run: Run, slack: FakeSlack, step_timeout: Callable[[float], None]
) -> None:
    step_timeout(3)  # as `timeout: 3s` on the step; the node's own timeout stays 60s
    slack.always(WEBHOOK_PATH, Reply(502, ""))
    started = time.monotonic()
    ran = await run("slack/notify", NOTIFY)
    assert time.monotonic() - started < 2.7  # before the agent's own deadline for the step
    assert ran.error is not None
    assert "gave up after" in ran.error
    assert re.search(
        r"last: HTTP 502 Bad Gateway; no time left for another attempt \(time budget 2\.\ds, "
        r"what is left of the step's timeout\)$",
        ran.error,
    )


async def test_retry_after_longer_than_the_budget_fails_at_once(run: Run, slack: FakeSlack) -> None:
    slack.always(WEBHOOK_PATH, Reply(429, "rate_limited", headers={"Retry-After": "45"}))
    started = time.monotonic()
    ran = await run("slack/notify", {**NOTIFY, "timeout": 10})
    assert time.monotonic() - started < 2
    assert ran.error is not None
    assert re.fullmatch(
        r"Slack webhook \S+/services/\*\*\*: gave up after 1 attempt in 0\.\ds, last: HTTP 429 "
        r"rate limited; Slack asks to wait 45s; only \d+\.\ds is left of the time budget "
        r"\(10s, the node's timeout parameter\)",
        ran.error,
    )
    assert ran.retryable
    assert len(slack.to(WEBHOOK_PATH)) == 1


async def test_dropped_connection_then_success(run: Run, slack: FakeSlack) -> None:
    slack.script(WEBHOOK_PATH, Reply(drop=True))
    ran = await run("slack/notify", NOTIFY)
    assert ran.outputs["attempts"] == "2", ran.message
    assert (
        ": attempt 1: the connection broke: Server disconnected without sending a response.; "
        "retrying in " in ran.log
    )


async def test_no_answer_within_the_budget(run: Run, slack: FakeSlack) -> None:
    slack.script(WEBHOOK_PATH, Reply(hang=True))
    started = time.monotonic()
    ran = await run("slack/notify", {**NOTIFY, "timeout": 1.5})
    assert 1.5 <= time.monotonic() - started < 3.0
    assert ran.error is not None
    assert re.search(
        r": gave up after 1 attempt in 1\.\ds, last: no answer within 1\.\ds; no time left for "
        r"another attempt \(time budget 1\.5s, the node's timeout parameter\)$",
        ran.error,
    )


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_connection_refused_until_the_budget_is_spent(
    run: Run, slack: FakeSlack, refusing_port: int
) -> None:
    url = f"http://127.0.0.1:{refusing_port}/services/T0AB12CD3/B0EF45GH6/refusedRefused42"
    ran = await run("slack/notify", {**NOTIFY, "timeout": 1.5}, secrets={"SLACK_WEBHOOK": url})
    assert ran.error is not None
    assert re.fullmatch(
        rf"Slack webhook http://127\.0\.0\.1:{refusing_port}/services/\*\*\*: gave up after \d "
        r"attempts? in \d\.\ds, last: cannot connect: Connection refused; no time left for "
        r"another attempt \(time budget 1\.5s, the node's timeout parameter\)",
        ran.error,
    )
    ran.assert_hides(url, "refusedRefused42")


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), as a private CA's would be."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    return cert, key


@pytest.fixture
async def tls_slack(certificate: tuple[Path, Path]) -> AsyncIterator[FakeSlack]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = FakeSlack(tls=context)
    await server.start()
    yield server
    await server.close()


async def test_untrusted_certificate_fails_without_retry(
    run: Run, tls_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ran = await run("slack/notify", NOTIFY, secrets={"SLACK_WEBHOOK": tls_slack.webhook_url})
    assert ran.error == (
        f"Slack webhook {tls_slack.url}/services/***: TLS certificate not trusted: self-signed "
        "certificate"
    )
    assert not ran.retryable


async def test_private_ca_from_ssl_cert_file(
    run: Run,
    tls_slack: FakeSlack,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    ran = await run("slack/notify", NOTIFY, secrets={"SLACK_WEBHOOK": tls_slack.webhook_url})
    assert ran.error is None, ran.message
    assert tls_slack.to(WEBHOOK_PATH)[0].json() == {"text": "hi"}


# --- Web API ---------------------------------------------------------------------------------


async def post(run: Run, slack: FakeSlack, **with_: Any) -> Any:
    params = {"token": "${{ secrets.SLACK_BOT_TOKEN }}", "api_url": slack.api_url}
    return await run("slack/post", {**params, "channel": "C1", "text": "hi", **with_})


async def test_api_ratelimited_waits_what_retry_after_asks(run: Run, slack: FakeSlack) -> None:
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
    slack.script(POST, limited)
    ran = await post(run, slack)
    assert ran.outputs["attempts"] == "2", ran.message
    assert ran.outputs["ts"] == "1700000000.000100"
    (gap,) = gaps(slack, POST)
    assert 1.0 <= gap < 3.0
    assert ": attempt 1: HTTP 429 ratelimited; retrying in 1.0s as Retry-After asks\n" in ran.log
    ran.assert_hides(TOKEN)


async def test_api_transient_errors_are_retried(run: Run, slack: FakeSlack) -> None:
    slack.script(
        POST,
        Reply(200, {"ok": False, "error": "internal_error"}),
        Reply(503, "<html>Service Unavailable</html>"),
    )
    ran = await post(run, slack)
    assert ran.outputs["attempts"] == "3", ran.message
    assert ": attempt 1: error internal_error; retrying in " in ran.log
    assert ": attempt 2: HTTP 503 Service Unavailable; retrying in " in ran.log
    assert len(slack.messages) == 1


async def test_api_ratelimited_forever(run: Run, slack: FakeSlack) -> None:
    slack.always(POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))
    ran = await post(run, slack, timeout=2.2)
    assert ran.error is not None
    assert re.fullmatch(
        rf"Slack chat\.postMessage at {re.escape(slack.api_url)}: gave up after 2 attempts in "
        r"1\.\ds, last: HTTP 429 ratelimited; Slack asks to wait 1s; only [01]\.\ds is left of "
        r"the time budget \(2\.2s, the node's timeout parameter\)",
        ran.error,
    )
    ran.assert_hides(TOKEN)


# --- heartbeats while waiting ----------------------------------------------------------------


@pytest.fixture
def heartbeats(tmp_path: Path) -> Iterator[tuple[StepContext, list[tuple[float, Any]]]]:
    """A real step context whose heartbeats are recorded with their time."""
    beats: list[tuple[float, Any]] = []
    files = create_env_files(tmp_path / "files")
    masker = SecretMasker()
    log = StepLog(tmp_path / "step.log", masker)
    context = StepContext(
        workspace=tmp_path,
        env={**os.environ, **files.as_environment()},
        log=log,
        masker=masker,
        files=files,
        temp_dir=tmp_path,
        step=StepInfo(workflow="w", run_id="r", job="j", step_id="s", step_name="s"),
        heartbeat_fn=lambda *details: beats.append((time.monotonic(), details)),
    )
    yield context, beats
    log.close()


async def test_heartbeats_while_waiting_for_a_retry(
    slack: FakeSlack, heartbeats: tuple[StepContext, list[tuple[float, Any]]]
) -> None:
    context, beats = heartbeats
    slack.script(WEBHOOK_PATH, Reply(429, "rate_limited", headers={"Retry-After": "2"}))
    result = await SlackNotify().execute(
        {"webhook_url": slack.webhook_url, "message": "hi", "timeout": 10.0}, context
    )
    assert result.outputs["attempts"] == "2"
    first, second = (r.at for r in slack.to(WEBHOOK_PATH))
    during = [details for at, details in beats if first <= at <= second]
    assert len(during) >= 2
    assert during[0] == ("waiting 2.0s before attempt 2: HTTP 429 rate limited",)


# --- the pieces ------------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("30", now) == 30.0
    assert retry_after(" 1.5 ", now) == 1.5
    assert retry_after("Thu, 01 Jan 2026 12:00:20 GMT", now) == 20.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past
    assert retry_after("-3", now) == 0.0
    for unusable in (None, "", "soon", "nan", "inf"):
        assert retry_after(unusable, now) is None


def test_backoff_doubles_up_to_30s_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (12, 30.0)]:
        for _ in range(20):
            assert ceiling / 2 <= backoff(attempt, rng) <= ceiling


def test_urls_are_shown_without_their_secret_part() -> None:
    cases = {
        "https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com/services/***",
        "https://hooks.slack.com/triggers/T0/1/secret": "https://hooks.slack.com/triggers/***",
        "https://proxy.example/onlysecret": "https://proxy.example/***",
        "https://user:pw@proxy.example:8443/hook/x?key=k": "https://proxy.example:8443/hook/***",
        "http://[::1]:8080/services/T/B/X": "http://[::1]:8080/services/***",
    }
    for url, shown in cases.items():
        assert redacted_url(urlsplit(url)) == shown


def test_step_time_left_reads_the_activity_deadline() -> None:
    env = ActivityEnvironment()
    started = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    env.info = dataclasses.replace(
        env.info, start_to_close_timeout=timedelta(seconds=60), started_time=started
    )
    # 60s, 15s gone, and 2s kept to fail before the agent's own deadline does.
    assert env.run(step_time_left, started + timedelta(seconds=15)) == 43.0
    # The server's clock is ahead of ours, or far behind: count the whole timeout from now.
    assert env.run(step_time_left, started - timedelta(seconds=5)) == 58.0
    assert env.run(step_time_left, started + timedelta(hours=1)) == 58.0
    env.info = dataclasses.replace(env.info, start_to_close_timeout=None)
    assert env.run(step_time_left) is None
    assert step_time_left() is None  # not in an activity


async def test_answer_that_cannot_be_decoded_fails_without_retry(
    run: Run, slack: FakeSlack
) -> None:
    slack.script(WEBHOOK_PATH, Reply(200, "not gzip", headers={"Content-Encoding": "gzip"}))
    ran = await run("slack/notify", NOTIFY)
    assert ran.error == (
        f"Slack webhook {slack.url}/services/***: DecodingError: Error -3 while decompressing "
        "data: incorrect header check"
    )
    assert not ran.retryable
    assert len(slack.to(WEBHOOK_PATH)) == 1


async def test_retry_after_on_a_503_is_honoured(run: Run, slack: FakeSlack) -> None:
    slack.script(POST, Reply(503, "", headers={"Retry-After": "1"}))
    ran = await post(run, slack)
    assert ran.outputs["attempts"] == "2", ran.message
    (gap,) = gaps(slack, POST)
    assert 1.0 <= gap < 3.0
    assert ": attempt 1: HTTP 503 Service Unavailable; retrying in 1.0s as Retry-After asks\n" in (
        ran.log
    )
