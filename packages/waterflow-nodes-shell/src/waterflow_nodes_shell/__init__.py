"""Waterflow's `shell/run` node, the node behind every `run:` step.

A first-party plugin loaded like any other, through the entry point in this package's
`pyproject.toml`::

    [project.entry-points."waterflow.nodes"]
    shell = "waterflow_nodes_shell"
"""

from __future__ import annotations

from waterflow import NodeMetadata, NodeRegistrar, hookimpl
from waterflow_nodes_shell._shell import NODE_NAME, ShellCommand, ShellRun, metadata, resolve_shell


@hookimpl
def node_metadata() -> list[NodeMetadata]:
    return [metadata()]


@hookimpl
def register_nodes(registry: NodeRegistrar) -> None:
    registry.add(NODE_NAME, ShellRun)


__all__ = [
    "NODE_NAME",
    "ShellCommand",
    "ShellRun",
    "node_metadata",
    "register_nodes",
    "resolve_shell",
]
