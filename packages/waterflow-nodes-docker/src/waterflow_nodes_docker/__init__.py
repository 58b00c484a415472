"""Waterflow's docker nodes: `docker/build`, `docker/push` and `docker/run`.

A first-party plugin loaded like any other, through the entry point in this package's
`pyproject.toml`::

    [project.entry-points."waterflow.nodes"]
    docker = "waterflow_nodes_docker"

The nodes talk to a Docker engine with the Docker SDK for Python; the engine is the step's
`docker-host` parameter, else DOCKER_HOST of the step's environment. Loading the plugin imports
no SDK: each executor imports it when its first step runs. See docs/nodes/docker.md.
"""

from __future__ import annotations

from waterflow import Node, NodeMetadata, NodeRegistrar, hookimpl
from waterflow_nodes_docker._metadata import (
    BUILD,
    FILE_COMMANDS_MOUNT,
    PUSH,
    RUN,
    WORKSPACE_MOUNT,
    all_metadata,
)


def docker_build() -> Node:
    """A docker/build executor."""
    from waterflow_nodes_docker._build import DockerBuild

    return DockerBuild()


def docker_push() -> Node:
    """A docker/push executor."""
    from waterflow_nodes_docker._push import DockerPush

    return DockerPush()


def docker_run() -> Node:
    """A docker/run executor."""
    from waterflow_nodes_docker._run import DockerRun

    return DockerRun()


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return all_metadata()


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add(BUILD, docker_build)
    registry.add(PUSH, docker_push)
    registry.add(RUN, docker_run)


__all__ = [
    "BUILD",
    "FILE_COMMANDS_MOUNT",
    "PUSH",
    "RUN",
    "WORKSPACE_MOUNT",
    "docker_build",
    "docker_push",
    "docker_run",
    "node_metadata",
    "register_nodes",
]
