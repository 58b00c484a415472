"""The job workflow: runs a job's steps in order on its queue, in one workspace on one agent.

Deterministic code in Temporal's sandbox: no I/O, no node imports. Steps reach nodes only
through the `execute_node` activity, by name. Each workflow class has a module of its own:
the sandbox executes the module again for every workflow instance, and Temporal's inspection
of a workflow class is a large part of that.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    import attrs

    from waterflow import expressions
    from waterflow.dsl.model import StepSpec
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
        SKIPPED,
        SUCCESS,
        WORKFLOW_JOB,
        AgentSlot,
        ClaimInput,
        JobInput,
        JobProgress,
        JobResult,
        StepInput,
        StepOutcome,
        StepReport,
        claim_queue_for,
        placed,
    )
    from waterflow.engine.workflow_support import (
        env_context,
        error_of,
        lost_agent,
        now_seconds,
        step_names,
        steps_used,
        upsert_status,
    )

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


@workflow.defn(name=WORKFLOW_JOB)
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
        started = now_seconds()
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
        self._env_names = step_names(inp.workflow_env, job.env)
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
            env = env_context(contexts, status, inp.workflow_env, job.env, job_env, step.env)
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
            step_started = now_seconds()
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
            env = env_context(contexts, status, inp.workflow_env, job.env, job_env, step.env)
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
            post_started = now_seconds()
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
        final_env = env_context(contexts, status, inp.workflow_env, job.env, job_env)
        job_outputs: dict[str, str] = {}
        for name, template in job.outputs.items():
            try:
                job_outputs[name] = expressions.render_string(
                    template, {**contexts, "env": final_env}, status=status
                )
            except expressions.ExpressionError:
                job_outputs[name] = ""
        self._status = job_result
        upsert_status(inp.search_attributes, job_result)
        return JobResult(
            job=job.id,
            result=job_result,
            outputs=job_outputs,
            steps=list(self._reports),
            runs_on=job.runs_on,
            agent_id=self._agent,
            started_at=started,
            duration=now_seconds() - started,
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
                        "steps": steps_used(step, self._env_names, contexts["steps"]),
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
                lost, ran = lost_agent(cause)
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
                error, outcome = error_of(err)
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
                duration=(now_seconds() - started) if started is not None else None,
                attempts=attempts,
                error=message,
                log_path=data.log_path if data else "",
                summary=data.summary if data else "",
                log_tail=tail,
                agent_id=data.agent_id if data else "",
            )
        )
