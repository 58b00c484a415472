"""Fetching repository actions from a loopback server that speaks GitHub's API: the cache per
commit, offline mode, concurrent fetches, local repositories, the agent's policy, and
actions/checkout of the workspace."""

from __future__ import annotations

import asyncio
import io
import subprocess
import tarfile
import threading
from pathlib import Path

import filelock
import pytest
from gha_testing import FakeGitHub, run_step, write_action

from waterflow.testing import TestRegistry
from waterflow_nodes_gha import _fetch

SHA = "a" * 40
SHA2 = "b" * 40

GREETER = """
name: greeter
inputs: {who: {default: world}}
outputs: {greeting: {}}
runs: {using: node20, main: dist/index.js}
"""
GREETER_JS = """
const fs = require('fs');
const env = process.env;
const from = `${env.GITHUB_ACTION_REPOSITORY}@${env.GITHUB_ACTION_REF}`;
fs.appendFileSync(env.GITHUB_OUTPUT, `greeting=hello ${env.INPUT_WHO} from ${from}\\n`);
console.log(`token: ${process.env.GITHUB_TOKEN}`);
"""


@pytest.fixture
def greeter(tmp_path: Path, github: FakeGitHub) -> Path:
    source = write_action(tmp_path / "greeter-src", GREETER, {"dist/index.js": GREETER_JS})
    write_action(
        source / "sub" / "tool",
        "runs: {using: composite, steps: [{run: echo sub-action ran, shell: bash}]}",
    )
    github.add("octo", "greeter", "v1", SHA, source)
    return source


async def test_fetch_then_cache_hit(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    gha_settings: Path,
) -> None:
    first = await run_step(
        "octo/greeter@v1", {"who": "Ada"}, registry=registry, workspace=workspace
    )
    assert first.ok, first.error
    assert first.outcome.outputs == {"greeting": "hello Ada from octo/greeter@v1"}
    assert github.paths("commits") == ["/repos/octo/greeter/commits/v1"]
    assert github.paths("tarball") == [f"/repos/octo/greeter/tarball/{SHA}"]
    assert f"wf octo/greeter@v1 ({SHA}) downloaded into the action cache" in first.lines
    assert (gha_settings / "repos" / "octo" / "greeter" / SHA / "action.yml").is_file()

    second = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert second.ok, second.error
    assert len(github.paths("commits")) == 2  # a ref is resolved each time, as on GitHub
    assert len(github.paths("tarball")) == 1  # the commit's files come from the cache
    assert f"wf octo/greeter@v1 ({SHA}) from the action cache" in second.lines


