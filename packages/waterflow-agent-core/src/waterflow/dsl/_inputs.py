"""Values for the `inputs` context from what a user gave on the command line or in a request."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from waterflow.dsl._errors import Problem, WorkflowError, quote, suggest
from waterflow.dsl._parse import source_map
from waterflow.dsl.model import InputSpec, Pos, WorkflowSpec

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def apply_inputs(spec: WorkflowSpec, given: Mapping[str, str]) -> dict[str, Any]:
    """The `inputs` context: given values converted to each input's type, defaults applied.

    A boolean input takes true/false (also yes/no, on/off, 1/0), a number input a number, a
    choice input one of its options. An input neither given nor defaulted is '' (false for a
    boolean, null for a number). Raises `WorkflowError` naming every input that is unknown,
    missing although required, or given a value of the wrong type.
    """
    smap = source_map(spec)
    problems: list[Problem] = []

    def error(name: str | None, message: str) -> None:
        pos = Pos(0, 0)
        if smap is not None:
            found = smap.key_pos(("inputs", name)) if name is not None else None
            pos = found or pos
        problems.append(Problem(spec.file, pos.line, pos.col, message))

    for name in given:
        if name not in spec.inputs:
            declared = ", ".join(spec.inputs) or "none are declared"
            error(
                None, f"unknown input {quote(name)}{suggest(name, spec.inputs)}; inputs: {declared}"
            )
    values: dict[str, Any] = {}
    for name, spec_input in spec.inputs.items():
        if name in given:
            try:
                values[name] = _convert(spec_input, given[name])
            except ValueError as exc:
                error(name, f"input {name!r}: {exc}")
        elif spec_input.default is not None:
            values[name] = _convert(spec_input, spec_input.default, checked=True)
        elif spec_input.required:
            error(name, f"input {name!r} is required")
        else:
            values[name] = {"boolean": False, "number": None}.get(spec_input.type, "")
    if problems:
        raise WorkflowError(problems)
    return values


def _convert(spec: InputSpec, value: Any, *, checked: bool = False) -> Any:
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueError(f"expected true or false, got {quote(value)}")
    if spec.type == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {quote(value)}") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {quote(value)}")
        return number
    text = value if isinstance(value, str) else str(value)
    if spec.type == "choice" and spec.options and text not in spec.options and not checked:
        raise ValueError(
            f"{quote(text)} is not one of {', '.join(map(repr, spec.options))}"
            f"{suggest(text, spec.options)}"
        )
    return text
