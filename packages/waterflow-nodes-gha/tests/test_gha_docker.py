"""Docker container actions on a real engine (DOCKER_HOST, or .ci/docker-up's env file):
a Dockerfile action FROM alpine and a docker://image step, with the workspace and the env
files mounted as GitHub's runner mounts them."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from gha_testing import run_step, write_action
from temporalio.testing import ActivityEnvironment

from waterflow.testing import TestRegistry

DOCKER_ACTION = """
name: in a container
inputs:
  who: {required: true}
outputs:
  greeting: {}
runs:
  using: docker
  image: Dockerfile
  args: ["${{ inputs.who }}", "second arg"]
  env:
    FROM_META: meta-${{ inputs.who }}
  pre-entrypoint: /pre.sh
  post-entrypoint: /post.sh
"""

DOCKERFILE = """
FROM alpine:latest
COPY entrypoint.sh pre.sh post.sh /
ENTRYPOINT ["/entrypoint.sh"]
"""

ENTRYPOINT = """#!/bin/sh
set -e
echo "args: $1|$2"
echo "pwd: $(pwd) home: $HOME"
echo "env: $FROM_META $INPUT_WHO $CI $GITHUB_WORKSPACE $STEP_LEVEL"
echo "greeting=hello $INPUT_WHO" >> "$GITHUB_OUTPUT"
echo "FROM_CONTAINER=yes" >> "$GITHUB_ENV"
echo "main_state=from main" >> "$GITHUB_STATE"
echo "written in the container" > /github/workspace/from-container.txt
test -f "$GITHUB_EVENT_PATH"
echo "::set-output name=via-command::yes"
echo "::warning file=Dockerfile,line=1::a warning from the container"
test -z "${AGENT_ONLY:-}" || { echo "agent variable leaked"; exit 1; }
"""

PRE = """#!/bin/sh
echo "pre: $INPUT_WHO"
echo "pre_state=from pre" >> "$GITHUB_STATE"
"""

POST = """#!/bin/sh
echo "post: $STATE_main_state / $STATE_pre_state / $INPUT_WHO"
"""


def docker_action(directory: Path) -> Path:
    write_action(
        directory,
        DOCKER_ACTION,
        {"Dockerfile": DOCKERFILE, "entrypoint.sh": ENTRYPOINT, "pre.sh": PRE, "post.sh": POST},
    )
    for script in ("entrypoint.sh", "pre.sh", "post.sh"):
        (directory / script).chmod(0o755)
    return directory


async def test_a_dockerfile_action_with_pre_and_post_entrypoints(
    registry: TestRegistry,
    workspace: Path,
    docker_env: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_ONLY", "the agent's own variable")
    docker_action(workspace / "container")
    main = await run_step(
        "./container",
        {"who": "Ada"},
        registry=registry,
        workspace=workspace,
        env={"STEP_LEVEL": "from-step-env"},
    )
    assert main.ok, main.error
    assert main.outcome.outputs == {"greeting": "hello Ada", "via-command": "yes"}
    assert main.outcome.env == {"FROM_CONTAINER": "yes"}
    assert main.outcome.state == {"pre_state": "from pre", "main_state": "from main"}
    assert main.outcome.post_condition == "always()"
    assert (workspace / "from-container.txt").read_text() == "written in the container\n"
    out = main.stdout()
    assert out.index("pre: Ada") < out.index("args: Ada|second arg")
    assert "pwd: /github/workspace home: /github/home" in out
    assert "env: meta-Ada Ada true /github/workspace from-step-env" in out
    assert "warning Dockerfile:1: a warning from the container" in out

    post = await run_step(
        "./container",
        {"who": "Ada"},
        registry=registry,
        workspace=workspace,
        phase="post",
        state=main.outcome.state,
    )
    assert post.ok, post.error
    assert "post: from main / from pre / Ada" in post.stdout()


async def test_a_docker_image_step_with_args_and_entrypoint(
    registry: TestRegistry, workspace: Path, docker_env: str
) -> None:
    (workspace / "hello.txt").write_text("from the workspace\n")
    run = await run_step(
        "docker://alpine:latest",
        {"entrypoint": "/bin/sh", "args": "-c 'cat hello.txt; echo \"x=1\" >> $GITHUB_OUTPUT'"},
        registry=registry,
        workspace=workspace,
    )
    assert run.ok, run.error
    assert run.stdout() == ["from the workspace"]
    assert run.outcome.outputs == {"x": "1"}
    assert "wf image alpine:latest is present on the engine" in run.lines


async def test_a_failing_container_fails_the_step(
    registry: TestRegistry, workspace: Path, docker_env: str
) -> None:
    run = await run_step(
        "docker://alpine:latest",
        {"entrypoint": "/bin/sh", "args": "-c 'exit 7'"},
        registry=registry,
        workspace=workspace,
    )
    assert run.error == "step 'docker://alpine:latest' failed: main container exited with code 7"


async def test_a_failing_build_and_a_missing_image(
    registry: TestRegistry, workspace: Path, docker_env: str
) -> None:
    write_action(
        workspace / "broken",
        "runs: {using: docker, image: Dockerfile}",
        {"Dockerfile": "FROM alpine:latest\nRUN exit 3\n"},
    )
    run = await run_step("./broken", registry=registry, workspace=workspace)
    assert run.error is not None
    assert re.fullmatch(r"Docker action \./broken: docker build failed \(exit \d+\)", run.error)
    missing = await run_step(
        "docker://127.0.0.1:9/nothing:here", registry=registry, workspace=workspace
    )
    assert missing.error == (
        "Docker action docker://127.0.0.1:9/nothing:here: docker pull 127.0.0.1:9/nothing:here "
        "failed (exit 1)"
    )
    write_action(workspace / "nofile", "runs: {using: docker, image: docker/Dockerfile}")
    nofile = await run_step("./nofile", registry=registry, workspace=workspace)
    assert nofile.error == (
        f"Docker action ./nofile: runs.image '{workspace / 'nofile' / 'docker' / 'Dockerfile'}' "
        "does not exist"
    )


async def test_a_cancelled_docker_step_removes_its_container(
    registry: TestRegistry, workspace: Path, docker_env: str
) -> None:
    environment = ActivityEnvironment()
    step = asyncio.ensure_future(
        run_step(
            "docker://alpine:latest",
            {"entrypoint": "/bin/sh", "args": "-c 'echo started; exec sleep 600'"},
            registry=registry,
            workspace=workspace,
            environment=environment,
        )
    )
    log = workspace.parent / "waterflow-test-logs" / "test-run" / "test" / "01-test.attempt1.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and " out started" in log.read_text()):
        assert time.monotonic() < deadline, "the container did not start within 60s"
        assert not step.done(), step.result()
        await asyncio.sleep(0.05)
    started = time.monotonic()
    environment.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    assert time.monotonic() - started < 8  # the container goes at once, not after SIGTERM's grace
    assert "step cancelled: container waterflow-gha-" in log.read_text()
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=waterflow-gha=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on PATH")
async def test_no_engine_is_one_clear_line(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    run = await run_step("docker://alpine:latest", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith(
        f"Docker action docker://alpine:latest: no Docker engine answers at "
        f"unix://{tmp_path}/no-engine.sock: "
    )


async def test_no_docker_cli_is_one_clear_line(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_DOCKER", "/nonexistent/docker")
    run = await run_step("docker://alpine:latest", registry=registry, workspace=workspace)
    assert run.error == (
        "Docker action docker://alpine:latest: the docker CLI '/nonexistent/docker' is not on "
        "PATH (install it, or set WATERFLOW_GHA_DOCKER)"
    )


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI on PATH")
async def test_bad_args_are_refused_before_the_engine_is_asked(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    run = await run_step(
        "docker://alpine:latest", {"args": "'unbalanced"}, registry=registry, workspace=workspace
    )
    assert run.error == 'with: args "\'unbalanced": No closing quotation'
    write_action(
        workspace / "a",
        """
        runs:
          using: docker
          image: Dockerfile
          args: ["${{ inputs.( }}"]
        """,
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("action ./a: ")
