"""What the run and the job workflow share: pure functions of their arguments and of the
workflow's own state as Temporal's workflow API gives it (its clock, its search attributes).

Passed through the sandbox (see engine/sandbox.py): imported once, not for every workflow
instance. Nothing here reads the wall clock, draws random numbers or does I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributePair
from temporalio.common import TypedSearchAttributes as _TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TimeoutError,
    TimeoutType,
)

from waterflow.dsl.model import StepSpec
from waterflow.engine import converter
from waterflow.engine.envlayers import env_layers, render_env
from waterflow.engine.types import (
    AGENT_DRAINING,
    AGENT_SHUTDOWN,
    SA_JOB,
    SA_STATUS,
    SA_WORKFLOW,
    StepOutcome,
)

_KEY_WORKFLOW = SearchAttributeKey.for_keyword(SA_WORKFLOW)
_KEY_JOB = SearchAttributeKey.for_keyword(SA_JOB)
_KEY_STATUS = SearchAttributeKey.for_keyword(SA_STATUS)


def search_attributes(workflow_name: str, job: str, status: str) -> _TypedSearchAttributes:
    return _TypedSearchAttributes(
        [
            SearchAttributePair(_KEY_WORKFLOW, workflow_name),
            SearchAttributePair(_KEY_JOB, job),
            SearchAttributePair(_KEY_STATUS, status),
        ]
    )


def upsert_status(enabled: bool, status: str) -> None:
    if enabled:
        workflow.upsert_search_attributes([_KEY_STATUS.value_set(status)])


def now_seconds() -> float:
    return workflow.now().timestamp()


def env_context(
    contexts: dict[str, Any],
    status: str,
    workflow_env: dict[str, str],
    job_env: dict[str, str] | None = None,
    written: dict[str, str] | None = None,
    step_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The `env` context as the workflow can know it: secrets render as empty here.

    `written` is what earlier steps wrote to GITHUB_ENV, taken as it is.
    """
    return render_env(
        env_layers(workflow_env, job_env or {}, written or {}, step_env or {}),
        contexts,
        status=status,
        strict=False,
    )


_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_STEPS_WORD = re.compile(r"\bsteps\b", re.IGNORECASE)
_STEP_REFERENCE = re.compile(r"\bsteps\s*\.\s*([A-Za-z_][A-Za-z0-9_-]*)", re.IGNORECASE)


def step_names(*parts: Any) -> frozenset[str] | None:
    """The earlier steps that the expressions in `parts` name as `steps.<id>`, lower-cased;
    None when they use `steps` any other way (`toJSON(steps)`, `steps[...]`): all of it."""
    if not any(parts):
        return frozenset()
    wanted: set[str] = set()
    for expression in _EXPRESSION.findall(json.dumps(parts, default=str)):
        named = _STEP_REFERENCE.findall(expression)
        if len(_STEPS_WORD.findall(expression)) != len(named):
            return None
        wanted.update(name.lower() for name in named)
    return frozenset(wanted)


def steps_used(
    step: StepSpec, job_names: frozenset[str] | None, steps: dict[str, Any]
) -> dict[str, Any]:
    """The part of the `steps` context the agent needs to render this step: the entries its
    expressions name (in `with:` and the env layers; `job_names` are the workflow's and the
    job's, found once a job). Sending every earlier step to every step made a job's history
    grow with the square of its length (381 KB for 100 steps)."""
    names = step_names(step.with_, step.env)
    if names is None or job_names is None:
        return steps
    wanted = names | job_names
    if not wanted:  # most steps: no pass over the earlier ones
        return {}
    return {key: value for key, value in steps.items() if key.lower() in wanted}


def error_of(err: BaseException) -> tuple[str, StepOutcome | None]:
    """A one-line reason and, where the activity sent one, the step's outcome."""
    cause: BaseException | None = err
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        outcome = None
        if cause.details:
            try:
                outcome = converter.structure(cause.details[0], StepOutcome)
            except Exception:
                outcome = None
        return cause.message, outcome
    if isinstance(cause, TimeoutError):
        kind = {
            TimeoutType.START_TO_CLOSE: "the step's timeout",
            TimeoutType.HEARTBEAT: "the heartbeat timeout (the agent stopped answering)",
            TimeoutType.SCHEDULE_TO_START: "waiting for the agent that holds the workspace",
            TimeoutType.SCHEDULE_TO_CLOSE: "the step's total time",
        }.get(cause.type or TimeoutType.START_TO_CLOSE, "a timeout")
        return f"timed out: {kind}", None
    if isinstance(cause, CancelledError):
        return "cancelled", None
    return str(cause) or type(cause).__name__, None


def lost_agent(cause: BaseException | None) -> tuple[str | None, bool]:
    """How the agent holding the workspace was lost, if the step failed for that reason, and
    whether the step had started running there (it may then have had effects)."""
    if isinstance(cause, TimeoutError):
        if cause.type == TimeoutType.SCHEDULE_TO_START:
            return "did not pick the step up", False
        if cause.type == TimeoutType.HEARTBEAT:
            return "stopped answering during the step (heartbeat timeout)", True
    if isinstance(cause, ApplicationError):
        if cause.type == AGENT_SHUTDOWN:
            return "shut down during the step", True
        if cause.type == AGENT_DRAINING:
            return "was stopping and did not start the step", False
    return None, False
