"""Which `node` runs a JavaScript action, and provisioning one major version into the cache.

Order: the path configured for the major (`WATERFLOW_GHA_NODE<major>` or
`WATERFLOW_GHA_NODES`), the copy provisioned into the cache (`<cache>/node/<major>/bin/node`),
the `node` on the step's PATH when it is that major, a copy provisioned now from the npm
package `node-linux-<arch>@<major>` (unless offline or WATERFLOW_GHA_PROVISION_NODE=false),
and last the `node` on PATH whatever its major, saying so in the step log.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from waterflow import NodeError
from waterflow_nodes_gha._settings import Settings

# filelock and tarfile are imported when a Node is provisioned (rare), not when the agent loads
# this plugin.

NPM_TIMEOUT = 900.0
_versions: dict[tuple[str, float], str] = {}


@attrs.frozen
class NodeChoice:
    path: Path
    version: str  # e.g. v24.1.0
    fallback: bool = False

    @property
    def major(self) -> int:
        return major_of(self.version)


def major_of(version: str) -> int:
    head = version.strip().lstrip("v").split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def npm_package(major: int) -> str:
    """The npm package that carries the Node binary for this machine."""
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"node-linux-{arch}@{major}"


def cached_node(cache_dir: Path, major: int) -> Path:
    return cache_dir / "node" / str(major) / "bin" / "node"


def node_version(path: Path) -> str:
    """`node --version` of a binary (remembered per path and modification time)."""
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError as exc:
        raise NodeError(f"node {str(path)!r}: {exc.strerror}", retryable=False) from None
    if key not in _versions:
        try:
            done = subprocess.run(
                [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NodeError(f"node {str(path)!r} does not run: {exc}", retryable=False) from None
        if done.returncode != 0 or not done.stdout.startswith("v"):
            raise NodeError(
                f"node {str(path)!r} --version failed: {(done.stderr or done.stdout).strip()}",
                retryable=False,
            )
        _versions[key] = done.stdout.strip()
    return _versions[key]


def provision_node(
    cache_dir: Path, major: int, *, log: Callable[[str], None], npm: str = "npm"
) -> Path:
    """Put Node `major` into the cache from its npm package, once; return the binary's path.

    Runs `npm pack node-linux-<arch>@<major>` (npm's own registry settings apply) and keeps
    `package/bin/node`. Concurrent callers wait for one another (file lock, atomic rename).
    Raises NodeError with one line when it cannot.
    """
    binary = cached_node(cache_dir, major)
    if binary.is_file():
        return binary
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise NodeError(f"cannot provision node{major}: npm is not on PATH", retryable=False)
    import tarfile

    import filelock

    home = binary.parent.parent
    home.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(home) + ".lock", timeout=NPM_TIMEOUT):
        if binary.is_file():
            return binary
        package = npm_package(major)
        log(f"provisioning node{major} from the npm package {package} into {home}")
        staging = Path(tempfile.mkdtemp(prefix=f".node{major}-", dir=home.parent))
        try:
            try:
                done = subprocess.run(
                    [npm_path, "pack", package, "--pack-destination", str(staging), "--silent"],
                    cwd=staging,
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise NodeError(f"cannot provision node{major}: npm pack: {exc}") from None
            archives = sorted(staging.glob("*.tgz"))
            if done.returncode != 0 or not archives:
                why = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
                raise NodeError(f"cannot provision node{major}: npm pack {package}: {why}")
            tree = staging / "tree"
            (tree / "bin").mkdir(parents=True)
            try:
                with tarfile.open(archives[0], "r:gz") as tar:
                    member = tar.getmember("package/bin/node")
                    source = tar.extractfile(member)
                    if source is None:
                        raise KeyError("package/bin/node")
                    with source, (tree / "bin" / "node").open("wb") as out:
                        shutil.copyfileobj(source, out)
            except (KeyError, tarfile.TarError, OSError) as exc:
                raise NodeError(
                    f"cannot provision node{major}: {package} has no package/bin/node ({exc})",
                    retryable=False,
                ) from None
            os.chmod(tree / "bin" / "node", 0o755)
            version = node_version(tree / "bin" / "node")
            if major_of(version) != major:
                raise NodeError(
                    f"cannot provision node{major}: {package} holds node {version}",
                    retryable=False,
                )
            os.rename(tree, home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log(f"node{major} ({node_version(binary)}) provisioned at {binary}")
    return binary


async def choose_node(
    major: int, settings: Settings, env: Mapping[str, str], log: Callable[[str], None]
) -> NodeChoice:
    """The node binary for a `node<major>` action (see the module's docstring for the order)."""
    configured = settings.node_paths.get(major)
    if configured is not None:
        if not configured.is_file():
            raise NodeError(
                f"node{major} is configured as {str(configured)!r}, which does not exist",
                retryable=False,
            )
        return NodeChoice(configured, await asyncio.to_thread(node_version, configured))
    cached = cached_node(settings.cache_dir, major)
    if cached.is_file():
        return NodeChoice(cached, await asyncio.to_thread(node_version, cached))
    found = shutil.which("node", path=env.get("PATH"))
    on_path = None
    if found is not None:
        on_path = NodeChoice(Path(found), await asyncio.to_thread(node_version, Path(found)))
        if on_path.major == major:
            return on_path
    problem = ""
    if settings.offline:
        problem = "WATERFLOW_GHA_OFFLINE is set"
    elif not settings.provision_node:
        problem = "WATERFLOW_GHA_PROVISION_NODE is false"
    else:
        try:
            path = await asyncio.to_thread(provision_node, settings.cache_dir, major, log=log)
            return NodeChoice(path, await asyncio.to_thread(node_version, path))
        except NodeError as exc:
            problem = exc.message
    if on_path is None:
        raise NodeError(
            f"this action needs node{major}, and there is none: no WATERFLOW_GHA_NODE{major}, "
            f"nothing provisioned ({problem}), no node on PATH",
            retryable=False,
        )
    log(
        f"this action wants node{major}, which is not available here ({problem}); falling "
        f"back to node {on_path.version} at {on_path.path} (run `waterflow-gha setup-node "
        f"{major}` or set WATERFLOW_GHA_NODE{major})"
    )
    return attrs.evolve(on_path, fallback=True)


__all__ = ["NodeChoice", "choose_node", "major_of", "node_version", "npm_package", "provision_node"]
