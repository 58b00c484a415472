"""Waterflow's `gha/action` node: GitHub Actions (JavaScript, Docker and composite) on an agent.

A step whose `uses:` is `owner/repo@ref`, `owner/repo/path@ref`, `./path` or `docker://image`
is dispatched by the core to this node, which fetches the action, reads its `action.yml` and
runs it as GitHub's runner does. A first-party plugin loaded like any other, through the entry
point in this package's `pyproject.toml`::

    [project.entry-points."waterflow.nodes"]
    gha = "waterflow_nodes_gha"

The agent's settings are environment variables of the agent process (`WATERFLOW_GHA_*`); see
docs/nodes/gha.md.
"""

from __future__ import annotations

from waterflow import NodeMetadata, NodeRegistrar, hookimpl
from waterflow.commands import parse_command
from waterflow_nodes_gha._action import NODE_NAME, GhaAction, metadata
from waterflow_nodes_gha._manifest import (
    Manifest,
    input_env_name,
    load_manifest,
    node_metadata_for,
)
from waterflow_nodes_gha._nodejs import provision_node
from waterflow_nodes_gha._refs import ActionRef, parse_uses
from waterflow_nodes_gha._settings import Settings


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return [metadata()]


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add(NODE_NAME, GhaAction)


__all__ = [
    "NODE_NAME",
    "ActionRef",
    "GhaAction",
    "Manifest",
    "Settings",
    "input_env_name",
    "load_manifest",
    "node_metadata",
    "node_metadata_for",
    "parse_command",
    "parse_uses",
    "provision_node",
    "register_nodes",
]
