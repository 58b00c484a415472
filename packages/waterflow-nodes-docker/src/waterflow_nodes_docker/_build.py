"""docker/build: an image from a Dockerfile in the workspace, its log streamed as it goes."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import docker.errors  # type: ignore[import-untyped]
import docker.utils  # type: ignore[import-untyped]

from waterflow import NodeError, NodeResult, StepContext
from waterflow_nodes_docker import _inputs
from waterflow_nodes_docker._engine import (
    Engine,
    LineWriter,
    api_error_message,
    last_line,
    may_pass,
    threadsafe,
)

_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
_BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
_RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]+)$")
_REMOVING = re.compile(r"^Removing intermediate container ([0-9a-f]+)$")
_ERROR_COLOUR = "\x1b[91m"  # the engine wraps a RUN's stderr in red
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@attrs.frozen
class BuildRequest:
    context_dir: Path
    dockerfile: str
    tags: tuple[str, ...]
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    target: str | None
    no_cache: bool
    pull: bool


class BuildFailed(Exception):
    def __init__(self, message: str, step: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.step = step


def read_request(params: Mapping[str, Any], workspace: Path) -> BuildRequest:
    context_value = _inputs.string(params, "context") or "."
    context_dir = _inputs.workspace_path(workspace, context_value, "context", kind="directory")
    dockerfile_value = _inputs.string(params, "dockerfile")
    if dockerfile_value is None:
        dockerfile = context_dir / "Dockerfile"
        if not dockerfile.is_file():
            shown = context_value if context_value != "." else "the workspace"
            raise NodeError(
                f"no Dockerfile in {shown}: add one, or name it with the dockerfile parameter",
                retryable=False,
            )
    else:
        dockerfile = _inputs.workspace_path(workspace, dockerfile_value, "dockerfile", kind="file")
    # Inside the context the engine wants the path relative to it; from outside, the SDK
    # sends the file along with the context.
    inside = dockerfile.is_relative_to(context_dir)
    return BuildRequest(
        context_dir=context_dir,
        dockerfile=str(dockerfile.relative_to(context_dir)) if inside else str(dockerfile),
        tags=tuple(_inputs.image_names(params, "tags")),
        build_args=_inputs.string_map(params, "build-args"),
        labels=_inputs.string_map(params, "labels"),
        target=_inputs.string(params, "target"),
        no_cache=_inputs.flag(params, "no-cache", False),
        pull=_inputs.flag(params, "pull", False),
    )


class _BuildLog:
    """Follows the engine's build messages: writes lines, notes the step and the image id."""

    def __init__(self, context: StepContext, progress: Callable[..., None]) -> None:
        self._out = LineWriter(self._stdout)
        self._err = LineWriter(context.log.stderr)
        self._log = context.log
        self._progress = progress
        self.step: str | None = None
        self.image_id: str | None = None
        self.running: str | None = None  # the container of the instruction being run

    def _stdout(self, line: str) -> None:
        match = _STEP.match(line)
        if match:
            self.step = f"step {match.group(1)} ({match.group(2).strip()})"
            self._progress({"build": self.step})
        built = _BUILT.match(line)
        if built and self.image_id is None:
            self.image_id = built.group(1)
        running = _RUNNING.match(line)
        if running:
            self.running = running.group(1)
        elif _REMOVING.match(line):
            self.running = None
        self._log.stdout(line)

    def message(self, chunk: Mapping[str, Any]) -> None:
        if "error" in chunk or "errorDetail" in chunk:
            self.flush()
            detail = chunk.get("errorDetail") or {}
            text = str(chunk.get("error") or detail.get("message") or "unknown error")
            raise BuildFailed(last_line(_ANSI.sub("", text)), self.step)
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
        output = chunk.get("stream")
        if isinstance(output, str):
            writer = self._err if _ERROR_COLOUR in output else self._out
            writer.feed(_ANSI.sub("", output))
        status = chunk.get("status")
        if isinstance(status, str) and "progressDetail" not in chunk:
            ident = chunk.get("id")
            self._log.stdout(f"{ident}: {status}" if ident else status)

    def flush(self) -> None:
        self._out.flush()
        self._err.flush()


def _build_blocking(api: Any, request: BuildRequest, log: _BuildLog, stop: threading.Event) -> str:
    stream = api.build(
        path=str(request.context_dir),
        dockerfile=request.dockerfile,
        tag=request.tags[0] if request.tags else None,
        buildargs=dict(request.build_args) or None,
        labels=dict(request.labels) or None,
        target=request.target,
        nocache=request.no_cache,
        pull=request.pull,
        rm=True,
        forcerm=True,
        decode=True,
    )
    try:
        for chunk in stream:
            if stop.is_set():
                break  # closing the stream ends the request: the engine cancels the build
            log.message(chunk)
    finally:
        stream.close()
        log.flush()
    if stop.is_set():
        return ""
    if log.image_id is None:
        raise BuildFailed("the engine reported no image id", log.step)
    image_id: str = api.inspect_image(log.image_id)["Id"]
    for extra in request.tags[1:]:
        repository, tag = docker.utils.parse_repository_tag(extra)
        api.tag(image_id, repository, tag)
    return image_id


def _describe(request: BuildRequest, workspace: Path) -> str:
    def show(path: Path) -> str:
        return os.path.relpath(path, workspace) if path.is_relative_to(workspace) else str(path)

    words = ["docker build", show(request.context_dir), "-f", request.dockerfile]
    for tag in request.tags:
        words += ["-t", tag]
    for name in request.build_args:
        words += ["--build-arg", name]
    if request.target:
        words += ["--target", request.target]
    if request.no_cache:
        words.append("--no-cache")
    if request.pull:
        words.append("--pull")
    return " ".join(words)


async def _stop_instruction(engine: Engine, log: _BuildLog, context: StepContext) -> None:
    """Remove the container of the instruction being run, which ends the build; otherwise a
    cancelled step's RUN would go on in the engine until it finished by itself."""
    container = log.running
    if container is None:
        return

    def remove() -> None:
        engine.api.remove_container(container, force=True)

    try:
        await asyncio.shield(asyncio.ensure_future(asyncio.to_thread(remove)))
    except docker.errors.NotFound:
        return
    except Exception as exc:
        context.log.info(f"build cancelled: container {container} not removed: {exc}")
        return
    context.log.info(f"build cancelled: its running instruction's container {container} removed")


class DockerBuild:
    """Executor of docker/build."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        request = read_request(params, context.workspace)
        engine = await Engine.connect(params, context)
        progress = threadsafe(asyncio.get_running_loop(), context.heartbeat)
        log = _BuildLog(context, progress)
        stop = threading.Event()
        context.log.info(f"{_describe(request, context.workspace)} (engine {engine.address})")
        try:
            image_id = await engine.stream(
                lambda: _build_blocking(engine.api, request, log, stop), name="docker-build"
            )
        except asyncio.CancelledError:
            stop.set()
            await _stop_instruction(engine, log, context)
            raise
        except BuildFailed as exc:
            # Like a failing script: the step's retry policy applies (a download may be flaky).
            where = f" at {exc.step}" if exc.step else ""
            raise NodeError(f"docker build failed{where}: {exc.message}") from None
        except docker.errors.APIError as exc:
            raise NodeError(
                f"docker build failed: {api_error_message(exc)}", retryable=may_pass(exc)
            ) from None
        finally:
            engine.close()
        context.log.info(
            f"built {image_id}" + (f" as {', '.join(request.tags)}" if request.tags else "")
        )
        return NodeResult(outputs={"image-id": image_id, "tags": ",".join(request.tags)})
