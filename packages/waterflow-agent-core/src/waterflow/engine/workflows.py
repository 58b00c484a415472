"""The run workflow (orders jobs by `needs`) and the job workflow (runs a job's steps).

Deterministic code in Temporal's sandbox: no I/O, no node imports. Steps reach nodes only
through the `execute_node` activity, by name.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair
from temporalio.common import TypedSearchAttributes as _TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TimeoutError,
    TimeoutType,
)
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    import attrs

    from waterflow import expressions
    from waterflow.dsl._names import QUEUE_RE
    from waterflow.dsl.matrix import MatrixError, expand_matrix, instance_name
    from waterflow.dsl.model import JobSpec, StepSpec
    from waterflow.engine import converter
    from waterflow.engine.envlayers import env_layers, render_env
    from waterflow.engine.types import (
        ACTIVITY_CLAIM_WORKSPACE,
        ACTIVITY_EXECUTE_NODE,
        AGENT_BUSY,
        AGENT_DRAINING,
        AGENT_SHUTDOWN,
        CANCELLED,
        EVENT_UNKNOWN,
        FAILURE,
        NOT_HERE,
        SA_JOB,
        SA_STATUS,
        SA_WORKFLOW,
        SKIPPED,
        SUCCESS,
        AgentSlot,
        ClaimInput,
        JobInput,
        JobInstance,
        JobProgress,
        JobResult,
        NeedResult,
        RunInput,
        RunProgress,
        RunResult,
        StepInput,
        StepOutcome,
        StepReport,
        claim_queue_for,
        placed,
    )

_KEY_WORKFLOW = SearchAttributeKey.for_keyword(SA_WORKFLOW)
_KEY_JOB = SearchAttributeKey.for_keyword(SA_JOB)
_KEY_STATUS = SearchAttributeKey.for_keyword(SA_STATUS)

# How long claiming a workspace may wait for any agent of the queue. Long: a queue with no
# agent yet is a normal state (agents may start after the run).
_CLAIM_TIMEOUT = timedelta(days=1)
_CLAIM_RUN_TIMEOUT = timedelta(seconds=10)
# How many times one step may lose its agent while running and still move on: a step that
# brings down every agent it runs on must not travel the fleet forever. From the second loss
# on, the step waits before it runs again (1 s, doubling, at most a minute): a fleet in turmoil
# gets time to settle, and a step that kills its agents does so slowly.
_MAX_WORKSPACE_LOSSES = 10
_MOVE_DELAY_MAX = 60.0
# Heartbeat timeouts are not retried by Temporal on the lost agent's private queue: the job
# workflow moves the step to another agent at once (see JobWorkflow._execute).
_HEARTBEAT_TIMEOUT_TYPE = "TemporalTimeout:Heartbeat"
# How a local activity's failure reaches the workflow: bare, or wrapped as a remote one's.
_LOCAL_FAILURES = (ActivityError, ApplicationError, TimeoutError)
# Seconds a job keeps after its last step's own deadline, to report that step's failure.
_JOB_DEADLINE_MARGIN = 3.0


def search_attributes(workflow_name: str, job: str, status: str) -> _TypedSearchAttributes:
    return _TypedSearchAttributes(
        [
            SearchAttributePair(_KEY_WORKFLOW, workflow_name),
            SearchAttributePair(_KEY_JOB, job),
            SearchAttributePair(_KEY_STATUS, status),
        ]
    )


def _upsert_status(enabled: bool, status: str) -> None:
    if enabled:
        workflow.upsert_search_attributes([_KEY_STATUS.value_set(status)])


def _now() -> float:
    return workflow.now().timestamp()


def _render_env(
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


def _step_names(*parts: Any) -> frozenset[str] | None:
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


def _steps_used(
    step: StepSpec, job_names: frozenset[str] | None, steps: dict[str, Any]
) -> dict[str, Any]:
    """The part of the `steps` context the agent needs to render this step: the entries its
    expressions name (in `with:` and the env layers; `job_names` are the workflow's and the
    job's, found once a job). Sending every earlier step to every step made a job's history
    grow with the square of its length (381 KB for 100 steps)."""
    names = _step_names(step.with_, step.env)
    if names is None or job_names is None:
        return steps
    wanted = names | job_names
    if not wanted:  # most steps: no pass over the earlier ones
        return {}
    return {key: value for key, value in steps.items() if key.lower() in wanted}


def _error_of(err: BaseException) -> tuple[str, StepOutcome | None]:
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


def _lost_agent(cause: BaseException | None) -> tuple[str | None, bool]:
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


@workflow.defn(name="waterflow.job")
class JobWorkflow:
    """Runs one job's steps in order on its queue, in one workspace on one agent."""

    def __init__(self) -> None:
        self._reports: list[StepReport] = []
        self._status = "waiting"
        self._current: str | None = None
        self._agent = ""

    @workflow.query(name="progress")
    def progress(self) -> JobProgress:
        job = workflow.info().workflow_id
        return JobProgress(
            job=job,
            status=self._status,
            current_step=self._current,
            steps=list(self._reports),
            agent_id=self._agent,
        )

    async def _claim(self, inp: JobInput) -> AgentSlot:
        claim = ClaimInput(run_id=inp.run_id, job=inp.key or inp.job.id, workspace=inp.workspace)
        try:
            # The agent deciding this job claims it itself, without a trip through the
            # server: its later workflow tasks stick to it, so `local` steps find their
            # workspace there.
            slot: AgentSlot = await workflow.execute_local_activity(
                ACTIVITY_CLAIM_WORKSPACE,
                claim,
                result_type=AgentSlot,
                start_to_close_timeout=_CLAIM_RUN_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            self._here = True
        except _LOCAL_FAILURES:
            self._here = False
            # Refused here (a stopping agent says NOT_HERE): any agent of the queue may.
            slot = await workflow.execute_activity(
                ACTIVITY_CLAIM_WORKSPACE,
                claim,
                result_type=AgentSlot,
                task_queue=claim_queue_for(inp.job.runs_on),
                schedule_to_start_timeout=_CLAIM_TIMEOUT,
                # A claim is a mkdir: when the agent that took it dies, another one is asked
                # soon.
                start_to_close_timeout=_CLAIM_RUN_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=5),
            )
        self._agent = slot.agent_id
        return slot

    @workflow.run
    async def run(self, inp: JobInput) -> JobResult:
        job = inp.job
        started = _now()
        self._status = "running"
        contexts: dict[str, Any] = {
            "inputs": dict(inp.inputs),
            "needs": {
                name: {"result": need.result, "outputs": dict(need.outputs)}
                for name, need in inp.needs.items()
            },
            "github": dict(inp.github),
            "vars": dict(inp.vars),
            "matrix": dict(inp.matrix),
            "strategy": dict(inp.strategy),
            "steps": {},
            "job": {"status": SUCCESS, "services": {}, "container": {}},
        }
        self._job_env: dict[str, str] = {}
        self._job_path: list[str] = []
        self._env_names = _step_names(inp.workflow_env, job.env)
        self._slot: AgentSlot | None = None
        # The slot whose agent has the run's event payload (see StepInput.event_known).
        self._event_at: AgentSlot | None = None
        self._notes: list[str] = []
        # Whether the agent deciding this job holds its workspace (it claimed it here), so
        # that a step scheduled on the job's own queue comes back to it eagerly.
        self._here = False
        job_env = self._job_env
        status = SUCCESS
        cancelled = False
        posts: list[tuple[StepSpec, StepOutcome]] = []

        for step in job.steps:
            if cancelled:
                status = CANCELLED
            contexts["job"]["status"] = status
            env = _render_env(contexts, status, inp.workflow_env, job.env, job_env, step.env)
            contexts_with_env = {**self._place(contexts, job.id, step.key), "env": env}
            try:
                run_it = expressions.evaluate_condition(step.if_, contexts_with_env, status=status)
            except expressions.ExpressionError as exc:
                self._record(step, FAILURE, FAILURE, error=f"if: {exc}")
                contexts["steps"][step.key] = {
                    "outputs": {},
                    "outcome": FAILURE,
                    "conclusion": FAILURE,
                }
                status = FAILURE
                continue
            if not run_it:
                self._record(step, SKIPPED, SKIPPED)
                contexts["steps"][step.key] = {
                    "outputs": {},
                    "outcome": SKIPPED,
                    "conclusion": SKIPPED,
                }
                continue

            self._current = step.display_name
            step_started = _now()
            result, outcome, error, attempts, was_cancelled = await self._execute(
                inp, step, contexts
            )
            cancelled = cancelled or was_cancelled
            continue_on_error = self._continue_on_error(step, contexts_with_env, status)
            conclusion = SUCCESS if (result == FAILURE and continue_on_error) else result
            outputs = dict(outcome.outputs) if outcome else {}
            if outcome is not None and result == SUCCESS:
                job_env.update(outcome.env)
                self._job_path[:0] = [p for p in reversed(outcome.path) if p not in self._job_path]
            if outcome is not None and outcome.post_condition:
                posts.append((step, outcome))
            contexts["steps"][step.key] = {
                "outputs": outputs,
                "outcome": result,
                "conclusion": conclusion,
            }
            self._record(
                step,
                result,
                conclusion,
                outputs=outputs,
                started=step_started,
                attempts=attempts,
                error=error,
                data=outcome,
            )
            self._current = None
            if conclusion == FAILURE:
                status = FAILURE
            elif result == CANCELLED:
                status = CANCELLED

        # Post steps the nodes asked for: at the end, in reverse order, also after a failure.
        for step, main in reversed(posts):
            post = attrs.evolve(
                step,
                key=f"post-{step.key}",
                id=None,
                display_name=f"Post {step.display_name}",
                if_=main.post_condition,
                retry=None,
                continue_on_error=False,
            )
            contexts["job"]["status"] = status
            env = _render_env(contexts, status, inp.workflow_env, job.env, job_env, step.env)
            contexts_with_env = {**contexts, "env": env}
            try:
                run_it = expressions.evaluate_condition(
                    main.post_condition, contexts_with_env, status=status
                )
            except expressions.ExpressionError as exc:
                self._record(post, FAILURE, FAILURE, error=f"post condition: {exc}")
                status = FAILURE
                continue
            if not run_it:
                self._record(post, SKIPPED, SKIPPED)
                continue
            self._current = post.display_name
            post_started = _now()
            result, outcome, error, attempts, _ = await self._execute(
                inp, post, contexts, phase="post", state=main.state
            )
            self._record(
                post,
                result,
                result,
                outputs=dict(outcome.outputs) if outcome else {},
                started=post_started,
                attempts=attempts,
                error=error,
                data=outcome,
            )
            self._current = None
            if result == FAILURE:
                status = FAILURE

        job_result = status
        contexts["job"]["status"] = status
        final_env = _render_env(contexts, status, inp.workflow_env, job.env, job_env)
        job_outputs: dict[str, str] = {}
        for name, template in job.outputs.items():
            try:
                job_outputs[name] = expressions.render_string(
                    template, {**contexts, "env": final_env}, status=status
                )
            except expressions.ExpressionError:
                job_outputs[name] = ""
        self._status = job_result
        _upsert_status(inp.search_attributes, job_result)
        return JobResult(
            job=job.id,
            result=job_result,
            outputs=job_outputs,
            steps=list(self._reports),
            runs_on=job.runs_on,
            agent_id=self._agent,
            started_at=started,
            duration=_now() - started,
        )

    def _place(self, contexts: dict[str, Any], job: str, step: str) -> dict[str, Any]:
        """`contexts` with `github` and `runner` as a step's `if:` sees them: what is known of
        its agent."""
        slot = self._slot
        if slot is None:
            github = {**contexts["github"], "job": job, "action": step}
            return {**contexts, "github": github, "runner": {}}
        return placed(
            contexts,
            job=job,
            step=step,
            workspace=slot.workspace,
            temp_dir=slot.temp_dir,
            agent_id=slot.agent_id,
            os=slot.os,
            arch=slot.arch,
        )

    async def _execute(
        self,
        inp: JobInput,
        step: StepSpec,
        contexts: dict[str, Any],
        *,
        phase: str = "main",
        state: dict[str, str] | None = None,
    ) -> tuple[str, StepOutcome | None, str | None, int, bool]:
        """Run one step on the agent holding the workspace, moving the job to another agent
        of its queue when that one is gone. Returns (result, outcome, error, attempts,
        whether the job was cancelled meanwhile)."""
        job = inp.job
        attempts = 0
        losses = 0  # times this step lost its agent while it ran
        delay = 0.0
        busy = False  # the holder refused it on the job's queue: it had no free slot
        while True:
            try:
                if delay:
                    await workflow.sleep(delay)
                    delay = 0.0
                if self._slot is None:
                    self._slot = await self._claim(inp)
                slot = self._slot
                attempts += 1
                notes, self._notes = self._notes, []
                known = self._event_at is slot and "event" in contexts["github"]
                github = contexts["github"]
                if known:
                    github = {k: v for k, v in github.items() if k != "event"}
                step_input = StepInput(
                    run_id=inp.run_id,
                    workflow=inp.workflow,
                    job=job.id,
                    job_key=inp.key or job.id,
                    step=step,
                    contexts={
                        **contexts,
                        "github": github,
                        "steps": _steps_used(step, self._env_names, contexts["steps"]),
                    },
                    env_layers=[inp.workflow_env, job.env],
                    job_env=dict(self._job_env),
                    job_path=list(self._job_path),
                    workspace=slot.workspace,
                    temp_dir=slot.temp_dir,
                    phase=phase,
                    state=dict(state or {}),
                    notes=notes,
                    event_known=known,
                )
                local = step.local if step.local is not None else step.uses in slot.local_nodes
                if local:
                    outcome = await self._execute_here(inp, step, step_input, slot)
                    if outcome is not None:
                        self._event_at = slot
                        return SUCCESS, outcome, None, attempts, False
                    # Refused here: the holder runs it, as any step (the notes go again).
                    step_input = attrs.evolve(step_input, notes=[*notes, *self._notes])
                    self._notes = []
                options = self._activity_options(inp, step)
                # On the job's own queue, Temporal hands the step back eagerly to the agent
                # deciding this job, which holds its workspace. Not a step with retries (a
                # retry is not handed back), nor one the holder just refused.
                eager = (
                    self._here
                    and not local
                    and not busy
                    and options["retry_policy"].maximum_attempts == 1
                )
                busy = False
                if eager:
                    step_input = attrs.evolve(step_input, holder=slot.agent_id)
                outcome = await workflow.execute_activity(
                    ACTIVITY_EXECUTE_NODE,
                    step_input,
                    result_type=StepOutcome,
                    task_queue=job.runs_on if eager else slot.queue,
                    **options,
                )
                self._event_at = slot
                return SUCCESS, outcome, None, attempts, False
            except ActivityError as err:
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.type == EVENT_UNKNOWN:
                    # The agent restarted since it got the event: send the step again with it.
                    self._event_at = None
                    attempts -= 1
                    self._notes[:0] = notes
                    continue
                if isinstance(cause, ApplicationError) and cause.type in (NOT_HERE, AGENT_BUSY):
                    # Refused unstarted on the job's queue. Another agent of the queue got the
                    # step: this job's steps go to the holder's queue from now on. The holder
                    # was busy: this step waits there for a slot.
                    if cause.type == NOT_HERE:
                        self._here = False
                    else:
                        busy = True
                    attempts -= 1
                    self._notes[:0] = notes
                    continue
                lost, ran = _lost_agent(cause)
                gone = self._slot.agent_id if self._slot else "?"
                if lost is not None and ran and losses >= _MAX_WORKSPACE_LOSSES:
                    error = (
                        f"step {step.key!r} lost its agent {losses + 1} times while it ran "
                        f"(last: agent {gone} {lost}); it is not moved again"
                    )
                    return FAILURE, None, error, attempts, False
                if lost is not None:
                    # The agent that held the workspace is gone: continue on another one.
                    if ran:
                        losses += 1
                        delay = min(2.0 ** (losses - 2), _MOVE_DELAY_MAX) if losses > 1 else 0.0
                    message = (
                        f"the workspace of job {job.id} was lost: agent {gone} {lost}; "
                        f"step {step.key!r} runs again in a new workspace on another agent "
                        f"of queue {job.runs_on}"
                    )
                    workflow.logger.warning(message)
                    self._notes.append(message)
                    self._slot = None
                    continue
                error, outcome = _error_of(err)
                result = CANCELLED if isinstance(cause, CancelledError) else FAILURE
                return result, outcome, error, attempts, False
            except asyncio.CancelledError:
                return CANCELLED, None, "cancelled", attempts, True

    async def _execute_here(
        self, inp: JobInput, step: StepSpec, step_input: StepInput, slot: AgentSlot
    ) -> StepOutcome | None:
        """Run a `local` step as a local activity, in the agent deciding this job: no trip
        through the server, and its result is recorded with the next workflow task. None when
        this agent refused it (it does not hold the workspace, or it is stopping)."""
        options = self._activity_options(inp, step)
        for remote_only in ("schedule_to_start_timeout", "heartbeat_timeout"):
            options.pop(remote_only, None)
        try:
            outcome: StepOutcome = await workflow.execute_local_activity(
                ACTIVITY_EXECUTE_NODE,
                attrs.evolve(step_input, holder=slot.agent_id),
                result_type=StepOutcome,
                **options,
            )
        except _LOCAL_FAILURES as err:
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.type == NOT_HERE:
                self._notes.append(f"not run as a local activity: {cause.message}")
                return None
            if isinstance(err, ActivityError):
                raise
            # A local activity's failure arrives bare (the SDK does not wrap it as it wraps a
            # remote one's); wrapped, it takes the same way through _execute.
            wrapped = ActivityError(
                str(err),
                scheduled_event_id=0,
                started_event_id=0,
                identity="",
                activity_type=ACTIVITY_EXECUTE_NODE,
                activity_id=step.key,
                retry_state=None,
            )
            raise wrapped from err
        return outcome

    def _activity_options(self, inp: JobInput, step: StepSpec) -> dict[str, Any]:
        timeout = step.timeout or inp.defaults.step_timeout
        info = workflow.info()
        if info.execution_timeout is not None:
            # A step ends on its own before its job's time is up, so that its failure (with
            # its log tail) is reported rather than lost with the job.
            deadline = info.workflow_start_time + info.execution_timeout
            left = (deadline - workflow.now()).total_seconds() - _JOB_DEADLINE_MARGIN
            timeout = max(min(timeout, left), 1.0)
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=timeout),
            "schedule_to_start_timeout": timedelta(seconds=inp.defaults.agent_pickup_timeout),
            "activity_id": f"{step.key}",
            # A cancelled step is reported once its processes are really stopped.
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        }
        heartbeat = step.heartbeat_timeout or inp.defaults.heartbeat_timeout
        if heartbeat:
            options["heartbeat_timeout"] = timedelta(seconds=heartbeat)
        retry = step.retry
        policy = RetryPolicy(maximum_attempts=retry.max_attempts if retry else 1)
        if retry is not None:
            if retry.initial_interval is not None:
                policy.initial_interval = timedelta(seconds=retry.initial_interval)
            if retry.maximum_interval is not None:
                policy.maximum_interval = timedelta(seconds=retry.maximum_interval)
            if retry.backoff_coefficient is not None:
                policy.backoff_coefficient = retry.backoff_coefficient
        # A lost agent is not retried on its own queue: the job moves (see _execute).
        policy.non_retryable_error_types = [
            "InvalidStep",
            AGENT_SHUTDOWN,
            AGENT_DRAINING,
            _HEARTBEAT_TIMEOUT_TYPE,
        ]
        options["retry_policy"] = policy
        return options

    @staticmethod
    def _continue_on_error(step: StepSpec, contexts: dict[str, Any], status: str) -> bool:
        value = step.continue_on_error
        if isinstance(value, bool):
            return value
        try:
            return expressions.is_truthy(expressions.render(value, contexts, status=status))
        except expressions.ExpressionError:
            return False

    def _record(
        self,
        step: StepSpec,
        outcome: str,
        conclusion: str,
        *,
        outputs: dict[str, str] | None = None,
        started: float | None = None,
        attempts: int = 0,
        error: str | None = None,
        data: StepOutcome | None = None,
    ) -> None:
        tail: list[str] = []
        message = error
        if message and "\n" in message:
            first, _, rest = message.partition("\n")
            message = first
            tail = [line for line in rest.splitlines() if line.strip()]
        if data is not None and data.attempt > attempts:
            attempts = data.attempt
        self._reports.append(
            StepReport(
                key=step.key,
                name=step.display_name,
                uses=step.uses,
                outcome=outcome,
                conclusion=conclusion,
                outputs=outputs or {},
                started_at=started,
                duration=(_now() - started) if started is not None else None,
                attempts=attempts,
                error=message,
                log_path=data.log_path if data else "",
                summary=data.summary if data else "",
                log_tail=tail,
                agent_id=data.agent_id if data else "",
            )
        )


