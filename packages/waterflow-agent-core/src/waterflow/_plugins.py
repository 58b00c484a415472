"""Finding and loading plugins: the `waterflow.nodes` entry points, one at a time.

Environment switches:
- `WATERFLOW_DISABLE_PLUGINS=a,b`: skip these plugins (entry-point or distribution names).
- `WATERFLOW_LOAD_PLUGINS=a,b`: load only these (empty: load none).
- `WATERFLOW_TRACE_PLUGINS=1`: log every hook call and its result at debug level.
"""

from __future__ import annotations

import importlib
import os
import types
from collections.abc import Mapping
from typing import Any

import attrs
import importlib_metadata
import pluggy
from loguru import logger

from waterflow import _hookspec
from waterflow._node import NodeMetadata
from waterflow._registry import (
    NodeRegistrar,
    NodeRegistry,
    PluginConflictError,
    PluginContractError,
    PluginSource,
    RegisteredNode,
)
from waterflow._version import __version__

ENTRY_POINT_GROUP = "waterflow.nodes"


@attrs.frozen
class LoadProblem:
    """A plugin that did not load, and why (one line)."""

    source: PluginSource
    message: str

    def __str__(self) -> str:
        return f"plugin {self.source.name!r} ({self.source.describe()}): {self.message}"


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def plugin_allowed(source: PluginSource, env: Mapping[str, str]) -> bool:
    keys = {source.name, source.distribution}
    blocked = _names(env.get("WATERFLOW_DISABLE_PLUGINS")) or set()
    if keys & blocked:
        return False
    allowed = _names(env.get("WATERFLOW_LOAD_PLUGINS"))
    return allowed is None or bool(keys & allowed)


def collect_nodes(
    plugin: object, source: PluginSource, *, trace: bool = False
) -> list[RegisteredNode]:
    """Run one plugin's hooks and return its nodes. Raises on any contract violation."""
    pm = pluggy.PluginManager(_hookspec.PROJECT)
    pm.add_hookspecs(_hookspec)
    if trace:
        pm.trace.root.setwriter(lambda msg: logger.debug("plugin hook trace: {}", msg.rstrip()))
        pm.enable_tracing()
    pm.register(plugin, name=source.name)
    described: list[NodeMetadata] = []
    for result in pm.hook.node_metadata():
        if result is None:
            continue
        for item in result:
            if not isinstance(item, NodeMetadata):
                raise PluginContractError(
                    f"node_metadata returned {type(item).__name__}, expected NodeMetadata"
                )
            described.append(item)
    registrar = NodeRegistrar(source, described)
    pm.hook.register_nodes(registry=registrar)
    nodes = registrar.nodes()
    if not nodes:
        raise PluginContractError("it implements neither node_metadata nor register_nodes")
    return nodes


def install_plugin(
    registry: NodeRegistry, plugin: object, source: PluginSource, *, trace: bool = False
) -> list[RegisteredNode]:
    """Load one plugin object into the registry, replacing its earlier nodes atomically."""
    nodes = collect_nodes(plugin, source, trace=trace)
    registry.replace_plugin(source.name, nodes)
    return nodes


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, PluginConflictError | PluginContractError):
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def trace_enabled(env: Mapping[str, str]) -> bool:
    return env.get("WATERFLOW_TRACE_PLUGINS", "") not in ("", "0", "false")


def entry_point_source(ep: importlib_metadata.EntryPoint) -> PluginSource:
    """The plugin an entry point names: its name, distribution and version."""
    dist = ep.dist
    return PluginSource(
        name=ep.name,
        distribution=dist.name if dist is not None else "(unknown distribution)",
        version=dist.version if dist is not None else "?",
    )


def plugin_object(loaded: Any) -> Any:
    """What an entry point's target registers with pluggy: a module as is, a class instantiated."""
    if not isinstance(loaded, types.ModuleType) and isinstance(loaded, type):
        return loaded()
    return loaded


def invalidate_caches() -> None:
    """Forget cached directory listings and metadata, so that distributions installed or
    removed since the last look are seen (`importlib_metadata` caches per sys.path entry)."""
    importlib.invalidate_caches()
    importlib_metadata.MetadataPathFinder.invalidate_caches()


def load_installed_plugins(
    registry: NodeRegistry, env: Mapping[str, str] | None = None, *, log: bool = True
) -> list[LoadProblem]:
    """Load every allowed `waterflow.nodes` entry point; return what failed, one line each.

    A broken plugin is logged with its name and version and skipped; the rest still load.
    """
    env = os.environ if env is None else env
    trace = trace_enabled(env)
    problems: list[LoadProblem] = []
    entry_points = sorted(
        importlib_metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
    )
    for ep in entry_points:
        source = entry_point_source(ep)
        if not plugin_allowed(source, env):
            if not log:
                continue
            logger.info(
                "Plugin skipped by WATERFLOW_DISABLE_PLUGINS/WATERFLOW_LOAD_PLUGINS",
                plugin=source.name,
                distribution=source.distribution,
            )
            continue
        try:
            nodes = install_plugin(registry, plugin_object(ep.load()), source, trace=trace)
        except Exception as exc:  # one broken plugin must not stop the others
            problem = LoadProblem(source, _describe_error(exc))
            problems.append(problem)
            if not log:
                continue
            logger.error(
                "Plugin failed to load: {}",
                problem.message,
                plugin=source.name,
                distribution=source.distribution,
                version=source.version,
                waterflow_version=__version__,
            )
            continue
        if not log:
            continue
        logger.debug(
            "Plugin loaded",
            plugin=source.name,
            distribution=source.distribution,
            version=source.version,
            nodes=[n.name for n in nodes],
        )
    return problems
