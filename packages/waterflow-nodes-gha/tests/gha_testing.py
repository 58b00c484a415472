"""Helpers for the gha node's tests: action folders, running a step through execute_node
(main or post phase), and a loopback server speaking GitHub's API for fetching actions."""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import tarfile
import textwrap
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from waterflow.dsl.model import Pos, StepSpec
from waterflow.engine import converter
from waterflow.engine.activities import Activities
from waterflow.engine.executor import AgentRuntime
from waterflow.engine.types import StepInput, StepOutcome
from waterflow.testing import TestRegistry

STEP_TIMEOUT = datetime.timedelta(minutes=5)


def write_action(directory: Path, action_yml: str, files: Mapping[str, str] | None = None) -> Path:
    """An action folder: `action.yml` and other files by relative path (dedented)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "action.yml").write_text(textwrap.dedent(action_yml), encoding="utf-8")
    for name, text in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


@attrs.frozen
class StepRun:
    """A step that ran through execute_node: its outcome (also when it failed) and its log."""

    outcome: StepOutcome
    log: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def lines(self) -> list[str]:
        """The log's lines without timestamps: `out text`, `err text`, `wf text`."""
        result = []
        for line in self.log.splitlines():
            rest = line.split(" ", 1)[1] if " " in line else line
            result.append("wf " + rest[4:] if rest.startswith("wf  ") else rest)
        return result

    def stdout(self) -> list[str]:
        return [line[4:] for line in self.lines if line.startswith("out ")]


async def run_step(
    uses: str,
    with_: Mapping[str, Any] | None = None,
    *,
    registry: TestRegistry,
    workspace: Path,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    phase: str = "main",
    state: Mapping[str, str] | None = None,
    job_status: str = "success",
    key: str = "test",
    environment: ActivityEnvironment | None = None,
) -> StepRun:
    """What `waterflow.testing.run_node` does, with the phase, state and job status of a post
    step, and returning the outcome and log also when the step fails."""
    logs = workspace.parent / "waterflow-test-logs"
    if phase == "post":
        key = f"post-{key}"  # as the job workflow names post steps
    runtime = AgentRuntime(
        agent_id="test-agent",
        registry=registry,
        secrets=lambda: dict(secrets or {}),
        log_dir=logs,
    )
    activities = Activities(runtime, private_queue="test", work_dir=workspace.parent)
    step = StepSpec(
        index=0,
        key=key,
        id=key,
        name=None,
        display_name=uses,
        uses=uses,
        with_=dict(with_ or {}),
        env=dict(env or {}),
        if_=None,
        continue_on_error=False,
        timeout=None,
        heartbeat_timeout=None,
        retry=None,
        pos=Pos(1, 1),
    )
    inp = StepInput(
        run_id="test-run",
        workflow="test",
        job="test",
        step=step,
        contexts={"job": {"status": job_status}} if phase == "post" else {},
        env_layers=[],
        job_env={},
        job_path=[],
        workspace=str(workspace),
        temp_dir=str(workspace.parent / "waterflow-test-temp"),
        phase=phase,
        state=dict(state or {}),
    )
    environment = environment or ActivityEnvironment()
    # ActivityEnvironment's default start-to-close timeout is one second, which the agent
    # would enforce as the step's deadline.
    environment.info = dataclasses.replace(
        environment.info,
        start_to_close_timeout=STEP_TIMEOUT,
        schedule_to_close_timeout=STEP_TIMEOUT,
    )
    error: str | None = None
    try:
        outcome: StepOutcome = await environment.run(activities.execute_node, inp)
    except ApplicationError as exc:
        error = exc.message.splitlines()[0]
        details = exc.details
        outcome = (
            converter.structure(details[0], StepOutcome) if details else StepOutcome(error=error)
        )
    log = Path(outcome.log_path).read_text(encoding="utf-8") if outcome.log_path else ""
    return StepRun(outcome=outcome, log=log, error=error)


