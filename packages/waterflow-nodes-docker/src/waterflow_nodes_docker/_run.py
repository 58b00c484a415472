"""docker/run: a command in a container, with the workspace mounted, its output in the step log,
its exit code the step's, and no container left behind, whatever happens to the step."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
import shlex
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import docker.errors  # type: ignore[import-untyped]

from waterflow import NodeError, NodeResult, StepContext
from waterflow_nodes_docker import _inputs
from waterflow_nodes_docker._engine import (
    Engine,
    LineWriter,
    api_error_message,
    last_line,
    may_pass,
    registry_problem,
    step_labels,
    threadsafe,
)
from waterflow_nodes_docker._metadata import FILE_COMMANDS_MOUNT, WORKSPACE_MOUNT

STOP_GRACE = 10
"""Seconds a cancelled step's container gets between SIGTERM and SIGKILL."""

_RUNNER_VARIABLES = ("CI", "WATERFLOW")
_RUNNER_PREFIXES = ("GITHUB_", "RUNNER_")
_UNSAFE_NAME = re.compile(r"[^a-zA-Z0-9_.-]+")


@attrs.frozen
class RunRequest:
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    working_dir: str | None
    user: str | None
    network: str | None
    binds: list[str]
    pull: str
    init: bool


def parse_volume(spec: str, workspace: Path) -> str:
    """A `src:dst[:ro|rw]` mount as the engine wants it; relative sources are in the workspace."""
    parts = spec.split(":")
    mode = parts[2] if len(parts) == 3 else "rw"
    if len(parts) not in (2, 3) or not parts[0] or not parts[1] or mode not in ("ro", "rw"):
        raise NodeError(
            f"volume {spec!r}: expected 'src:dst' or 'src:dst:ro' (src a path or a volume's "
            "name, dst an absolute path in the container)",
            retryable=False,
        )
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        raise NodeError(
            f"volume {spec!r}: the path in the container ({target!r}) must be absolute",
            retryable=False,
        )
    if not source.startswith("/") and (source.startswith(".") or "/" in source):
        source = str((workspace / source).resolve())
    return f"{source}:{target}:{mode}"


def _translate(value: str, mounts: Mapping[Path, str]) -> str | None:
    """A runner variable's value as the container sees it: host paths under a mount become
    paths in the container; other host paths mean nothing there (None)."""
    if not os.path.isabs(value):
        return value
    path = Path(value)
    for host, inside in mounts.items():
        if path == host or path.is_relative_to(host):
            relative = path.relative_to(host).as_posix()
            return inside if relative == "." else posixpath.join(inside, relative)
    return None


def container_env(
    context: StepContext, mount_workspace: bool, env: Mapping[str, str]
) -> dict[str, str]:
    """The runner's variables (CI, GITHUB_*, RUNNER_*, the env files), then the step's `env`."""
    files = context.files.as_environment()
    mounts = {context.files.output.parent: FILE_COMMANDS_MOUNT}
    if mount_workspace:
        mounts[context.workspace] = WORKSPACE_MOUNT
    out: dict[str, str] = {}
    for name, value in context.env.items():
        if name in _RUNNER_VARIABLES or name in files or name.startswith(_RUNNER_PREFIXES):
            translated = _translate(value, mounts)
            if translated is not None:
                out[name] = translated
    out.update(env)
    return out


def read_request(params: Mapping[str, Any], context: StepContext) -> RunRequest:
    image = _inputs.string(params, "image")
    if image is None:
        raise NodeError("parameter 'image' is required: the image to run", retryable=False)
    command = _inputs.argv(params, "command")
    args = _inputs.argv(params, "args")
    if command is not None and args is not None:
        raise NodeError(
            "give either command (one string) or args (a list of words), not both",
            retryable=False,
        )
    mount_workspace = _inputs.flag(params, "mount-workspace", True)
    working_dir = _inputs.string(params, "working-directory")
    if working_dir is not None and not working_dir.startswith("/"):
        if not mount_workspace:
            raise NodeError(
                f"working-directory {working_dir!r} must be absolute when the workspace is "
                "not mounted (mount-workspace: false)",
                retryable=False,
            )
        working_dir = posixpath.join(WORKSPACE_MOUNT, working_dir)
    if working_dir is None and mount_workspace:
        working_dir = WORKSPACE_MOUNT
    binds = [
        parse_volume(spec, context.workspace) for spec in _inputs.string_list(params, "volumes")
    ]
    binds.append(f"{context.files.output.parent}:{FILE_COMMANDS_MOUNT}:rw")
    if mount_workspace:
        binds.append(f"{context.workspace}:{WORKSPACE_MOUNT}:rw")
    pull = _inputs.string(params, "pull") or "missing"
    if pull not in ("missing", "always", "never"):
        raise NodeError(f"pull {pull!r} is not one of missing, always, never", retryable=False)
    return RunRequest(
        image=image,
        command=command if command is not None else args,
        entrypoint=_inputs.argv(params, "entrypoint"),
        env=container_env(context, mount_workspace, _inputs.string_map(params, "env")),
        working_dir=working_dir,
        user=_inputs.string(params, "user"),
        network=_inputs.string(params, "network"),
        binds=binds,
        pull=pull,
        init=_inputs.flag(params, "init", True),
    )


def container_name(context: StepContext) -> str:
    step = context.step
    run = _UNSAFE_NAME.sub("-", step.run_id)[:40].strip("-.")
    key = _UNSAFE_NAME.sub("-", step.step_id)[:30].strip("-.")
    return f"waterflow-{run}-{key}-{uuid.uuid4().hex[:8]}"


