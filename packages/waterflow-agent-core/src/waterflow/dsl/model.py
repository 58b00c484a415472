"""The parsed workflow: what `parse_workflow` returns and what travels through Temporal.

Only attrs and the standard library here: this module is imported inside Temporal's workflow
sandbox. Every class is frozen and JSON-friendly through a cattrs converter on which
`waterflow.dsl.configure_converter` has been called (it teaches cattrs the `bool | str` style
unions below). Durations are seconds.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Pos:
    """A place in the workflow file, 1-based."""

    line: int
    col: int


@attrs.frozen
class RetrySpec:
    """A step's `retry:`, as Temporal's RetryPolicy wants it (intervals in seconds)."""

    max_attempts: int = 1
    initial_interval: float | None = None
    maximum_interval: float | None = None
    backoff_coefficient: float | None = None


@attrs.frozen
class InputSpec:
    """One input declared under `on.workflow_dispatch.inputs`.

    `type` is one of string, boolean, number, choice, environment; `options` are the choices
    of a `choice` input.
    """

    name: str
    description: str = ""
    required: bool = False
    default: str | bool | float | None = None
    type: str = "string"
    options: tuple[str, ...] = ()


@attrs.frozen
class StepSpec:
    """One step of a job.

    `key` is the step's `id`, or `_<n>` (1-based position) for a step without one: it names
    the step in the `steps` context and in Temporal. A `run:` step arrives normalized as
    `uses="shell/run"` with `with_={"run": ..., "shell": ..., "working-directory": ...}`.
    `with_` values keep their YAML types; `env` values are strings. `if_` and a string
    `continue_on_error` are expressions, kept as written.
    """

    index: int
    key: str
    id: str | None
    name: str | None
    display_name: str
    uses: str
    with_: dict[str, Any]
    env: dict[str, str]
    if_: str | None
    continue_on_error: bool | str
    timeout: float | None
    heartbeat_timeout: float | None
    retry: RetrySpec | None
    pos: Pos
    # `local: true` runs the step as a Temporal local activity in the agent deciding its job
    # (short steps only); None leaves it to the node's metadata (NodeMetadata.local).
    local: bool | None = None


@attrs.frozen
class StrategySpec:
    """`strategy:` of a job: one job instance per combination of the matrix.

    `matrix` is the mapping as written (axes, `include`, `exclude`; values may be
    expressions), or one expression that yields such a mapping (`${{ fromJSON(...) }}`).
    """

    matrix: dict[str, Any] | str
    fail_fast: bool | str = True
    max_parallel: int | None = None


@attrs.frozen
class JobSpec:
    """One job: its steps run in order on one agent of the `runs_on` task queue.

    `runs_on` may hold an expression (`${{ matrix.queue }}`), rendered when the job starts.
    """

    id: str
    name: str | None
    runs_on: str
    needs: tuple[str, ...]
    if_: str | None
    env: dict[str, str]
    outputs: dict[str, str]
    timeout: float | None
    continue_on_error: bool | str
    steps: tuple[StepSpec, ...]
    pos: Pos
    strategy: StrategySpec | None = None


@attrs.frozen
class WorkflowSpec:
    """A whole workflow file. `jobs` keeps the file's order; `file` is the path as given."""

    name: str
    file: str
    env: dict[str, str]
    inputs: dict[str, InputSpec]
    jobs: dict[str, JobSpec]
    source_sha256: str


__all__ = [
    "InputSpec",
    "JobSpec",
    "Pos",
    "RetrySpec",
    "StepSpec",
    "StrategySpec",
    "WorkflowSpec",
]
