"""docker/push to real registries on loopback, and pulling back what was pushed."""

from __future__ import annotations

import uuid

import pytest
from docker_testing import BASE_IMAGE, DockerStep, setting

from waterflow import NodeError


def fresh_name(registry: str) -> str:
    return f"{registry}/waterflow-test/pushed-{uuid.uuid4().hex[:8]}"


def pull_back(step: DockerStep, reference: str) -> str:
    """Forget `reference` on the engine, pull it from the registry, return the image id."""
    api = step.env.api
    api.remove_image(reference)
    api.pull(reference)
    image_id: str = api.inspect_image(reference)["Id"]
    return image_id


async def test_push_tags_and_pull_back_by_digest(step: DockerStep) -> None:
    name = fresh_name(step.env.registry())
    base_id = step.env.api.inspect_image(BASE_IMAGE)["Id"]
    result = await step.run("docker/push", image=BASE_IMAGE, tags=f"{name}:1.0, {name}:latest")
    digest = result.outputs["digest"]
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64
    assert pull_back(step, f"{name}@{digest}") == base_id
    assert pull_back(step, f"{name}:1.0") == base_id
    assert f"pushed {name}:1.0 as {digest}" in step.lines("wf")
    assert f"pushed {name}:latest as {digest}" in step.lines("wf")


async def test_push_the_image_as_it_is_named(step: DockerStep) -> None:
    name = fresh_name(step.env.registry())
    step.env.api.tag(BASE_IMAGE, name, "v2")
    result = await step.run("docker/push", image=f"{name}:v2")
    assert pull_back(step, f"{name}@{result.outputs['digest']}")


async def test_push_with_credentials_never_logs_them(step: DockerStep) -> None:
    registry = step.env.registry("WATERFLOW_TEST_AUTH_REGISTRY")
    user = setting("WATERFLOW_TEST_AUTH_REGISTRY_USER")
    password = setting("WATERFLOW_TEST_AUTH_REGISTRY_PASSWORD")
    assert user and password
    name = fresh_name(registry)
    result = await step.run(
        "docker/push", image=BASE_IMAGE, tags=f"{name}:1", username=user, password=password
    )
    assert result.outputs["digest"].startswith("sha256:")
    assert password in step.context.masker
    assert password not in step.log()
    assert f"docker push {name}:1 with credentials (engine {step.env.host})" in step.lines("wf")


async def test_push_denied(step: DockerStep) -> None:
    registry = step.env.registry("WATERFLOW_TEST_AUTH_REGISTRY")
    name = fresh_name(registry)
    with pytest.raises(NodeError) as info:
        await step.run(
            "docker/push",
            image=BASE_IMAGE,
            tags=f"{name}:1",
            username="wf-pusher",
            password="not-the-password",
        )
    assert info.value.message == (
        f"push of '{name}:1' was denied by the registry {registry}: unauthorized: "
        "authentication required; check username and password (and that this user may push "
        "there)"
    )
    assert info.value.retryable is False
    assert "not-the-password" not in step.log()
    with pytest.raises(NodeError) as info:
        await step.run("docker/push", image=BASE_IMAGE, tags=f"{name}:1")
    assert info.value.message.startswith(f"push of '{name}:1' was denied by the registry")
    assert "no basic auth credentials" in info.value.message


async def test_registry_unreachable(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/push", image=BASE_IMAGE, tags="127.0.0.1:1/waterflow-test/x:1")
    message = info.value.message
    assert message.startswith(
        "cannot reach the registry 127.0.0.1:1 to push '127.0.0.1:1/waterflow-test/x:1': "
    )
    assert message.endswith("dial tcp 127.0.0.1:1: connect: connection refused")
    assert info.value.retryable is True


async def test_push_an_image_that_is_not_there(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/push", image="waterflow-test/never-built:1")
    assert info.value.message == (
        f"image 'waterflow-test/never-built:1' is not on the Docker engine at {step.env.host}: "
        "build it first (docker/build) or check its name"
    )
    assert info.value.retryable is False


async def test_password_without_username(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/push", image=BASE_IMAGE, password="s3cret-token")
    assert info.value.message == (
        "parameter 'password' is given without 'username': give both, or neither to push "
        "without credentials"
    )
    assert "s3cret-token" in step.context.masker


async def test_push_to_a_digest(step: DockerStep) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/push", image=BASE_IMAGE, tags=f"x@sha256:{'a' * 64}")
    assert info.value.message.startswith("tags: 'x@sha256:aaa")
    assert info.value.message.endswith(
        "' is not an image name: use [registry/]name[:tag], the name in lower case "
        "(e.g. 127.0.0.1:5000/team/app:1.0)"
    )
    assert info.value.retryable is False