def _pull_blocking(api: Any, image: str, context: StepContext) -> None:
    for chunk in api.pull(image, stream=True, decode=True):
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise _PullFailed(last_line(str(chunk.get("error") or detail.get("message") or "")))
        status = chunk.get("status")
        if isinstance(status, str) and not chunk.get("progressDetail"):
            ident = chunk.get("id")
            context.log.stdout(f"{ident}: {status}" if ident else status)


class _PullFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def ensure_image(engine: Engine, image: str, policy: str, context: StepContext) -> None:
    """Make sure the engine has `image`, pulling it as `policy` says."""
    if policy != "always":
        try:
            await engine.call(engine.api.inspect_image, image)
            return
        except docker.errors.ImageNotFound:
            if policy == "never":
                raise NodeError(
                    f"image {image!r} is not on the Docker engine at {engine.address} "
                    "(pull: never): build or pull it first",
                    retryable=False,
                ) from None
    context.log.info(f"docker pull {image}")
    try:
        await engine.stream(lambda: _pull_blocking(engine.api, image, context), name="docker-pull")
    except (_PullFailed, docker.errors.APIError) as exc:
        message = exc.message if isinstance(exc, _PullFailed) else api_error_message(exc)
        retryable = registry_problem(message) in ("unreachable", "other")
        if policy == "always":
            raise NodeError(
                f"cannot pull image {image!r} (pull: always): {message}", retryable=retryable
            ) from None
        raise NodeError(
            f"image {image!r} is not on the Docker engine at {engine.address}, and pulling it "
            f"failed: {message}",
            retryable=retryable,
        ) from None


def _run_blocking(
    api: Any,
    container_id: str,
    context: StepContext,
    started: Callable[..., None],
) -> int:
    """Start the container and stream its output into the step log until it exits."""
    out = LineWriter(context.log.stdout)
    err = LineWriter(context.log.stderr)
    frames = api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
    try:
        api.start(container_id)
        started({"container": container_id[:12]})
        for stdout, stderr in frames:
            if stdout:
                out.feed(stdout)
            if stderr:
                err.feed(stderr)
    finally:
        out.flush()
        err.flush()
        frames.close()
    result = api.wait(container_id)
    problem = (result.get("Error") or {}).get("Message")
    if problem:
        context.log.info(f"the engine reported: {problem}")
    return int(result["StatusCode"])


def _describe(request: RunRequest, name: str, address: str) -> str:
    words = ["docker run", "--name", name]
    if request.entrypoint:
        words += ["--entrypoint", shlex.join(request.entrypoint)]
    if request.working_dir:
        words += ["-w", request.working_dir]
    if request.user:
        words += ["-u", request.user]
    if request.network:
        words += ["--network", request.network]
    for bind in request.binds:
        words += ["-v", bind]
    words.append(request.image)
    if request.command:
        words.append(shlex.join(request.command))
    return " ".join(words) + f" (engine {address})"


class DockerRun:
    """Executor of docker/run."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        request = read_request(params, context)
        engine = await Engine.connect(params, context)
        try:
            return await self._run(engine, request, context)
        finally:
            engine.close()

    async def _run(self, engine: Engine, request: RunRequest, context: StepContext) -> NodeResult:
        await ensure_image(engine, request.image, request.pull, context)
        api = engine.api
        name = container_name(context)
        host_config = api.create_host_config(
            binds=request.binds, init=request.init, network_mode=request.network
        )
        create = asyncio.ensure_future(
            engine.call(
                api.create_container,
                request.image,
                command=request.command,
                entrypoint=request.entrypoint,
                environment=request.env,
                working_dir=request.working_dir,
                user=request.user,
                labels=step_labels(context),
                host_config=host_config,
                name=name,
            )
        )
        try:
            created = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Cancelled while the engine creates it: the container may exist all the same.
            with contextlib.suppress(Exception):
                late = await asyncio.shield(create)
                await _remove(engine, late["Id"], name, context, stop=False)
            raise
        except docker.errors.APIError as exc:
            raise NodeError(
                f"cannot create a container of {request.image!r}: {api_error_message(exc)}",
                retryable=may_pass(exc),
            ) from None
        container_id: str = created["Id"]
        context.log.info(_describe(request, name, engine.address))
        progress = threadsafe(asyncio.get_running_loop(), context.heartbeat)
        try:
            code = await engine.stream(
                lambda: _run_blocking(api, container_id, context, progress), name="docker-run"
            )
        except asyncio.CancelledError:
            context.log.info(f"step cancelled: stopping container {name}")
            await _remove(engine, container_id, name, context, stop=True)
            raise
        except BaseException as exc:
            await _remove(engine, container_id, name, context, stop=True)
            if isinstance(exc, docker.errors.APIError):
                raise NodeError(
                    f"cannot start the container of {request.image!r}: {api_error_message(exc)}",
                    retryable=may_pass(exc),
                ) from None
            raise
        await _remove(engine, container_id, name, context, stop=False)
        outputs = {"exit-code": str(code)}
        if code != 0:
            return NodeResult(
                outputs=outputs, exit_code=code, error=f"the container exited with code {code}"
            )
        return NodeResult(outputs=outputs)


async def _remove(
    engine: Engine, container_id: str, name: str, context: StepContext, *, stop: bool
) -> None:
    """Stop (when asked: SIGTERM, SIGKILL after STOP_GRACE) and remove the container.

    Runs to the end even if the step is cancelled again meanwhile; a failure is logged, not
    raised, so that it never hides why the step ended.
    """

    def work() -> None:
        if stop:
            try:
                engine.api.stop(container_id, timeout=STOP_GRACE)
            except docker.errors.NotFound:
                return
        try:
            engine.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass

    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = api_error_message(exc)
        context.log.info(f"container {name} could not be removed: {reason}")
        return
    if stop:
        context.log.info(f"container {name} stopped and removed")
