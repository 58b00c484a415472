"""Hot reload: keep the node registry in step with the installed distributions and the plugin
directory, without restarting anything.

`PluginReloader` owns one `NodeRegistry`. It loads everything at start (`load`), rescans
everything on demand (`reload`: SIGHUP, `waterflow-agent plugins reload`, `Agent.reload()`), and,
when asked to (`start_watching`), follows the plugin directory with watchfiles.

Each plugin is swapped in whole with `NodeRegistry.replace_plugin` (or dropped with
`remove_plugin`): a step that is running keeps the executor it started with, the next step gets
the new one. A plugin that fails to load is logged with its file and error and leaves its
previous version in place. A rescan loads again only what changed (a file's bytes, a
distribution's version); plugins that failed are tried again on every `reload`, and whenever a
rescan removed something (a name may have become free).

Watching: watchfiles reports the directory's changes from its notify thread; a burst of them
(editors write in several steps) is gathered until the directory has been quiet for `quiet_ms`
(at most `max_delay_ms`), then the directory is rescanned once. Reloads run one at a time, in a
worker thread, so importing a plugin never stalls the Temporal workers' event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import importlib_metadata
import watchfiles
from loguru import logger

from waterflow._plugindir import (
    PluginFile,
    PluginFileError,
    WheelImporter,
    drop_modules,
    extract_wheel,
    file_version,
    import_module_file,
    is_plugin_name,
    mtime_version,
    plugin_roots,
    prune_cache,
    read_plugin_file,
    read_wheel,
    scan_plugin_dir,
)
from waterflow._plugins import (
    ENTRY_POINT_GROUP,
    LoadProblem,
    _describe_error,
    collect_nodes,
    entry_point_source,
    invalidate_caches,
    plugin_allowed,
    plugin_object,
    trace_enabled,
)
from waterflow._registry import NodeRegistry, PluginSource, RegisteredNode
from waterflow._version import __version__

__all__ = ["PluginInfo", "PluginReloader", "ReloadReport"]

#: What started a rescan: the first load, the directory watcher, SIGHUP, or a call.
Trigger = str
ENTRY_POINT = "entry-point"

#: Modules whose entry points are never imported afresh (the host itself).
_NEVER_DROPPED = frozenset({"waterflow"})


@attrs.frozen
class PluginInfo:
    """One plugin in the registry: where it came from and which nodes it gives."""

    name: str
    kind: str  # "entry point", "module file" or "wheel"
    distribution: str
    version: str
    origin: str  # "entry-point", or the plugin file's path
    nodes: tuple[str, ...]

    @property
    def source_text(self) -> str:
        if self.kind == "entry point":
            return f"entry point of {self.distribution}"
        if self.kind == "wheel":
            return f"wheel {self.origin} ({self.distribution})"
        return f"file {self.origin}"


@attrs.frozen
class ReloadReport:
    """What one rescan did. `generation` counts the changes of the registry so far."""

    generation: int
    trigger: Trigger
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    nodes_added: tuple[str, ...] = ()
    nodes_changed: tuple[str, ...] = ()
    nodes_removed: tuple[str, ...] = ()
    problems: tuple[LoadProblem, ...] = ()
    warnings: tuple[str, ...] = ()  # directories refused or unreadable
    duration: float = 0.0

    @property
    def changed_registry(self) -> bool:
        return bool(self.nodes_added or self.nodes_changed or self.nodes_removed)


@attrs.define
class _Version:
    """One version of one plugin that is in the registry."""

    source: PluginSource
    key: tuple[str, ...]  # what identifies its code
    module_root: str | None  # the private module tree of a file plugin


@attrs.define
class _FileState:
    fingerprint: tuple[int, ...] | None = None
    digest: str | None = None
    plugins: dict[str, _Version] = attrs.field(factory=dict)
    failed: bool = False


@attrs.define
class _Changes:
    added: list[str] = attrs.field(factory=list)
    changed: list[str] = attrs.field(factory=list)
    removed: list[str] = attrs.field(factory=list)
    problems: list[LoadProblem] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)


def _kept(state: _FileState, name: str | None = None) -> str:
    """The end of a failure's line: what stays in the registry instead."""
    kept = sorted(state.plugins) if name is None else [n for n in state.plugins if n == name]
    if not kept:
        return ""
    return f"; the previous version of {', '.join(kept)} stays"