async def test_a_pinned_sha_needs_no_ref_lookup(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, greeter: Path
) -> None:
    run = await run_step(f"octo/greeter@{SHA}", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert github.paths("commits") == []
    assert github.paths("tarball") == [f"/repos/octo/greeter/tarball/{SHA}"]


async def test_an_action_in_a_subfolder(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, greeter: Path
) -> None:
    run = await run_step("octo/greeter/sub/tool@v1", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.stdout() == ["sub-action ran"]


async def test_the_token_is_sent_masked_and_given_to_the_action(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_TOKEN", "ghp_loopbacktoken")
    run = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert {auth for _, auth in github.requests} == {"Bearer ghp_loopbacktoken"}
    assert run.stdout() == ["token: ***"]
    assert "ghp_loopbacktoken" not in run.log


async def test_offline_mode_uses_the_cache_only(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
    gha_settings: Path,
) -> None:
    online = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert online.ok, online.error
    requests = len(github.requests)
    monkeypatch.setenv("WATERFLOW_GHA_OFFLINE", "true")

    offline = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert offline.ok, offline.error
    assert offline.outcome.outputs["greeting"] == "hello world from octo/greeter@v1"
    unknown_ref = await run_step("octo/greeter@v2", registry=registry, workspace=workspace)
    uncached_sha = await run_step(f"octo/greeter@{SHA2}", registry=registry, workspace=workspace)
    assert len(github.requests) == requests  # nothing asked of the server
    assert unknown_ref.error == (
        "action octo/greeter@v2: ref 'v2' was never resolved on this agent and "
        "WATERFLOW_GHA_OFFLINE is set (run it once online, or pin a commit SHA)"
    )
    assert uncached_sha.error == (
        f"action octo/greeter@{SHA2}: commit {SHA2} is not in the action cache "
        f"'{gha_settings}' and WATERFLOW_GHA_OFFLINE is set"
    )


async def test_unknown_repositories_and_refs_are_one_line(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, greeter: Path
) -> None:
    run = await run_step("octo/greeter@nope", registry=registry, workspace=workspace)
    assert run.error == (
        f"action octo/greeter@nope: {github.url} knows no repository octo/greeter with ref "
        "'nope' (is it private? set WATERFLOW_GHA_TOKEN)"
    )


async def test_an_unreachable_server_is_a_retryable_one_line_error(
    registry: TestRegistry, workspace: Path
) -> None:
    run = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith(
        "action octo/greeter@v1: resolving the ref from http://127.0.0.1:9/api/v3 failed: "
    )


async def test_concurrent_steps_download_an_action_once(
    registry: TestRegistry, tmp_path: Path, github: FakeGitHub, greeter: Path
) -> None:
    steps = 4
    # The tarball is held back until every step has looked the ref up: all of them then
    # race for the same commit.
    gate = threading.Event()
    github.tarball_gate = gate

    def open_gate() -> None:
        for _ in range(steps):
            github.commit_lookups.acquire(timeout=30)
        gate.set()

    opener = threading.Thread(target=open_gate)
    opener.start()
    workspaces = [tmp_path / f"ws{i}" / "workspace" for i in range(steps)]
    for ws in workspaces:
        ws.mkdir(parents=True)
    runs = await asyncio.gather(
        *(run_step("octo/greeter@v1", registry=registry, workspace=ws) for ws in workspaces)
    )
    opener.join()
    assert [r.error for r in runs] == [None] * steps
    assert len(github.paths("tarball")) == 1
    assert sorted(r.log.count("downloaded into the action cache") for r in runs) == [0, 0, 0, 1]


async def test_a_local_repository_serves_the_action(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = write_action(tmp_path / "checkout-of-greeter", GREETER, {"dist/index.js": GREETER_JS})
    monkeypatch.setenv(
        "WATERFLOW_GHA_LOCAL_REPOSITORIES", f"other/thing@v9=/x, Octo/Greeter@v1={folder}"
    )
    run = await run_step("octo/greeter@v1", {"who": "Bo"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs == {"greeting": "hello Bo from octo/greeter@v1"}
    assert github.requests == []
    assert f"wf octo/greeter@v1 is served from the local folder {folder}" in run.lines


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "octo/greeter@v1",
            "WATERFLOW_GHA_LOCAL_REPOSITORIES: 'octo/greeter@v1' is not owner/repo@ref=DIR",
        ),
        ("octo@v1=/x", "WATERFLOW_GHA_LOCAL_REPOSITORIES: 'octo@v1=/x' is not owner/repo@ref=DIR"),
        (
            "octo/greeter@v1=/does/not/exist",
            "action octo/greeter@v1: local repository '/does/not/exist' is not a directory",
        ),
    ],
)
async def test_bad_local_repositories(
    registry: TestRegistry,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    message: str,
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_LOCAL_REPOSITORIES", setting)
    run = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert run.error == message


# --- policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "uses", "message"),
    [
        (
            {"WATERFLOW_GHA_ALLOWED_ACTIONS": "actions/*,myorg/*"},
            "octo/greeter@v1",
            "action 'octo/greeter@v1' is not allowed on this agent "
            "(WATERFLOW_GHA_ALLOWED_ACTIONS=actions/*,myorg/*)",
        ),
        (
            {"WATERFLOW_GHA_ALLOWED_ACTIONS": "octo/greeter@v2"},
            "octo/greeter@v1",
            "action 'octo/greeter@v1' is not allowed on this agent "
            "(WATERFLOW_GHA_ALLOWED_ACTIONS=octo/greeter@v2)",
        ),
        (
            {"WATERFLOW_GHA_ALLOWED_ACTIONS": "octo/*"},
            "docker://alpine:latest",
            "action 'docker://alpine:latest' is not allowed on this agent "
            "(WATERFLOW_GHA_ALLOWED_ACTIONS=octo/*)",
        ),
        (
            {"WATERFLOW_GHA_REQUIRE_SHA": "true"},
            "octo/greeter@v1",
            "action 'octo/greeter@v1' is not pinned and this agent requires it "
            "(WATERFLOW_GHA_REQUIRE_SHA=true): pin a full commit SHA: octo/greeter@<40-hex commit>",
        ),
        (
            {"WATERFLOW_GHA_REQUIRE_SHA": "true"},
            "docker://alpine:latest",
            "action 'docker://alpine:latest' is not pinned and this agent requires it "
            "(WATERFLOW_GHA_REQUIRE_SHA=true): pin the image by digest: "
            "docker://IMAGE@sha256:DIGEST",
        ),
        (
            {"WATERFLOW_GHA_REQUIRE_SHA": "maybe"},
            "octo/greeter@v1",
            "WATERFLOW_GHA_REQUIRE_SHA='maybe': expected true or false",
        ),
    ],
)
async def test_policy_refuses_before_anything_is_fetched(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
    uses: str,
    message: str,
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    run = await run_step(uses, registry=registry, workspace=workspace)
    assert run.error == message
    assert github.requests == []


async def test_policy_allows_matching_and_pinned_actions(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_ALLOWED_ACTIONS", "actions/*, octo/*")
    monkeypatch.setenv("WATERFLOW_GHA_REQUIRE_SHA", "true")
    run = await run_step(f"octo/greeter@{SHA}", registry=registry, workspace=workspace)
    assert run.ok, run.error
    write_action(workspace / "local", "runs: {using: composite, steps: [{uses: octo/greeter@v1}]}")
    nested = await run_step("./local", registry=registry, workspace=workspace)
    assert nested.error == (
        "step './local' failed: ./local step #1 failed: action 'octo/greeter@v1' is not pinned "
        "and this agent requires it (WATERFLOW_GHA_REQUIRE_SHA=true): pin a full commit SHA: "
        "octo/greeter@<40-hex commit>"
    )


async def test_a_workflow_env_cannot_loosen_the_policy(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_ALLOWED_ACTIONS", "actions/*")
    run = await run_step(
        "octo/greeter@v1",
        registry=registry,
        workspace=workspace,
        env={"WATERFLOW_GHA_ALLOWED_ACTIONS": "*"},
    )
    assert run.error is not None
    assert "is not allowed on this agent" in run.error


# --- actions/checkout -------------------------------------------------------------------------


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(workspace), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_checkout_of_the_workspace_repository_is_satisfied_by_the_workspace(
    registry: TestRegistry, workspace: Path, github: FakeGitHub
) -> None:
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "remote", "add", "origin", "https://example.invalid/octo/app.git")
    (workspace / "f").write_text("x")
    git(workspace, "add", "f")
    git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git(workspace, "rev-parse", "HEAD")
    run = await run_step("actions/checkout@v4", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert github.requests == []
    assert run.outcome.outputs == {"ref": "refs/heads/main", "commit": head}
    assert any("not checking out again" in line for line in run.lines)
    other = await run_step(
        "actions/checkout@v4", {"repository": "octo/other"}, registry=registry, workspace=workspace
    )
    assert other.error is not None  # another repository is really checked out: fetched here
    assert github.paths("commits") == ["/repos/actions/checkout/commits/v4"]


async def test_checkout_runs_the_real_action_outside_a_git_checkout(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    source = write_action(
        tmp_path / "checkout-src",
        "runs: {using: node20, main: main.js}",
        {"main.js": "console.log('the real checkout ran')"},
    )
    github.add("actions", "checkout", "v4", SHA, source)
    run = await run_step("actions/checkout@v4", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.stdout() == ["the real checkout ran"]


async def test_checkout_setting(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_CHECKOUT", "workspace")
    run = await run_step("actions/checkout@v4", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert github.requests == []
    monkeypatch.setenv("WATERFLOW_GHA_CHECKOUT", "sometimes")
    bad = await run_step("actions/checkout@v4", registry=registry, workspace=workspace)
    assert bad.error == (
        "WATERFLOW_GHA_CHECKOUT='sometimes': expected one of auto, workspace, action"
    )


async def test_the_post_stage_runs_the_commit_the_main_stage_ran(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    def version(n: int) -> Path:
        return write_action(
            tmp_path / f"v{n}",
            "runs: {using: node20, main: main.js, post: post.js}",
            {"main.js": f"console.log('main {n}')", "post.js": f"console.log('post {n}')"},
        )

    github.add("octo", "pp", "v1", SHA, version(1))
    main = await run_step("octo/pp@v1", registry=registry, workspace=workspace)
    assert main.ok, main.error
    assert main.stdout() == ["main 1"]
    assert main.outcome.state == {"waterflow_gha_commit": SHA}
    github.add("octo", "pp", "v1", SHA2, version(2))  # the tag moves meanwhile
    post = await run_step(
        "octo/pp@v1", registry=registry, workspace=workspace, phase="post", state=main.outcome.state
    )
    assert post.ok, post.error
    assert post.stdout() == ["post 1"]
    assert github.paths("tarball") == [f"/repos/octo/pp/tarball/{SHA}"]


async def test_nested_post_stages_run_with_the_commit_the_composite_main_ran(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    write_action(
        workspace / "js",
        "runs: {using: node20, main: m.js, post: p.js}",
        {"m.js": "console.log('main')", "p.js": "console.log('post')"},
    )
    github.add(
        "octo", "wrap", "v1", SHA,
        write_action(tmp_path / "v1", "runs: {using: composite, steps: [{uses: ./js}]}"),
    )  # fmt: skip
    main = await run_step("octo/wrap@v1", registry=registry, workspace=workspace)
    assert main.ok, main.error
    assert main.outcome.state["waterflow_gha_commit"] == SHA
    # The tag moves to a version that cannot even be loaded: the post step does not use it.
    github.add("octo", "wrap", "v1", SHA2, write_action(tmp_path / "v2", "runs: {using: nope}"))
    post = await run_step(
        "octo/wrap@v1",
        registry=registry,
        workspace=workspace,
        phase="post",
        state=main.outcome.state,
    )
    assert post.ok, post.error
    assert post.stdout() == ["post"]
    assert github.paths("tarball") == [f"/repos/octo/wrap/tarball/{SHA}"]


# --- what can go wrong while fetching ---------------------------------------------------------


async def test_http_failures_are_one_line(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.required_token = "right"
    monkeypatch.setenv("WATERFLOW_GHA_TOKEN", "wrong")
    denied = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert denied.error == (
        f"action octo/greeter@v1: resolving the ref refused with HTTP 401 by {github.url} "
        "(check WATERFLOW_GHA_TOKEN)"
    )
    github.required_token = None
    github.answers["/repos/octo/greeter/commits/v1"] = (500, b"oops")
    broken = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert broken.error == "action octo/greeter@v1: resolving the ref failed with HTTP 500"
    github.answers["/repos/octo/greeter/commits/v1"] = (200, b"<html>not a sha</html>")
    odd = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert odd.error == (
        f"action octo/greeter@v1: {github.url} answered the ref lookup with "
        "'<html>not a sha</html>', not a commit SHA"
    )
    github.answers = {f"/repos/octo/greeter/tarball/{SHA}": (502, b"")}
    gateway = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert gateway.error == "action octo/greeter@v1: downloading the tarball failed with HTTP 502"


async def test_bad_tarballs_are_one_line(
    registry: TestRegistry, workspace: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    two = tmp_path / "two"
    (two / "a").mkdir(parents=True)
    (two / "b").mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(two / "a", arcname="a")
        tar.add(two / "b", arcname="b")
    github.add_tarball("octo", "two", "v1", SHA, buffer.getvalue())
    run = await run_step("octo/two@v1", registry=registry, workspace=workspace)
    assert run.error == "action octo/two@v1: the tarball does not hold one top-level folder"
    github.add_tarball("octo", "corrupt", "v1", SHA, b"\x1f\x8bnot really gzip")
    run = await run_step("octo/corrupt@v1", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("action octo/corrupt@v1: cannot unpack its tarball: ")


async def test_a_damaged_ref_cache_entry_offline(
    registry: TestRegistry,
    workspace: Path,
    gha_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = gha_settings / "refs" / "octo" / "greeter" / "v1"
    entry.parent.mkdir(parents=True)
    entry.write_text("garbage\n")
    monkeypatch.setenv("WATERFLOW_GHA_OFFLINE", "true")
    run = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert run.error == f"action octo/greeter@v1: the action cache entry '{entry}' is damaged"


async def test_a_download_held_by_another_step_too_long(
    registry: TestRegistry,
    workspace: Path,
    github: FakeGitHub,
    greeter: Path,
    gha_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_fetch, "LOCK_TIMEOUT", 0.2)
    lock_path = gha_settings / "repos" / "octo" / "greeter" / f"{SHA}.lock"
    lock_path.parent.mkdir(parents=True)
    with filelock.FileLock(str(lock_path)):
        run = await run_step("octo/greeter@v1", registry=registry, workspace=workspace)
    assert run.error == (
        "action octo/greeter@v1: another step has been downloading it for more than 0.2s "
        f"(lock {lock_path})"
    )


async def test_an_action_path_may_not_leave_its_repository(
    registry: TestRegistry, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    outside = write_action(tmp_path / "outside", "runs: {using: node20, main: m.js}")
    (folder / "link").symlink_to(outside)
    monkeypatch.setenv("WATERFLOW_GHA_LOCAL_REPOSITORIES", f"octo/repo@v1={folder}")
    run = await run_step("octo/repo/link@v1", registry=registry, workspace=workspace)
    assert run.error == "action octo/repo/link@v1: path leaves the repository"
