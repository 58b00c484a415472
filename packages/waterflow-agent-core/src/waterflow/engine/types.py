"""What travels through Temporal: workflow, job and step inputs and results.

Only attrs and the standard library here: this module is imported inside the workflow sandbox.
Nothing in these classes may hold a secret's value: they are written to Temporal's history.
"""

from __future__ import annotations

from typing import Any

import attrs

from waterflow.dsl.model import JobSpec, StepSpec, WorkflowSpec

# Results of steps and jobs, as GitHub names them.
SUCCESS = "success"
FAILURE = "failure"
CANCELLED = "cancelled"
SKIPPED = "skipped"

# Search attributes every run and job carries, so runs can be listed by them.
SA_WORKFLOW = "WaterflowWorkflow"
SA_JOB = "WaterflowJob"
SA_STATUS = "WaterflowStatus"
SEARCH_ATTRIBUTES = (SA_WORKFLOW, SA_JOB, SA_STATUS)

CONTROL_QUEUE = "waterflow"
"""The task queue every agent polls for run (parent) workflows."""


def claim_queue_for(queue: str) -> str:
    """The task queue where the agents of group `queue` take claims that the agent deciding a
    job refused. Not `queue` itself: the job workflows' workers poll that one for the steps
    Temporal could not hand back eagerly, and a stopping agent must take no claim there."""
    return f"waterflow-claims-{queue}"


#: Temporal workflow types.
WORKFLOW_RUN = "waterflow.run"
WORKFLOW_JOB = "waterflow.job"

ACTIVITY_EXECUTE_NODE = "execute_node"
ACTIVITY_CLAIM_WORKSPACE = "claim_workspace"

AGENT_SHUTDOWN = "AgentShutdown"
"""Failure type of a step stopped because its agent shut down; the job moves elsewhere."""

AGENT_DRAINING = "AgentDraining"
"""Failure type of a step its agent refused, unstarted, because it is stopping; the job moves."""

AGENT_BUSY = "AgentBusy"
"""Failure type of a step that reached its workspace's holder on the job's own queue while the
holder ran as many steps as it may: refused unstarted, it goes to the holder's private queue,
where it waits for a free slot."""

EVENT_UNKNOWN = "EventUnknown"
"""Failure type of a step sent without the run's event payload to an agent that does not have
it (it restarted): the job sends the step again with it."""

NOT_HERE = "NotHere"
"""Failure type of a local activity (a claim or a `local` step), or of a step sent to the job's
own queue, that an agent refused, unstarted: it is stopping, another agent holds the
workspace, or (a `local` step) it runs as many steps as it may. The job then sends it the
ordinary way: a claim to the group's claim queue, a step to the holder's private queue."""


@attrs.frozen
class StepDefaults:
    """Defaults applied where a file says nothing (seconds)."""

    step_timeout: float = 6 * 3600.0
    job_timeout: float = 6 * 3600.0
    # How long a step may wait for the agent holding the job's workspace before the job
    # moves to another agent of its queue.
    agent_pickup_timeout: float = 60.0
    # A step without its own `heartbeat_timeout` gets this one: how long the agent running it
    # may stay silent before the step is taken as lost and runs again on another agent.
    heartbeat_timeout: float = 30.0


@attrs.frozen
class RunInput:
    spec: WorkflowSpec
    inputs: dict[str, Any] = attrs.field(factory=dict)
    github: dict[str, Any] = attrs.field(factory=dict)
    vars: dict[str, str] = attrs.field(factory=dict)
    defaults: StepDefaults = attrs.field(factory=StepDefaults)
    workspace: str | None = None
    search_attributes: bool = True


@attrs.frozen
class NeedResult:
    result: str
    outputs: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class JobInput:
    run_id: str
    workflow: str
    file: str
    job: JobSpec
    workflow_env: dict[str, str]
    inputs: dict[str, Any]
    needs: dict[str, NeedResult]
    github: dict[str, Any]
    vars: dict[str, str]
    defaults: StepDefaults
    workspace: str | None = None
    search_attributes: bool = True
    key: str = ""  # the job's id, or `id (values)` for one combination of a matrix
    matrix: dict[str, Any] = attrs.field(factory=dict)
    strategy: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ClaimInput:
    run_id: str
    job: str
    workspace: str | None = None


@attrs.frozen
class AgentSlot:
    """The agent that holds a job's workspace, and the queue that reaches only it."""

    agent_id: str
    host: str
    queue: str
    workspace: str
    temp_dir: str
    os: str = "Linux"
    arch: str = "X64"
    # The agent's nodes whose metadata says `local`: their steps run as local activities when
    # the job's own `local:` does not say otherwise. Recorded in history with the claim, so
    # every replay decides alike.
    local_nodes: list[str] = attrs.field(factory=list)


