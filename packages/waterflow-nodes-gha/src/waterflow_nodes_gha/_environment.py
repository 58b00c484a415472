"""The environment GitHub's runner gives an action, and the `github`/`runner` contexts that
action metadata expressions (input defaults, composite steps) see."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waterflow_nodes_gha._settings import Settings, agent_work_dir, graphql_url_for

DEFAULT_EVENT = "push"
_REMOTE = re.compile(r"(?:[:/])(?P<owner>[^/:]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


async def _git(workspace: Path, *args: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(workspace),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
    except OSError:
        return ""
    return out.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""


async def git_facts(workspace: Path) -> dict[str, str]:
    """What a git checkout in the workspace tells: repository, sha and ref (as act reads
    them); empty when the workspace is no checkout."""
    if not (workspace / ".git").exists():
        return {}
    facts: dict[str, str] = {}
    sha = await _git(workspace, "rev-parse", "HEAD")
    if sha:
        facts["GITHUB_SHA"] = sha
    ref = await _git(workspace, "symbolic-ref", "-q", "HEAD")
    if ref:
        facts["GITHUB_REF"] = ref
    remote = await _git(workspace, "config", "--get", "remote.origin.url")
    match = _REMOTE.search(remote) if remote else None
    if match:
        facts["GITHUB_REPOSITORY"] = f"{match['owner']}/{match['repo']}"
    return facts


def runner_environment(
    base: Mapping[str, str],
    *,
    settings: Settings,
    git: Mapping[str, str],
    workspace: Path,
    temp_dir: Path,
) -> dict[str, str]:
    """The step's environment completed with the variables GitHub's runner sets.

    What the step's environment already holds wins (a workflow may set GITHUB_EVENT_NAME);
    the action-specific variables are set per action by `action_environment`.
    """
    env = dict(base)
    # The agent's token is the agent's: an action gets it as GITHUB_TOKEN only.
    env.pop("WATERFLOW_GHA_TOKEN", None)
    defaults: dict[str, str] = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_EVENT_NAME": DEFAULT_EVENT,
        "GITHUB_RUN_NUMBER": "1",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SERVER_URL": settings.server_url,
        "GITHUB_API_URL": settings.api_url,
        "GITHUB_GRAPHQL_URL": graphql_url_for(settings.server_url),
        "GITHUB_ACTOR": _actor(),
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(temp_dir),
        "RUNNER_WORKSPACE": str(workspace.parent),
        "RUNNER_TOOL_CACHE": str(agent_work_dir(base) / "_tool"),
        **git,
    }
    for name, value in defaults.items():
        if not env.get(name):
            env[name] = value
    if settings.token and not env.get("GITHUB_TOKEN"):
        env["GITHUB_TOKEN"] = settings.token
    repository = env.get("GITHUB_REPOSITORY", "")
    if repository and not env.get("GITHUB_REPOSITORY_OWNER"):
        env["GITHUB_REPOSITORY_OWNER"] = repository.split("/", 1)[0]
    ref = env.get("GITHUB_REF", "")
    if ref and not env.get("GITHUB_REF_NAME"):
        for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if ref.startswith(prefix):
                env["GITHUB_REF_NAME"] = ref[len(prefix) :]
                env.setdefault("GITHUB_REF_TYPE", kind)
    if not env.get("GITHUB_EVENT_PATH"):
        event = temp_dir / "_github_workflow" / "event.json"
        event.parent.mkdir(parents=True, exist_ok=True)
        if not event.exists():
            event.write_text("{}\n", encoding="utf-8")
        env["GITHUB_EVENT_PATH"] = str(event)
    if env.get("ACTIONS_STEP_DEBUG", "").lower() == "true":
        env.setdefault("RUNNER_DEBUG", "1")
    return env


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "waterflow"


def action_environment(
    env: Mapping[str, str], *, action_path: Path | None, repository: str, ref: str
) -> dict[str, str]:
    """`env` with the variables that describe the running action."""
    result = dict(env)
    result["GITHUB_ACTION_PATH"] = str(action_path) if action_path is not None else ""
    result["GITHUB_ACTION_REPOSITORY"] = repository
    result["GITHUB_ACTION_REF"] = ref
    return result


def contexts(env: Mapping[str, str], *, inputs: Mapping[str, str]) -> dict[str, Any]:
    """`github`, `runner`, `env` and `inputs` contexts for metadata expressions."""
    event: Any = {}
    event_path = env.get("GITHUB_EVENT_PATH")
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = {}
    github: dict[str, Any] = {
        key[len("GITHUB_") :].lower(): value
        for key, value in env.items()
        if key.startswith("GITHUB_")
        and key not in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE")
    }
    github["event"] = event
    github["token"] = env.get("GITHUB_TOKEN", "")
    github["action_status"] = "success"
    runner = {
        key[len("RUNNER_") :].lower(): value
        for key, value in env.items()
        if key.startswith("RUNNER_")
    }
    return {
        "github": github,
        "runner": runner,
        "env": dict(env),
        "inputs": dict(inputs),
        "job": {"status": "success"},
        "matrix": {},
        "strategy": {},
        "steps": {},
    }


__all__ = [
    "DEFAULT_EVENT",
    "action_environment",
    "contexts",
    "git_facts",
    "runner_environment",
]
