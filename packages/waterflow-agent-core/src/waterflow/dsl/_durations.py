"""Durations as the workflow language writes them: `500ms`, `90s`, `10m`, `1h30m`, `2d`."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_HINT = "a number with a unit, like '500ms', '90s', '10m' or '1h30m' (units: ms, s, m, h, d)"


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError saying what is wrong and what is expected otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration, {_HINT}; got {type(text).__name__}")
    source = text.strip()
    if not source:
        raise ValueError(f"empty duration: expected {_HINT}")
    if _NUMBER.fullmatch(source):
        raise ValueError(f"duration {source!r} has no unit: expected {_HINT}")
    total = 0.0
    at = 0
    while at < len(source):
        match = _PART.match(source, at)
        if match is None:
            raise ValueError(f"invalid duration {source!r}: expected {_HINT}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        at = match.end()
    if not math.isfinite(total):
        raise ValueError(f"duration {source!r} is too long")
    return total
