"""The run workflow: starts each job (each combination of a matrix job) as a child workflow
on its `runs-on` queue once its `needs` are done.

Deterministic code in Temporal's sandbox, in a module of its own (see job_workflow.py). It
names the job workflow by its type and never imports it: the sandbox would then execute that
module too for every run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import CancelledError, ChildWorkflowError, TimeoutError

with workflow.unsafe.imports_passed_through():
    import attrs

    from waterflow import expressions
    from waterflow.dsl._names import QUEUE_RE
    from waterflow.dsl.matrix import MatrixError, expand_matrix, instance_name
    from waterflow.dsl.model import JobSpec
    from waterflow.engine.types import (
        CANCELLED,
        FAILURE,
        SKIPPED,
        SUCCESS,
        WORKFLOW_JOB,
        WORKFLOW_RUN,
        JobInput,
        JobInstance,
        JobProgress,
        JobResult,
        NeedResult,
        RunInput,
        RunProgress,
        RunResult,
    )
    from waterflow.engine.workflow_support import (
        env_context,
        error_of,
        now_seconds,
        search_attributes,
        upsert_status,
    )


#: The patch (`workflow.patched`) under which a continued job's `needs.<job>.result` is
#: `success`, as on GitHub.
_NEEDS_SEE_CONTINUED = "needs-result-of-a-continued-job-is-success"


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


def _display_name(job: JobSpec, key: str, contexts: dict[str, Any]) -> str:
    """The job's `name:` as GitHub shows it, its expressions rendered with `contexts`; "" for
    a job without one. A matrix combination whose name does not read `matrix` gets its
    values after it, as on GitHub. A name only names: one that cannot be rendered (a function
    failing on a value) is shown as written rather than failing the job."""
    if job.name is None:
        return ""
    name = job.name
    reads_matrix = False
    if "${{" in name:
        try:
            spans = expressions.find_expressions(name)
            reads_matrix = any(
                "matrix" in expressions.referenced_contexts(span.source) for span in spans
            )
            name = expressions.render_string(name, contexts)
        except expressions.ExpressionError:
            name = job.name
    if key != job.id and not reads_matrix:
        name += key[len(job.id) :]  # ` (linux, 3.11)`: see instance_name
    return name


@workflow.defn(name=WORKFLOW_RUN)
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
        self._names: dict[str, str] = {}  # by job or instance key, see JobResult.name

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
        started = now_seconds()
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
            # As on GitHub: a dispatch's inputs are also in its event payload, as text.
            event = dict(github.get("event") or {})
            event.setdefault("inputs", {k: expressions.to_string(v) for k, v in inp.inputs.items()})
            github["event"] = event
        self._github = github
        self._inputs = dict(inp.inputs)
        self._vars = dict(inp.vars)
        for job_id, job in spec.jobs.items():
            if job.name is not None and "${{" not in job.name:
                self._names[job_id] = job.name
            self._jobs[job_id] = JobProgress(
                job=job_id, status="waiting", name=self._names.get(job_id, "")
            )
        cancelled = False

        def record(job_id: str, result: JobResult) -> None:
            name = self._names.get(result.job, "")
            if result.name != name:
                result = attrs.evolve(result, name=name)
            results[result.job] = result
            finished[job_id].append(result)
            self._jobs[result.job] = JobProgress(
                job=result.job,
                status=result.result,
                steps=list(result.steps),
                agent_id=result.agent_id,
                workflow_id=self._children.get(result.job, ""),
                name=name,
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
                    contexts = {**self._contexts(inp, job, needs_view, SUCCESS), "github": github}
                    self._names[job_id] = _display_name(job, job_id, contexts)
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
                        self._names[instance.key] = instance.name
                        progress[instance.key] = JobProgress(
                            job=instance.key,
                            status="waiting",
                            workflow_id=instance.child_id,
                            name=instance.name,
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
                        job=instance.key,
                        status="running",
                        workflow_id=instance.child_id,
                        name=instance.name,
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
        upsert_status(inp.search_attributes, status)
        # In the file's order of jobs, and each matrix in the order of its combinations.
        order = list(self._jobs)
        return RunResult(
            workflow=spec.name,
            run_id=run_id,
            status=status,
            jobs={key: results[key] for key in order if key in results},
            started_at=started,
            duration=now_seconds() - started,
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

    def _seen_result(self, job: JobSpec, result: JobResult) -> str:
        """`needs.<job>.result`. As on GitHub, a failed job that continues on error is
        `success` to the jobs that need it; its own result, in the run's, stays `failure`.
        Runs started before this rule (no marker in their history) keep `failure`."""
        if self._job_continues(job, result) and workflow.patched(_NEEDS_SEE_CONTINUED):
            return SUCCESS
        return result.result

    def _contexts(
        self, inp: RunInput, job: JobSpec, needs_view: dict[str, JobResult], status: str
    ) -> dict[str, Any]:
        return {
            "inputs": dict(inp.inputs),
            "needs": {
                n: {
                    "result": self._seen_result(inp.spec.jobs[n], needs_view[n]),
                    "outputs": dict(needs_view[n].outputs),
                }
                for n in job.needs
            },
            "github": dict(self._github or inp.github),
            "vars": dict(inp.vars),
            "env": env_context({"inputs": dict(inp.inputs)}, status, inp.spec.env),
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
            name = _display_name(job, key, {**contexts, "matrix": combo, "strategy": strategy})
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
                    name=name,
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
                n: NeedResult(
                    result=self._seen_result(inp.spec.jobs[n], needs_view[n]),
                    outputs=dict(needs_view[n].outputs),
                )
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
        started = now_seconds()
        try:
            result: JobResult = await workflow.execute_child_workflow(
                WORKFLOW_JOB,
                job_input,
                result_type=JobResult,
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
                message, outcome = error_of(err)[0], FAILURE
            return JobResult(
                job=instance.key,
                result=outcome,
                runs_on=job.runs_on,
                started_at=started,
                duration=now_seconds() - started,
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
