"""The agent's settings for GitHub Actions, from the agent process's environment.

They are read from the agent's own environment (not from a workflow's `env:`), each time a step
starts, so that a workflow cannot loosen the agent's policy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from waterflow import NodeError

DEFAULT_SERVER_URL = "https://github.com"
PREFIX = "WATERFLOW_GHA_"
NODE_MAJORS = (12, 16, 20, 24)
CHECKOUT_MODES = ("auto", "workspace", "action")

_LOCAL_KEY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?@\S+")


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise NodeError(f"{name}={raw!r}: expected true or false", retryable=False)


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def api_url_for(server_url: str) -> str:
    """GitHub's REST API for a server: api.<host> for GitHub itself, <server>/api/v3 for an
    Enterprise Server."""
    base = server_url.rstrip("/")
    if base == DEFAULT_SERVER_URL:
        return "https://api.github.com"
    return f"{base}/api/v3"


def graphql_url_for(server_url: str) -> str:
    if server_url.rstrip("/") == DEFAULT_SERVER_URL:
        return "https://api.github.com/graphql"
    return f"{server_url.rstrip('/')}/api/graphql"


def agent_work_dir(environ: Mapping[str, str]) -> Path:
    """The agent's work directory, as far as a step can tell.

    The agent keeps step temp directories at `<work_dir>/_temp/<run>/<job>` (RUNNER_TEMP);
    elsewhere the agent's default work directory is assumed.
    """
    configured = environ.get("WATERFLOW_AGENT_WORK_DIR")
    if configured:
        return Path(configured)
    temp = environ.get("RUNNER_TEMP")
    if temp:
        path = Path(temp)
        if len(path.parents) > 2 and path.parents[1].name == "_temp":
            return path.parents[2]
    xdg = environ.get("XDG_DATA_HOME", "")
    home = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return home / "waterflow" / "work"


def _local_repositories(raw: str | None) -> dict[str, Path]:
    name = f"{PREFIX}LOCAL_REPOSITORIES"
    result: dict[str, Path] = {}
    for item in _list(raw):
        key, sep, directory = item.partition("=")
        key = key.strip()
        if not sep or not directory.strip() or _LOCAL_KEY.fullmatch(key) is None:
            raise NodeError(f"{name}: {item!r} is not owner/repo@ref=DIR", retryable=False)
        result[key.lower()] = Path(directory.strip()).expanduser()
    return result


def _node_paths(environ: Mapping[str, str]) -> dict[int, Path]:
    paths: dict[int, Path] = {}
    mapping = f"{PREFIX}NODES"
    for item in _list(environ.get(mapping)):
        major, sep, path = item.partition("=")
        major = major.strip().removeprefix("node")
        if not sep or not major.isdigit() or not path.strip():
            raise NodeError(
                f"{mapping}: {item!r} is not MAJOR=PATH (e.g. 24=/opt/node24/bin/node)",
                retryable=False,
            )
        paths[int(major)] = Path(path.strip())
    for number in NODE_MAJORS:
        value = environ.get(f"{PREFIX}NODE{number}", "").strip()
        if value:
            paths[number] = Path(value)
    return paths


@attrs.frozen
class Settings:
    """What an agent decides about GitHub Actions (see docs/nodes/gha.md for each variable)."""

    server_url: str = DEFAULT_SERVER_URL
    api_url: str = "https://api.github.com"
    token: str | None = None
    cache_dir: Path = Path(".")
    offline: bool = False
    local_repositories: Mapping[str, Path] = attrs.field(factory=dict)
    allowed_actions: tuple[str, ...] = ()
    require_sha: bool = False
    node_paths: Mapping[int, Path] = attrs.field(factory=dict)
    provision_node: bool = True
    docker: str = "docker"
    docker_network: str | None = None
    checkout: str = "auto"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        server = env.get(f"{PREFIX}SERVER_URL", "").strip().rstrip("/") or DEFAULT_SERVER_URL
        if not server.startswith(("http://", "https://")):
            raise NodeError(
                f"{PREFIX}SERVER_URL={server!r}: expected an http:// or https:// URL",
                retryable=False,
            )
        api = env.get(f"{PREFIX}API_URL", "").strip().rstrip("/") or api_url_for(server)
        cache = env.get(f"{PREFIX}CACHE", "").strip()
        checkout = env.get(f"{PREFIX}CHECKOUT", "").strip().lower() or "auto"
        if checkout not in CHECKOUT_MODES:
            raise NodeError(
                f"{PREFIX}CHECKOUT={checkout!r}: expected one of {', '.join(CHECKOUT_MODES)}",
                retryable=False,
            )
        return cls(
            server_url=server,
            api_url=api,
            token=env.get(f"{PREFIX}TOKEN", "").strip() or None,
            cache_dir=Path(cache).expanduser() if cache else agent_work_dir(env) / "_actions",
            offline=_bool(env, f"{PREFIX}OFFLINE", False),
            local_repositories=_local_repositories(env.get(f"{PREFIX}LOCAL_REPOSITORIES")),
            allowed_actions=_list(env.get(f"{PREFIX}ALLOWED_ACTIONS")),
            require_sha=_bool(env, f"{PREFIX}REQUIRE_SHA", False),
            node_paths=_node_paths(env),
            provision_node=_bool(env, f"{PREFIX}PROVISION_NODE", True),
            docker=env.get(f"{PREFIX}DOCKER", "").strip() or "docker",
            docker_network=env.get(f"{PREFIX}DOCKER_NETWORK", "").strip() or None,
            checkout=checkout,
        )


__all__ = [
    "DEFAULT_SERVER_URL",
    "NODE_MAJORS",
    "Settings",
    "agent_work_dir",
    "api_url_for",
    "graphql_url_for",
]
