"""The node-author API: what a node describes about itself, what it gets, what it returns."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from waterflow._masking import SecretMasker
    from waterflow._steplog import StepLog

ParameterType = Literal["string", "integer", "number", "boolean", "array", "object"]
PARAMETER_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "array", "object")


def _enum(values: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


@attrs.frozen
class Parameter:
    """One input a node accepts under a step's `with:`."""

    name: str
    type: ParameterType = "string"
    required: bool = False
    default: Any = None
    enum: tuple[Any, ...] | None = attrs.field(default=None, converter=_enum)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if self.type not in PARAMETER_TYPES:
            raise ValueError(
                f"parameter {self.name!r}: type {self.type!r} is not one of "
                + ", ".join(PARAMETER_TYPES)
            )


@attrs.frozen
class Output:
    """One output a node sets, readable later as `steps.<id>.outputs.<name>`."""

    name: str
    description: str = ""


def _parameters(values: Iterable[Parameter]) -> tuple[Parameter, ...]:
    return tuple(values)


def _outputs(values: Iterable[Output]) -> tuple[Output, ...]:
    return tuple(values)


@attrs.frozen
class NodeMetadata:
    """What a node is: its name (`namespace/name`), version, parameters and outputs.

    The agent lists it, reports it to the server, and validates `with:` against it before a
    step runs. `additional_parameters` lets a node accept names it does not declare; `local`
    says its steps are short enough to run as Temporal local activities.
    """

    name: str
    version: str
    description: str = ""
    parameters: tuple[Parameter, ...] = attrs.field(default=(), converter=_parameters)
    outputs: tuple[Output, ...] = attrs.field(default=(), converter=_outputs)
    additional_parameters: bool = False
    #: The node's steps are short (well under the job's workflow task timeout, 10 s, and
    #: without heartbeats): they may run as Temporal local activities, in the agent that
    #: decides the job, without a trip through the server. A step's `local:` overrides it.
    local: bool = False

    def parameter(self, name: str) -> Parameter | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None


@attrs.frozen
class NodeResult:
    """What a node returns: its outputs and its exit code (0 is success).

    A node that fails returns a non-zero `exit_code` (and may say why in `error`), or raises
    `NodeError`. Outputs written to `$GITHUB_OUTPUT` are merged in by the core.
    """

    outputs: Mapping[str, str] = attrs.field(factory=dict)
    exit_code: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


