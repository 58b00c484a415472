"""The `${{ }}` expression language: grammar, GitHub's coercions, functions, templates, `if:`."""

from __future__ import annotations

import ast
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import waterflow.expressions as expressions
from waterflow.expressions import (
    ExpressionError,
    Span,
    calls_status_function,
    evaluate,
    evaluate_condition,
    find_expressions,
    is_template,
    is_truthy,
    parse,
    referenced_contexts,
    render,
    render_string,
    to_string,
)

NAN = math.nan
INF = math.inf


def make_contexts() -> dict[str, Any]:
    return {
        "github": {
            "event_name": "push",
            "ref": "refs/heads/main",
            "event": {
                "commits": [
                    {"message": "fix: one", "author": {"name": "ann", "email": "a@x"}},
                    {"message": "[skip ci] two", "author": {"name": "bob"}},
                    {"id": 3},
                ],
                "labels": [{"name": "bug"}, {"name": "Urgent"}],
            },
        },
        "steps": {
            "build": {"outcome": "success", "outputs": {"image": "app:1"}},
            "my-step": {"outcome": "failure", "outputs": {}},
        },
        "matrix": {"node-version": 20, "os": "linux"},
        "inputs": {"count": "3", "flag": True, "empty": "", "zero": 0, "nothing": None},
        "env": {"Mixed_Case": "yes"},
        "nested": [[1, 2], [3], "str", {"k": "v"}],
    }


CONTEXTS = make_contexts()


