"""Properties of the expression language that must hold for any input (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from waterflow.expressions import (
    ExpressionError,
    evaluate,
    find_expressions,
    is_truthy,
    parse,
    render,
    to_string,
)

# Text made mostly of the language's own characters, so the parser gets deep into its rules.
GRAMMAR_PIECES = st.sampled_from(
    [
        "a", "b", "github", "steps", ".", "*", "[", "]", "(", ")", ",", "'", "''", "!", "=",
        "==", "!=", "<", "<=", ">", ">=", "&&", "||", "&", "|", "0", "1", "-1", "1.5", "0x1f",
        "1e3", ".5", "true", "false", "null", "NaN", "Infinity", "contains", "format",
        "fromJSON", "toJSON", "join", "success", "hashFiles", "'{0}'", "'{'", "'}'", " ",
        "${{", "}}", "\n", "\"", "$", "_", "-", "é",
    ]
)  # fmt: skip
EXPRESSION_LIKE = st.lists(GRAMMAR_PIECES, max_size=40).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=200), EXPRESSION_LIKE)

CONTEXTS: dict[str, Any] = {
    "github": {"event": {"commits": [{"message": "m"}, {"x": 1}]}, "ref": "refs/heads/main"},
    "steps": {"a": {"outcome": "success"}},
    "a": [1, "two", None],
    "b": {"k": [True, 0.5]},
}


def raised(function: Callable[..., Any], *args: Any, **kwargs: Any) -> ExpressionError | None:
    """The ExpressionError `function` raises, or None; any other exception fails the test."""
    try:
        function(*args, **kwargs)
    except ExpressionError as e:
        return e
    return None


@given(ANY_TEXT)
@example("(" * 200)
@example("!" * 200 + "a")
@example("a" + ".b" * 200)
@example("a" + " == a" * 200)
@example("a[" * 200)
@example("format('{99999999999999999999}', 1)")
@example("0'\n'")  # a string with a line break where an operator belongs
def test_parse_raises_only_expression_error(source: str) -> None:
    error = raised(parse, source)
    if error is not None:
        assert 0 <= error.offset <= len(source)
        assert "\n" not in str(error)
        assert f"at position {error.offset + 1}" in str(error)


@given(ANY_TEXT)
def test_evaluating_raises_only_expression_error(source: str) -> None:
    try:
        expr = parse(source)
    except ExpressionError:
        return
    error = raised(evaluate, expr, CONTEXTS, hash_files=lambda patterns: "h")
    assert error is None or "\n" not in str(error)


@given(st.text(max_size=200))
@example("a ${{ '}}' }} b")
@example("${{ 'x")
@example("${{${{}}}}")
def test_templates_raise_only_expression_error(template: str) -> None:
    error = raised(find_expressions, template)
    if error is not None:
        assert 0 <= error.offset < len(template)
        assert template.startswith("${{", error.offset)
        return
    spans = find_expressions(template)
    for span in spans:
        assert template[span.start : span.start + 3] == "${{"
        assert template[span.end - 2 : span.end] == "}}"
        assert template[span.start + 3 : span.end - 2] == span.source
    error = raised(render, template, CONTEXTS)
    assert error is None or 0 <= error.offset <= len(template)


@given(st.text(max_size=100).filter(lambda t: "${{" not in t))
def test_text_without_expressions_renders_unchanged(text: str) -> None:
    assert render(text, CONTEXTS) is text


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@given(st.text(max_size=100))
def test_string_literals_round_trip(text: str) -> None:
    assert evaluate(quote(text), {}) == text
    assert render("${{ " + quote(text) + " }}", {}) == text
    assert render("<${{ " + quote(text) + " }}>", {}) == f"<{text}>"


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53))
def test_number_literals_round_trip_through_to_string(number: float) -> None:
    text = to_string(number)
    value = evaluate(text, {})
    assert value == number
    assert to_string(value) == text
    assert evaluate(f"{text} == '{text}'", {}) is True  # string-to-number agrees


@given(st.booleans() | st.none())
def test_keyword_literals_round_trip(value: bool | None) -> None:
    text = "null" if value is None else to_string(value)
    assert evaluate(text, {}) is value
    assert to_string(value) == ("" if value is None else text)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)  # fmt: skip


@given(JSON)
def test_to_json_and_from_json_round_trip(value: Any) -> None:
    again = evaluate("fromJSON(toJSON(x))", {"x": value})
    assert as_floats(again) == as_floats(value)
    assert to_string(again) == to_string(value)


def as_floats(value: Any) -> Any:
    """Numbers as floats: toJSON writes 1e16 as 10000000000000000, which reads back an int."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [as_floats(v) for v in value]
    return {k: as_floats(v) for k, v in value.items()}


@given(JSON, JSON)
def test_equality_is_symmetric_and_not_equal_is_its_negation(left: Any, right: Any) -> None:
    contexts = {"l": left, "r": right}
    equal = evaluate("l == r", contexts)
    assert evaluate("r == l", contexts) is equal
    assert evaluate("l != r", contexts) is (not equal)


@given(JSON, JSON)
def test_and_or_return_an_operand(left: Any, right: Any) -> None:
    contexts = {"l": left, "r": right}
    both = evaluate("l && r", contexts)
    either = evaluate("l || r", contexts)
    assert both is (right if is_truthy(left) else left)
    assert either is (left if is_truthy(left) else right)
    assert evaluate("!l", contexts) is (not is_truthy(left))


@given(st.floats() | st.integers() | st.text(max_size=10))
def test_a_value_compares_as_itself_except_nan(value: Any) -> None:
    contexts = {"v": value}
    is_nan = isinstance(value, float) and math.isnan(value)
    assert evaluate("v == v", contexts) is (not is_nan)
    assert evaluate("v <= v", contexts) is (not is_nan)
    assert evaluate("v < v", contexts) is False
