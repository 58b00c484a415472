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

import importlib
from typing import TYPE_CHECKING, Any

from waterflow import NodeMetadata, NodeRegistrar, hookimpl
from waterflow_nodes_gha._meta import NODE_NAME, metadata

if TYPE_CHECKING:
    from waterflow.commands import parse_command
    from waterflow_nodes_gha._action import GhaAction
    from waterflow_nodes_gha._manifest import (
        Manifest,
        input_env_name,
        load_manifest,
        node_metadata_for,
    )
    from waterflow_nodes_gha._nodejs import provision_node
    from waterflow_nodes_gha._refs import ActionRef, parse_uses
    from waterflow_nodes_gha._settings import Settings

# The action runner is imported by the first step that uses it, not when the plugin loads
# (which every agent does at start): so are the names below, where they are asked for.
_LAZY = {
    "parse_command": "waterflow.commands",
    "GhaAction": "waterflow_nodes_gha._action",
    "Manifest": "waterflow_nodes_gha._manifest",
    "input_env_name": "waterflow_nodes_gha._manifest",
    "load_manifest": "waterflow_nodes_gha._manifest",
    "node_metadata_for": "waterflow_nodes_gha._manifest",
    "provision_node": "waterflow_nodes_gha._nodejs",
    "ActionRef": "waterflow_nodes_gha._refs",
    "parse_uses": "waterflow_nodes_gha._refs",
    "Settings": "waterflow_nodes_gha._settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def _gha_action() -> Any:
    from waterflow_nodes_gha._action import GhaAction

    return GhaAction()


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return [metadata()]


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add(NODE_NAME, _gha_action)


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
