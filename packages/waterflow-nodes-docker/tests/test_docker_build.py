"""docker/build against a real engine."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from docker_testing import DockerStep, wait_until, write

from waterflow import NodeError

DOCKERFILE = """\
FROM alpine
ARG GREETING=unset
RUN echo "building with $GREETING" && echo "a warning" >&2
RUN echo "$GREETING" > /greeting
CMD ["cat", "/greeting"]
"""


def unique(name: str) -> str:
    return f"waterflow-test/{name}:{uuid.uuid4().hex[:8]}"


async def test_build_with_args_labels_and_tags(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": DOCKERFILE})
    first, second = unique("app"), unique("app")
    result = await step.run(
        "docker/build",
        tags=f"{first}\n{second}",
        build_args={"GREETING": "hello from the test"},
        labels={"org.example.team": "waterflow", "org.example.build": 42},
    )
    image_id = result.outputs["image-id"]
    assert image_id.startswith("sha256:")
    assert result.outputs["tags"] == f"{first},{second}"
    image = step.env.api.inspect_image(image_id)
    assert sorted(image["RepoTags"]) == sorted([first, second])
    labels = image["Config"]["Labels"]
    assert labels["org.example.team"] == "waterflow"
    assert labels["org.example.build"] == "42"
    # The build-arg reached the RUN instructions: run the image and read it back.
    container = step.env.api.create_container(image_id)
    try:
        step.env.api.start(container)
        assert step.env.api.wait(container)["StatusCode"] == 0
        assert step.env.api.logs(container) == b"hello from the test\n"
    finally:
        step.env.api.remove_container(container, force=True)


async def test_build_log_streams_into_the_step_log(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": DOCKERFILE})
    await step.run("docker/build", build_args={"GREETING": "hi"}, no_cache=True)
    out = step.lines("out")
    assert 'Step 3/5 : RUN echo "building with $GREETING" && echo "a warning" >&2' in out
    assert "building with hi" in out
    assert step.lines("err") == ["a warning"]  # the RUN's stderr, without the engine's colour
    assert step.lines("wf")[0] == (
        f"docker build . -f Dockerfile --build-arg GREETING --no-cache (engine {step.env.host})"
    )


async def test_build_context_and_dockerfile_elsewhere(step: DockerStep) -> None:
    write(
        step.workspace,
        {
            "app/payload.txt": "payload\n",
            "app/.dockerignore": "secret.txt\n",
            "app/secret.txt": "do not send\n",
            "docker/app.Dockerfile": (
                "FROM alpine AS base\nCOPY . /src\nRUN ls /src > /listing\n"
                "FROM base AS final\nRUN false\n"
            ),
        },
    )
    result = await step.run(
        "docker/build", context="app", dockerfile="docker/app.Dockerfile", target="base"
    )
    image_id = result.outputs["image-id"]
    assert result.outputs["tags"] == ""
    container = step.env.api.create_container(image_id, command=["cat", "/listing"])
    try:
        step.env.api.start(container)
        step.env.api.wait(container)
        listing = step.env.api.logs(container).decode().split()
    finally:
        step.env.api.remove_container(container, force=True)
    # .dockerignore kept secret.txt out; the stage after the target did not run.
    assert sorted(listing) == ["payload.txt"]


async def test_failing_instruction_names_the_step(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": "FROM alpine\nRUN echo fine\nRUN exit 3\n"})
    with pytest.raises(NodeError) as info:
        await step.run("docker/build")
    assert info.value.message == (
        "docker build failed at step 3/3 (RUN exit 3): "
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    )
    assert info.value.retryable  # like a failing script: the step's retry policy applies


async def test_unknown_instruction(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": "FROM alpine\nFROBNICATE now\n"})
    with pytest.raises(NodeError) as info:
        await step.run("docker/build")
    assert info.value.message.startswith("docker build failed: ")
    assert "unknown instruction: FROBNICATE" in info.value.message
    assert "\n" not in info.value.message
    assert info.value.retryable is False


async def test_missing_dockerfile(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/build")
    assert info.value.message == (
        "no Dockerfile in the workspace: add one, or name it with the dockerfile parameter"
    )
    assert info.value.retryable is False


async def test_missing_named_dockerfile_and_context(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/build", dockerfile="build/Dockerfile.prod")
    assert (
        info.value.message == "dockerfile 'build/Dockerfile.prod' does not exist in the workspace"
    )
    with pytest.raises(NodeError) as info:
        await step.run("docker/build", context="nowhere")
    assert info.value.message == "context 'nowhere' does not exist in the workspace"
    assert info.value.retryable is False


async def test_bad_tag(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": "FROM alpine\n"})
    with pytest.raises(NodeError) as info:
        await step.run("docker/build", tags="waterflow-test/ok:1, Not A Valid:Tag")
    assert info.value.message == (
        "tags: 'Not A Valid:Tag' is not an image name: use [registry/]name[:tag], the name in "
        "lower case (e.g. 127.0.0.1:5000/team/app:1.0)"
    )
    assert info.value.retryable is False


async def test_cancel_stops_the_running_instruction(step: DockerStep) -> None:
    write(step.workspace, {"Dockerfile": "FROM alpine\nRUN echo building; sleep 300\n"})
    task = asyncio.create_task(step.run("docker/build", no_cache=True))
    await wait_until(lambda: "building" in step.lines() or task.done(), "the RUN has started")
    running = [line.split()[-1] for line in step.lines() if line.startswith(" ---> Running in ")]
    assert len(running) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert step.env.api.containers(all=True, filters={"id": running[0]}) == []
    assert step.lines("wf")[-1] == (
        f"build cancelled: its running instruction's container {running[0]} removed"
    )


async def test_pull_newer_base_images(step: DockerStep) -> None:
    registry = step.env.registry()
    base = f"{registry}/waterflow-test/base-{uuid.uuid4().hex[:8]}"
    step.env.api.tag("waterflow-busybox:latest", base, "1")
    for chunk in step.env.api.push(base, tag="1", stream=True, decode=True):
        assert "error" not in chunk, chunk
    write(step.workspace, {"Dockerfile": f"FROM {base}:1\nRUN echo on the pulled base\n"})
    assert (await step.run("docker/build", pull=True)).outputs["image-id"]
    assert f"Status: Image is up to date for {base}:1" in step.lines()


async def test_context_and_dockerfile_of_the_wrong_kind(step: DockerStep) -> None:
    write(step.workspace, {"notes.txt": "a file", "images/app/Dockerfile": "FROM alpine\n"})
    with pytest.raises(NodeError) as info:
        await step.run("docker/build", context="notes.txt")
    assert info.value.message == "context 'notes.txt' is not a directory in the workspace"
    with pytest.raises(NodeError) as info:
        await step.run("docker/build", dockerfile="images/app")
    assert info.value.message == "dockerfile 'images/app' is not a file in the workspace"
    assert info.value.retryable is False
