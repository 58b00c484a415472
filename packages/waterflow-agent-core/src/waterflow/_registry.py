"""The node registry: node name -> metadata, executor factory and the plugin that gave it."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import attrs

from waterflow._node import NodeFactory, NodeMetadata


@attrs.frozen
class PluginSource:
    """Where a plugin came from: its entry-point name, distribution and version, or a file."""

    name: str
    distribution: str
    version: str
    origin: str = "entry-point"  # or the path of a plugin file

    def describe(self) -> str:
        return f"{self.distribution} {self.version}"


@attrs.frozen
class RegisteredNode:
    metadata: NodeMetadata
    factory: NodeFactory
    source: PluginSource

    @property
    def name(self) -> str:
        return self.metadata.name


class PluginConflictError(Exception):
    """Two plugins claim one node name."""

    def __init__(self, node: str, first: PluginSource, second: PluginSource) -> None:
        super().__init__(
            f"node {node!r} is claimed by both {first.describe()} (plugin {first.name!r}) and "
            f"{second.describe()} (plugin {second.name!r}); uninstall or block one of them "
            "(WATERFLOW_DISABLE_PLUGINS)"
        )
        self.node = node
        self.first = first
        self.second = second


class PluginContractError(Exception):
    """A plugin's hooks disagree with each other or with the API."""


class NodeRegistrar:
    """What `register_nodes` receives: binds executors to the nodes one plugin described."""

    def __init__(self, source: PluginSource, metadata: Iterable[NodeMetadata]) -> None:
        self._source = source
        self._metadata = {m.name: m for m in metadata}
        self._added: dict[str, NodeFactory] = {}

    def add(self, name: str, factory: NodeFactory) -> None:
        """Register `factory` (a class, or any callable returning a node) for node `name`."""
        if name not in self._metadata:
            raise PluginContractError(
                f"plugin {self._source.name!r} registers node {name!r} but its node_metadata "
                "hook does not describe it"
            )
        if name in self._added:
            raise PluginContractError(f"plugin {self._source.name!r} registers {name!r} twice")
        if not callable(factory):
            raise PluginContractError(
                f"plugin {self._source.name!r}: the executor for {name!r} is not callable"
            )
        self._added[name] = factory

    def nodes(self) -> list[RegisteredNode]:
        missing = sorted(set(self._metadata) - set(self._added))
        if missing:
            raise PluginContractError(
                f"plugin {self._source.name!r} describes {', '.join(missing)} but registers "
                "no executor for it"
            )
        return [RegisteredNode(self._metadata[n], f, self._source) for n, f in self._added.items()]


class NodeRegistry:
    """Thread-safe map of node names to registered nodes.

    Reads take no lock: the map is an immutable snapshot replaced whole on every change, so a
    reader sees either the old set of a plugin's nodes or the new one, never a mix.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: Mapping[str, RegisteredNode] = {}

    def get(self, name: str) -> RegisteredNode | None:
        return self._nodes.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def names(self) -> list[str]:
        return sorted(self._nodes)

    def all(self) -> list[RegisteredNode]:
        snapshot = self._nodes
        return [snapshot[n] for n in sorted(snapshot)]

    def metadata(self) -> dict[str, NodeMetadata]:
        return {name: node.metadata for name, node in self._nodes.items()}

    def replace_plugin(self, plugin: str, nodes: Iterable[RegisteredNode]) -> None:
        """Swap in the nodes of `plugin` (by plugin name), dropping its previous ones.

        Raises PluginConflictError, changing nothing, when another plugin owns a name.
        """
        new_nodes = list(nodes)
        with self._lock:
            current = dict(self._nodes)
            for node in new_nodes:
                owner = current.get(node.name)
                if owner is not None and owner.source.name != plugin:
                    raise PluginConflictError(node.name, owner.source, node.source)
            for name in [n for n, node in current.items() if node.source.name == plugin]:
                del current[name]
            for node in new_nodes:
                current[node.name] = node
            self._nodes = current

    def remove_plugin(self, plugin: str) -> list[str]:
        with self._lock:
            current = dict(self._nodes)
            gone = [n for n, node in current.items() if node.source.name == plugin]
            for name in gone:
                del current[name]
            self._nodes = current
        return gone
