"""Checking `with:` against a node's parameters: what is converted, what is refused and how."""

from __future__ import annotations

import re
from typing import Any

import pytest

from waterflow import NodeMetadata, Parameter
from waterflow.params import check_parameters, coerce_parameter


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("string", "x", "x"),
        ("string", 3, "3"),
        ("string", 2.0, "2"),
        ("string", True, "true"),
        ("string", None, ""),
        ("boolean", True, True),
        ("boolean", " Yes ", True),
        ("boolean", "off", False),
        ("integer", 7, 7),
        ("integer", " 12 ", 12),
        ("integer", 3.0, 3),
        ("number", "1.5", 1.5),
        ("number", 2, 2),
        ("array", [1, 2], [1, 2]),
        ("array", '["a", "b"]', ["a", "b"]),
        ("array", "a, b ,c", ["a", "b", "c"]),
        ("array", "app:1\napp:latest\n", ["app:1", "app:latest"]),
        ("object", {"a": 1}, {"a": 1}),
        ("object", '{"a": 1}', {"a": 1}),
    ],
)
def test_values_are_converted_to_the_parameter_type(kind: Any, given: Any, expected: Any) -> None:
    assert coerce_parameter(Parameter("p", type=kind), given) == expected


@pytest.mark.parametrize(
    ("kind", "given", "message"),
    [
        ("string", [1], "expected a string, got a list"),
        ("string", {"a": 1}, "expected a string, got a mapping"),
        ("boolean", "maybe", "expected a boolean (true or false), got 'maybe'"),
        ("boolean", 1, "expected a boolean (true or false), got 1"),
        ("integer", True, "expected an integer, got true"),
        ("integer", "1.5", "expected an integer, got '1.5'"),
        ("integer", 1.5, "expected an integer, got 1.5"),
        ("integer", [1], "expected an integer, got [1]"),
        ("number", False, "expected a number, got false"),
        ("number", "x", "expected a number, got 'x'"),
        ("number", {}, "expected a number, got {}"),
        ("array", {"a": 1}, "expected an array (a list, JSON text, or values one per line"),
        ("array", "[1,", "expected an array (a list, JSON text, or values one per line"),
        ("object", "nope", "expected an object (a mapping), got 'nope'"),
        ("object", [1], "expected an object (a mapping), got [1]"),
    ],
)
def test_wrong_values_say_what_was_expected(kind: Any, given: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        coerce_parameter(Parameter("p", type=kind), given)


def test_enum_is_checked_after_conversion() -> None:
    level = Parameter("level", type="integer", enum=[1, 2])
    assert coerce_parameter(level, "2") == 2
    with pytest.raises(ValueError, match=r"^3 is not one of 1, 2$"):
        coerce_parameter(level, "3")


META = NodeMetadata(
    name="x/y",
    version="1",
    parameters=[
        Parameter("who", required=True),
        Parameter("times", type="integer", default=1),
        Parameter("loud", type="boolean"),
    ],
)


def test_defaults_required_unknown_and_templates() -> None:
    values, problems = check_parameters(META, {"who": "a", "tims": 2})
    assert values == {"who": "a", "times": 1}
    assert problems == [
        (
            "tims",
            "node 'x/y' has no parameter 'tims' (did you mean 'times'?); it accepts: "
            "who, times, loud",
        )
    ]
    values, problems = check_parameters(META, {"times": "many"})
    assert problems == [
        ("times", "parameter 'times' of 'x/y': expected an integer, got 'many'"),
        (None, "node 'x/y' needs parameter 'who' under with:"),
    ]
    # Before run time, values that are still templates are left for later.
    values, problems = check_parameters(
        META, {"who": "${{ inputs.who }}", "times": "${{ 3 }}"}, coerce=False
    )
    assert problems == []
    assert values["times"] == "${{ 3 }}"


def test_additional_parameters_pass_through() -> None:
    open_meta = NodeMetadata(name="gha/action", version="1", additional_parameters=True)
    assert check_parameters(open_meta, {"anything": [1]}) == ({"anything": [1]}, [])
