"""What the docker node tests share: finding the test engine, and running a node in a real
step context against it."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import docker
import pytest

from waterflow import NodeResult, StepContext
from waterflow.params import check_parameters
from waterflow_nodes_docker import BUILD, PUSH, RUN, docker_build, docker_push, docker_run
from waterflow_nodes_docker._metadata import all_metadata

STATE_DIR = Path(os.environ.get("WATERFLOW_DOCKER_STATE", "/tmp/waterflow-docker"))
ENV_FILE = STATE_DIR / "env"
BASE_IMAGE = "waterflow-busybox:latest"
HOW_TO_START = "start it with `sudo .ci/docker-up` (then `. /tmp/waterflow-docker/env`)"
DEADLINE = 20.0

_FACTORIES: dict[str, Callable[[], Any]] = {
    BUILD: docker_build,
    PUSH: docker_push,
    RUN: docker_run,
}
_METADATA = {m.name: m for m in all_metadata()}


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """The `export NAME=value` lines .ci/docker-up wrote."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip().removeprefix("export ")
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def setting(name: str) -> str | None:
    """A test setting from the environment, else from .ci/docker-up's env file."""
    return os.environ.get(name) or read_env_file().get(name)


def unavailable(reason: str) -> None:
    """No engine to test against: fail on CI (the tests must run there), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the docker tests: call .ci/docker-up first")
    pytest.skip(f"{reason}; {HOW_TO_START}")


@attrs.frozen
class DockerTestEnv:
    """The test engine and registries .ci/docker-up started."""

    host: str
    api: Any  # docker.APIClient

    def registry(self, name: str = "WATERFLOW_TEST_REGISTRY") -> str:
        address = setting(name)
        if not address:
            unavailable(f"no {name} is set")
        assert address is not None
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=5):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 401:  # the registry with credentials answers 401
                unavailable(f"the registry {address} answers {exc.code}")
        except OSError as exc:
            unavailable(f"no registry answers at {address} ({exc})")
        return address


def connect() -> DockerTestEnv:
    host = setting("DOCKER_HOST")
    if not host:
        unavailable("no Docker engine for the tests (DOCKER_HOST unset, no " + str(ENV_FILE) + ")")
    assert host is not None
    try:
        api = docker.APIClient(base_url=host, version="auto", timeout=30)
        api.ping()
    except Exception as exc:
        unavailable(f"the Docker engine at {host} does not answer ({type(exc).__name__})")
    try:
        api.inspect_image(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        unavailable(f"the engine at {host} has no {BASE_IMAGE}")
    return DockerTestEnv(host=host, api=api)


class DockerStep:
    """One step in a real step context: run docker nodes in it and look at what they did."""

    def __init__(self, context: StepContext, env: DockerTestEnv) -> None:
        self.context = context
        self.env = env
        self.built: list[str] = []

    @property
    def workspace(self) -> Path:
        return self.context.workspace

    async def run(self, node: str, **params: Any) -> NodeResult:
        """Run `node` with `params` (underscores stand for dashes), checked and completed with
        defaults as the agent does."""
        given = {key.replace("_", "-"): value for key, value in params.items()}
        checked, problems = check_parameters(_METADATA[node], given)
        assert not problems, problems
        result: NodeResult = await _FACTORIES[node]().execute(checked, self.context)
        if "image-id" in result.outputs:
            self.built.append(result.outputs["image-id"])
        return result

    def clean_up(self) -> None:
        """Remove what the test left on the engine: containers of its run, images it built,
        and the waterflow-test/ names it gave."""
        api = self.env.api
        for container in self.containers():
            api.remove_container(container["Id"], force=True)
        for image in self.built:
            try:
                api.remove_image(image, force=True)
            except docker.errors.NotFound:
                pass
        remove_test_names(api)

    def log(self) -> str:
        assert self.context.log.path is not None
        return self.context.log.path.read_text(encoding="utf-8")

    def lines(self, stream: str = "out") -> list[str]:
        """The lines of one stream of the log: "out", "err", or "wf" (Waterflow's own)."""
        prefix = " wf  " if stream == "wf" else f" {stream} "
        return [line.split(prefix, 1)[1] for line in self.log().splitlines() if prefix in line]

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        """Containers of this step's run (any state), optionally with more labels."""
        wanted = {"io.waterflow.run": self.context.step.run_id, **labels}
        filters = {"label": [f"{k}={v}" for k, v in wanted.items()]}
        found: list[dict[str, Any]] = self.env.api.containers(all=True, filters=filters)
        return found


def remove_test_names(api: Any) -> None:
    """Untag every image name the tests give (they all hold `waterflow-test/`)."""
    for image in api.images():
        for name in image.get("RepoTags") or []:
            if "waterflow-test/" in name:
                try:
                    api.remove_image(name)
                except docker.errors.NotFound:
                    pass


async def wait_until(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll `condition` until it is truthy; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline}s: {what}")
        await asyncio.sleep(0.05)


def write(directory: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
