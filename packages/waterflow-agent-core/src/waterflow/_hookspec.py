# mypy: disable-error-code="empty-body"
"""The hooks a Waterflow plugin implements. Both are called once each time the plugin loads:
at agent start, and again on every reload of that plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from waterflow._node import NodeMetadata
    from waterflow._registry import NodeRegistrar

PROJECT = "waterflow"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def node_metadata() -> list[NodeMetadata]:
    """Describe the nodes this plugin provides.

    Called first when the plugin is loaded. Return one `NodeMetadata` per node; it is what
    `waterflow-agent nodes` lists, what the agent reports to the server, and what `with:` is
    validated against. Keep it cheap: no heavy imports, no I/O. Every node described here must
    be registered by `register_nodes`, and the reverse.
    """


@hookspec
def register_nodes(registry: NodeRegistrar) -> None:
    """Bind an executor to each node this plugin described.

    Called after `node_metadata`, with a registrar scoped to this plugin:
    `registry.add("shell/run", ShellRun)`. The factory (usually the class) is called once per
    step to make a fresh executor. Returns nothing; a name another distribution already
    claims is an error that names both.
    """
