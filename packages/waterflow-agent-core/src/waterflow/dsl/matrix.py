"""Expanding a job's `strategy.matrix` into its combinations, as GitHub does.

Pure and deterministic (standard library only): the run workflow calls it in Temporal's
sandbox, once the matrix's expressions are rendered.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

MAX_COMBINATIONS = 256


class MatrixError(ValueError):
    """A matrix that cannot be expanded; one line."""


def _matches(combo: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    return all(key in combo and combo[key] == value for key, value in pattern.items())


def expand_matrix(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The combinations of `matrix`, in GitHub's order.

    Axes give the cartesian product, in the order written; `exclude` entries remove every
    combination they match (a partial match is enough); each `include` entry is merged into
    every combination where it overwrites none of the axes' own values, and where it fits none
    it becomes a combination of its own.
    """
    if not isinstance(matrix, Mapping):
        raise MatrixError(f"the matrix must be a mapping, not {type(matrix).__name__}")
    include = matrix.get("include") or []
    exclude = matrix.get("exclude") or []
    for name, entries in (("include", include), ("exclude", exclude)):
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise MatrixError(f"matrix {name!r} must be a list of mappings")
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise MatrixError(f"matrix axis {name!r} must be a non-empty list")
    combos: list[dict[str, Any]] = []
    if axes:
        names = list(axes)
        for values in itertools.product(*(axes[n] for n in names)):
            combos.append(dict(zip(names, values, strict=True)))
    combos = [c for c in combos if not any(_matches(c, e) for e in exclude)]
    originals = [dict(c) for c in combos]
    for entry in include:
        merged = False
        for combo, original in zip(combos, originals, strict=True):
            if all(original.get(k, v) == v for k, v in entry.items() if k in original):
                combo.update(entry)
                merged = True
        if not merged:
            combos.append(dict(entry))
            originals.append(dict(entry))
    if not combos:
        raise MatrixError("the matrix has no combination left (exclude removed them all)")
    if len(combos) > MAX_COMBINATIONS:
        raise MatrixError(
            f"the matrix has {len(combos)} combinations; at most {MAX_COMBINATIONS} are allowed"
        )
    return combos


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def instance_name(job: str, combo: Mapping[str, Any]) -> str:
    """`build (linux, 3.11)`: the job and its combination's values, as GitHub shows them."""
    if not combo:
        return job
    return f"{job} ({', '.join(_shown(v) for v in combo.values())})"