def _fingerprint(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid)


class _StopFlag:
    """The stop event watchfiles polls from its thread on every step.

    `set()` ends the watch within one step. Its first poll tells that the notify thread exists
    and the watch loop runs: from then on no change of the directory is missed.
    """

    def __init__(self, on_first_poll: Callable[[], None]) -> None:
        self._event = threading.Event()
        self._on_first_poll: Callable[[], None] | None = on_first_poll

    def is_set(self) -> bool:
        notify, self._on_first_poll = self._on_first_poll, None
        if notify is not None:
            notify()
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()


Listener = Callable[[ReloadReport], None]


class PluginReloader:
    """Loads the plugins of the installed distributions and of `plugin_dir` into `registry`,
    and loads them again when they change. See the module docstring."""

    def __init__(
        self,
        registry: NodeRegistry,
        *,
        plugin_dir: Path | None,
        cache_dir: Path,
        env: Mapping[str, str] | None = None,
        log: bool = True,
        step_ms: int = 20,
        quiet_ms: int = 60,
        max_delay_ms: int = 1000,
    ) -> None:
        self.registry = registry
        self.plugin_dir = plugin_dir
        self.cache_dir = cache_dir
        self.env = dict(os.environ if env is None else env)
        self.log = log
        self.step_ms = step_ms
        self.quiet_ms = quiet_ms
        self.max_delay_ms = max_delay_ms
        self.generation = 0
        self.listeners: list[Listener] = []
        self._trace = trace_enabled(self.env)
        self._installed: dict[str, _Version] = {}
        self._attempted: dict[str, tuple[str, ...]] = {}  # entry point -> key last tried
        self._files: dict[Path, _FileState] = {}
        self._module_roots: set[str] = set()
        self._dir_problems: tuple[str, ...] = ()
        self._dir_missing_logged = False
        self._lock = asyncio.Lock()
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._closing = False
        self._stop_flag: _StopFlag | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._apply_task: asyncio.Task[None] | None = None
        self._watched: tuple[int, int] | None = None
        self._want_watch = False

    # --- what is loaded ------------------------------------------------------------------------

    def plugins(self) -> list[PluginInfo]:
        """The plugins in the registry, by name."""
        nodes: dict[str, list[str]] = {}
        for node in self.registry.all():
            nodes.setdefault(node.source.name, []).append(node.name)
        versions: list[tuple[str, _Version, str]] = [
            (name, v, "entry point") for name, v in self._installed.items()
        ]
        for path, state in list(self._files.items()):
            kind = "wheel" if path.suffix == ".whl" else "module file"
            versions.extend((name, v, kind) for name, v in state.plugins.items())
        return [
            PluginInfo(
                name=name,
                kind=kind,
                distribution=v.source.distribution,
                version=v.source.version,
                origin=v.source.origin,
                nodes=tuple(nodes.get(name, ())),
            )
            for name, v, kind in sorted(versions, key=lambda item: item[0])
        ]

    @property
    def watching(self) -> bool:
        """Whether the plugin directory is being followed right now."""
        return self._watch_task is not None and not self._watch_task.done()

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(report)` in the event loop after the first load and after every
        rescan that changed the registry (the agent reports its nodes to the server there)."""
        self.listeners.append(listener)

    # --- the async API -------------------------------------------------------------------------

    async def load(self) -> ReloadReport:
        """The first load: installed distributions, then the plugin directory."""
        prune_cache(self.cache_dir)
        return await self._run(trigger="start", installed=True, force=True)

    async def reload(self, trigger: Trigger = "request") -> ReloadReport:
        """Rescan installed distributions and the plugin directory now; try failed plugins
        again. Starts the watcher again when it had stopped (e.g. the directory was replaced)."""
        report = await self._run(trigger=trigger, installed=True, force=True)
        if self._want_watch and self._needs_rewatch():
            await self._stop_watch()
            await self.start_watching()
        return report

    async def start_watching(self, timeout: float = 10.0) -> bool:
        """Follow the plugin directory. Returns once the watch is live (True), or False when
        there is nothing to watch or it could not start (logged)."""
        if self.watching:
            return True
        if self.plugin_dir is None:
            return False
        self._want_watch = True
        try:
            st = os.stat(self.plugin_dir)
        except OSError as exc:
            self._warn(
                "Not watching the plugin directory: {}; create it, then send SIGHUP",
                exc.strerror or type(exc).__name__,
            )
            return False  # reload() tries again
        loop = asyncio.get_running_loop()
        live = asyncio.Event()

        def on_first_poll() -> None:
            try:
                loop.call_soon_threadsafe(live.set)
            except RuntimeError:  # the loop is closing
                pass

        self._closing = False
        self._stop_flag = _StopFlag(on_first_poll)
        self._watched = (st.st_dev, st.st_ino)
        self._watch_task = asyncio.create_task(self._watch(self._stop_flag))
        if self._apply_task is None or self._apply_task.done():
            self._apply_task = asyncio.create_task(self._apply_loop())
        waiter = asyncio.create_task(live.wait())
        done, _ = await asyncio.wait(
            {waiter, self._watch_task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if waiter not in done:
            waiter.cancel()
            if self._watch_task not in done:
                self._warn("The plugin directory watcher did not start within {}s", f"{timeout:g}")
            await self._stop_watch()
            return False
        # Whatever changed between the first load and now is picked up here.
        await self._run(trigger="watch", installed=False, force=False)
        if self.log:
            logger.info(
                "Watching the plugin directory",
                plugin_dir=str(self.plugin_dir),
                step_ms=self.step_ms,
                quiet_ms=self.quiet_ms,
            )
        return True

    async def stop(self) -> None:
        """Stop watching; a rescan under way finishes first."""
        await self._stop_watch()
        self._closing = True
        self._wake.set()
        if self._apply_task is not None:
            await self._apply_task
            self._apply_task = None
        async with self._lock:
            pass

    # --- watching ------------------------------------------------------------------------------

    def _needs_rewatch(self) -> bool:
        if self._watch_task is None or self._watch_task.done() or self.plugin_dir is None:
            return True
        try:
            st = os.stat(self.plugin_dir)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) != self._watched

    async def _stop_watch(self) -> None:
        if self._stop_flag is not None:
            self._stop_flag.set()
        if self._watch_task is not None:
            await self._watch_task
            self._watch_task = None

    def _relevant(self, _change: watchfiles.Change, path: str) -> bool:
        assert self.plugin_dir is not None
        roots = {str(root) for root in plugin_roots(self.plugin_dir)}
        return path in roots or (
            os.path.dirname(path) in roots and is_plugin_name(os.path.basename(path))
        )

    async def _watch(self, stop: _StopFlag) -> None:
        assert self.plugin_dir is not None
        try:
            async for batch in watchfiles.awatch(
                self.plugin_dir,
                watch_filter=self._relevant,
                step=self.step_ms,
                debounce=self.max_delay_ms,
                stop_event=stop,
                recursive=True,
                # Not True: watchfiles then ignores every error adding the watch (a missing
                # directory too) and the watch is silently dead. A failure is one warning.
                ignore_permission_denied=False,
            ):
                self._pending.update(path for _, path in batch)
                self._wake.set()
        except Exception as exc:  # e.g. the directory went away under the watch
            if not stop.stopped:
                self._warn(
                    "Stopped watching the plugin directory: {}; send SIGHUP to rescan and "
                    "watch it again",
                    _describe_error(exc),
                )

    async def _apply_loop(self) -> None:
        quiet = self.quiet_ms / 1000
        while True:
            await self._wake.wait()
            if self._closing:
                return
            deadline = asyncio.get_running_loop().time() + self.max_delay_ms / 1000
            while True:  # gather the burst: until quiet for `quiet`, at most `max_delay_ms`
                self._wake.clear()
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), min(quiet, remaining))
                except TimeoutError:
                    break
                if self._closing:
                    return
            paths, self._pending = frozenset(self._pending), set()
            try:
                await self._run(trigger="watch", installed=False, force=False, hinted=paths)
            except Exception as exc:  # a bug of ours must not end the watching
                logger.opt(exception=exc).error("Plugin reload failed: {}", _describe_error(exc))

    # --- rescans -------------------------------------------------------------------------------

    async def _run(
        self,
        *,
        trigger: Trigger,
        installed: bool,
        force: bool,
        hinted: frozenset[str] = frozenset(),
    ) -> ReloadReport:
        async with self._lock:
            report = await asyncio.to_thread(
                self.rescan, trigger=trigger, installed=installed, force=force, hinted=hinted
            )
        if report.changed_registry or trigger == "start":
            for listener in list(self.listeners):
                try:
                    listener(report)
                except Exception as exc:
                    logger.opt(exception=exc).error(
                        "A plugin reload listener failed: {}", _describe_error(exc)
                    )
        return report

    def rescan(
        self,
        *,
        trigger: Trigger = "request",
        installed: bool = True,
        force: bool = True,
        hinted: frozenset[str] = frozenset(),
    ) -> ReloadReport:
        """Bring the registry in step (synchronous; the async methods run it in a thread, one
        at a time). `force` tries failed plugins again; `hinted` are paths known to have changed."""
        started = time.perf_counter()
        before = {node.name: node for node in self.registry.all()}
        changes = _Changes()
        if installed:
            self._sync_installed(changes, first=trigger == "start")
        if self.plugin_dir is not None:
            self._sync_dir(self.plugin_dir, changes, force=force, hinted=hinted)
        self._drop_unused_modules()
        after = {node.name: node for node in self.registry.all()}
        nodes_added = sorted(set(after) - set(before))
        nodes_removed = sorted(set(before) - set(after))
        nodes_changed = sorted(n for n in set(before) & set(after) if before[n] is not after[n])
        if nodes_added or nodes_removed or nodes_changed:
            self.generation += 1
        report = ReloadReport(
            generation=self.generation,
            trigger=trigger,
            added=tuple(changes.added),
            changed=tuple(changes.changed),
            removed=tuple(changes.removed),
            nodes_added=tuple(nodes_added),
            nodes_changed=tuple(nodes_changed),
            nodes_removed=tuple(nodes_removed),
            problems=tuple(changes.problems),
            warnings=tuple(changes.warnings),
            duration=time.perf_counter() - started,
        )
        self._log_report(report)
        return report

    def _log_report(self, report: ReloadReport) -> None:
        if not self.log:
            return
        fields = {
            "generation": report.generation,
            "trigger": report.trigger,
            "duration_ms": round(report.duration * 1000, 1),
            "failed": [p.source.name for p in report.problems],
        }
        if report.trigger == "start":
            logger.info(
                "Nodes loaded",
                nodes=self.registry.names(),
                plugins=[p.name for p in self.plugins()],
                **fields,
            )
        elif report.changed_registry or report.trigger != "watch":
            logger.info(
                "Plugins reloaded",
                added=list(report.added),
                changed=list(report.changed),
                removed=list(report.removed),
                nodes_added=list(report.nodes_added),
                nodes_changed=list(report.nodes_changed),
                nodes_removed=list(report.nodes_removed),
                **fields,
            )
        else:
            logger.debug("Plugin directory changed; nothing to reload", **fields)

    def _warn(self, message: str, *args: str) -> None:
        if self.log:
            logger.warning(message, *args, plugin_dir=str(self.plugin_dir))

    def _fail(self, changes: _Changes, source: PluginSource, message: str) -> None:
        problem = LoadProblem(source, message)
        changes.problems.append(problem)
        if self.log:
            logger.error(
                "Plugin failed to load: {}",
                str(problem),
                plugin=source.name,
                distribution=source.distribution,
                version=source.version,
                origin=source.origin,
                waterflow_version=__version__,
            )

    def _owner(self, name: str, *, besides: Path | None = None) -> str | None:
        """Who else has plugin `name` in the registry, described; None when nobody does."""
        version = self._installed.get(name)
        if version is not None:
            return f"the distribution {version.source.describe()}"
        for path, state in self._files.items():
            if path != besides and name in state.plugins:
                return f"the plugin file {path}"
        return None

    def _install(self, source: PluginSource, plugin: object) -> list[RegisteredNode]:
        nodes = collect_nodes(plugin, source, trace=self._trace)
        self.registry.replace_plugin(source.name, nodes)
        return nodes

    def _remove(self, changes: _Changes, name: str) -> None:
        self.registry.remove_plugin(name)
        changes.removed.append(name)

    # --- installed distributions ---------------------------------------------------------------

    def _sync_installed(self, changes: _Changes, *, first: bool) -> None:
        invalidate_caches()
        seen: dict[str, PluginSource] = {}
        entry_points = sorted(
            importlib_metadata.entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: (ep.name, ep.dist.name if ep.dist is not None else ""),
        )
        for ep in entry_points:
            source = entry_point_source(ep)
            other = seen.get(source.name)
            if other is not None:
                self._fail(
                    changes,
                    source,
                    f"plugin name {source.name!r} is also declared by {other.describe()}; "
                    "uninstall or block one of them (WATERFLOW_DISABLE_PLUGINS)",
                )
                continue
            seen[source.name] = source
            if not plugin_allowed(source, self.env):
                if self.log and first:
                    logger.info(
                        "Plugin skipped by WATERFLOW_DISABLE_PLUGINS/WATERFLOW_LOAD_PLUGINS",
                        plugin=source.name,
                        distribution=source.distribution,
                    )
                continue
            key = (source.distribution, source.version, ep.value)
            current = self._installed.get(source.name)
            if current is not None and current.key == key:
                continue
            owner = self._owner(source.name)
            if current is None and owner is not None:
                self._fail(
                    changes, source, f"plugin name {source.name!r} is already used by {owner}"
                )
                continue
            tried = self._attempted.get(source.name)
            if (
                tried is not None
                and tried != key
                and ep.module.split(".", 1)[0] not in _NEVER_DROPPED
            ):
                drop_modules(ep.module)  # another version than the one imported: afresh
            self._attempted[source.name] = key
            try:
                self._install(source, plugin_object(ep.load()))
            except (Exception, SystemExit) as exc:  # the agent never dies of a plugin
                self._fail(changes, source, _describe_error(exc))
                continue
            (changes.changed if current is not None else changes.added).append(source.name)
            self._installed[source.name] = _Version(source, key, None)
        for name in [n for n in self._installed if n not in seen]:
            del self._installed[name]
            self._attempted.pop(name, None)
            self._remove(changes, name)

    # --- the plugin directory ------------------------------------------------------------------

    def _sync_dir(
        self, plugin_dir: Path, changes: _Changes, *, force: bool, hinted: frozenset[str]
    ) -> None:
        scan = scan_plugin_dir(plugin_dir)
        if scan.missing:
            if self.log and not self._dir_missing_logged:
                logger.debug("No plugin directory", plugin_dir=str(plugin_dir))
            self._dir_missing_logged = True
        else:
            self._dir_missing_logged = False
        if scan.problems != self._dir_problems or (force and scan.problems):
            for problem in scan.problems:
                self._warn("Plugin directory skipped: {}", problem)
        self._dir_problems = scan.problems
        changes.warnings.extend(scan.problems)
        present = set(scan.files)
        removed_any = False
        for path in list(self._files):
            if path in present or not (scan.missing or path.parent in scan.scanned):
                continue  # still there, or its directory could not be read: keep it
            removed_any |= self._drop_file(path, changes)
        for path in scan.files:
            self._sync_file(path, changes, retry=force or removed_any, hinted=hinted)

    def _drop_file(self, path: Path, changes: _Changes) -> bool:
        state = self._files.pop(path)
        for name in state.plugins:
            self._remove(changes, name)
        return bool(state.plugins)

    def _file_source(self, plugin_file: PluginFile) -> PluginSource:
        return PluginSource(
            plugin_file.stem,
            str(plugin_file.path),
            mtime_version(plugin_file.mtime),
            origin=str(plugin_file.path),
        )

    def _sync_file(
        self, path: Path, changes: _Changes, *, retry: bool, hinted: frozenset[str]
    ) -> None:
        state = self._files.get(path)
        try:
            fingerprint = _fingerprint(os.stat(path))
        except FileNotFoundError:
            if state is not None:
                self._drop_file(path, changes)
            return
        except OSError:
            fingerprint = None
        if state is None:
            state = self._files[path] = _FileState()
        elif (
            state.fingerprint == fingerprint
            and str(path) not in hinted
            and not (retry and state.failed)
        ):
            return  # unchanged
        stand_in = PluginSource(
            path.stem,
            str(path),
            mtime_version(fingerprint[3] / 1e9) if fingerprint else "?",
            origin=str(path),
        )
        try:
            plugin_file = read_plugin_file(path)
        except FileNotFoundError:
            self._drop_file(path, changes)
            return
        except (PluginFileError, OSError) as exc:
            message = str(exc) if isinstance(exc, PluginFileError) else _describe_error(exc)
            self._fail(changes, stand_in, message + _kept(state))
            state.fingerprint, state.digest, state.failed = fingerprint, None, True
            return
        if state.digest == plugin_file.digest and not (retry and state.failed):
            state.fingerprint = fingerprint  # touched, same bytes
            return
        state.fingerprint, state.digest = fingerprint, plugin_file.digest
        if plugin_file.is_wheel:
            state.failed = not self._load_wheel(plugin_file, state, changes)
        else:
            state.failed = not self._load_module(plugin_file, state, changes)

    def _admit(self, source: PluginSource, path: Path, changes: _Changes) -> bool | None:
        """True: load it. None: skipped by the environment switches. False: refused (logged)."""
        if not plugin_allowed(source, self.env):
            if self.log:
                logger.info(
                    "Plugin skipped by WATERFLOW_DISABLE_PLUGINS/WATERFLOW_LOAD_PLUGINS",
                    plugin=source.name,
                    origin=source.origin,
                )
            return None
        owner = self._owner(source.name, besides=path)
        if owner is not None:
            self._fail(
                changes,
                source,
                f"plugin name {source.name!r} is already used by {owner}; rename {path}",
            )
            return False
        return True

    def _swap(
        self,
        changes: _Changes,
        state: _FileState,
        source: PluginSource,
        plugin: object,
        key: tuple[str, ...],
        module_root: str,
    ) -> bool:
        try:
            self._install(source, plugin)
        except (Exception, SystemExit) as exc:
            where = "" if source.distribution == source.origin else f"{source.origin}: "
            message = f"{where}{_describe_error(exc)}{_kept(state, source.name)}"
            self._fail(changes, source, message)
            return False
        had = source.name in state.plugins
        state.plugins[source.name] = _Version(source, key, module_root)
        (changes.changed if had else changes.added).append(source.name)
        return True

    def _load_module(self, plugin_file: PluginFile, state: _FileState, changes: _Changes) -> bool:
        source = self._file_source(plugin_file)
        admitted = self._admit(source, plugin_file.path, changes)
        if not admitted:
            return admitted is None
        try:
            imported, module = import_module_file(plugin_file)
        except (Exception, SystemExit) as exc:
            self._fail(changes, source, _describe_error(exc) + _kept(state, source.name))
            return False
        self._module_roots.add(imported.module_root)
        source = attrs.evolve(source, version=file_version(module, plugin_file.mtime))
        return self._swap(
            changes, state, source, imported.plugin, (plugin_file.digest,), imported.module_root
        )

    def _load_wheel(self, plugin_file: PluginFile, state: _FileState, changes: _Changes) -> bool:
        stand_in = self._file_source(plugin_file)
        try:
            archive, info = read_wheel(plugin_file)
            with archive:
                root = extract_wheel(plugin_file, archive, self.cache_dir)
        except (PluginFileError, OSError) as exc:
            message = str(exc) if isinstance(exc, PluginFileError) else _describe_error(exc)
            self._fail(changes, stand_in, message + _kept(state))
            return False
        importer = WheelImporter(root)
        ok = True
        names: set[str] = set()
        for ep in info.entry_points:
            source = PluginSource(ep.name, info.name, info.version, origin=str(plugin_file.path))
            names.add(ep.name)
            admitted = self._admit(source, plugin_file.path, changes)
            if not admitted:
                ok &= admitted is None
                continue
            try:
                imported = importer.load(ep)
                plugin = plugin_object(imported.plugin)
            except (Exception, SystemExit) as exc:
                error = str(exc) if isinstance(exc, PluginFileError) else _describe_error(exc)
                message = f"{plugin_file.path}: {error}{_kept(state, ep.name)}"
                self._fail(changes, source, message)
                ok = False
                continue
            self._module_roots.add(imported.module_root)
            ok &= self._swap(
                changes, state, source, plugin, (plugin_file.digest,), imported.module_root
            )
        for name in [n for n in state.plugins if n not in names]:
            del state.plugins[name]
            self._remove(changes, name)
        return ok

    def _drop_unused_modules(self) -> None:
        used = {
            version.module_root
            for state in self._files.values()
            for version in state.plugins.values()
        }
        for root in self._module_roots - used:
            drop_modules(root)
        self._module_roots &= used
