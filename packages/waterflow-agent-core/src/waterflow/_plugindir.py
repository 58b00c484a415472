"""Plugins dropped into the agent's plugin directory (`agent.plugin_dir`).

Where: `<plugin_dir>/core/`, `<plugin_dir>/custom/` and `<plugin_dir>` itself, in that order; when
two files give one plugin name, the one found first wins and the other is refused. What:

- a module `name.py` that implements the hooks: plugin `name`, its distribution shown as the
  file's path, its version the module's `__version__` or else the file's modification time;
- a pure-Python wheel `*.whl`: its `waterflow.nodes` entry points (read from the wheel's own
  `*.dist-info/entry_points.txt`) name its plugins, its METADATA gives name and version.

Files whose name starts with `.` or `_` are not plugins (editor files, helpers).

Trust, as sshd trusts an `authorized_keys` file: a plugin file, the plugin directory and each of
their parents up to `/` must be owned by root or the agent's user and not be writable by group or
others. A parent may be world-writable only when it is root's and sticky (like `/tmp`). Anything
else is refused with one line that names the path, why, and the fix.

Each load imports the code under a new private module name, so that a changed file really is
imported again while the old module stays alive for the steps still running it. A module file is
read once and executed from those bytes; a wheel is extracted once into a private cache
directory named after its SHA-256 and imported from there.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import itertools
import os
import pwd
import re
import shutil
import stat
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import attrs
import importlib_metadata

from waterflow._plugins import ENTRY_POINT_GROUP

__all__ = [
    "PLUGIN_SUBDIRS",
    "DirScan",
    "ImportedPlugin",
    "PluginFile",
    "PluginFileError",
    "WheelImporter",
    "WheelInfo",
    "check_directory",
    "drop_modules",
    "extract_wheel",
    "file_version",
    "import_module_file",
    "is_plugin_name",
    "mtime_version",
    "plugin_roots",
    "prune_cache",
    "read_plugin_file",
    "read_wheel",
    "scan_plugin_dir",
]

#: Subdirectories of the plugin directory that hold plugins, before the directory itself.
PLUGIN_SUBDIRS = ("core", "custom")
MODULE_SUFFIX = ".py"
WHEEL_SUFFIX = ".whl"
#: Prefix of the private module names plugin files are imported under.
MODULE_PREFIX = "waterflow_plugin_"

_counter = itertools.count(1)


class PluginFileError(Exception):
    """A plugin file or directory that cannot be used, in one line that names it."""


# --- trust -------------------------------------------------------------------------------------


@functools.cache
def _agent_user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _distrust(st: os.stat_result, path: Path, *, parent: bool) -> tuple[str, str] | None:
    """(why, fix) when `path` may not be trusted, None when it may."""
    uid = os.geteuid()
    if st.st_uid not in (0, uid):
        try:
            owner = f"{pwd.getpwuid(st.st_uid).pw_name} (uid {st.st_uid})"
        except KeyError:
            owner = f"uid {st.st_uid}"
        return (
            f"is owned by {owner}, not by root or the agent's user ({_agent_user()})",
            f"chown {'root' if uid == 0 else _agent_user()} {path}",
        )
    writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not writable:
        return None
    if parent and st.st_uid == 0 and st.st_mode & stat.S_ISVTX and stat.S_ISDIR(st.st_mode):
        return None  # /tmp and its kind: only owners may remove or rename entries
    who = {
        stat.S_IWGRP: "group",
        stat.S_IWOTH: "others",
    }.get(writable, "group and others")
    return f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})", f"chmod go-w {path}"


def check_directory(directory: Path, *, what: str = "plugin directory") -> Path:
    """Check `directory` and each of its parents; return its resolved path.

    Raises FileNotFoundError when it does not exist, NotADirectoryError, PermissionError, or
    PluginFileError (one line: which path, why, the fix) when it may not be trusted.
    """
    real = Path(os.path.realpath(directory))
    st = os.stat(real)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{what} {directory} is not a directory")
    problem = _distrust(st, real, parent=False)
    if problem is not None:
        why, fix = problem
        raise PluginFileError(f"{what} {real} {why}; refusing to load plugins from it: {fix}")
    for parent in real.parents:
        problem = _distrust(os.stat(parent), parent, parent=True)
        if problem is not None:
            why, fix = problem
            raise PluginFileError(
                f"{parent}, a parent of the {what} {real}, {why}; "
                f"refusing to load plugins from {real}: {fix}"
            )
    return real


# --- finding plugin files ----------------------------------------------------------------------


def plugin_roots(plugin_dir: Path) -> list[Path]:
    """The directories that hold plugin files, in load order."""
    return [plugin_dir / sub for sub in PLUGIN_SUBDIRS] + [plugin_dir]


def is_plugin_name(name: str) -> bool:
    """Whether a file name in a plugin root names a plugin file."""
    return not name.startswith((".", "_")) and name.endswith((MODULE_SUFFIX, WHEEL_SUFFIX))


@attrs.frozen
class DirScan:
    """What a look at the plugin directory found.

    `files` are the plugin files in load order. `scanned` are the roots that were read: a file
    that was loaded from one of them and is no longer in `files` is gone. `problems` are one
    line each (a refused or unreadable directory). `missing`: the plugin directory does not exist.
    """

    files: tuple[Path, ...] = ()
    scanned: frozenset[Path] = frozenset()
    problems: tuple[str, ...] = ()
    missing: bool = False


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def scan_plugin_dir(plugin_dir: Path) -> DirScan:
    """List the plugin files of `plugin_dir` (see the module docstring), checking trust."""
    try:
        check_directory(plugin_dir)
        top = sorted(os.listdir(plugin_dir))
    except FileNotFoundError:
        return DirScan(missing=True)
    except (PluginFileError, NotADirectoryError) as exc:
        return DirScan(problems=(str(exc),))
    except OSError as exc:
        return DirScan(problems=(f"cannot read plugin directory {plugin_dir}: {_os_reason(exc)}",))
    files: list[Path] = []
    scanned: set[Path] = set()
    problems: list[str] = []
    for root in plugin_roots(plugin_dir):
        if root == plugin_dir:
            names = top
        elif root.name not in top:
            scanned.add(root)  # missing: whatever came from it is gone
            continue
        else:
            try:
                check_directory(root)
                names = sorted(os.listdir(root))
            except (PluginFileError, NotADirectoryError) as exc:
                problems.append(str(exc))
                continue
            except OSError as exc:
                problems.append(f"cannot read plugin directory {root}: {_os_reason(exc)}")
                continue
        scanned.add(root)
        files.extend(root / name for name in names if is_plugin_name(name))
    return DirScan(tuple(files), frozenset(scanned), tuple(problems))


# --- reading one file --------------------------------------------------------------------------


@attrs.frozen
class PluginFile:
    """The bytes of one plugin file, read once, and what identifies them."""

    path: Path
    data: bytes = attrs.field(repr=False)
    digest: str
    mtime: float

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def is_wheel(self) -> bool:
        return self.path.suffix == WHEEL_SUFFIX


def read_plugin_file(path: Path) -> PluginFile:
    """Read a plugin file after checking that it may be trusted.

    Raises PluginFileError (refused, or not a regular file), FileNotFoundError (gone) or another
    OSError.
    """
    real = Path(os.path.realpath(path))
    if real.parent != Path(os.path.realpath(path.parent)):
        # A link to a file elsewhere: that directory must be trustworthy as well.
        try:
            check_directory(real.parent, what="directory of plugin file")
        except PluginFileError as exc:
            raise PluginFileError(f"plugin file {path} links to {real}: {exc}") from None
    # O_NONBLOCK: a FIFO named like a plugin must not stall the agent until someone writes.
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PluginFileError(f"plugin file {path} is not a regular file")
        problem = _distrust(st, path, parent=False)
        if problem is not None:
            why, fix = problem
            raise PluginFileError(f"plugin file {path} {why}; refusing to load it: {fix}")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return PluginFile(path, data, hashlib.sha256(data).hexdigest(), st.st_mtime)


def mtime_version(mtime: float) -> str:
    """A modification time as a version: `2026-05-09T07:35:25Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


def file_version(module: types.ModuleType, mtime: float) -> str:
    """A module file's version: its `__version__`, or else its modification time (UTC)."""
    declared = getattr(module, "__version__", None)
    if isinstance(declared, str) and declared.strip():
        return declared.strip()
    return mtime_version(mtime)


def _private_name(name: str) -> str:
    return f"{MODULE_PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{next(_counter)}"


def drop_modules(root: str) -> None:
    """Forget the module `root` and its submodules (objects still in use stay alive)."""
    prefix = root + "."
    for name in [n for n in list(sys.modules) if n == root or n.startswith(prefix)]:
        sys.modules.pop(name, None)


class _SnapshotLoader(importlib.abc.Loader):
    """Executes the bytes that were read and checked, never a later state of the file."""

    def __init__(self, path: Path, data: bytes) -> None:
        self._path = path
        self._data = data

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        code = compile(self._data, str(self._path), "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname: str) -> str:
        return importlib.util.decode_source(self._data)


@attrs.frozen
class ImportedPlugin:
    """A plugin object imported from a file, and the private module tree it lives in."""

    name: str
    plugin: object
    module_root: str


def _exec_fresh(spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        assert spec.loader is not None
        spec.loader.exec_module(module)
    except BaseException:
        drop_modules(spec.name)
        raise
    return module


def import_module_file(plugin_file: PluginFile) -> tuple[ImportedPlugin, types.ModuleType]:
    """Import a `.py` plugin file under a new private name; its module is the plugin."""
    name = _private_name(plugin_file.stem)
    spec = importlib.machinery.ModuleSpec(
        name, _SnapshotLoader(plugin_file.path, plugin_file.data), origin=str(plugin_file.path)
    )
    spec.has_location = True  # sets __file__, so tracebacks and inspect name the file
    module = _exec_fresh(spec)
    return ImportedPlugin(plugin_file.stem, module, name), module


# --- wheels ------------------------------------------------------------------------------------


@attrs.frozen
class WheelInfo:
    """What a wheel's own `*.dist-info` says."""

    name: str
    version: str
    entry_points: tuple[importlib_metadata.EntryPoint, ...]


class _WheelMetadata(importlib_metadata.Distribution):
    """A wheel's own `*.dist-info`, read from the archive: nothing is installed."""

    def __init__(self, archive: zipfile.ZipFile, info_dir: str) -> None:
        self._archive = archive
        self._info_dir = info_dir

    def read_text(self, filename: str | os.PathLike[str]) -> str | None:
        try:
            data = self._archive.read(f"{self._info_dir}/{os.fspath(filename)}")
        except KeyError:
            return None
        return data.decode("utf-8", errors="replace")

    def locate_file(self, path: str | os.PathLike[str]) -> NoReturn:
        raise NotImplementedError("the files of a wheel in the plugin directory are not installed")


def _unsafe_member(name: str) -> bool:
    member = PurePosixPath(name)
    drive = bool(member.parts) and ":" in member.parts[0]
    return member.is_absolute() or ".." in member.parts or "\\" in name or drive


def read_wheel(plugin_file: PluginFile) -> tuple[zipfile.ZipFile, WheelInfo]:
    """Open a wheel from its bytes and read its metadata; PluginFileError says what is wrong."""
    where = plugin_file.path
    try:
        archive = zipfile.ZipFile(io.BytesIO(plugin_file.data))
    except zipfile.BadZipFile as exc:
        raise PluginFileError(f"{where} is not a wheel: {exc}") from None
    names = archive.namelist()
    bad = next((n for n in names if _unsafe_member(n)), None)
    if bad is not None:
        raise PluginFileError(f"{where} holds a file outside the wheel ({bad!r}); refusing it")
    infos = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")})
    if len(infos) != 1:
        found = ", ".join(infos) or "none"
        raise PluginFileError(f"{where}: a wheel has one *.dist-info directory; found {found}")
    dist = _WheelMetadata(archive, infos[0])
    wheel_text = dist.read_text("WHEEL") or ""
    fields = [line.partition(":") for line in wheel_text.splitlines()]
    purelib = any(k.strip() == "Root-Is-Purelib" and v.strip() == "true" for k, _, v in fields)
    tags = [v.strip() for k, _, v in fields if k.strip() == "Tag"]
    impure = next((t for t in tags if not t.endswith("-none-any")), None)
    if not purelib or impure is not None or not tags:
        tag = impure or (tags[0] if tags else "none declared")
        raise PluginFileError(
            f"{where} is not a pure-Python wheel (tag {tag}); only pure-Python wheels load "
            "from the plugin directory: pip install the others"
        )
    metadata = dist.metadata
    name = metadata.get("Name") if metadata is not None else None
    version = metadata.get("Version") if metadata is not None else None
    if not name or not version:
        raise PluginFileError(f"{where}: {infos[0]}/METADATA gives no Name and Version")
    entry_points = tuple(dist.entry_points.select(group=ENTRY_POINT_GROUP))
    if not entry_points:
        raise PluginFileError(
            f"{where} declares no {ENTRY_POINT_GROUP!r} entry point in {infos[0]}/entry_points.txt"
        )
    return archive, WheelInfo(str(name), str(version), entry_points)


def _ensure_cache(cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        check_directory(cache_dir, what="plugin cache directory")
    except OSError as exc:
        raise PluginFileError(f"plugin cache directory {cache_dir}: {_os_reason(exc)}") from None


def extract_wheel(plugin_file: PluginFile, archive: zipfile.ZipFile, cache_dir: Path) -> Path:
    """The wheel's files in `cache_dir/<sha256>`, extracted now unless they already are."""
    _ensure_cache(cache_dir)
    target = cache_dir / plugin_file.digest
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{plugin_file.digest[:16]}-", dir=cache_dir))
    try:
        archive.extractall(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():  # not another agent that got there first
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def prune_cache(cache_dir: Path, keep: Iterable[str] = ()) -> None:
    """Remove extracted wheels other than `keep` (digests); at agent start nothing uses them."""
    wanted = set(keep)
    try:
        entries = list(cache_dir.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name not in wanted and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


class WheelImporter:
    """Imports the entry points of one load of a wheel from its extracted files.

    The top-level module of each entry point is imported under a new private name; its own
    modules are reached through it, so they must import each other relatively (`from . import`).
    Entry points that share a top-level package share one import of it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._aliases: dict[str, str] = {}

    def _top(self, top: str) -> str:
        alias = self._aliases.get(top)
        if alias is not None:
            return alias
        package = self.root / top / "__init__.py"
        module = self.root / f"{top}.py"
        alias = _private_name(top)
        if package.is_file():
            spec = importlib.util.spec_from_file_location(
                alias, package, submodule_search_locations=[str(package.parent)]
            )
        elif module.is_file():
            spec = importlib.util.spec_from_file_location(alias, module)
        else:
            raise PluginFileError(f"the wheel has no module {top!r} (no {top}/__init__.py)")
        assert spec is not None
        _exec_fresh(spec)
        self._aliases[top] = alias
        return alias

    def load(self, entry_point: importlib_metadata.EntryPoint) -> ImportedPlugin:
        top, _, rest = entry_point.module.partition(".")
        alias = self._top(top)
        obj: Any = importlib.import_module(f"{alias}.{rest}" if rest else alias)
        for part in (entry_point.attr or "").split("."):
            if part:
                obj = getattr(obj, part)
        return ImportedPlugin(entry_point.name, obj, alias)
