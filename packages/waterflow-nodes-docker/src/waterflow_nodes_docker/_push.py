"""docker/push: an image to its registry, with credentials that never reach a log."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import docker.errors  # type: ignore[import-untyped]
import docker.utils  # type: ignore[import-untyped]

from waterflow import NodeError, NodeResult, StepContext
from waterflow_nodes_docker import _inputs
from waterflow_nodes_docker._engine import (
    Engine,
    api_error_message,
    last_line,
    registry_of,
    registry_problem,
    threadsafe,
)

_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_QUIET = {"Preparing", "Waiting", "Pushing"}  # per-layer chatter; the outcome of each is logged


class PushFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reference(ref: str) -> tuple[str, str]:
    repository, tag = docker.utils.parse_repository_tag(ref)
    return repository, tag or "latest"


def _push_blocking(
    api: Any,
    repository: str,
    tag: str,
    auth: dict[str, str] | None,
    context: StepContext,
    progress: Callable[..., None],
) -> str:
    digest: str | None = None
    for chunk in api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            raise PushFailed(last_line(str(chunk.get("error") or detail.get("message") or "")))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
        status = chunk.get("status")
        if not isinstance(status, str) or status in _QUIET:
            continue
        ident = chunk.get("id")
        context.log.stdout(f"{ident}: {status}" if ident else status)
        if ident:
            progress({"push": f"{repository}:{tag}", "layer": ident, "status": status})
        found = _DIGEST.search(status)
        if found and digest is None:
            digest = found.group(1)
    if digest is None:
        raise PushFailed("the registry reported no digest")
    return digest


class DockerPush:
    """Executor of docker/push."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult:
        image = _inputs.string(params, "image")
        if image is None:
            raise NodeError("parameter 'image' is required: the image to push", retryable=False)
        refs = _inputs.image_names(params, "tags") or [image]
        targets = [(ref, *_reference(ref)) for ref in refs]
        username = _inputs.string(params, "username")
        password = _inputs.string(params, "password")
        context.masker.add(password)
        if (username is None) != (password is None):
            given, missing = (
                ("username", "password") if password is None else ("password", "username")
            )
            raise NodeError(
                f"parameter {given!r} is given without {missing!r}: give both, or neither to "
                "push without credentials",
                retryable=False,
            )
        auth = None
        if username is not None and password is not None:
            auth = {"username": username, "password": password}
        engine = await Engine.connect(params, context)
        progress = threadsafe(asyncio.get_running_loop(), context.heartbeat)
        try:
            try:
                await engine.call(engine.api.inspect_image, image)
            except docker.errors.ImageNotFound:
                raise NodeError(
                    f"image {image!r} is not on the Docker engine at {engine.address}: build it "
                    "first (docker/build) or check its name",
                    retryable=False,
                ) from None
            digest = ""
            for ref, repository, tag in targets:
                registry = registry_of(repository)
                if ref != image:
                    await engine.call(engine.api.tag, image, repository, tag)
                who = " with credentials" if auth else ""
                context.log.info(f"docker push {repository}:{tag}{who} (engine {engine.address})")
                try:
                    digest = await engine.stream(
                        functools.partial(
                            _push_blocking, engine.api, repository, tag, auth, context, progress
                        ),
                        name="docker-push",
                    )
                except (PushFailed, docker.errors.APIError) as exc:
                    message = exc.message if isinstance(exc, PushFailed) else api_error_message(exc)
                    raise _push_error(f"{repository}:{tag}", registry, message) from None
                context.log.info(f"pushed {repository}:{tag} as {digest}")
        finally:
            engine.close()
        return NodeResult(outputs={"digest": digest})


def _push_error(ref: str, registry: str, message: str) -> NodeError:
    problem = registry_problem(message)
    if problem == "denied":
        return NodeError(
            f"push of {ref!r} was denied by the registry {registry}: {message}; check username "
            "and password (and that this user may push there)",
            retryable=False,
        )
    if problem == "unreachable":
        return NodeError(f"cannot reach the registry {registry} to push {ref!r}: {message}")
    return NodeError(f"push of {ref!r} to the registry {registry} failed: {message}")
