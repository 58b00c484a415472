"""apply_inputs: the `inputs` context from given strings."""

from __future__ import annotations

import pytest

from waterflow.dsl import WorkflowError, WorkflowSpec, apply_inputs, parse_workflow

TEXT = """\
on:
  workflow_dispatch:
    inputs:
      tag: {required: true}
      push: {type: boolean, default: true}
      dry: {type: boolean}
      replicas: {type: number, default: 2}
      ratio: {type: number}
      level: {type: choice, options: [debug, info], default: info}
      target: {type: environment}
jobs:
  a:
    runs-on: q
    steps: [{run: x}]
"""


@pytest.fixture
def spec() -> WorkflowSpec:
    return parse_workflow(TEXT, "in.yaml")


def test_defaults_and_conversions(spec: WorkflowSpec) -> None:
    assert apply_inputs(spec, {"tag": "v1"}) == {
        "tag": "v1",
        "push": True,
        "dry": False,
        "replicas": 2,
        "ratio": None,
        "level": "info",
        "target": "",
    }
    values = apply_inputs(
        spec,
        {
            "tag": "v2",
            "push": "no",
            "dry": "TRUE",
            "replicas": "5",
            "ratio": "0.5",
            "level": "debug",
        },
    )
    assert values["push"] is False
    assert values["dry"] is True
    assert values["replicas"] == 5
    assert isinstance(values["replicas"], int)
    assert values["ratio"] == 0.5
    assert values["level"] == "debug"


def test_every_bad_input_is_named(spec: WorkflowSpec) -> None:
    with pytest.raises(WorkflowError) as caught:
        apply_inputs(spec, {"tga": "v1", "push": "maybe", "replicas": "many", "level": "trace"})
    assert [str(p) for p in caught.value.problems] == [
        "in.yaml: unknown input 'tga' (did you mean 'tag'?); inputs: tag, push, dry, "
        "replicas, ratio, level, target",
        "in.yaml:4:7: input 'tag' is required",
        "in.yaml:5:7: input 'push': expected true or false, got 'maybe'",
        "in.yaml:7:7: input 'replicas': expected a number, got 'many'",
        "in.yaml:9:7: input 'level': 'trace' is not one of 'debug', 'info'",
    ]


def test_no_inputs_declared() -> None:
    spec = parse_workflow("jobs: {a: {runs-on: q, steps: [{run: x}]}}", "w.yaml")
    assert apply_inputs(spec, {}) == {}
    with pytest.raises(WorkflowError, match="unknown input 'x'; inputs: none are declared"):
        apply_inputs(spec, {"x": "1"})
