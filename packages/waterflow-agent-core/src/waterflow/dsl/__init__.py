"""The workflow language: YAML text to a checked `WorkflowSpec`.

    spec = load_workflow("deploy.yaml")              # WorkflowError lists every problem
    problems = validate_workflow(spec, registry_metadata)
    problems = validate_on_queues(spec, {"linux-amd64": nodes_of_that_queue})  # for a fleet
    inputs = apply_inputs(spec, {"tag": "v1.2"})

Every problem is one line, `file:line:col: message`, pointing at the offending key or value.
`parse_workflow` checks all that can be checked without node metadata (YAML, keys, types,
durations, queue names, ids, `needs`, expressions); `validate_workflow` checks a spec against
the installed nodes. The model (`waterflow.dsl.model`) imports only attrs and the standard
library, for Temporal's workflow sandbox; `configure_converter` readies a cattrs converter for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from waterflow._node import NodeMetadata
from waterflow.dsl._convert import configure_converter
from waterflow.dsl._durations import parse_duration
from waterflow.dsl._errors import Problem, WorkflowError
from waterflow.dsl._names import GHA_NODE, is_action
from waterflow.dsl.matrix import MatrixError, expand_matrix, instance_name
from waterflow.dsl.model import (
    InputSpec,
    JobSpec,
    Pos,
    RetrySpec,
    StepSpec,
    StrategySpec,
    WorkflowSpec,
)

if TYPE_CHECKING:
    from waterflow.dsl._inputs import apply_inputs

# The parser and the checks (and the YAML library under them) load with the first workflow
# read: an agent, which only runs steps, never pays for them.


def __getattr__(name: str) -> Any:
    if name == "apply_inputs":
        from waterflow.dsl._inputs import apply_inputs

        return apply_inputs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_workflow(
    text: str, file: str = "<string>", *, nodes: Mapping[str, NodeMetadata] | None = None
) -> WorkflowSpec:
    """Parse and check a workflow given as text; `file` is used in messages as given.

    With `nodes`, the node checks of `validate_workflow` run too, so that one error lists
    every problem. Raises `WorkflowError`, never anything else.
    """
    from waterflow.dsl._parse import Builder, remember
    from waterflow.dsl._validate import check_spec

    builder = Builder(text, file)
    try:
        spec = builder.build()
        problems = list(builder.problems)
        if spec is not None:
            problems += check_spec(spec, builder.map, nodes)
    except RecursionError:
        spec = None
        problems = [*builder.problems, Problem(file, 1, 1, "the workflow is nested too deeply")]
    except Exception as exc:  # a bug of ours must still read as a problem of the file
        spec = None
        problems = [
            *builder.problems,
            Problem(file, 1, 1, f"internal error while reading the workflow: {exc!r}"),
        ]
    if problems or spec is None:
        raise WorkflowError(_ordered(problems))
    remember(spec, builder.map)
    return spec


def load_workflow(
    path: str | os.PathLike[str],
    *,
    nodes: Mapping[str, NodeMetadata] | None = None,
    name: str | None = None,
) -> WorkflowSpec:
    """Read, parse and check a workflow file. Raises `WorkflowError`, also when the file
    cannot be read (`file: cannot read: <reason>`). Messages name the file `name` when given
    (the path as the user wrote it, when another process reads it)."""
    file = name or os.fspath(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkflowError([Problem(file, 0, 0, f"cannot read: {reason}")]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8-sig", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        byte = data[exc.start]
        raise WorkflowError(
            [Problem(file, line, col, f"cannot read: not UTF-8 text (byte 0x{byte:02x})")]
        ) from None
    return parse_workflow(text, file, nodes=nodes)


def validate_workflow(
    spec: WorkflowSpec, nodes: Mapping[str, NodeMetadata] | None
) -> list[Problem]:
    """Problems of a spec: `needs`, expressions and, unless `nodes` is None, the steps
    against node metadata (node names, GitHub Actions, required, unknown and mistyped
    parameters). Specs from `parse_workflow` get exact positions; others point at the step."""
    from waterflow.dsl._parse import source_map
    from waterflow.dsl._validate import check_spec

    try:
        problems = check_spec(spec, source_map(spec), nodes)
    except Exception as exc:  # a bug of ours must still read as a problem of the file
        problems = [Problem(spec.file, 1, 1, f"internal error while validating: {exc!r}")]
    return _ordered(problems)


def validate_on_queues(
    spec: WorkflowSpec, queues: Mapping[str, Mapping[str, NodeMetadata]]
) -> list[Problem]:
    """Like `validate_workflow`, for a fleet: each job's steps are checked against the nodes
    that its `runs-on` queue offers (`queues` maps a queue to its nodes by name). A job whose
    queue is not in `queues`, and a node that only other queues offer, are problems too
    (`node docker/build is not offered on queue gpu-a100; it is on linux-amd64`)."""
    from waterflow.dsl._parse import source_map
    from waterflow.dsl._validate import check_spec

    try:
        problems = check_spec(spec, source_map(spec), None, queues=queues)
    except Exception as exc:  # a bug of ours must still read as a problem of the file
        problems = [Problem(spec.file, 1, 1, f"internal error while validating: {exc!r}")]
    return _ordered(problems)


def _ordered(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.line, p.col))


__all__ = [
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
