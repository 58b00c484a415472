"""docker/run against a real engine: mounts, output, exit codes, cleanup, errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from docker_testing import BASE_IMAGE, DockerStep, wait_until, write

from waterflow import NodeError, NodeResult
from waterflow.envfiles import read_env_files


async def test_workspace_is_mounted_and_the_default_working_directory(step: DockerStep) -> None:
    write(step.workspace, {"input.txt": "from the host\n"})
    script = "pwd; cat input.txt; echo from the container > output.txt"
    result = await step.run("docker/run", image=BASE_IMAGE, args=["sh", "-c", script])
    assert result == NodeResult(outputs={"exit-code": "0"})
    assert step.lines() == ["/github/workspace", "from the host"]
    assert (step.workspace / "output.txt").read_text() == "from the container\n"
    assert step.containers() == []  # removed afterwards


async def test_exit_code_is_the_steps(step: DockerStep) -> None:
    result = await step.run("docker/run", image=BASE_IMAGE, command="sh -c 'echo bye; exit 7'")
    assert result == NodeResult(
        outputs={"exit-code": "7"}, exit_code=7, error="the container exited with code 7"
    )
    assert step.lines() == ["bye"]
    assert step.containers() == []


async def test_output_streams_while_the_container_runs(step: DockerStep) -> None:
    # The container waits for a file that the test writes only once it has seen the first
    # line in the step log: that line must arrive while the container still runs.
    script = (
        "echo started; echo to stderr >&2; printf 'no newline'; "
        "i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo; "
        "echo finished"
    )
    task = asyncio.create_task(step.run("docker/run", image=BASE_IMAGE, args=["sh", "-c", script]))
    await wait_until(lambda: "started" in step.lines() or task.done(), "the first line is logged")
    assert not task.done()
    assert step.lines("err") == ["to stderr"]
    (step.workspace / "go").touch()
    assert (await task).ok
    assert step.lines() == ["started", "no newline", "finished"]


async def test_environment_user_and_runner_variables(step: DockerStep) -> None:
    script = 'echo "$GREETING|$EMPTY|$CI|$GITHUB_WORKSPACE|${RUNNER_TEMP-unset}|$(id -u)"'
    await step.run(
        "docker/run",
        image=BASE_IMAGE,
        args=["sh", "-c", script],
        env={"GREETING": "hello there", "EMPTY": None},
        user="1234:1234",
    )
    # The host's RUNNER_TEMP means nothing in the container; GITHUB_WORKSPACE is the mount.
    assert step.lines() == ["hello there||true|/github/workspace|unset|1234"]


async def test_outputs_through_github_output(step: DockerStep) -> None:
    script = 'echo "greeting=hi" >> "$GITHUB_OUTPUT"; echo "### done" >> "$GITHUB_STEP_SUMMARY"'
    assert (await step.run("docker/run", image=BASE_IMAGE, args=["sh", "-c", script])).ok
    written = read_env_files(step.context.files)
    assert written.outputs == {"greeting": "hi"}
    assert written.summary == "### done\n"


async def test_working_directory_entrypoint_and_args(step: DockerStep) -> None:
    (step.workspace / "sub").mkdir()
    await step.run("docker/run", image=BASE_IMAGE, command="pwd", working_directory="sub")
    await step.run("docker/run", image=BASE_IMAGE, command="pwd", working_directory="/tmp")
    await step.run("docker/run", image=BASE_IMAGE, entrypoint="echo", args=["one word", "$HOME"])
    assert step.lines() == ["/github/workspace/sub", "/tmp", "one word $HOME"]


async def test_without_the_workspace(step: DockerStep) -> None:
    await step.run(
        "docker/run",
        image=BASE_IMAGE,
        command="sh -c 'pwd; ls /github'",
        mount_workspace=False,
    )
    assert step.lines() == ["/", "file_commands"]


async def test_relative_working_directory_needs_the_workspace(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run(
            "docker/run",
            image=BASE_IMAGE,
            command="pwd",
            mount_workspace=False,
            working_directory="sub",
        )
    assert info.value.message == (
        "working-directory 'sub' must be absolute when the workspace is not mounted "
        "(mount-workspace: false)"
    )
    assert info.value.retryable is False


async def test_volumes(step: DockerStep) -> None:
    write(step.workspace, {"data/in.txt": "mounted read-only\n"})
    script = "cat /data/in.txt; touch /data/new 2>/dev/null || echo read-only; echo kept > /out/f"
    result = await step.run(
        "docker/run",
        image=BASE_IMAGE,
        args=["sh", "-c", script],
        volumes=["./data:/data:ro", f"{step.workspace / 'out'}:/out"],
        mount_workspace=False,
    )
    assert result.ok
    assert step.lines() == ["mounted read-only", "read-only"]
    assert (step.workspace / "out" / "f").read_text() == "kept\n"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("/only-one-part", "expected 'src:dst' or 'src:dst:ro'"),
        ("a:/b:rx", "expected 'src:dst' or 'src:dst:ro'"),
        ("./data:relative", "the path in the container ('relative') must be absolute"),
    ],
)
async def test_bad_volume(step: DockerStep, spec: str, problem: str) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="true", volumes=[spec])
    assert info.value.message.startswith(f"volume {spec!r}: {problem}")
    assert info.value.retryable is False


async def test_cancel_stops_and_removes_the_container(step: DockerStep) -> None:
    command = "sh -c 'echo ready; sleep 300'"
    task = asyncio.create_task(step.run("docker/run", image=BASE_IMAGE, command=command))
    await wait_until(lambda: "ready" in step.lines() or task.done(), "the container runs")
    assert len(step.containers(**{"io.waterflow.step": "step"})) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # execute re-raised only after stopping and removing it: nothing is left right away.
    assert step.containers(**{"io.waterflow.step": "step"}) == []
    assert "container waterflow-" in step.lines("wf")[-1]
    assert step.lines("wf")[-1].endswith(" stopped and removed")


async def test_missing_image_without_pull(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image="waterflow-test/absent:1", pull="never")
    assert info.value.message == (
        f"image 'waterflow-test/absent:1' is not on the Docker engine at {step.env.host} "
        "(pull: never): build or pull it first"
    )
    assert info.value.retryable is False


async def test_missing_image_that_cannot_be_pulled(step: DockerStep) -> None:
    image = f"{step.env.registry()}/waterflow-test/absent:1"
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=image)
    message = info.value.message
    assert message.startswith(
        f"image {image!r} is not on the Docker engine at {step.env.host}, and pulling it failed: "
    )
    assert "manifest unknown" in message
    assert info.value.retryable is False


async def test_command_that_does_not_exist(step: DockerStep) -> None:
    # With the init as PID 1 (the default) it is the command's failure, as in a shell: 127.
    result = await step.run("docker/run", image=BASE_IMAGE, command="no-such-program --now")
    assert result.exit_code == 127
    assert "exec no-such-program failed: No such file or directory" in step.lines("err")[0]
    # Without it, the engine cannot start the container at all.
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="no-such-program", init=False)
    message = info.value.message
    assert message.startswith(f"cannot start the container of {BASE_IMAGE!r}: ")
    assert 'exec: "no-such-program": executable file not found in $PATH' in message
    assert "\n" not in message
    assert info.value.retryable is False
    assert step.containers() == []


async def test_unknown_network(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="true", network="no-such-net")
    assert info.value.message == (
        f"cannot start the container of {BASE_IMAGE!r}: network no-such-net not found"
    )
    assert info.value.retryable is False
    assert step.containers() == []


async def test_command_and_args_together(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="true", args=["true"])
    assert info.value.message == (
        "give either command (one string) or args (a list of words), not both"
    )


async def test_unreachable_engine_from_docker_host(step: DockerStep) -> None:
    step.context.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="true")
    assert info.value.message == (
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock: no such socket; "
        "set DOCKER_HOST or docker-host"
    )
    assert info.value.retryable is True


async def test_docker_host_parameter_wins(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run(
            "docker/run", image=BASE_IMAGE, command="true", docker_host="tcp://127.0.0.1:1"
        )
    assert info.value.message == (
        "cannot reach the Docker engine at tcp://127.0.0.1:1: connection refused; "
        "set DOCKER_HOST or docker-host"
    )


async def test_engine_refuses_the_container(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, command="true", volumes=["no good:/x"])
    message = info.value.message
    assert message.startswith(f"cannot create a container of {BASE_IMAGE!r}: ")
    assert '"no good" includes invalid characters for a local volume name' in message
    assert info.value.retryable is False
    assert step.containers() == []


def publish_base(step: DockerStep) -> str:
    """The base image pushed to the test registry under a fresh name, then forgotten by the
    engine: the name exists only in the registry."""
    image = f"{step.env.registry()}/waterflow-test/pull-{uuid.uuid4().hex[:8]}:1"
    repository, tag = image.rsplit(":", 1)
    step.env.api.tag(BASE_IMAGE, repository, tag)
    for chunk in step.env.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in chunk, chunk
    step.env.api.remove_image(image)
    return image


async def test_missing_image_is_pulled(step: DockerStep) -> None:
    image = publish_base(step)
    result = await step.run("docker/run", image=image, command="echo pulled and ran")
    assert result.ok
    assert f"docker pull {image}" in step.lines("wf")
    assert step.lines()[-1] == "pulled and ran"
    assert step.env.api.inspect_image(image)["Id"] == step.env.api.inspect_image(BASE_IMAGE)["Id"]


async def test_pull_always(step: DockerStep) -> None:
    image = publish_base(step)
    step.env.api.tag(BASE_IMAGE, *image.rsplit(":", 1))
    assert (await step.run("docker/run", image=image, command="true", pull="always")).ok
    assert f"docker pull {image}" in step.lines("wf")
    # A local image the registry does not have: `always` insists on the registry.
    local = f"{step.env.registry()}/waterflow-test/local-only:1"
    step.env.api.tag(BASE_IMAGE, *local.rsplit(":", 1))
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=local, command="true", pull="always")
    assert info.value.message.startswith(f"cannot pull image {local!r} (pull: always): ")
    assert "manifest unknown" in info.value.message
    assert info.value.retryable is False