class NodeError(Exception):
    """Raised by a node to fail its step with a clear message.

    `retryable=False` marks a failure that another attempt cannot fix (bad input); the step's
    retry policy is then not applied.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@attrs.frozen
class StepInfo:
    """Where a step stands: its run, job and step identity, and which attempt this is."""

    workflow: str
    run_id: str
    job: str
    step_id: str
    step_name: str
    attempt: int = 1
    uses: str = ""
    """What the step's `uses:` said (a GitHub Action's `owner/repo@ref`, for instance)."""
    phase: str = "main"
    """`main`, or `post` when the core runs the post step the node asked for."""
    job_status: str = ""
    """In a post step, the job's status then (`success`, `failure` or `cancelled`, what
    `job.status` reads); "" in a main step."""


#: The kinds of env files, as their variables name them (`GITHUB_<KIND>`, `WATERFLOW_<KIND>`),
#: in the order of EnvFiles' fields.
ENV_FILE_KINDS = ("OUTPUT", "ENV", "PATH", "STATE", "STEP_SUMMARY")


@attrs.frozen
class EnvFiles:
    """The files a step may write to talk back to the runner, as on GitHub.

    Each also appears in the step's environment as `GITHUB_<KIND>` and `WATERFLOW_<KIND>`.
    The core parses them after the node returns; nodes need not read them.
    """

    output: Path
    env: Path
    path: Path
    state: Path
    step_summary: Path

    def as_environment(self) -> dict[str, str]:
        paths = (self.output, self.env, self.path, self.state, self.step_summary)
        out: dict[str, str] = {}
        for kind, path in zip(ENV_FILE_KINDS, paths, strict=True):
            out[f"GITHUB_{kind}"] = str(path)
            out[f"WATERFLOW_{kind}"] = str(path)
        return out


HeartbeatFn = Callable[..., None]


@attrs.define
class StepContext:
    """Everything a node gets besides its parameters.

    - `workspace`: the job's working directory, shared by its steps on this agent.
    - `env`: the complete environment for processes the node starts (the agent's own, the
      workflow, job and step `env`, the `GITHUB_*`/`WATERFLOW_*` variables and env files).
    - `log`: the step's log; `log.stdout(line)`, `log.stderr(line)`, `log.info(msg)`. Every line
      is masked before it is written.
    - `masker`: the secret masker; `masker.add(value)` masks a value from here on.
    - `heartbeat(*details)`: tells Temporal the step is alive, with progress details.
    - `files`: the env files of this step.
    - `temp_dir`: a private temporary directory, removed after the step.
    - `state`: in a post step, what the main step wrote to `$GITHUB_STATE`.
    - `env`, `files` and `temp_dir` exist on disk from the node's first look at any of them:
      the core creates them then, so that a node that needs none of them costs no file work.
    - `add_post_step(condition)`: run this node again, as a post step, at the end of the job
      (in reverse order of registration, also when the job failed, while `condition` holds).
    - cancellation arrives as `asyncio.CancelledError` in `execute`; clean up and re-raise.
    """

    workspace: Path
    _env: dict[str, str] = attrs.field(alias="env")
    log: StepLog
    masker: SecretMasker
    _files: EnvFiles = attrs.field(alias="files")
    _temp_dir: Path = attrs.field(alias="temp_dir")
    step: StepInfo
    _heartbeat: HeartbeatFn = attrs.field(default=lambda *details: None, alias="heartbeat_fn")
    _run_process: Callable[..., Awaitable[int]] | None = attrs.field(
        default=None, alias="run_process_fn"
    )
    state: Mapping[str, str] = attrs.field(factory=dict)
    post_condition: str | None = attrs.field(default=None, init=False)
    # Creates the temp dir and the files the environment names; called on the first look at
    # `env`, `files` or `temp_dir`. None: they exist already.
    _prepare: Callable[[], None] | None = attrs.field(default=None, alias="prepare_fn")

    def _prepared(self) -> None:
        prepare, self._prepare = self._prepare, None
        if prepare is not None:
            prepare()

    @property
    def env(self) -> dict[str, str]:
        self._prepared()
        return self._env

    @property
    def files(self) -> EnvFiles:
        self._prepared()
        return self._files

    @property
    def temp_dir(self) -> Path:
        self._prepared()
        return self._temp_dir

    def add_post_step(self, condition: str = "always()") -> None:
        """Ask for a post step: this node runs again with `step.phase == "post"` when the job
        ends, if `condition` (an `if:` expression, default `always()`) holds then."""
        if self.step.phase == "post":
            raise NodeError("a post step cannot add another post step", retryable=False)
        self.post_condition = condition

    def heartbeat(self, *details: Any) -> None:
        """Record progress; Temporal sees the step alive and keeps the latest details."""
        self._heartbeat(*details)

    async def run_process(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[str, str], str | None] | None = None,
    ) -> int:
        """Run a program, streaming its stdout and stderr into the step log.

        The program gets its own process group; when the step is cancelled or times out the
        whole group is terminated (then killed). Returns the exit code. `on_output(stream,
        line)` sees each line first and returns what to log (None: nothing), e.g. to act on
        workflow commands such as `::add-mask::`.
        """
        from waterflow._process import run_process

        runner = self._run_process or run_process
        return await runner(
            argv,
            cwd=cwd if cwd is not None else self.workspace,
            env=dict(env) if env is not None else self.env,
            log=self.log,
            heartbeat=self.heartbeat,
            on_output=on_output,
        )


@runtime_checkable
class Node(Protocol):
    """A node executor. A new instance serves each step: keep no state between steps."""

    async def execute(self, params: Mapping[str, Any], context: StepContext) -> NodeResult: ...


NodeFactory = Callable[[], Node]

__all__ = [
    "EnvFiles",
    "Node",
    "NodeError",
    "NodeFactory",
    "NodeMetadata",
    "NodeResult",
    "Output",
    "Parameter",
    "StepContext",
    "StepInfo",
]