def _aggregate(job: JobSpec, results: list[JobResult]) -> JobResult:
    """What `needs.<job>` sees of a matrix job: failure if any instance failed."""
    if len(results) == 1 and results[0].job == job.id:
        return results[0]
    kinds = {r.result for r in results}
    result = (
        FAILURE
        if FAILURE in kinds
        else CANCELLED
        if CANCELLED in kinds
        else SKIPPED
        if kinds == {SKIPPED}
        else SUCCESS
    )
    outputs: dict[str, str] = {}
    for r in results:  # in the order they finished: the last one wins, as on GitHub
        outputs.update(r.outputs)
    return JobResult(job=job.id, result=result, outputs=outputs, runs_on=job.runs_on)


@workflow.defn(name="waterflow.run")
class RunWorkflow:
    """Starts each job (each combination of a matrix job) as a child workflow on its
    `runs-on` queue once its `needs` are done."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobProgress] = {}
        self._children: dict[str, str] = {}
        self._results: dict[str, JobResult] = {}
        self._github: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}
        self._vars: dict[str, str] = {}

    @workflow.query(name="progress")
    def progress(self) -> RunProgress:
        return RunProgress(jobs=dict(self._jobs), results=dict(self._results))

    @workflow.query(name="children")
    def children(self) -> dict[str, str]:
        return dict(self._children)

    @workflow.run
    async def run(self, inp: RunInput) -> RunResult:
        spec = inp.spec
        run_id = workflow.info().workflow_id
        started = _now()
        results = self._results  # by instance key, for the report
        needs_view: dict[str, JobResult] = {}  # by job id, what `needs` sees
        pending = dict(spec.jobs)
        queued: dict[str, list[JobInstance]] = {}
        finished: dict[str, list[JobResult]] = {}
        expected: dict[str, int] = {}
        stop_siblings: dict[str, bool] = {}
        running: dict[str, tuple[asyncio.Task[JobResult], str]] = {}
        github = {
            "workflow": spec.name,
            "run_id": run_id,
            "run_number": 1,
            "run_attempt": 1,
            "event_name": "workflow_dispatch",
            **inp.github,
        }
        if github["event_name"] == "workflow_dispatch":
            # As on GitHub: a dispatch's inputs are also in its event payload.
            event = dict(github.get("event") or {})
            event.setdefault("inputs", dict(inp.inputs))
            github["event"] = event
        self._github = github
        self._inputs = dict(inp.inputs)
        self._vars = dict(inp.vars)
        for job_id in spec.jobs:
            self._jobs[job_id] = JobProgress(job=job_id, status="waiting")
        cancelled = False

        def record(job_id: str, result: JobResult) -> None:
            results[result.job] = result
            finished[job_id].append(result)
            self._jobs[result.job] = JobProgress(
                job=result.job,
                status=result.result,
                steps=list(result.steps),
                agent_id=result.agent_id,
                workflow_id=self._children.get(result.job, ""),
            )
            job = spec.jobs[job_id]
            if result.result == FAILURE and not stop_siblings[job_id]:
                stop_siblings[job_id] = self._fail_fast(inp, job, needs_view)
            if len(finished[job_id]) == expected[job_id]:
                needs_view[job_id] = _aggregate(job, finished[job_id])

        while pending or running or any(queued.values()):
            for job_id, job in list(pending.items()):
                if not all(n in needs_view for n in job.needs):
                    continue
                del pending[job_id]
                finished[job_id] = []
                stop_siblings[job_id] = False
                decision = self._decide(inp, job, needs_view, cancelled)
                instances: list[JobInstance] = []
                error = decision
                if decision is None:
                    instances, error = self._instances(inp, run_id, job, needs_view, github)
                if error is not None:
                    expected[job_id] = 1
                    record(
                        job_id,
                        JobResult(
                            job=job_id,
                            result=SKIPPED if decision is not None else FAILURE,
                            runs_on=job.runs_on,
                            error=error,
                        ),
                    )
                    continue
                expected[job_id] = len(instances)
                queued[job_id] = instances
                # The job's place in the progress is taken by its instances, in order.
                progress: dict[str, JobProgress] = {}
                for key, state in self._jobs.items():
                    if key != job_id:
                        progress[key] = state
                        continue
                    for instance in instances:
                        self._children[instance.key] = instance.child_id
                        progress[instance.key] = JobProgress(
                            job=instance.key, status="waiting", workflow_id=instance.child_id
                        )
                self._jobs = progress
            for job_id, waiting in queued.items():
                job = spec.jobs[job_id]
                limit = (job.strategy.max_parallel if job.strategy else None) or len(waiting) + 1
                while waiting and sum(1 for _, j in running.values() if j == job_id) < limit:
                    instance = waiting.pop(0)
                    if cancelled or stop_siblings[job_id]:
                        why = "cancelled" if cancelled else "another combination failed (fail-fast)"
                        record(
                            job_id,
                            JobResult(
                                job=instance.key, result=CANCELLED, runs_on=job.runs_on, error=why
                            ),
                        )
                        continue
                    task = asyncio.ensure_future(
                        self._run_job(inp, run_id, instance, needs_view, github)
                    )
                    running[instance.key] = (task, job_id)
                    self._jobs[instance.key] = JobProgress(
                        job=instance.key, status="running", workflow_id=instance.child_id
                    )
            if not running:
                continue
            try:
                done, _ = await workflow.wait(
                    [task for task, _ in running.values()], return_when=asyncio.FIRST_COMPLETED
                )
            except asyncio.CancelledError:
                # Ask each running job to cancel and wait for it: a job runs its `always()`
                # and `cancelled()` steps before it ends, and its report is kept.
                cancelled = True
                for key in running:
                    await workflow.get_external_workflow_handle(self._children[key]).cancel()
                continue
            for key, (task, job_id) in list(running.items()):
                if task in done:
                    del running[key]
                    record(job_id, task.result())
                    if stop_siblings[job_id]:
                        for other, (_, sibling_job) in running.items():
                            if sibling_job == job_id:
                                await workflow.get_external_workflow_handle(
                                    self._children[other]
                                ).cancel()

        failed = any(
            r.result in (FAILURE, CANCELLED) and not self._job_continues(spec.jobs[j], r)
            for j, r in needs_view.items()
        )
        status = CANCELLED if cancelled else (FAILURE if failed else SUCCESS)
        _upsert_status(inp.search_attributes, status)
        # In the file's order of jobs, and each matrix in the order of its combinations.
        order = list(self._jobs)
        return RunResult(
            workflow=spec.name,
            run_id=run_id,
            status=status,
            jobs={key: results[key] for key in order if key in results},
            started_at=started,
            duration=_now() - started,
        )

    def _job_continues(self, job: JobSpec, result: JobResult) -> bool:
        """Whether a failed job leaves the run green (`continue-on-error`)."""
        if result.result != FAILURE:
            return False
        value = job.continue_on_error
        if isinstance(value, bool):
            return value
        contexts = {
            "inputs": dict(self._inputs),
            "github": dict(self._github),
            "vars": dict(self._vars),
            "matrix": dict(result.matrix),
        }
        try:
            return expressions.is_truthy(expressions.render(value, contexts))
        except expressions.ExpressionError:
            return False

    def _contexts(
        self, inp: RunInput, job: JobSpec, needs_view: dict[str, JobResult], status: str
    ) -> dict[str, Any]:
        return {
            "inputs": dict(inp.inputs),
            "needs": {
                n: {"result": needs_view[n].result, "outputs": dict(needs_view[n].outputs)}
                for n in job.needs
            },
            "github": dict(self._github or inp.github),
            "vars": dict(inp.vars),
            "env": _render_env({"inputs": dict(inp.inputs)}, status, inp.spec.env),
            "matrix": {},
            "strategy": {},
        }

    def _fail_fast(self, inp: RunInput, job: JobSpec, needs_view: dict[str, JobResult]) -> bool:
        if job.strategy is None:
            return False
        value = job.strategy.fail_fast
        if isinstance(value, bool):
            return value
        try:
            contexts = self._contexts(inp, job, needs_view, SUCCESS)
            return expressions.is_truthy(expressions.render(value, contexts))
        except expressions.ExpressionError:
            return True

    def _instances(
        self,
        inp: RunInput,
        run_id: str,
        job: JobSpec,
        needs_view: dict[str, JobResult],
        github: dict[str, Any],
    ) -> tuple[list[JobInstance], str | None]:
        """The job's instances, or why it cannot start (a bad matrix or queue)."""
        contexts = self._contexts(inp, job, needs_view, SUCCESS)
        contexts["github"] = dict(github)
        combos: list[dict[str, Any]] = [{}]
        if job.strategy is not None:
            try:
                matrix = (
                    expressions.render(job.strategy.matrix, contexts)
                    if isinstance(job.strategy.matrix, str)
                    else _render_tree(job.strategy.matrix, contexts)
                )
                combos = expand_matrix(matrix)
            except (expressions.ExpressionError, MatrixError) as exc:
                return [], f"strategy.matrix: {exc}"
        instances = []
        for index, combo in enumerate(combos):
            strategy = (
                {
                    "fail-fast": self._fail_fast(inp, job, needs_view),
                    "job-index": index,
                    "job-total": len(combos),
                    "max-parallel": job.strategy.max_parallel or len(combos),
                }
                if job.strategy is not None
                else {}
            )
            queue = job.runs_on
            if "${{" in queue:
                try:
                    queue = expressions.render_string(
                        queue, {**contexts, "matrix": combo, "strategy": strategy}
                    )
                except expressions.ExpressionError as exc:
                    return [], f"runs-on: {exc}"
                if not QUEUE_RE.fullmatch(queue):
                    return [], (
                        f"runs-on gave {queue!r}, which is not a task queue name (letters, "
                        "digits and hyphens, starting and ending with a letter or digit)"
                    )
            key = instance_name(job.id, combo) if job.strategy is not None else job.id
            child = (
                f"{run_id}.{job.id}" if job.strategy is None else f"{run_id}.{job.id}.{index + 1}"
            )
            instances.append(
                JobInstance(
                    key=key,
                    job=attrs.evolve(job, runs_on=queue),
                    child_id=child,
                    matrix=combo,
                    strategy=strategy,
                )
            )
        return instances, None

    def _decide(
        self, inp: RunInput, job: JobSpec, needs_view: dict[str, JobResult], cancelled: bool
    ) -> str | None:
        """None to run the job; otherwise why it is skipped."""
        need_results = [needs_view[n].result for n in job.needs]
        if cancelled:
            status = CANCELLED
        elif any(
            r in (FAILURE, CANCELLED) and not self._job_continues(inp.spec.jobs[n], needs_view[n])
            for n, r in zip(job.needs, need_results, strict=True)
        ):
            status = FAILURE
        else:
            status = SUCCESS
        contexts = self._contexts(inp, job, needs_view, status)
        try:
            run_it = expressions.evaluate_condition(job.if_, contexts, status=status)
        except expressions.ExpressionError as exc:
            return f"if: {exc}"
        if not run_it:
            return "its if: condition was false" if job.if_ else "a job it needs did not succeed"
        if SKIPPED in need_results and not (job.if_ and expressions.calls_status_function(job.if_)):
            return "a job it needs was skipped"
        return None

    async def _run_job(
        self,
        inp: RunInput,
        run_id: str,
        instance: JobInstance,
        needs_view: dict[str, JobResult],
        github: dict[str, Any],
    ) -> JobResult:
        job = instance.job
        timeout = job.timeout or inp.defaults.job_timeout
        job_input = JobInput(
            run_id=run_id,
            workflow=inp.spec.name,
            file=inp.spec.file,
            job=job,
            workflow_env=dict(inp.spec.env),
            inputs=dict(inp.inputs),
            needs={
                n: NeedResult(result=needs_view[n].result, outputs=dict(needs_view[n].outputs))
                for n in job.needs
            },
            github=github,
            vars=dict(inp.vars),
            defaults=inp.defaults,
            workspace=inp.workspace,
            search_attributes=inp.search_attributes,
            key=instance.key,
            matrix=dict(instance.matrix),
            strategy=dict(instance.strategy),
        )
        started = _now()
        try:
            result = await workflow.execute_child_workflow(
                JobWorkflow.run,
                job_input,
                id=instance.child_id,
                task_queue=job.runs_on,
                execution_timeout=timedelta(seconds=timeout),
                search_attributes=search_attributes(inp.spec.name, job.id, "running")
                if inp.search_attributes
                else None,
            )
        except (ChildWorkflowError, asyncio.CancelledError) as err:
            cause = err.cause if isinstance(err, ChildWorkflowError) else err
            if isinstance(cause, TimeoutError):
                message, outcome = f"job timed out after {timeout:g}s", FAILURE
            elif isinstance(cause, CancelledError | asyncio.CancelledError):
                message, outcome = "cancelled", CANCELLED
            else:
                message, outcome = _error_of(err)[0], FAILURE
            return JobResult(
                job=instance.key,
                result=outcome,
                runs_on=job.runs_on,
                started_at=started,
                duration=_now() - started,
                error=message,
                matrix=dict(instance.matrix),
            )
        return attrs.evolve(result, job=instance.key, matrix=dict(instance.matrix))


def _render_tree(value: Any, contexts: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return expressions.render(value, contexts)
    if isinstance(value, list):
        return [_render_tree(v, contexts) for v in value]
    if isinstance(value, dict):
        return {k: _render_tree(v, contexts) for k, v in value.items()}
    return value