@attrs.frozen
class StepInput:
    run_id: str
    workflow: str
    job: str
    step: StepSpec
    workspace: str
    temp_dir: str
    # Context values known to the workflow (no secrets): inputs, steps, needs, job, github,
    # matrix, strategy, vars. What names the step's place (`runner`, and `workspace`, `job`
    # and `action` of `github`) is added where the step runs: see `placed`.
    contexts: dict[str, Any] = attrs.field(factory=dict, kw_only=True)
    # The env layers in order (workflow, job); the step's own env is in `step.env`. Values are
    # templates: they are rendered on the agent, where secrets are known.
    env_layers: list[dict[str, str]] = attrs.field(factory=list, kw_only=True)
    # What earlier steps wrote to GITHUB_ENV and GITHUB_PATH.
    job_env: dict[str, str] = attrs.field(factory=dict, kw_only=True)
    job_path: list[str] = attrs.field(factory=list, kw_only=True)
    # The job's instance (`build (linux, 3.11)` for a matrix combination): names its logs.
    job_key: str = ""
    # `post` when this runs the post step a node asked for; `state` is then what its main
    # step wrote to GITHUB_STATE.
    phase: str = "main"
    state: dict[str, str] = attrs.field(factory=dict)
    # What the step log should say first (the job moved after its workspace was lost).
    notes: list[str] = attrs.field(factory=list)
    # True when `contexts.github` is sent without `event`, the run's event payload (up to
    # some 100 KB from a GitHub webhook): the agent got it with an earlier step of the job.
    event_known: bool = False
    # Set for a local activity, and for a step sent to the job's own queue: the agent that
    # holds the workspace. Any other agent that gets the step refuses it (NOT_HERE), which
    # then goes to the holder's private queue.
    holder: str = ""


def placed(
    contexts: dict[str, Any],
    *,
    job: str,
    step: str,
    workspace: str,
    temp_dir: str,
    agent_id: str,
    os: str = "Linux",
    arch: str = "X64",
) -> dict[str, Any]:
    """`contexts` with what names a step's place: `runner`, and `github`'s `workspace`, `job`
    and `action`. The workflow adds it for a step's `if:`, the agent where the step runs: it
    is not sent with every step."""
    github = {**contexts.get("github", {}), "workspace": workspace, "job": job, "action": step}
    runner = {"os": os, "arch": arch, "name": agent_id, "temp": temp_dir}
    return {**contexts, "github": github, "runner": runner}


@attrs.frozen
class JobInstance:
    """One job for the run workflow to start: the job itself, or one combination of its
    matrix. Defined here, not in the workflow module, which the sandbox imports again for every
    workflow instance: an attrs class costs its making each time."""

    key: str
    job: JobSpec
    child_id: str
    matrix: dict[str, Any]
    strategy: dict[str, Any]
    name: str = ""  # the job's `name:`, rendered (see JobResult.name)


@attrs.frozen
class StepOutcome:
    """What a step produced. Secret values are already masked."""

    outputs: dict[str, str] = attrs.field(factory=dict)
    exit_code: int = 0
    env: dict[str, str] = attrs.field(factory=dict)
    path: list[str] = attrs.field(factory=list)
    summary: str = ""
    log_path: str = ""
    agent_id: str = ""
    duration: float = 0.0
    error: str | None = None
    state: dict[str, str] = attrs.field(factory=dict)
    attempt: int = 1
    post_condition: str | None = None
    """Set when the node asked to run again as a post step at the end of the job."""


@attrs.frozen
class StepReport:
    key: str
    name: str
    uses: str
    outcome: str  # success, failure, cancelled, skipped
    conclusion: str  # the outcome after continue-on-error
    outputs: dict[str, str] = attrs.field(factory=dict)
    started_at: float | None = None
    duration: float | None = None
    attempts: int = 0
    error: str | None = None
    log_path: str = ""
    log_tail: list[str] = attrs.field(factory=list)
    agent_id: str = ""
    summary: str = ""  # what the step wrote to GITHUB_STEP_SUMMARY (Markdown)


@attrs.frozen
class JobResult:
    job: str
    result: str
    outputs: dict[str, str] = attrs.field(factory=dict)
    steps: list[StepReport] = attrs.field(factory=list)
    runs_on: str = ""
    agent_id: str = ""
    started_at: float | None = None
    duration: float | None = None
    error: str | None = None
    matrix: dict[str, Any] = attrs.field(factory=dict)
    # The job's `name:` as GitHub shows it, its expressions rendered; "" for a job without one
    # (its key is shown then).
    name: str = ""


@attrs.frozen
class JobProgress:
    """What `waterflow run` shows while a job runs (the answer to the `progress` query)."""

    job: str
    status: str  # waiting, running, success, failure, cancelled, skipped
    current_step: str | None = None
    steps: list[StepReport] = attrs.field(factory=list)
    agent_id: str = ""
    workflow_id: str = ""
    name: str = ""  # as JobResult.name


@attrs.frozen
class RunProgress:
    jobs: dict[str, JobProgress] = attrs.field(factory=dict)
    results: dict[str, JobResult] = attrs.field(factory=dict)


@attrs.frozen
class RunResult:
    workflow: str
    run_id: str
    status: str
    jobs: dict[str, JobResult] = attrs.field(factory=dict)
    started_at: float | None = None
    duration: float | None = None
