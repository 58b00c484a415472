"""GitHub's value model: coercion to number and string, truthiness, loose equality, JSON.

Values are what JSON gives in Python: None, bool, int, float, str, Mapping (an object) and
list/tuple (an array). Anything else is treated as an object that only equals itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from waterflow.expressions._errors import ExpressionError

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_OCTAL = re.compile(r"0o[0-7]+")
_MAX_SAFE_INTEGER = 2**53
MAX_JSON_DEPTH = 256

MISSING: Any = object()
"""What `lookup` and `index` return for a key or index that is not there (unlike a null)."""


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_primitive(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def parse_number(text: str) -> float:
    """A number written as GitHub reads one: decimal with optional sign, point and exponent,
    `0x` hex, `0o` octal, `Infinity`, `-Infinity`. NaN when the text is none of these."""
    if _DECIMAL.fullmatch(text):
        return float(text)
    if _HEX.fullmatch(text):
        return float(int(text[2:], 16))
    if _OCTAL.fullmatch(text):
        return float(int(text[2:], 8))
    if text == "Infinity":
        return math.inf
    if text == "-Infinity":
        return -math.inf
    return math.nan


def normalize_number(value: float) -> int | float:
    """An integral float within the exact range becomes an int, so `${{ 3 }}` renders as 3."""
    if value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return int(value)
    return value


def to_number(value: Any) -> float:
    """null → 0, true → 1, false → 0, a string by `parse_number` ('' → 0), anything else NaN."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        return parse_number(text) if text else 0.0
    return math.nan


def is_truthy(value: Any) -> bool:
    """GitHub's truthiness: false, 0, -0, '', null and NaN are false; all else is true
    (an empty array or object too)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def format_number(value: float) -> str:
    """A number as JavaScript's `String(n)` writes it: `3` not `3.0`, `1e+21`, `0.000001`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    point = len(whole) + (int(exp) if exp else 0)
    stripped = all_digits.lstrip("0")
    point -= len(all_digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e > 0 else "e-")
        text += str(abs(e))
    return sign + text


def to_string(value: Any) -> str:
    """GitHub's string conversion: null → '', true → 'true', 3.0 → '3', arrays and objects as
    JSON (indented like `toJSON`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if is_array(value) or is_object(value):
        return to_json(value)
    return str(value)


def fold(text: str) -> str:
    """Case-folds like .NET's OrdinalIgnoreCase: each character upper-cased on its own."""
    if text.isascii():
        return text.upper()
    return "".join(_upper_char(c) for c in text)


def _upper_char(char: str) -> str:
    upper = char.upper()
    return upper if len(upper) == 1 else char


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def loose_equal(left: Any, right: Any) -> bool:
    """`==`: values of different types compare as numbers; strings ignore case; NaN equals
    nothing; arrays and objects equal only themselves."""
    kind = _kind(left)
    if kind != _kind(right):
        return to_number(left) == to_number(right)
    if kind == "null":
        return True
    if kind == "string":
        return fold(left) == fold(right)
    if kind in ("boolean", "number"):
        return bool(left == right)
    return left is right


def compare(op: str, left: Any, right: Any) -> bool:
    """`< <= > >=`: two strings compare ignoring case, anything else as numbers (NaN: false)."""
    a: Any
    b: Any
    if isinstance(left, str) and isinstance(right, str):
        a, b = fold(left), fold(right)
    else:
        a, b = to_number(left), to_number(right)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def lookup(mapping: Mapping[Any, Any], key: str) -> Any:
    """`mapping[key]` ignoring case (an exact match wins); `MISSING` when there is none."""
    try:
        if key in mapping:
            return mapping[key]
    except TypeError:
        pass
    folded = fold(key)
    for candidate in mapping:
        if isinstance(candidate, str) and fold(candidate) == folded:
            return mapping[candidate]
    return MISSING


def index(container: Any, key: Any) -> Any:
    """`container[key]` as GitHub does it: objects by the key as a string (ignoring case),
    arrays by the key as a number rounded down; `MISSING` for anything else."""
    if not is_primitive(key):
        return MISSING
    if is_object(container):
        return lookup(container, to_string(key))
    if is_array(container):
        number = to_number(key)
        if math.isnan(number) or number < 0 or number >= len(container):
            return MISSING
        return container[math.floor(number)]
    return MISSING


def children(container: Any) -> list[Any] | None:
    """What `*` selects: an array's items or an object's values; None for anything else."""
    if is_array(container):
        return list(container)
    if is_object(container):
        return list(container.values())
    return None


def to_json(value: Any) -> str:
    """`toJSON`: JSON indented by two spaces, as GitHub writes it."""
    out: list[str] = []
    _dump(value, "", out, set())
    return "".join(out)


def _dump(value: Any, indent: str, out: list[str], active: set[int]) -> None:
    if value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_number(value) if math.isfinite(value) else "null")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif is_array(value) or is_object(value):
        _dump_container(value, indent, out, active)
    else:
        out.append(json.dumps(str(value), ensure_ascii=False))


def _dump_container(value: Any, indent: str, out: list[str], active: set[int]) -> None:
    mapping = is_object(value)
    open_, close = ("{", "}") if mapping else ("[", "]")
    if not value:
        out.append(open_ + close)
        return
    if id(value) in active:
        raise ExpressionError("cannot convert to JSON: the value contains itself")
    if len(active) >= MAX_JSON_DEPTH:
        raise ExpressionError(
            f"cannot convert to JSON: the value is nested more than {MAX_JSON_DEPTH} levels deep"
        )
    active.add(id(value))
    inner = indent + "  "
    out.append(open_ + "\n")
    items = list(value.items()) if mapping else list(enumerate(value))
    for i, (key, item) in enumerate(items):
        out.append(inner)
        if mapping:
            out.append(json.dumps(to_string(key), ensure_ascii=False) + ": ")
        _dump(item, inner, out, active)
        out.append(",\n" if i < len(items) - 1 else "\n")
    out.append(indent + close)
    active.discard(id(value))
