"""The plugin as the agent sees it, where the engine is, and what happens without one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker_testing
import pytest
from docker_testing import BASE_IMAGE, DockerStep

import waterflow_nodes_docker
from waterflow import NodeError
from waterflow_nodes_docker._engine import Engine

BIN = Path(sys.executable).parent
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parents[2]


def test_agent_lists_the_three_nodes() -> None:
    env = {**os.environ, "WATERFLOW_LOAD_PLUGINS": "docker"}
    listing = subprocess.run(
        [str(BIN / "waterflow-agent"), "nodes", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    nodes = {entry["metadata"]["name"]: entry for entry in json.loads(listing.stdout)}
    assert sorted(nodes) == ["docker/build", "docker/push", "docker/run"]
    for entry in nodes.values():
        assert entry["distribution"] == "waterflow-nodes-docker"
    run = nodes["docker/run"]["metadata"]
    parameters = {p["name"]: p for p in run["parameters"]}
    assert parameters["image"]["required"] is True
    assert parameters["mount-workspace"]["default"] is True
    assert parameters["pull"]["enum"] == ["missing", "always", "never"]
    assert [o["name"] for o in nodes["docker/build"]["metadata"]["outputs"]] == [
        "image-id",
        "tags",
    ]
    assert [o["name"] for o in nodes["docker/push"]["metadata"]["outputs"]] == ["digest"]


def test_loading_the_plugin_does_not_import_the_sdk() -> None:
    script = (
        "import sys\n"
        "from waterflow._plugins import load_installed_plugins\n"
        "from waterflow._registry import NodeRegistry\n"
        "registry = NodeRegistry()\n"
        "assert load_installed_plugins(registry, env={'WATERFLOW_LOAD_PLUGINS': 'docker'}) == []\n"
        "node = registry.get('docker/run')\n"
        "print('docker' in sys.modules, type(node.factory()).__name__, 'docker' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "DockerRun", "True"]


def test_hooks_describe_what_they_register() -> None:
    names = [m.name for m in waterflow_nodes_docker.node_metadata()]
    assert names == ["docker/build", "docker/push", "docker/run"]


# --- where the engine is ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "params"),
    [
        ("docker/build", {}),
        ("docker/push", {"image": BASE_IMAGE}),
        ("docker/run", {"image": BASE_IMAGE}),
    ],
)
async def test_every_node_says_when_the_engine_is_unreachable(
    step: DockerStep, node: str, params: dict[str, Any]
) -> None:
    (step.workspace / "Dockerfile").write_text("FROM alpine\n")
    step.context.env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    with pytest.raises(NodeError) as info:
        await step.run(node, **params)
    assert info.value.message == (
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock: no such socket; "
        "set DOCKER_HOST or docker-host"
    )
    assert info.value.retryable is True


@pytest.mark.parametrize(
    ("host", "message"),
    [
        (
            "foo://bar",
            "'foo://bar' is not a Docker engine address: use unix:///path/to/socket or "
            "tcp://host:port",
        ),
        (
            "ssh://builder",
            "cannot use the Docker engine at ssh://builder: Install paramiko package to enable "
            "ssh:// support",
        ),
    ],
)
async def test_engine_address_that_cannot_be_used(
    step: DockerStep, host: str, message: str
) -> None:
    with pytest.raises(NodeError) as info:
        await step.run("docker/run", image=BASE_IMAGE, docker_host=host)
    assert info.value.message == message
    assert info.value.retryable is False


@pytest.fixture
def vanishing_engine(tmp_path: Path) -> Iterator[str]:
    """A socket where the engine was: it accepts a connection and closes it at once, as a
    dockerd that dies under a step does."""
    path = tmp_path / "gone.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
    server.close()
    thread.join(5)


async def test_engine_that_goes_away_during_a_step(vanishing_engine: str) -> None:
    engine = Engine(docker.APIClient(base_url=vanishing_engine, version="1.41"), vanishing_engine)
    with pytest.raises(NodeError) as info:
        await engine.call(engine.api.inspect_image, BASE_IMAGE)
    assert info.value.message.startswith(f"cannot reach the Docker engine at {vanishing_engine}: ")
    assert info.value.message.endswith("; set DOCKER_HOST or docker-host")
    assert info.value.retryable is True
    engine.close()


# --- parameters the agent's checks let through, or that a direct caller may pass ------------


@pytest.mark.parametrize(
    ("node", "params", "message"),
    [
        (
            "docker/build",
            {"build-args": {"A": {"nested": 1}}},
            "parameter 'build-args': the value of 'A' must be a string, not a mapping",
        ),
        ("docker/build", {"labels": ["a=b"]}, "parameter 'labels' must be a mapping of names"),
        ("docker/build", {"no-cache": "yes"}, "parameter 'no-cache' must be true or false"),
        ("docker/build", {"tags": 5}, "parameter 'tags' must be a list or a string with commas"),
        ("docker/build", {"tags": [None]}, "parameter 'tags': each item must be a string"),
        ("docker/build", {"target": ["x"]}, "parameter 'target' must be a string, not list"),
        ("docker/push", {}, "parameter 'image' is required: the image to push"),
        ("docker/run", {}, "parameter 'image' is required: the image to run"),
        ("docker/run", {"image": "a", "command": 'sh -c "x'}, "parameter 'command': "),
        ("docker/run", {"image": "a", "args": 3}, "parameter 'args' must be a string or a list"),
        ("docker/run", {"image": "a", "pull": "sometimes"}, "pull 'sometimes' is not one of"),
    ],
)
async def test_bad_parameters(
    step: DockerStep, node: str, params: dict[str, Any], message: str
) -> None:
    factory = {
        "docker/build": waterflow_nodes_docker.docker_build,
        "docker/push": waterflow_nodes_docker.docker_push,
        "docker/run": waterflow_nodes_docker.docker_run,
    }[node]
    (step.workspace / "Dockerfile").write_text("FROM alpine\n")
    with pytest.raises(NodeError) as info:
        await factory().execute(params, step.context)
    assert info.value.message.startswith(message)
    assert info.value.retryable is False


# --- without an engine -----------------------------------------------------------------------


def test_without_an_engine_the_tests_skip_and_say_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "CI")}
    env.update({"WATERFLOW_DOCKER_STATE": str(tmp_path / "no-state"), "CI": "false"})
    test = TESTS / "test_docker_run.py::test_exit_code_is_the_steps"
    argv = ["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    result = subprocess.run(
        [sys.executable, *argv, str(test)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "no Docker engine for the tests" in result.stdout
    assert "sudo .ci/docker-up" in result.stdout


def test_without_an_engine_ci_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(pytest.fail.Exception) as info:
        docker_testing.connect()
    assert str(info.value) == (
        f"the Docker engine at unix://{tmp_path}/nothing.sock does not answer (DockerException); "
        "CI must run the docker tests: call .ci/docker-up first"
    )


def test_the_reference_page_documents_every_parameter_and_output() -> None:
    page = (ROOT / "docs" / "nodes" / "docker.md").read_text(encoding="utf-8")
    for metadata in waterflow_nodes_docker.node_metadata():
        section = page.split(f"## `{metadata.name}`", 1)[1].split("\n## ", 1)[0]
        for item in [*metadata.parameters, *metadata.outputs]:
            assert f"| `{item.name}` |" in section, (metadata.name, item.name)
