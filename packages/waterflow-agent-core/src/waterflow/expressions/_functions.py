"""The built-in functions: their arity, and the ones that only need their arguments."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from waterflow.expressions._errors import ExpressionError
from waterflow.expressions._values import fold, is_array, loose_equal, to_json, to_string

STATUS_FUNCTIONS = frozenset({"success", "always", "failure", "cancelled"})


@attrs.frozen
class FunctionSpec:
    name: str
    min_args: int
    max_args: int | None  # None: no limit

    def arity(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args} argument{'s' if self.min_args != 1 else ''}"
        if self.max_args == 0:
            return "no arguments"
        if self.min_args == self.max_args:
            return f"{self.min_args} argument{'s' if self.min_args != 1 else ''}"
        return f"{self.min_args} or {self.max_args} arguments"


FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name.lower(): spec
    for spec in (
        FunctionSpec("contains", 2, 2),
        FunctionSpec("startsWith", 2, 2),
        FunctionSpec("endsWith", 2, 2),
        FunctionSpec("format", 1, None),
        FunctionSpec("join", 1, 2),
        FunctionSpec("toJSON", 1, 1),
        FunctionSpec("fromJSON", 1, 1),
        FunctionSpec("hashFiles", 1, None),
        FunctionSpec("success", 0, 0),
        FunctionSpec("always", 0, 0),
        FunctionSpec("failure", 0, 0),
        FunctionSpec("cancelled", 0, 0),
    )
}


class FormatError(Exception):
    """A bad `format()` string: `reason` and what was `expected`, placed by the caller."""

    def __init__(self, reason: str, expected: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expected = expected


def parse_format(template: str, arg_count: int) -> list[str | int]:
    """Splits a `format()` string into literal text and argument indexes.

    `{N}` is argument N (counting from 0 after the format string), `{{` and `}}` are literal
    braces; anything else with a brace is an error, as is an index with no argument.
    """
    pieces: list[str | int] = []
    text: list[str] = []
    i, n = 0, len(template)
    while i < n:
        char = template[i]
        if char == "{":
            if template.startswith("{{", i):
                text.append("{")
                i += 2
                continue
            close = template.find("}", i + 1)
            if close < 0:
                raise FormatError(
                    f"format(): unclosed '{{' at index {i} of the format string",
                    "expected '{N}', or '{{' for a literal '{'",
                )
            number = template[i + 1 : close]
            if not (number.isascii() and number.isdigit()):
                raise FormatError(
                    f"format(): '{{{number}}}' in the format string is not an argument number",
                    "expected '{N}' with N counting from 0, or '{{' for a literal '{'",
                )
            position = int(number)
            if position >= arg_count:
                raise FormatError(
                    f"format(): no argument for '{{{number}}}'", _arguments_expected(arg_count)
                )
            if text:
                pieces.append("".join(text))
                text = []
            pieces.append(position)
            i = close + 1
        elif char == "}":
            if not template.startswith("}}", i):
                raise FormatError(
                    f"format(): unescaped '}}' at index {i} of the format string",
                    "expected '}}' for a literal '}'",
                )
            text.append("}")
            i += 2
        else:
            text.append(char)
            i += 1
    if text:
        pieces.append("".join(text))
    return pieces


def _arguments_expected(count: int) -> str:
    if count == 0:
        return "expected no '{N}' since no arguments follow the format string"
    have = "'{0}'" if count == 1 else f"'{{0}}' to '{{{count - 1}}}'"
    follow = "1 argument follows" if count == 1 else f"{count} arguments follow"
    return f"expected {have} since {follow} the format string"


def _contains(args: Sequence[Any]) -> bool:
    haystack, needle = args
    if is_array(haystack):
        return any(loose_equal(item, needle) for item in haystack)
    return fold(to_string(needle)) in fold(to_string(haystack))


def _starts_with(args: Sequence[Any]) -> bool:
    return fold(to_string(args[0])).startswith(fold(to_string(args[1])))


def _ends_with(args: Sequence[Any]) -> bool:
    return fold(to_string(args[0])).endswith(fold(to_string(args[1])))


def _format(args: Sequence[Any]) -> str:
    values = [to_string(arg) for arg in args[1:]]
    try:
        pieces = parse_format(to_string(args[0]), len(values))
    except FormatError as e:
        raise ExpressionError(f"{e.reason}; {e.expected}") from None
    return "".join(values[p] if isinstance(p, int) else p for p in pieces)


def _join(args: Sequence[Any]) -> str:
    separator = to_string(args[1]) if len(args) > 1 else ","
    if is_array(args[0]):
        return separator.join(to_string(item) for item in args[0])
    return to_string(args[0])


def _to_json(args: Sequence[Any]) -> str:
    return to_json(args[0])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _from_json(args: Sequence[Any]) -> Any:
    text = to_string(args[0])
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        reason = f"{e.msg} at line {e.lineno} column {e.colno}"
    except ValueError as e:
        reason = str(e)
    except RecursionError:
        reason = "nested too deeply"
    raise ExpressionError(f"fromJSON(): the argument is not valid JSON ({reason})")


PURE_FUNCTIONS: dict[str, Callable[[Sequence[Any]], Any]] = {
    "contains": _contains,
    "startsWith": _starts_with,
    "endsWith": _ends_with,
    "format": _format,
    "join": _join,
    "toJSON": _to_json,
    "fromJSON": _from_json,
}