# --- a loopback server that speaks GitHub's API for actions -----------------------------------


def make_tarball(source: Path, top: str) -> bytes:
    """A tarball as GitHub serves it: everything under one top-level folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=top)
    return buffer.getvalue()


class FakeGitHub:
    """GitHub's REST endpoints that fetching an action uses, on 127.0.0.1:

    - `GET /repos/{owner}/{repo}/commits/{ref}` with `Accept: application/vnd.github.sha`:
      the commit SHA as text (404 for an unknown ref);
    - `GET /repos/{owner}/{repo}/tarball/{ref}`: 302 to `/_codeload/{owner}/{repo}/{sha}`,
      which serves the tarball with one top-level folder `{owner}-{repo}-{sha[:7]}/`.
    Every request is recorded (path and Authorization header).
    """

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], dict[str, str]] = {}
        self.tarballs: dict[tuple[str, str, str], bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.tarball_gate: threading.Event | None = None
        """When set, tarballs are served only once the event is set."""
        self.commit_lookups = threading.Semaphore(0)
        """Released once per ref lookup request."""
        self.required_token: str | None = None
        """When set, requests without `Authorization: Bearer <it>` get 401."""
        self.answers: dict[str, tuple[int, bytes]] = {}
        """Fixed answers (status, body) by request path, before anything else."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server.lock:
                    server.requests.append((self.path, self.headers.get("Authorization")))
                if "/commits/" in self.path:
                    server.commit_lookups.release()
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, owner: str, repo: str, ref: str, sha: str, source: Path) -> None:
        self.repos.setdefault((owner, repo), {})[ref] = sha
        self.repos[(owner, repo)][sha] = sha
        self.tarballs[(owner, repo, sha)] = make_tarball(source, f"{owner}-{repo}-{sha[:7]}")

    def paths(self, kind: str) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests if f"/{kind}/" in p]

    def add_tarball(self, owner: str, repo: str, ref: str, sha: str, body: bytes) -> None:
        """Serve `body` as the tarball of `sha`, whatever it holds."""
        self.repos.setdefault((owner, repo), {})[ref] = sha
        self.repos[(owner, repo)][sha] = sha
        self.tarballs[(owner, repo, sha)] = body

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        if self.required_token is not None and (
            request.headers.get("Authorization") != f"Bearer {self.required_token}"
        ):
            self._send(request, 401, b'{"message": "Bad credentials"}')
            return
        if request.path in self.answers:
            status, body = self.answers[request.path]
            self._send(request, status, body)
            return
        parts = [urllib.parse.unquote(p) for p in request.path.split("?")[0].split("/")[1:]]
        if len(parts) >= 5 and parts[0] == "repos" and parts[3] in ("commits", "tarball"):
            owner, repo, kind, ref = parts[1], parts[2], parts[3], "/".join(parts[4:])
            sha = self.repos.get((owner, repo), {}).get(ref)
            if sha is None:
                self._send(request, 404, json.dumps({"message": "Not Found"}).encode())
            elif kind == "commits":
                if request.headers.get("Accept") != "application/vnd.github.sha":
                    self._send(request, 415, b"want application/vnd.github.sha")
                else:
                    self._send(request, 200, sha.encode(), "application/vnd.github.sha")
            else:
                request.send_response(302)
                request.send_header("Location", f"/_codeload/{owner}/{repo}/{sha}")
                request.send_header("Content-Length", "0")
                request.end_headers()
        elif len(parts) == 4 and parts[0] == "_codeload":
            if self.tarball_gate is not None:
                self.tarball_gate.wait(30)
            body = self.tarballs.get((parts[1], parts[2], parts[3]))
            if body is None:
                self._send(request, 404, b"")
            else:
                self._send(request, 200, body, "application/x-gzip")
        else:
            self._send(request, 404, b"")

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "text/plain"
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
