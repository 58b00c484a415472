"""A stand-in for Slack's servers: a real HTTP/1.1 server on loopback that answers as Slack's
incoming webhooks and Web API do, and records every request it gets.

Slack itself cannot be reached from here. The server keeps a small model of a workspace (one
bot token, channels, one webhook, posted messages) so that most answers come from what was
sent, as Slack's would; `script` and `always` make it answer otherwise (rate limits, server
errors, any error code) for one path.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import json
import ssl
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import attrs

WEBHOOK_PATH = "/services/T0AB12CD3/B0EF45GH6/aZ9xQ2wLp0Rt7yUv3bNm8KcS"
TOKEN = "xoxb-1234567890-0987654321-F4keT0kenF0rTe5t1ng"
# Channels the workspace has, by ID: name and whether the bot is a member.
CHANNELS = {"C1": ("general", True), "C2": ("private-ops", False)}
FIRST_TS = 1700000000_000100


@attrs.frozen
class Request:
    """One request as the server read it; `at` is `time.monotonic()` when it was complete."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.frozen
class Reply:
    """A scripted answer. A dict body is sent as JSON; `drop` closes the connection without
    answering; `hang` never answers (until the server closes)."""

    status: int = 200
    body: str | dict[str, Any] = ""
    headers: dict[str, str] = attrs.field(factory=dict)
    drop: bool = False
    hang: bool = False


def _encode(status: int, body: str | dict[str, Any], headers: dict[str, str]) -> bytes:
    if isinstance(body, dict):
        payload = json.dumps(body).encode()
        content_type = "application/json; charset=utf-8"
    else:
        payload = body.encode()
        content_type = "text/html"
    fields = {
        "Date": email.utils.formatdate(usegmt=True),
        "Content-Type": content_type,
        "Content-Length": str(len(payload)),
        "Connection": "keep-alive",
        **headers,
    }
    head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return head.encode("latin-1") + b"\r\n" + payload


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return body
        body += await reader.readexactly(size)
        await reader.readline()


class FakeSlack:
    """Slack's webhook (`POST /services/...`) and Web API (`POST /api/chat.*`) on loopback."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self.messages: dict[str, dict[str, Any]] = {}  # by ts
        self._tls = tls
        self._scripted: dict[str, deque[Reply]] = {}
        self._always: dict[str, Reply] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._next_ts = FIRST_TS
        self._closing = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with these, in order; then as Slack would."""
        self._scripted.setdefault(path, deque()).extend(replies)

    def always(self, path: str, reply: Reply) -> None:
        """Answer every request to `path` with this."""
        self._always[path] = reply

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # --- HTTP/1.1 ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
                headers: dict[str, str] = {}
                while (field := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = field.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await _read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, urlsplit(target).path, headers, body, time.monotonic())
                self.requests.append(request)
                reply = self._answer(request)
                if reply.drop:
                    return
                if reply.hang:
                    await self._closing.wait()
                    return
                writer.write(_encode(reply.status, reply.body, reply.headers))
                await writer.drain()
                if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    def _answer(self, request: Request) -> Reply:
        queue = self._scripted.get(request.path)
        if queue:
            return queue.popleft()
        if request.path in self._always:
            return self._always[request.path]
        if request.path.startswith("/api/"):
            return self._web_api(request, request.path.removeprefix("/api/"))
        return self._webhook(request)

    # --- incoming webhooks: plain-text answers -----------------------------------------------

    def _webhook(self, request: Request) -> Reply:
        if request.path != WEBHOOK_PATH:
            return Reply(404, "no_service")
        if request.method != "POST":
            return Reply(405, "invalid_method")
        try:
            payload = request.json()
        except ValueError:
            return Reply(400, "invalid_payload")
        if not isinstance(payload, dict):
            return Reply(400, "invalid_payload")
        if not any(payload.get(key) for key in ("text", "blocks", "attachments")):
            return Reply(400, "no_text")
        blocks = payload.get("blocks")
        if blocks is not None and not (
            isinstance(blocks, list) and all(isinstance(b, dict) and "type" in b for b in blocks)
        ):
            return Reply(400, "invalid_blocks")
        return Reply(200, "ok")

    # --- Web API: HTTP 200 with {"ok": ...} ---------------------------------------------------

    def _web_api(self, request: Request, method: str) -> Reply:
        if method not in ("chat.postMessage", "chat.update"):
            return Reply(200, {"ok": False, "error": "unknown_method"})
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return Reply(200, {"ok": False, "error": "not_authed"})
        if authorization.removeprefix("Bearer ") != TOKEN:
            return Reply(200, {"ok": False, "error": "invalid_auth"})
        try:
            args = request.json()
        except ValueError:
            return Reply(200, {"ok": False, "error": "invalid_json"})
        answer: dict[str, Any] = {}
        if "charset" not in request.headers.get("content-type", ""):
            answer["warning"] = "missing_charset"
        channel = self._channel(str(args.get("channel", "")), by_name=method != "chat.update")
        if channel is None:
            return Reply(200, {"ok": False, "error": "channel_not_found", **answer})
        if not CHANNELS[channel][1]:
            return Reply(200, {"ok": False, "error": "not_in_channel", **answer})
        if not args.get("text") and not args.get("blocks"):
            return Reply(200, {"ok": False, "error": "no_text", **answer})
        blocks = args.get("blocks")
        if blocks is not None:
            for index, block in enumerate(blocks):
                if not isinstance(block, dict) or "type" not in block:
                    problem = f"[ERROR] missing required field: type [json-pointer:/blocks/{index}]"
                    return Reply(
                        200,
                        {
                            "ok": False,
                            "error": "invalid_blocks",
                            "response_metadata": {"messages": [problem]},
                        },
                    )
        if method == "chat.update":
            ts = str(args.get("ts", ""))
            message = self.messages.get(ts)
            if message is None or message["channel"] != channel:
                return Reply(200, {"ok": False, "error": "message_not_found", **answer})
            message.update({"text": args.get("text", ""), "blocks": blocks})
            return Reply(
                200, {"ok": True, "channel": channel, "ts": ts, "text": message["text"], **answer}
            )
        number, self._next_ts = self._next_ts, self._next_ts + 1
        ts = f"{number // 1_000_000}.{number % 1_000_000:06d}"
        message = {"type": "message", "channel": channel, "ts": ts, "text": args.get("text", "")}
        if blocks is not None:
            message["blocks"] = blocks
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages[ts] = message
        shown = {k: v for k, v in message.items() if k != "channel"}
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": shown, **answer})

    @staticmethod
    def _channel(value: str, *, by_name: bool) -> str | None:
        if value in CHANNELS:
            return value
        if by_name:
            for channel_id, (name, _) in CHANNELS.items():
                if value.lstrip("#") == name:
                    return channel_id
        return None