def same(actual: Any, expected: Any) -> bool:
    """Equal and of the same type (so 1 is not True), NaN equal to NaN."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    return bool(actual == expected)


def ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [str(case[0]) for case in cases]


# -- literals ------------------------------------------------------------------------------

LITERALS: list[tuple[str, Any]] = [
    ("null", None),
    ("true", True),
    ("false", False),
    ("0", 0),
    ("42", 42),
    ("-7", -7),
    ("+3", 3),
    ("-1.5", -1.5),
    ("3.0", 3),
    ("5.", 5),
    (".5", 0.5),
    ("1e3", 1000),
    ("2.5E-3", 0.0025),
    ("1e+2", 100),
    ("0xff", 255),
    ("0x1F", 31),
    ("0o17", 15),
    ("NaN", NAN),
    ("Infinity", INF),
    ("-Infinity", -INF),
    ("1e400", INF),
    ("9007199254740992", 9007199254740992),
    ("1e16", 1e16),  # beyond 2**53 a number stays a float
    ("'hello'", "hello"),
    ("''", ""),
    ("'it''s'", "it's"),
    ("''''", "'"),
    ("'a }} b ${{ c'", "a }} b ${{ c"),
    ("'  spaced  '", "  spaced  "),
    ("'ünïcødé ✓'", "ünïcødé ✓"),
    ("  42  ", 42),
    ("\t\ntrue\r\n", True),
]


@pytest.mark.parametrize(("source", "expected"), LITERALS, ids=ids(LITERALS))
def test_literals(source: str, expected: Any) -> None:
    assert same(evaluate(source, {}), expected)


# -- operators and coercion ----------------------------------------------------------------

OPERATORS: list[tuple[str, Any]] = [
    # !
    ("!true", False),
    ("!false", True),
    ("!null", True),
    ("!0", True),
    ("!-0", True),
    ("!1", False),
    ("!''", True),
    ("!'false'", False),
    ("!NaN", True),
    ("!!'x'", True),
    ("!github", False),
    ("!fromJSON('[]')", False),
    ("!fromJSON('{}')", False),
    # relational on numbers and strings
    ("1 < 2", True),
    ("2 < 1", False),
    ("2 <= 2", True),
    ("3 > 2", True),
    ("2 >= 3", False),
    ("-1 < 0", True),
    ("0x10 > 15", True),
    ("'a' < 'b'", True),
    ("'a' < 'B'", True),
    ("'B' < 'a'", False),
    ("'abc' <= 'ABC'", True),
    ("'10' > '9'", False),  # two strings compare as strings
    ("'10' > 9", True),  # a string and a number compare as numbers
    ("'2' > 10", False),
    ("true > false", True),
    ("null <= null", True),
    ("null < 1", True),
    ("'abc' < 1", False),
    ("'abc' >= 1", False),
    ("NaN < 1", False),
    ("NaN > 1", False),
    ("NaN <= NaN", False),
    ("NaN >= NaN", False),
    ("Infinity > 1e308", True),
    ("github < github", False),
    ("fromJSON('[1]') < 2", False),
    # == and != on the same type
    ("1 == 1", True),
    ("1 == 1.0", True),
    ("1 != 2", True),
    ("'abc' == 'ABC'", True),
    ("'abc' != 'ABC'", False),
    ("'abc' == 'abd'", False),
    ("'Straße' == 'STRASSE'", False),  # characters fold one by one, not to 'SS'
    ("'é' == 'É'", True),
    ("true == true", True),
    ("true == false", False),
    ("null == null", True),
    ("NaN == NaN", False),
    ("NaN != NaN", True),
    # == across types: both sides become numbers
    ("null == 0", True),
    ("null == false", True),
    ("null == ''", True),
    ("null == 'null'", False),
    ("true == 1", True),
    ("true == 2", False),
    ("false == 0", True),
    ("true == 'true'", False),  # 'true' is NaN as a number
    ("'' == 0", True),
    ("'   ' == 0", True),
    ("' 12 ' == 12", True),
    ("'12' == 12", True),
    ("'1.5e1' == 15", True),
    ("'0x10' == 16", True),
    ("'0o10' == 8", True),
    ("'.5' == 0.5", True),
    ("'-3' == -3", True),
    ("'Infinity' == Infinity", True),
    ("'1_000' == 1000", False),
    ("'abc' == 0", False),
    ("'abc' != 0", True),
    ("'1' == true", True),
    ("'0' == false", True),
    ("fromJSON('[]') == 0", False),
    ("fromJSON('{}') == ''", False),
    ("fromJSON('[]') == fromJSON('{}')", False),
    # objects and arrays equal only themselves
    ("github == github", True),
    ("github.event == GITHUB.EVENT", True),
    ("github.event.commits == github.event.commits", True),
    ("fromJSON('{}') == fromJSON('{}')", False),
    ("fromJSON('[1]') == fromJSON('[1]')", False),
    ("steps.*.outcome == steps.*.outcome", False),
    ("github != github", False),
    # && and || return an operand
    ("true && true", True),
    ("true && false", False),
    ("1 && 'a'", "a"),
    ("0 && 'a'", 0),
    ("'' && 'a'", ""),
    ("null && 'a'", None),
    ("1 && 2 && 3", 3),
    ("1 && 0 && 3", 0),
    ("'x' || 'y'", "x"),
    ("'' || 'default'", "default"),
    ("null || null", None),
    ("false || 0", 0),
    ("0 || '' || null || 'last'", "last"),
    ("NaN || 'n'", "n"),
    ("inputs.empty || 'fallback'", "fallback"),
    ("inputs.count || 'fallback'", "3"),
    ("github.event.missing || github.event.commits[0].message", "fix: one"),
    # short-circuit: the right side is not evaluated (hashFiles would raise)
    ("false && hashFiles('x')", False),
    ("true || hashFiles('x')", True),
    ("0 && fromJSON('not json')", 0),
    ("'x' || fromJSON('{')", "x"),
    # precedence: ! > relational > equality > && > ||
    ("true || false && false", True),
    ("(true || false) && false", False),
    ("false && false || true", True),
    ("!true == false", True),
    ("!(1 == 2)", True),
    ("!1 == 2", False),
    ("1 < 2 == true", True),
    ("true == 1 < 2", True),
    ("2 > 1 == 3 > 2", True),
    ("1 == 1 && 2 == 2", True),
    ("1 == 1 || 1 == 2 && 2 == 3", True),
    ("'a' == 'a' == true", True),
    ("(((1)))", 1),
    ("!(!(!false))", True),
    ("1<2", True),
    ("1==1&&2!=3||false", True),
]


@pytest.mark.parametrize(("source", "expected"), OPERATORS, ids=ids(OPERATORS))
def test_operators_and_coercion(source: str, expected: Any) -> None:
    assert same(evaluate(source, CONTEXTS), expected)


# -- property access, index, object filter -------------------------------------------------

ACCESS: list[tuple[str, Any]] = [
    ("github.event_name", "push"),
    ("github.event.commits[1].message", "[skip ci] two"),
    ("github['event']['commits'][0]['message']", "fix: one"),
    ("github['EVENT'].Commits[0].MESSAGE", "fix: one"),
    ("GITHUB.EVENT_NAME", "push"),
    ("Github.Ref", "refs/heads/main"),
    ("env.mixed_case", "yes"),
    ("env.MIXED_CASE", "yes"),
    ("steps.my-step.outcome", "failure"),
    ("steps.build.outputs.image", "app:1"),
    ("matrix.node-version", 20),
    ("matrix['node-version']", 20),
    ("inputs.nothing", None),
    ("github.event.missing", None),
    ("github.event.missing.deeper.still", None),
    ("unknown_context", None),
    ("unknown_context.a.b", None),
    ("github.event.commits[5]", None),
    ("github.event.commits[-1]", None),
    ("github.event.commits['1'].message", "[skip ci] two"),
    ("github.event.commits[1.9].message", "[skip ci] two"),
    ("github.event.commits[true].message", "[skip ci] two"),
    ("github.event.commits[null].message", "fix: one"),
    ("github.event.commits['x']", None),
    ("github.event.commits[NaN]", None),
    ("github.event.commits[Infinity]", None),
    ("github.event.commits.length", None),
    ("github.event.commits[github]", None),
    ("github[github.event.commits]", None),
    ("'abc'.length", None),
    ("'abc'[0]", None),
    ("null.x", None),
    ("(1).x", None),
    ("true.x", None),
    ("nested[0][1]", 2),
    ("nested[3].K", "v"),
    ('fromJSON(\'{"1": "one"}\')[1]', "one"),
    ('fromJSON(\'{"true": "t"}\')[true]', "t"),
    ('fromJSON(\'{"a": {"b": [10, 20]}}\').a.b[1]', 20),
    ("fromJSON('{\"null\": 1}').null", 1),
    ("fromJSON('{\"true\": 1}').true", 1),
    ("github.event.commits[0 == 0].author.name", "bob"),
    ("steps[matrix.os]", None),
    ("matrix[inputs.empty]", None),
    # the object filter
    ("steps.*.outcome", ["success", "failure"]),
    ("steps[*].outcome", ["success", "failure"]),
    ("STEPS.*.OUTCOME", ["success", "failure"]),
    ("github.event.commits.*.message", ["fix: one", "[skip ci] two"]),
    ("github.event.commits[*].message", ["fix: one", "[skip ci] two"]),
    ("github.event.commits.*.author.name", ["ann", "bob"]),
    ("github.event.commits.*.author.*", ["ann", "a@x", "bob"]),
    ("github.event.commits.*.missing", []),
    ("github.event.labels.*.name", ["bug", "Urgent"]),
    ("github.event.commits.*.message[0]", []),
    ("matrix.*", [20, "linux"]),
    ("nested.*", [[1, 2], [3], "str", {"k": "v"}]),
    ("nested.*.*", [1, 2, 3, "v"]),
    ("nested.*[0]", [1, 3]),
    ("nested.*.k", ["v"]),
    ('fromJSON(\'[{"a": null}, {"b": 1}]\').*.a', [None]),
    ("fromJSON('[]').*", []),
    ("fromJSON('{}').*.x", []),
    ("'abc'.*", None),
    ("null.*", None),
    ("unknown.*.x", None),
    ("inputs.count.*", None),
]


@pytest.mark.parametrize(("source", "expected"), ACCESS, ids=ids(ACCESS))
def test_property_access_and_filter(source: str, expected: Any) -> None:
    assert same(evaluate(source, CONTEXTS), expected)


def test_property_access_returns_the_context_value_itself() -> None:
    contexts = make_contexts()
    assert evaluate("github.event", contexts) is contexts["github"]["event"]


def test_filter_result_is_a_plain_list() -> None:
    assert type(evaluate("steps.*.outcome", CONTEXTS)) is list


def test_exact_key_wins_over_a_case_insensitive_match() -> None:
    contexts = {"ctx": {"Name": "first", "name": "exact"}}
    assert evaluate("ctx.name", contexts) == "exact"
    assert evaluate("ctx.NAME", contexts) == "first"


def test_any_mapping_and_tuple_are_objects_and_arrays() -> None:
    from types import MappingProxyType

    contexts = {"m": MappingProxyType({"Key": (1, 2, 3)})}
    assert evaluate("m.key[2]", contexts) == 3
    assert evaluate("m.*", contexts) == [(1, 2, 3)]
    assert evaluate("contains(m.KEY, 2)", contexts) is True


# -- functions -----------------------------------------------------------------------------

FUNCTIONS: list[tuple[str, Any]] = [
    # contains
    ("contains('Hello world', 'llo')", True),
    ("contains('Hello world', 'LLO W')", True),
    ("contains('Hello world', 'xyz')", False),
    ("contains('abc', '')", True),
    ("contains(12345, 34)", True),
    ("contains(true, 'ru')", True),
    ("contains(null, '')", True),
    ("contains(null, 'null')", False),
    ("contains(github.event.commits.*.message, '[SKIP CI] two')", True),
    ("contains(github.event.commits.*.message, '[skip ci]')", False),  # whole items
    ("contains(fromJSON('[1, 2, 3]'), 2)", True),
    ("contains(fromJSON('[1, 2, 3]'), '2')", True),  # loose equality
    ("contains(fromJSON('[1, 2, 3]'), 4)", False),
    ("contains(fromJSON('[null]'), false)", True),
    ('contains(fromJSON(\'["push", "pull_request"]\'), github.event_name)', True),
    ("contains(fromJSON('[]'), null)", False),
    ("contains(fromJSON('[[1]]'), fromJSON('[1]'))", False),
    ("contains(github.event.labels.*.name, 'urgent')", True),
    ("contains(matrix, 'linux')", True),  # an object is searched as its JSON text
    # startsWith / endsWith
    ("startsWith('Hello world', 'he')", True),
    ("startsWith('Hello world', 'world')", False),
    ("startsWith(github.ref, 'refs/heads/')", True),
    ("startsWith(12345, 12)", True),
    ("startsWith('abc', '')", True),
    ("startsWith(null, '')", True),
    ("endsWith('Hello world', 'WORLD')", True),
    ("endsWith('Hello world', 'hello')", False),
    ("endsWith(1.5, '.5')", True),
    ("endsWith(true, 'UE')", True),
    # format
    ("format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"),
    ("format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"),
    ("format('{0}{0}{1}', 'a', 'b')", "aab"),
    ("format('{1}{0}', 'a', 'b')", "ba"),
    ("format('no placeholders')", "no placeholders"),
    ("format('{{}}')", "{}"),
    ("format('{{0}}', 'x')", "{0}"),
    ("format('{{{0}}}', 'x')", "{x}"),
    ("format('{0}|{1}|{2}|{3}|{4}', null, true, 1.0, 0.5, -0)", "|true|1|0.5|0"),
    ("format('{0}', fromJSON('[1]'))", "[\n  1\n]"),
    ("format('{00}', 'lead')", "lead"),
    ("format(123, 'x')", "123"),
    ("format('{0}', NaN)", "NaN"),
    ("format('{0}', github.event.commits.*.id)", "[\n  3\n]"),
    ("format('x{0}y', '{1}')", "x{1}y"),  # arguments are not formatted again
    # join
    ("join(fromJSON('[1, \"a\", null, true]'))", "1,a,,true"),
    ("join(github.event.labels.*.name, ', ')", "bug, Urgent"),
    ("join(steps.*.outcome, '')", "successfailure"),
    ("join(fromJSON('[]'), '-')", ""),
    ("join(fromJSON('[1.0, 2.5]'), 0)", "102.5"),
    ("join('abc', '-')", "abc"),
    ("join(null)", ""),
    ("join(42)", "42"),
    ("join(fromJSON('[[1, 2]]'))", "[\n  1,\n  2\n]"),
    # toJSON
    ("toJSON(null)", "null"),
    ("toJSON(true)", "true"),
    ("toJSON(1)", "1"),
    ("toJSON(1.0)", "1"),
    ("toJSON(0.1)", "0.1"),
    ("toJSON(NaN)", "null"),
    ("toJSON('a\"b')", '"a\\"b"'),
    ("toJSON('é\n')", '"é\\n"'),
    ("toJSON(fromJSON('[]'))", "[]"),
    ("toJSON(fromJSON('{}'))", "{}"),
    (
        'toJSON(fromJSON(\'{"a": [1, {"b": null}], "c": {}}\'))',
        '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": {}\n}',
    ),
    ("toJSON(matrix)", '{\n  "node-version": 20,\n  "os": "linux"\n}'),
    ("toJSON(steps.*.outcome)", '[\n  "success",\n  "failure"\n]'),
    # fromJSON
    ("fromJSON('true')", True),
    ("fromJSON('null')", None),
    ("fromJSON('42')", 42),
    ("fromJSON('1.5')", 1.5),
    ("fromJSON('\"s\"')", "s"),
    ("fromJSON(' [1, 2] ')", [1, 2]),
    ("fromJSON('{\"A\": 1}').a", 1),
    ("fromJSON(inputs.count)", 3),
    ("fromJSON(inputs.flag)", True),
    ("fromJSON(toJSON(matrix)).os", "linux"),
    ("fromJSON(format('[{0}]', 7))[0]", 7),
    # names are case-insensitive
    ("CONTAINS('abc', 'B')", True),
    ("StartsWith('abc', 'A')", True),
    ("ENDSWITH('abc', 'C')", True),
    ("FORMAT('{0}', 1)", "1"),
    ("JOIN(steps.*.outcome)", "success,failure"),
    ("tojson(1)", "1"),
    ("FromJson('2')", 2),
    ("SUCCESS()", True),
    ("Always()", True),
    ("FAILURE()", False),
    ("cancelLED()", False),
    # nested calls and whitespace
    ("contains( format( '{0}-{1}' , 'a' , 'b' ) , 'A-B' )", True),
    ("!contains(github.event.commits[0].message, 'skip')", True),
]


@pytest.mark.parametrize(("source", "expected"), FUNCTIONS, ids=ids(FUNCTIONS))
def test_functions(source: str, expected: Any) -> None:
    assert same(evaluate(source, CONTEXTS), expected)


STATUS_TABLE: list[tuple[str, str, bool]] = [
    ("success()", "success", True),
    ("success()", "failure", False),
    ("success()", "cancelled", False),
    ("failure()", "success", False),
    ("failure()", "failure", True),
    ("failure()", "cancelled", False),
    ("cancelled()", "success", False),
    ("cancelled()", "failure", False),
    ("cancelled()", "cancelled", True),
    ("always()", "success", True),
    ("always()", "failure", True),
    ("always()", "cancelled", True),
    ("!cancelled()", "failure", True),
    ("success() || failure()", "failure", True),
]


@pytest.mark.parametrize(("source", "status", "expected"), STATUS_TABLE)
def test_status_functions(source: str, status: str, expected: bool) -> None:
    assert evaluate(source, {}, status=status) is expected


def test_unknown_status_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="status must be one of success, failure, cancelled"):
        evaluate("success()", {}, status="skipped")


def test_hash_files_gets_the_patterns_as_strings() -> None:
    calls: list[list[str]] = []

    def fake(patterns: list[str]) -> str:
        calls.append(patterns)
        return "abc123"

    assert evaluate("hashFiles('**/*.lock', 'x', 1)", {}, hash_files=fake) == "abc123"
    assert evaluate("format('key-{0}', HASHFILES(matrix.os))", CONTEXTS, hash_files=fake) == (
        "key-abc123"
    )
    assert calls == [["**/*.lock", "x", "1"], ["linux"]]


def test_hash_files_without_a_workspace_is_an_error() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("'x' && hashFiles('a')", {})
    assert str(info.value) == "hashFiles is only available on the agent, inside a step"
    assert info.value.offset == 7


# -- errors --------------------------------------------------------------------------------

PARSE_ERRORS: list[tuple[str, str, int]] = [
    ("", "empty expression at position 1; expected a value", 0),
    ("   ", "empty expression at position 4; expected a value", 3),
    ("a == )", "unexpected ')' at position 6; expected a value", 5),
    (
        "(a == b))",
        "unexpected ')' at position 9; expected an operator or the end of the expression",
        8,
    ),
    ("(a == b", "unexpected end of expression at position 8; expected an operator or ')'", 7),
    ("a b", "unexpected 'b' at position 3; expected an operator or the end of the expression", 2),
    ("a &&", "unexpected end of expression at position 5; expected a value", 4),
    ("|| a", "unexpected '||' at position 1; expected a value", 0),
    ("!", "unexpected end of expression at position 2; expected a value", 1),
    (
        "a.",
        "unexpected end of expression at position 3; expected a property name or '*' after '.'",
        2,
    ),
    ("a.(b)", "unexpected '(' at position 3; expected a property name or '*' after '.'", 2),
    ("a.'b'", "unexpected string 'b' at position 3; expected a property name or '*' after '.'", 2),
    ("a[0", "unexpected end of expression at position 4; expected an operator or ']'", 3),
    ("a[]", "unexpected ']' at position 3; expected a value", 2),
    ("a[*", "unexpected end of expression at position 4; expected ']' after '[*'", 3),
    ("a[*.b]", "unexpected '.' at position 4; expected ']' after '[*'", 3),
    (
        "*",
        "unexpected '*' at position 1; expected a value ('*' goes only after '.' or inside '[ ]')",
        0,
    ),
    (
        "a == *",
        "unexpected '*' at position 6; expected a value ('*' goes only after '.' or inside '[ ]')",
        5,
    ),
    ("a = b", "unexpected '=' at position 3; expected '=='", 2),
    ("a & b", "unexpected '&' at position 3; expected '&&'", 2),
    ("a | b", "unexpected '|' at position 3; expected '||'", 2),
    ("a === b", "unexpected '=' at position 5; expected '=='", 4),
    ('"text"', "unexpected '\"' at position 1; expected a value (strings use single quotes)", 0),
    ("'abc", "unterminated string at position 1; expected a closing quote (')", 0),
    ("a == 'it''s", "unterminated string at position 6; expected a closing quote (')", 5),
    (
        "${{ a }}",
        "unexpected '${{' at position 1; expected an expression without '${{ }}' around it",
        0,
    ),
    ("a }}", "unexpected '}' at position 3; expected an operator or the end of the expression", 2),
    ("@", "unexpected '@' at position 1; expected a value", 0),
    ("a == #", "unexpected '#' at position 6; expected a value", 5),
    (
        "1.2.3",
        "invalid number '1.2.3' at position 1; expected a number such as 42, -1.5, 1e3 or 0xff",
        0,
    ),
    (
        "a == 12abc",
        "invalid number '12abc' at position 6; expected a number such as 42, -1.5, 1e3 or 0xff",
        5,
    ),
    (
        "1-2",
        "invalid number '1-2' at position 1; expected a number such as 42, -1.5, 1e3 or 0xff",
        0,
    ),
    ("-", "invalid number '-' at position 1; expected a number such as 42, -1.5, 1e3 or 0xff", 0),
    ("-a", "invalid number '-a' at position 1; expected a number such as 42, -1.5, 1e3 or 0xff", 0),
    (
        "0xZZ",
        "invalid number '0xZZ' at position 1; expected a number such as 42, -1.5, 1e3 or 0xff",
        0,
    ),
    (
        "a 'b'",
        "unexpected string 'b' at position 3; expected an operator or the end of the expression",
        2,
    ),
    (
        "a 1",
        "unexpected number 1 at position 3; expected an operator or the end of the expression",
        2,
    ),
    (
        "a 'a very long string literal that goes on'",
        "unexpected string 'a very long string literal... at position 3; "
        "expected an operator or the end of the expression",
        2,
    ),
    (
        "true()",
        "unexpected '(' at position 5; expected an operator or the end of the expression",
        4,
    ),
    (
        "foo(1)",
        "unknown function 'foo' at position 1; expected one of always, cancelled, contains, "
        "endsWith, failure, format, fromJSON, hashFiles, join, startsWith, success, toJSON",
        0,
    ),
    (
        "a && toJson2(a)",
        "unknown function 'toJson2' at position 6; expected one of always, "
        "cancelled, contains, endsWith, failure, format, fromJSON, hashFiles, join, startsWith, "
        "success, toJSON",
        5,
    ),
    (
        "contains('a')",
        "wrong number of arguments to contains() at position 1; expected 2 arguments, got 1",
        0,
    ),
    (
        "x || CONTAINS(1, 2, 3)",
        "wrong number of arguments to contains() at position 6; expected 2 arguments, got 3",
        5,
    ),
    (
        "startsWith()",
        "wrong number of arguments to startsWith() at position 1; expected 2 arguments, got 0",
        0,
    ),
    (
        "endsWith(1)",
        "wrong number of arguments to endsWith() at position 1; expected 2 arguments, got 1",
        0,
    ),
    (
        "format()",
        "wrong number of arguments to format() at position 1; expected at least 1 argument, got 0",
        0,
    ),
    (
        "join()",
        "wrong number of arguments to join() at position 1; expected 1 or 2 arguments, got 0",
        0,
    ),
    (
        "join(a, b, c)",
        "wrong number of arguments to join() at position 1; expected 1 or 2 arguments, got 3",
        0,
    ),
    (
        "toJSON()",
        "wrong number of arguments to toJSON() at position 1; expected 1 argument, got 0",
        0,
    ),
    (
        "fromJSON(1, 2)",
        "wrong number of arguments to fromJSON() at position 1; expected 1 argument, got 2",
        0,
    ),
    (
        "hashFiles()",
        "wrong number of arguments to hashFiles() at position 1; "
        "expected at least 1 argument, got 0",
        0,
    ),
    (
        "success(1)",
        "wrong number of arguments to success() at position 1; expected no arguments, got 1",
        0,
    ),
    (
        "always(a)",
        "wrong number of arguments to always() at position 1; expected no arguments, got 1",
        0,
    ),
    (
        "failure(1)",
        "wrong number of arguments to failure() at position 1; expected no arguments, got 1",
        0,
    ),
    (
        "cancelled(1)",
        "wrong number of arguments to cancelled() at position 1; expected no arguments, got 1",
        0,
    ),
    ("contains(a,)", "unexpected ')' at position 12; expected a value", 11),
    ("contains(a b)", "unexpected 'b' at position 12; expected an operator, ',' or ')'", 11),
    (
        "contains(a, b",
        "unexpected end of expression at position 14; expected an operator, ',' or ')'",
        13,
    ),
    ("contains(,a)", "unexpected ',' at position 10; expected a value", 9),
    # a literal format string is checked when parsed
    (
        "format('{1}', 'a')",
        "format(): no argument for '{1}' at position 8; "
        "expected '{0}' since 1 argument follows the format string",
        7,
    ),
    (
        "format('{0}')",
        "format(): no argument for '{0}' at position 8; "
        "expected no '{N}' since no arguments follow the format string",
        7,
    ),
    (
        "format('{0}{3}', 1, 2, 3)",
        "format(): no argument for '{3}' at position 8; "
        "expected '{0}' to '{2}' since 3 arguments follow the format string",
        7,
    ),
    (
        "format('{x}', 1)",
        "format(): '{x}' in the format string is not an argument number at "
        "position 8; expected '{N}' with N counting from 0, or '{{' for a literal '{'",
        7,
    ),
    (
        "format('{-1}', 1)",
        "format(): '{-1}' in the format string is not an argument number at "
        "position 8; expected '{N}' with N counting from 0, or '{{' for a literal '{'",
        7,
    ),
    (
        "format('{ 0}', 1)",
        "format(): '{ 0}' in the format string is not an argument number at "
        "position 8; expected '{N}' with N counting from 0, or '{{' for a literal '{'",
        7,
    ),
    (
        "format('ab{0', 1)",
        "format(): unclosed '{' at index 2 of the format string at position 8; "
        "expected '{N}', or '{{' for a literal '{'",
        7,
    ),
    (
        "format('a}b', 1)",
        "format(): unescaped '}' at index 1 of the format string at position 8; "
        "expected '}}' for a literal '}'",
        7,
    ),
    (
        "(" * 51 + "a" + ")" * 51,
        "expression nested too deeply at position 51; expected at most 50 levels",
        50,
    ),
    ("!" * 60 + "a", "expression nested too deeply at position 51; expected at most 50 levels", 50),
    ("a" + ".b" * 50, "expression nested too deeply at position 1; expected at most 50 levels", 0),
    (
        "a" + " == a" * 50,
        "expression nested too deeply at position 1; expected at most 50 levels",
        0,
    ),
]


@pytest.mark.parametrize(("source", "message", "offset"), PARSE_ERRORS, ids=ids(PARSE_ERRORS))
def test_parse_errors(source: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(source)
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.offset == offset
    assert "\n" not in str(info.value)


def test_error_position_is_offset_plus_one() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("a == )")
    assert f"at position {info.value.offset + 1};" in str(info.value)


def test_long_flat_chains_are_not_nesting() -> None:
    assert evaluate(" || ".join(["false"] * 500) + " || 'end'", {}) == "end"
    assert evaluate(" && ".join(["1"] * 500), {}) == 1
    assert evaluate("a" + ".b" * 48, {"a": None}) is None


EVALUATION_ERRORS: list[tuple[str, str, int]] = [
    (
        "format(fmt3, 1)",
        "format(): no argument for '{3}'; "
        "expected '{0}' since 1 argument follows the format string",
        0,
    ),
    ("'x' && format(matrix.os) && 1", "", 0),  # a string without braces is fine
    (
        "x || format(fmt, 'a')",
        "format(): unclosed '{' at index 0 of the format string; "
        "expected '{N}', or '{{' for a literal '{'",
        5,
    ),
    (
        "fromJSON('not json')",
        "fromJSON(): the argument is not valid JSON (Expecting value at line 1 column 1)",
        0,
    ),
    (
        "fromJSON('')",
        "fromJSON(): the argument is not valid JSON (Expecting value at line 1 column 1)",
        0,
    ),
    (
        "1 == fromJSON('{\"a\": }')",
        "fromJSON(): the argument is not valid JSON (Expecting value at line 1 column 7)",
        5,
    ),
    ("fromJSON('NaN')", "fromJSON(): the argument is not valid JSON (NaN is not JSON)", 0),
    (
        "fromJSON(null)",
        "fromJSON(): the argument is not valid JSON (Expecting value at line 1 column 1)",
        0,
    ),
]


@pytest.mark.parametrize(
    ("source", "message", "offset"), EVALUATION_ERRORS, ids=ids(EVALUATION_ERRORS)
)
def test_evaluation_errors(source: str, message: str, offset: int) -> None:
    contexts = {**CONTEXTS, "fmt": "{0", "fmt3": "{3}"}
    if not message:
        evaluate(source, contexts)
        return
    with pytest.raises(ExpressionError) as info:
        evaluate(source, contexts)
    assert str(info.value) == message
    assert info.value.offset == offset


def test_deeply_nested_json_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="fromJSON"):
        evaluate("fromJSON(x)", {"x": "[" * 100_000 + "]" * 100_000})
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(ExpressionError, match="nested more than 256 levels"):
        evaluate("toJSON(x)", {"x": deep})
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ExpressionError, match="contains itself"):
        to_string(cyclic)


def test_expression_error_is_an_exception_that_pickles() -> None:
    error = ExpressionError("bad thing", 7)
    assert isinstance(error, Exception)
    assert (error.message, error.offset, str(error)) == ("bad thing", 7, "bad thing")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.offset) == ("bad thing", 7)
    assert ExpressionError("x").offset == 0


# -- to_string and is_truthy ---------------------------------------------------------------

TO_STRING: list[tuple[Any, str]] = [
    (None, ""),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-0.0, "0"),
    (3, "3"),
    (3.0, "3"),
    (-2.0, "-2"),
    (1.5, "1.5"),
    (0.1, "0.1"),
    (0.1 + 0.2, "0.30000000000000004"),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (123456789012345680000.0, "123456789012345680000"),
    (1.5e-7, "1.5e-7"),
    (1e-6, "0.000001"),
    (0.00001234, "0.00001234"),
    (2.5e25, "2.5e+25"),
    (-1e-7, "-1e-7"),
    (math.nan, "NaN"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
    (10**30, "1000000000000000000000000000000"),
    ("text", "text"),
    ("", ""),
    ([], "[]"),
    ({}, "{}"),
    ([1, "a", None], '[\n  1,\n  "a",\n  null\n]'),
    ({"a": {"b": 1.0}}, '{\n  "a": {\n    "b": 1\n  }\n}'),
    ((1, 2), "[\n  1,\n  2\n]"),
    ({1: "int key"}, '{\n  "1": "int key"\n}'),
]


@pytest.mark.parametrize(("value", "expected"), TO_STRING, ids=[repr(c[0]) for c in TO_STRING])
def test_to_string(value: Any, expected: str) -> None:
    assert to_string(value) == expected


TRUTHY: list[tuple[Any, bool]] = [
    (None, False),
    (False, False),
    (True, True),
    (0, False),
    (0.0, False),
    (-0.0, False),
    (math.nan, False),
    (1, True),
    (-1, True),
    (0.5, True),
    (math.inf, True),
    ("", False),
    ("0", True),
    ("false", True),
    (" ", True),
    ([], True),
    ({}, True),
    ([0], True),
]


@pytest.mark.parametrize(("value", "expected"), TRUTHY, ids=[repr(c[0]) for c in TRUTHY])
def test_is_truthy(value: Any, expected: bool) -> None:
    assert is_truthy(value) is expected


# -- templates -----------------------------------------------------------------------------

FIND: list[tuple[str, list[Span]]] = [
    ("plain text", []),
    ("", []),
    ("${{ a }}", [Span(0, 8, " a ")]),
    ("${{a}}", [Span(0, 6, "a")]),
    ("x ${{ a }} y ${{ b }}", [Span(2, 10, " a "), Span(13, 21, " b ")]),
    ("${{ '}}' }}", [Span(0, 11, " '}}' ")]),
    ("${{ 'it''s }}' }} tail", [Span(0, 17, " 'it''s }}' ")]),
    ("${{ a }}}", [Span(0, 8, " a ")]),
    ("$${{ a }}", [Span(1, 9, " a ")]),
    ("${{ '${{' }}", [Span(0, 12, " '${{' ")]),
    ("{{ a }} $ {{ b }}", []),
    ("${{}}", [Span(0, 5, "")]),
    ("${{ format('{{0}}', 1) }}", [Span(0, 25, " format('{{0}}', 1) ")]),
]


@pytest.mark.parametrize(("template", "spans"), FIND, ids=ids(FIND))
def test_find_expressions(template: str, spans: list[Span]) -> None:
    assert find_expressions(template) == spans
    for span in spans:
        assert template[span.start + 3 : span.end - 2] == span.source


FIND_ERRORS: list[tuple[str, str, int]] = [
    ("${{ a", "unterminated '${{' at position 1; expected '}}'", 0),
    ("ok ${{ a }} then ${{ b }", "unterminated '${{' at position 18; expected '}}'", 17),
    (
        "x ${{ 'a }}",
        "unterminated '${{' at position 3; expected '}}' (a string inside is not closed)",
        2,
    ),
]


@pytest.mark.parametrize(("template", "message", "offset"), FIND_ERRORS, ids=ids(FIND_ERRORS))
def test_find_expressions_errors(template: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        find_expressions(template)
    assert (str(info.value), info.value.offset) == (message, offset)


def test_is_template() -> None:
    assert is_template("a ${{ b }}")
    assert is_template("${{")
    assert not is_template("a {{ b }}")
    assert not is_template("$ {{ b }}")


RENDER: list[tuple[str, Any]] = [
    ("no expressions at all", "no expressions at all"),
    ("", ""),
    ("${{ matrix.node-version }}", 20),
    ("  ${{ matrix.node-version }}\n", 20),
    ("${{ inputs.flag }}", True),
    ("${{ inputs.nothing }}", None),
    ("${{ matrix }}", CONTEXTS["matrix"]),
    ("${{ steps.*.outcome }}", ["success", "failure"]),
    ("${{ 1.5 }}", 1.5),
    ("v${{ matrix.node-version }}", "v20"),
    ("${{ matrix.node-version }} ", 20),
    ("${{ matrix.os }}-${{ matrix.node-version }}", "linux-20"),
    ("a ${{ 1 }} b ${{ true }} c ${{ null }} d ${{ 2.50 }}", "a 1 b true c  d 2.5"),
    ("[${{ '}}' }}]", "[}}]"),
    ("${{ 'a' }}${{ 'b' }}", "ab"),
    ("${{ 'it''s' }}", "it's"),
    ("x=${{ fromJSON('[1]') }}", "x=[\n  1\n]"),
    (
        "${{ github.event.commits[0].author.name }} wrote ${{ github.event.commits[0].message }}",
        "ann wrote fix: one",
    ),
    ("${{ format('{0}', '${{ not expanded }}') }}", "${{ not expanded }}"),
    ("{{ literal }} ${{ 'x' }}", "{{ literal }} x"),
    (
        "${{ github.event.commits.*.message }} and ${{ github.event.commits.*.message }}",
        '[\n  "fix: one",\n  "[skip ci] two"\n] and [\n  "fix: one",\n  "[skip ci] two"\n]',
    ),
]


@pytest.mark.parametrize(("template", "expected"), RENDER, ids=ids(RENDER))
def test_render(template: str, expected: Any) -> None:
    assert same(render(template, CONTEXTS), expected) or render(template, CONTEXTS) is expected


def test_render_returns_a_template_without_expressions_as_the_same_object() -> None:
    text = "plain " * 3
    assert render(text, {}) is text


RENDER_STRING: list[tuple[str, str]] = [
    ("${{ matrix.node-version }}", "20"),
    ("${{ inputs.nothing }}", ""),
    ("${{ inputs.flag }}", "true"),
    ("${{ 3.0 }}", "3"),
    ("${{ matrix }}", '{\n  "node-version": 20,\n  "os": "linux"\n}'),
    ("plain", "plain"),
    ("a-${{ 'b' }}", "a-b"),
]


@pytest.mark.parametrize(("template", "expected"), RENDER_STRING, ids=ids(RENDER_STRING))
def test_render_string(template: str, expected: str) -> None:
    assert render_string(template, CONTEXTS) == expected


RENDER_ERRORS: list[tuple[str, str, int]] = [
    ("value: ${{ a == ) }}", "unexpected ')' at position 17; expected a value", 16),
    ("${{ }}", "empty expression at position 5; expected a value", 4),
    (
        "ok ${{ 1 }} ${{ nope(1) }}",
        "unknown function 'nope' at position 17; expected one of "
        "always, cancelled, contains, endsWith, failure, format, fromJSON, hashFiles, join, "
        "startsWith, success, toJSON",
        16,
    ),
    (
        "${{ 'unterminated }}",
        "unterminated '${{' at position 1; expected '}}' (a string inside is not closed)",
        0,
    ),
    ("key-${{ hashFiles('x') }}", "hashFiles is only available on the agent, inside a step", 8),
    ("${{ hashFiles('x') }}", "hashFiles is only available on the agent, inside a step", 4),
    (
        "${{ fromJSON('{') }}",
        "fromJSON(): the argument is not valid JSON (Expecting property "
        "name enclosed in double quotes at line 1 column 2)",
        4,
    ),
    # syntax errors are found before anything is evaluated
    (
        "${{ hashFiles('x') }} ${{ a b }}",
        "unexpected 'b' at position 29; expected an operator or the end of the expression",
        28,
    ),
]


@pytest.mark.parametrize(("template", "message", "offset"), RENDER_ERRORS, ids=ids(RENDER_ERRORS))
def test_render_errors_point_into_the_template(template: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        render(template, CONTEXTS)
    assert (str(info.value), info.value.offset) == (message, offset)


def test_render_passes_status_and_hash_files() -> None:
    assert render("${{ failure() }}", {}, status="failure") is True
    assert render_string("k-${{ hashFiles('a') }}", {}, hash_files=lambda p: "h") == "k-h"
    with pytest.raises(ValueError, match="status must be one of"):
        render("x", {}, status="nope")


# -- if: conditions ------------------------------------------------------------------------

CONDITIONS: list[tuple[str | bool | None, str, bool]] = [
    (None, "success", True),
    (None, "failure", False),
    (None, "cancelled", False),
    ("", "success", True),
    ("  ", "failure", False),
    (True, "success", True),
    (True, "failure", False),
    (False, "success", False),
    # an expression without a status function is success() && (expr)
    ("true", "success", True),
    ("true", "failure", False),
    ("true", "cancelled", False),
    ("matrix.os == 'linux'", "success", True),
    ("matrix.os == 'linux'", "failure", False),
    ("matrix.os == 'windows'", "success", False),
    ("${{ matrix.os == 'linux' }}", "success", True),
    ("  ${{ matrix.os == 'linux' }}  ", "failure", False),
    ("github.event_name == 'push' || inputs.flag", "failure", False),
    ("inputs.count", "success", True),  # truthy, not a bool
    ("inputs.empty", "success", False),
    ("inputs.zero", "success", False),
    ("steps.build.outputs.image", "success", True),
    # a status function anywhere turns the implicit success() off
    ("always()", "failure", True),
    ("always()", "cancelled", True),
    ("${{ always() }}", "failure", True),
    ("failure()", "failure", True),
    ("failure()", "success", False),
    ("failure() && matrix.os == 'linux'", "failure", True),
    ("failure() && matrix.os == 'mac'", "failure", False),
    ("!cancelled()", "failure", True),
    ("!cancelled()", "cancelled", False),
    ("cancelled()", "cancelled", True),
    ("success() || failure()", "failure", True),
    ("${{ !cancelled() && steps.my-step.outcome == 'failure' }}", "failure", True),
    ("inputs.flag || always()", "failure", True),
    ("false && always()", "failure", False),
    ("contains(toJSON(steps), 'failure') && ALWAYS()", "failure", True),
    # text around ${{ }} makes a string, true when not empty (GitHub does the same)
    ("${{ false }} && false", "success", True),
    ("${{ false }} && false", "failure", False),
    ("${{ failure() }} x", "failure", True),
    ("${{ inputs.empty }}${{ inputs.nothing }} ", "success", True),
]


@pytest.mark.parametrize(("condition", "status", "expected"), CONDITIONS, ids=ids(CONDITIONS))
def test_evaluate_condition(condition: str | bool | None, status: str, expected: bool) -> None:
    assert evaluate_condition(condition, CONTEXTS, status=status) is expected


def test_condition_is_not_evaluated_when_the_implicit_success_fails() -> None:
    # would raise (no hash_files) if evaluated
    assert evaluate_condition("hashFiles('x') != ''", {}, status="failure") is False
    assert evaluate_condition("${{ fromJSON('bad') }}", {}, status="cancelled") is False


CONDITION_ERRORS: list[tuple[str, str, int]] = [
    ("a ==", "unexpected end of expression at position 5; expected a value", 4),
    ("${{ a == }}", "unexpected end of expression at position 10; expected a value", 9),
    (
        "  ${{ foo() }}",
        "unknown function 'foo' at position 7; expected one of always, "
        "cancelled, contains, endsWith, failure, format, fromJSON, hashFiles, join, startsWith, "
        "success, toJSON",
        6,
    ),
    ("${{ hashFiles('x') }}", "hashFiles is only available on the agent, inside a step", 4),
    ("x ${{ a", "unterminated '${{' at position 3; expected '}}'", 2),
    (
        "x ${{ b c }}",
        "unexpected 'c' at position 9; expected an operator or the end of the expression",
        8,
    ),
]


@pytest.mark.parametrize(
    ("condition", "message", "offset"), CONDITION_ERRORS, ids=ids(CONDITION_ERRORS)
)
def test_evaluate_condition_errors(condition: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate_condition(condition, CONTEXTS)
    assert (str(info.value), info.value.offset) == (message, offset)


def test_evaluate_condition_passes_hash_files() -> None:
    assert evaluate_condition("hashFiles('*.lock') == 'h'", {}, hash_files=lambda p: "h")


# -- analysis ------------------------------------------------------------------------------

REFERENCED: list[tuple[str, set[str]]] = [
    ("1", set()),
    ("steps.build.outputs.x == secrets.TOKEN", {"steps", "secrets"}),
    ("GitHub.event || Env.X || env.y", {"github", "env"}),
    ("format('{0}', matrix.os, inputs['x'])", {"matrix", "inputs"}),
    ("needs.*.result", {"needs"}),
    ("fromJSON(vars.json)[runner.os]", {"vars", "runner"}),
    ("'steps.x'", set()),
    ("a.steps", {"a"}),
    ("success() && !job.status", {"job"}),
]


@pytest.mark.parametrize(("source", "expected"), REFERENCED, ids=ids(REFERENCED))
def test_referenced_contexts(source: str, expected: set[str]) -> None:
    assert referenced_contexts(source) == expected
    assert referenced_contexts(parse(source)) == expected


STATUS_CALLS: list[tuple[str, bool]] = [
    ("success()", True),
    ("ALWAYS()", True),
    ("!cancelled()", True),
    ("x && (y || failure())", True),
    ("format('{0}', always())", True),
    ("'success()'", False),
    ("success", False),
    ("steps.failure", False),
    ("contains(a, b)", False),
]


@pytest.mark.parametrize(("source", "expected"), STATUS_CALLS, ids=ids(STATUS_CALLS))
def test_calls_status_function(source: str, expected: bool) -> None:
    assert calls_status_function(source) is expected
    assert calls_status_function(parse(source)) is expected


def test_parse_is_cached_and_its_result_reusable() -> None:
    expr = parse("matrix.os == 'linux'")
    assert parse("matrix.os == 'linux'") is expr
    assert evaluate(expr, {"matrix": {"os": "linux"}}) is True
    assert evaluate(expr, {"matrix": {"os": "mac"}}) is False


# -- the package itself --------------------------------------------------------------------


def test_public_exports_are_pinned() -> None:
    assert expressions.__all__ == [
        "ContextRef",
        "Expr",
        "ExpressionError",
        "Index",
        "Literal",
        "Property",
        "Span",
        "calls_status_function",
        "evaluate",
        "evaluate_condition",
        "find_expressions",
        "hash_files",
        "is_template",
        "is_truthy",
        "parse",
        "referenced_contexts",
        "render",
        "render_string",
        "render_tree",
        "to_string",
        "walk",
    ]
    for name in expressions.__all__:
        assert getattr(expressions, name).__module__.startswith("waterflow.expressions")


PURE_MODULES = {"__future__", "attrs", "collections", "functools", "json", "math", "re", "typing"}


def test_the_evaluator_imports_only_pure_modules() -> None:
    package = Path(expressions.__file__).parent
    for source in sorted(package.glob("*.py")):
        if source.name == "_hashfiles.py":
            continue
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name == "waterflow.expressions._hashfiles":
                    # only inside the hash_files() wrapper, never at import time
                    assert source.name == "__init__.py"
                    assert node.col_offset > 0
                    continue
                top = name.split(".")[0]
                assert top in PURE_MODULES or name.startswith("waterflow.expressions"), (
                    f"{source.name} imports {name}"
                )


def test_importing_the_package_does_not_load_the_file_hashing() -> None:
    code = (
        "import sys, waterflow.expressions as e; "
        "e.render('${{ 1 }}', {}); "
        "print('waterflow.expressions._hashfiles' in sys.modules, 'hashlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[0] == "False"
