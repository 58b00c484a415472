"""The model: JSON through cattrs, sandbox-safe imports, and the pinned public API."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import cattrs
import pytest
from cattrs.preconf.json import make_converter

import waterflow.dsl
from waterflow.dsl import (
    InputSpec,
    JobSpec,
    Pos,
    RetrySpec,
    StepSpec,
    WorkflowSpec,
    configure_converter,
    load_workflow,
)
from waterflow.dsl import model as model_module

HERE = Path(__file__).parent


def hand_made() -> WorkflowSpec:
    step = StepSpec(
        index=0,
        key="build",
        id="build",
        name=None,
        display_name="docker/build",
        uses="docker/build",
        with_={"tag": "x", "n": 3, "f": 1.5, "b": True, "l": [1, {"a": None}]},
        env={"A": "1"},
        if_="success()",
        continue_on_error="${{ inputs.flaky }}",
        timeout=600.0,
        heartbeat_timeout=None,
        retry=RetrySpec(3, 1.0, 30.0, 2.0),
        pos=Pos(3, 9),
    )
    job = JobSpec(
        id="build",
        name="Build",
        runs_on="linux",
        needs=("a", "b"),
        if_=None,
        env={},
        outputs={"image": "${{ steps.build.outputs.image }}"},
        timeout=None,
        continue_on_error=True,
        steps=(step,),
        pos=Pos(2, 3),
    )
    inputs = {
        "s": InputSpec("s", default="x"),
        "b": InputSpec("b", type="boolean", default=False),
        "n": InputSpec("n", type="number", default=2.5),
        "c": InputSpec("c", type="choice", options=("x", "y"), default="y", required=True),
        "none": InputSpec("none"),
    }
    return WorkflowSpec("w", "w.yaml", {"E": "1"}, inputs, {"build": job}, "0" * 64)


SPECS = [
    hand_made,
    lambda: load_workflow(HERE / "good" / "github-style.yaml"),
    lambda: load_workflow(HERE / "good" / "inputs.yaml"),
    lambda: load_workflow(HERE / "good" / "deploy.yaml"),
]


@pytest.mark.parametrize(
    "converter",
    [
        lambda: configure_converter(cattrs.Converter()),
        lambda: configure_converter(cattrs.Converter(omit_if_default=True)),
        make_converter,
    ],
    ids=["converter", "omit-if-default", "preconf-json"],
)
@pytest.mark.parametrize("make_spec", SPECS, ids=["hand-made", "github", "inputs", "deploy"])
def test_json_round_trip(converter, make_spec) -> None:  # type: ignore[no-untyped-def]
    conv = converter()
    spec = make_spec()
    data = json.loads(json.dumps(conv.unstructure(spec)))
    back = conv.structure(data, WorkflowSpec)
    assert back == spec
    assert (
        type(back.jobs["build" if "build" in back.jobs else next(iter(back.jobs))].steps) is tuple
    )


def test_the_model_imports_only_attrs_and_the_standard_library() -> None:
    import sys

    tree = ast.parse(Path(model_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - {"attrs"} <= set(sys.stdlib_module_names) | {"__future__"}


def test_public_api_is_pinned() -> None:
    assert sorted(waterflow.dsl.__all__) == [
        "GHA_NODE",
        "InputSpec",
        "JobSpec",
        "MatrixError",
        "Pos",
        "Problem",
        "RetrySpec",
        "StepSpec",
        "StrategySpec",
        "WorkflowError",
        "WorkflowSpec",
        "apply_inputs",
        "configure_converter",
        "expand_matrix",
        "instance_name",
        "is_action",
        "load_workflow",
        "parse_duration",
        "parse_workflow",
        "validate_on_queues",
        "validate_workflow",
    ]
    for name in waterflow.dsl.__all__:
        assert getattr(waterflow.dsl, name) is not None


def test_model_classes_are_frozen() -> None:
    spec = hand_made()
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
