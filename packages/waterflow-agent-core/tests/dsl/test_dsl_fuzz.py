"""Whatever the text, parse_workflow raises nothing but WorkflowError, and every problem is
one line that points inside the text."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from dsl_test_nodes import GHA, NODES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from waterflow import NodeMetadata
from waterflow.dsl import WorkflowError, parse_workflow, validate_workflow
from waterflow.dsl._parse import INPUT_KEYS, JOB_KEYS, RETRY_KEYS, STEP_KEYS, TOP_KEYS

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALL_NODES: dict[str, NodeMetadata] = {**NODES, **GHA}
LINE_BREAK = re.compile(r"\r\n|\r|\n")

WORDS = [
    "${{",
    "}}",
    "${{ steps.a.outputs.b }}",
    "${{ needs.x.result }}",
    "${{ inputs.tag }}",
    "${{ secrets.T }}",
    "${{ nope.x }}",
    "${{ a == }}",
    "${{ format('{0}', 'x') }}",
    "always()",
    "10m",
    "1h30m",
    "500ms",
    "0s",
    "linux",
    "linux_amd64",
    "docker/build",
    "docker/buidl",
    "actions/checkout@v4",
    "./local",
    "docker://alpine",
    "shell/run",
    "on",
    "yes",
    "~",
    "_1",
    "a",
    "b",
    "build",
    "choice",
    "boolean",
    "number",
    "workflow_dispatch",
]
KEYS = [*TOP_KEYS, *JOB_KEYS, *STEP_KEYS, *RETRY_KEYS, *INPUT_KEYS, "inputs", "run", "a", "b"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
yamlish = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


def _mapping(names: list[str], value: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(names), value, max_size=len(names))


small = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(keys, scalars, max_size=3)
)
retry = _mapping([*RETRY_KEYS, "max_attempt"], small)
step = _mapping([*STEP_KEYS, "wiht"], st.one_of(small, retry))
job = st.builds(
    lambda base, steps: {**base, "steps": steps},
    _mapping([*JOB_KEYS, "runs_on"], st.one_of(small, st.sampled_from(["linux", "a-b"]))),
    st.lists(step, max_size=4),
)
inputs = st.dictionaries(
    st.sampled_from(["tag", "flag", "n", "bad name"]), _mapping([*INPUT_KEYS], small), max_size=3
)
workflow = st.builds(
    lambda base, jobs, ins: {
        **base,
        "on": {"workflow_dispatch": {"inputs": ins}},
        "jobs": jobs,
    },
    _mapping(["name", "env", "defaults", "permissions", "run-name"], small),
    st.dictionaries(st.sampled_from(["a", "b", "build", "c-1", "9x"]), job, max_size=3),
    inputs,
)


# Workflows that are valid or nearly so, to reach the expression and node checks.
TEMPLATES = st.sampled_from(
    [
        "make",
        "echo ${{ github.sha }}",
        "echo ${{ steps.a.outputs.x }}",
        "${{ needs.a.outputs.x }}",
        "${{ inputs.tag }}-${{ env.X }}",
        "${{ format('{0}', secrets.T) }}",
        "${{ toJSON(steps.*.outcome) }}",
        "${{ matrix.os }} ${{ strategy.job-index }}",
        "${{ steps['b'].outputs.y == 'z' && runner.os }}",
    ]
)
CONDITIONS = st.sampled_from(
    ["always()", "${{ failure() }}", "steps.a.outcome == 'success'", "needs.a.result", "true"]
)
near_step = st.one_of(
    st.fixed_dictionaries(
        {"run": TEMPLATES},
        optional={
            "id": st.sampled_from(["a", "b", "c"]),
            "if": CONDITIONS,
            "env": st.dictionaries(st.sampled_from(["X", "Y"]), TEMPLATES, max_size=2),
            "timeout": st.sampled_from(["1m", "10s", "1h30m"]),
            "retry": st.fixed_dictionaries(
                {"max_attempts": st.integers(1, 5)},
                optional={"initial_interval": st.just("1s"), "backoff_coefficient": st.just(2)},
            ),
            "continue-on-error": st.one_of(st.booleans(), st.just("${{ inputs.flag }}")),
        },
    ),
    st.fixed_dictionaries(
        {
            "uses": st.sampled_from(["docker/build", "slack/notify", "actions/checkout@v4"]),
            "with": st.dictionaries(
                st.sampled_from(["tag", "push", "message", "webhook_url", "platform"]),
                st.one_of(TEMPLATES, st.booleans(), st.sampled_from(["linux/amd64", "x"])),
                max_size=4,
            ),
        },
        optional={"id": st.sampled_from(["a", "b", "c"]), "heartbeat_timeout": st.just("30s")},
    ),
)
near_job = st.fixed_dictionaries(
    {
        "runs-on": st.sampled_from(["linux", "a-b"]),
        "steps": st.lists(near_step, min_size=1, max_size=4),
    },
    optional={
        "needs": st.sampled_from(["a", ["a", "b"], "c"]),
        "if": CONDITIONS,
        "outputs": st.dictionaries(st.sampled_from(["o", "p"]), TEMPLATES, max_size=2),
        "timeout-minutes": st.integers(1, 60),
        "env": st.dictionaries(st.sampled_from(["X", "Y"]), TEMPLATES, max_size=2),
    },
)
near_workflow = st.fixed_dictionaries(
    {"jobs": st.dictionaries(st.sampled_from(["a", "b", "c"]), near_job, min_size=1, max_size=3)},
    optional={
        "on": st.just({"workflow_dispatch": {"inputs": {"tag": {}, "flag": {"type": "boolean"}}}}),
        "env": st.dictionaries(st.sampled_from(["X", "Y"]), TEMPLATES, max_size=2),
    },
)


def dump(data: Any, style: int) -> str:
    if style == 0:
        return json.dumps(data, allow_nan=True)
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = style == 2
    yaml.dump(data, out)
    return out.getvalue()


def pieces(chars: str, max_size: int) -> st.SearchStrategy[str]:
    """Text made of `chars` and a few YAML and expression tokens."""
    tokens = [*chars, "${{", "}}", "  ", "- ", ": ", "\n  "]
    return st.lists(st.sampled_from(tokens), max_size=max_size).map("".join)


NOISE = pieces(":-[]{}&*!|>'\"#%@`?,\n\r\t $\xa0", 6)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(0, 4))):
        if not text:
            text = draw(NOISE)
            continue
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup-line", "swap", "indent"]))
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        lines = text.split("\n")
        k = draw(st.integers(0, len(lines) - 1))
        if op == "insert":
            text = text[:i] + draw(NOISE) + text[i:]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "replace":
            text = text[:i] + draw(NOISE) + text[j:]
        elif op == "dup-line":
            text = "\n".join([*lines[: k + 1], lines[k], *lines[k + 1 :]])
        elif op == "swap" and len(lines) > 1:
            m = draw(st.integers(0, len(lines) - 1))
            lines[k], lines[m] = lines[m], lines[k]
            text = "\n".join(lines)
        elif op == "indent":
            lines[k] = draw(st.sampled_from(["", " ", "  ", "\t"])) + lines[k]
            text = "\n".join(lines)
    return text


def check(text: str) -> None:
    """parse_workflow either returns or raises WorkflowError with problems inside the text."""
    try:
        spec = parse_workflow(text, "f.yaml", nodes=ALL_NODES)
    except WorkflowError as exc:
        error: WorkflowError | None = exc
    else:
        error = None
        assert validate_workflow(spec, ALL_NODES) == []
        assert spec.jobs
    if error is None:
        return
    assert error.problems
    lines = LINE_BREAK.split(text)
    for problem in error.problems:
        assert problem.file == "f.yaml"
        assert 1 <= problem.line <= len(lines), (problem, text)
        assert 1 <= problem.col <= len(lines[problem.line - 1]) + 1, (problem, text)
        assert "internal error" not in problem.message, (problem, text)
        assert len(str(problem).splitlines()) == 1


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(pieces("ajobs:-[]{}&*!|>'\"#\n\t $", 120))
def test_yaml_punctuation(text: str) -> None:
    check(text)


@FUZZ
@given(yamlish, st.integers(0, 2), st.data())
def test_yaml_structures(data: Any, style: int, draw: st.DataObject) -> None:
    text = dump(data, style)
    check(text)
    check(draw.draw(mutated(text)))


@FUZZ
@given(workflow, st.integers(0, 2), st.data())
def test_workflow_shaped_structures(data: Any, style: int, draw: st.DataObject) -> None:
    text = dump(data, style)
    check(text)
    check(draw.draw(mutated(text)))


@FUZZ
@given(near_workflow, st.integers(0, 2), st.data())
def test_nearly_valid_workflows(data: Any, style: int, draw: st.DataObject) -> None:
    text = dump(data, style)
    check(text)
    check(draw.draw(mutated(text)))


def test_deep_nesting_and_alias_bombs() -> None:
    check("jobs: " + "[" * 5000 + "]" * 5000)
    check("jobs: " + "{a: " * 3000 + "x" + "}" * 3000)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 10):
        refs = ", ".join(["*" + "a" * n] * 10)
        bomb.append(f"{'b' * n}: &{'a' * (n + 1)} [{refs}]")
    bomb.append("jobs: {x: {runs-on: q, steps: [{uses: a/b, with: {v: *aaaaaaaaaa}}]}}")
    check("\n".join(bomb))
