"""Reading the docker nodes' parameters. Every problem is a `NodeError(retryable=False)`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker.utils  # type: ignore[import-untyped]

from waterflow import NodeError


def string(params: Mapping[str, Any], name: str) -> str | None:
    """A string parameter; None and "" both mean "not given"."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool | dict | list):
        raise NodeError(
            f"parameter {name!r} must be a string, not {type(value).__name__}", retryable=False
        )
    return str(value)


def flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise NodeError(f"parameter {name!r} must be true or false", retryable=False)
    return value


def string_list(params: Mapping[str, Any], name: str) -> list[str]:
    """A list given as a list, or as one string with commas or newlines between items."""
    value = params.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        items = value.replace("\n", ",").split(",")
    elif isinstance(value, list):
        items = []
        for item in value:
            if isinstance(item, dict | list) or item is None:
                raise NodeError(
                    f"parameter {name!r}: each item must be a string, not {item!r}",
                    retryable=False,
                )
            items.append(str(item))
    else:
        raise NodeError(
            f"parameter {name!r} must be a list or a string with commas or newlines",
            retryable=False,
        )
    return [item.strip() for item in items if item.strip()]


def image_names(params: Mapping[str, Any], name: str) -> list[str]:
    """A list of image names (name or name:tag, as `string_list` reads it), each checked."""
    names = string_list(params, name)
    for item in names:
        if not docker.utils.match_tag(item):
            raise NodeError(
                f"{name}: {item!r} is not an image name: use [registry/]name[:tag], the name in "
                "lower case (e.g. 127.0.0.1:5000/team/app:1.0)",
                retryable=False,
            )
    return names


def string_map(params: Mapping[str, Any], name: str) -> dict[str, str]:
    """A mapping of names to scalar values, all made strings (true/false as YAML says them)."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NodeError(f"parameter {name!r} must be a mapping of names to values", retryable=False)
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise NodeError(
                f"parameter {name!r}: the value of {key!r} must be a string, not a "
                f"{'mapping' if isinstance(item, dict) else 'list'}",
                retryable=False,
            )
        if isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        else:
            out[str(key)] = "" if item is None else str(item)
    return out


def argv(params: Mapping[str, Any], name: str) -> list[str] | None:
    """A command line: a string split as a POSIX shell would (no expansion), or a list."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(item) for item in value]
    if not isinstance(value, str):
        raise NodeError(
            f"parameter {name!r} must be a string or a list, not {type(value).__name__}",
            retryable=False,
        )
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise NodeError(
            f"parameter {name!r}: {value!r} cannot be split into words: {exc}", retryable=False
        ) from None


def workspace_path(workspace: Path, value: str, name: str, *, kind: str) -> Path:
    """`value` relative to the workspace (or absolute), which must exist as `kind`
    ("directory" or "file")."""
    path = (workspace / value).resolve()
    where = "" if Path(value).is_absolute() else " in the workspace"
    if not path.exists():
        raise NodeError(f"{name} {value!r} does not exist{where}", retryable=False)
    if kind == "directory" and not path.is_dir():
        raise NodeError(f"{name} {value!r} is not a directory{where}", retryable=False)
    if kind == "file" and not path.is_file():
        raise NodeError(f"{name} {value!r} is not a file{where}", retryable=False)
    return path
