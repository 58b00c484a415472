"""What `waterflow run` takes for GitHub workflow files run locally: the event, secrets for the
embedded agent, actions served from folders, one job with what it needs, and the `github`
context a checkout gives (sha, ref, repository)."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from waterflow.dsl import WorkflowSpec

_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCAL_REPOSITORY = re.compile(r"^[^/\s=]+/[^@\s=]+@[^=\s]+=.+$")


class LocalError(Exception):
    """A bad option or file for a local run; one line."""


@attrs.frozen
class LocalOptions:
    event: str | None = None
    event_path: str | None = None
    secrets: tuple[str, ...] = ()
    secrets_file: str | None = None
    local_repositories: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()

    @property
    def gives_agent_settings(self) -> bool:
        return bool(self.secrets or self.secrets_file or self.local_repositories)


def parse_secrets(pairs: Sequence[str], file: str | None) -> dict[str, str]:
    """`--secret NAME=VALUE` and a secrets file of `NAME=VALUE` lines (`#` comments)."""
    secrets: dict[str, str] = {}
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise LocalError(f"--secrets-file {file}: cannot read: {exc.strerror}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            name, sep, value = stripped.removeprefix("export ").partition("=")
            name = name.strip()
            if not sep or not _SECRET_NAME.match(name):
                raise LocalError(
                    f"{file}:{number}: write each secret as NAME=VALUE (letters, digits and "
                    "underscores in NAME)"
                )
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            secrets[name.upper()] = value
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _SECRET_NAME.match(name):
            raise LocalError(
                "--secret: write it as NAME=VALUE (letters, digits and underscores in NAME)"
            )
        secrets[name.upper()] = value
    return secrets


def check_local_repositories(values: Sequence[str]) -> list[str]:
    for value in values:
        if not _LOCAL_REPOSITORY.match(value):
            raise LocalError(
                f"--local-repository {value!r}: write it as owner/repo@ref=DIR "
                "(e.g. actions/checkout@v4=./vendor/checkout)"
            )
        folder = value.split("=", 1)[1]
        if not Path(folder).is_dir():
            raise LocalError(f"--local-repository {value!r}: {folder} is not a directory")
    return [
        f"{value.split('=', 1)[0]}={Path(value.split('=', 1)[1]).resolve()}" for value in values
    ]


def agent_environment(options: LocalOptions) -> dict[str, str]:
    """What the embedded agent's environment gets: secrets and local action folders."""
    env = {
        f"WATERFLOW_SECRET_{name}": value
        for name, value in parse_secrets(options.secrets, options.secrets_file).items()
    }
    folders = check_local_repositories(options.local_repositories)
    if folders:
        env["WATERFLOW_GHA_LOCAL_REPOSITORIES"] = ",".join(folders)
    return env


def select_jobs(spec: WorkflowSpec, wanted: Sequence[str]) -> WorkflowSpec:
    """Only the jobs asked for and, transitively, the jobs they need."""
    if not wanted:
        return spec
    keep: set[str] = set()
    todo = list(wanted)
    while todo:
        job = todo.pop()
        if job in keep:
            continue
        if job not in spec.jobs:
            hint = difflib.get_close_matches(job, list(spec.jobs), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise LocalError(
                f"--job {job!r}: {spec.file} has no such job{suggestion}; its jobs are "
                + ", ".join(spec.jobs)
            )
        keep.add(job)
        todo.extend(spec.jobs[job].needs)
    return attrs.evolve(spec, jobs={k: v for k, v in spec.jobs.items() if k in keep})


def _git(workspace: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(workspace), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _repository(url: str) -> str | None:
    match = re.search(r"[:/]([^/:]+/[^/]+?)(?:\.git)?/?$", url)
    return match.group(1) if match else None


def github_context(workspace: str | None, options: LocalOptions) -> dict[str, Any]:
    """`github` values a local run can know: the event, and from a git checkout the commit,
    the ref and the repository (`owner/repo` from the origin remote)."""
    github: dict[str, Any] = {}
    if options.event:
        github["event_name"] = options.event
    if options.event_path:
        try:
            payload = json.loads(Path(options.event_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise LocalError(
                f"--event-path {options.event_path}: cannot read: {exc.strerror}"
            ) from None
        except ValueError as exc:
            raise LocalError(f"--event-path {options.event_path}: not JSON: {exc}") from None
        if not isinstance(payload, Mapping):
            raise LocalError(f"--event-path {options.event_path}: the event must be an object")
        github["event"] = dict(payload)
    root = Path(workspace or os.getcwd())
    sha = _git(root, "rev-parse", "HEAD")
    if sha:
        github["sha"] = sha
        branch = _git(root, "symbolic-ref", "-q", "HEAD")
        if branch:
            github["ref"] = branch
            github["ref_name"] = branch.removeprefix("refs/heads/")
        origin = _git(root, "remote", "get-url", "origin")
        repository = _repository(origin) if origin else None
        if repository:
            github["repository"] = repository
            github["repository_owner"] = repository.split("/", 1)[0]
    return github
