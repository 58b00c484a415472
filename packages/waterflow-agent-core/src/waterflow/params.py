"""Checking a step's `with:` against a node's parameters, at validation and at run time."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from waterflow._node import NodeMetadata, Parameter

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_parameter(param: Parameter, value: Any) -> Any:
    """`value` as the parameter's type; ValueError with a one-line reason otherwise.

    Strings are converted where the meaning is plain ("3" for an integer, "true" for a
    boolean, JSON text for an array or object), because rendered expressions are strings.
    """
    kind = param.type
    result: Any = value
    if kind == "string":
        if isinstance(value, dict | list):
            raise ValueError(f"expected a string, got {_kind(value)}")
        result = "" if value is None else _scalar_text(value)
    elif kind == "boolean":
        if isinstance(value, bool):
            result = value
        elif isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            result = value.strip().lower() in _TRUE
        else:
            raise ValueError(f"expected a boolean (true or false), got {_show(value)}")
    elif kind == "integer":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {_show(value)}")
        if isinstance(value, int):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str):
            try:
                result = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {_show(value)}") from None
        else:
            raise ValueError(f"expected an integer, got {_show(value)}")
    elif kind == "number":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {_show(value)}")
        if isinstance(value, int | float):
            result = value
        elif isinstance(value, str):
            try:
                result = float(value.strip())
            except ValueError:
                raise ValueError(f"expected a number, got {_show(value)}") from None
        else:
            raise ValueError(f"expected a number, got {_show(value)}")
    elif kind in ("array", "object"):
        want = list if kind == "array" else dict
        looks_like_json = isinstance(value, str) and value.lstrip().startswith(("[", "{"))
        if isinstance(value, str) and kind == "array" and not looks_like_json:
            # `tags: a, b` or a block of lines, as GitHub Actions inputs take lists.
            lines = [line.strip() for line in value.splitlines() if line.strip()]
            if len(lines) == 1:
                lines = [part.strip() for part in lines[0].split(",") if part.strip()]
            value = lines
        elif isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"expected {_article(kind)}, got {_show(value)}") from None
        if not isinstance(value, want):
            raise ValueError(f"expected {_article(kind)}, got {_show(value)}")
        result = value
    if param.enum is not None and result not in param.enum:
        choices = ", ".join(_show(c) for c in param.enum)
        raise ValueError(f"{_show(result)} is not one of {choices}")
    return result


def check_parameters(
    metadata: NodeMetadata, given: Mapping[str, Any], *, coerce: bool = True
) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Return the parameters with defaults applied and types coerced, and the problems.

    Each problem is (parameter name or None, one-line message). With `coerce=False` values
    that are still templates (`${{ ... }}`) are passed over, for validation before run time.
    """
    problems: list[tuple[str | None, str]] = []
    out: dict[str, Any] = {}
    declared = {p.name: p for p in metadata.parameters}
    for name, value in given.items():
        param = declared.get(name)
        if param is None:
            if metadata.additional_parameters:
                out[name] = value
                continue
            hint = difflib.get_close_matches(name, list(declared), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            accepted = ", ".join(declared) or "none"
            problems.append(
                (
                    name,
                    f"node {metadata.name!r} has no parameter {name!r}{suggestion}; "
                    f"it accepts: {accepted}",
                )
            )
            continue
        if not coerce and isinstance(value, str) and "${{" in value:
            out[name] = value
            continue
        try:
            out[name] = coerce_parameter(param, value)
        except ValueError as exc:
            problems.append((name, f"parameter {name!r} of {metadata.name!r}: {exc}"))
    for param in metadata.parameters:
        if param.name in out or param.name in given:
            continue
        if param.required and param.default is None:
            problems.append(
                (None, f"node {metadata.name!r} needs parameter {param.name!r} under with:")
            )
        elif param.default is not None:
            out[param.name] = param.default
    return out, problems


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value) if isinstance(value, bool | int | float | list | dict) else repr(value)


def _article(kind: str) -> str:
    if kind == "array":
        return "an array (a list, JSON text, or values one per line or separated by commas)"
    return "an object (a mapping)"
