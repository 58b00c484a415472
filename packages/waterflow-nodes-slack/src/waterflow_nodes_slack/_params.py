"""Reading a step's parameters once the core has checked their types."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from waterflow import NodeError, Parameter
from waterflow_nodes_slack._budget import DEFAULT_TIMEOUT

TIMEOUT = Parameter(
    "timeout",
    type="number",
    default=DEFAULT_TIMEOUT,
    description=(
        "Seconds the node may spend on all its attempts and waits together. The step's own "
        "`timeout:` caps it: the node never retries past what is left of the step's time."
    ),
)


def text(params: Mapping[str, Any], name: str) -> str | None:
    """A string parameter (the core has checked the type); not given and empty are None."""
    value = params.get(name)
    return None if value is None or value == "" else str(value)


def objects(params: Mapping[str, Any], name: str, example: str) -> list[Any] | None:
    """An array parameter (the core has made it a list) whose items must be JSON objects."""
    value = params.get(name)
    if value is None:
        return None
    items = list(value)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise NodeError(
                f"parameter {name!r}: item {index} is {_kind(item)}, not an object like {example}",
                retryable=False,
            )
    return items


def timeout(params: Mapping[str, Any]) -> float:
    """The `timeout` parameter (the core has made it a number), which must be above 0."""
    value = float(params.get("timeout", DEFAULT_TIMEOUT))
    if not math.isfinite(value) or value <= 0:
        raise NodeError(
            f"parameter 'timeout' must be a number of seconds above 0, got {value:g}",
            retryable=False,
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else f"a {type(value).__name__}"
