"""Starting a run on Temporal and following it step by step."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from waterflow.dsl.model import WorkflowSpec
from waterflow.engine.run_workflow import RunWorkflow
from waterflow.engine.types import (
    CONTROL_QUEUE,
    JobProgress,
    JobResult,
    RunInput,
    RunProgress,
    RunResult,
    StepDefaults,
    StepReport,
)
from waterflow.engine.workflow_support import search_attributes


def new_run_id(workflow_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", workflow_name).strip("-").lower()[:60] or "run"
    return f"{slug}-{uuid.uuid4().hex[:10]}"


async def start_run(
    client: Client,
    spec: WorkflowSpec,
    *,
    inputs: Mapping[str, Any] | None = None,
    given_inputs: Mapping[str, str] | None = None,
    github: Mapping[str, Any] | None = None,
    workspace: str | None = None,
    run_id: str | None = None,
    defaults: StepDefaults | None = None,
    with_search_attributes: bool = True,
) -> WorkflowHandle[Any, RunResult]:
    """Start a run of `spec`. `inputs` is the `inputs` context (apply_inputs); `given_inputs`
    the inputs as the user gave them, which a dispatch's event payload holds as on GitHub (as
    text, and only those given). Without them it holds every input, as text."""
    run_id = run_id or new_run_id(spec.name)
    github = dict(github or {})
    dispatch = github.get("event_name", "workflow_dispatch") == "workflow_dispatch"
    if given_inputs is not None and dispatch and "event" not in github:
        github["event"] = {"inputs": dict(given_inputs)}
    return await client.start_workflow(
        RunWorkflow.run,
        RunInput(
            spec=spec,
            inputs=dict(inputs or {}),
            github=github,
            defaults=defaults or StepDefaults(),
            workspace=workspace,
            search_attributes=with_search_attributes,
        ),
        id=run_id,
        task_queue=CONTROL_QUEUE,
        # With a worker of the control queue in this process (the embedded agent, waterflow
        # up), the run's first workflow task comes back with the start: one trip through the
        # server less. Elsewhere it is not asked for.
        request_eager_start=True,
        search_attributes=search_attributes(spec.name, "", "running")
        if with_search_attributes
        else None,
    )


@attrs.frozen
class Event:
    """Something `waterflow run` shows: kind is job-started, step-started, step-finished,
    job-finished."""

    kind: str
    job: str
    step: StepReport | None = None
    step_name: str | None = None
    job_result: JobResult | None = None
    status: str | None = None
    name: str = ""  # the job's `name:`, rendered (JobResult.name)

    @property
    def label(self) -> str:
        """How the job is shown: its name, or its key (`build (linux, 3.11)`)."""
        return self.name or self.job


class _Follower:
    """Turns successive progress snapshots into events, each emitted once, in order."""

    def __init__(self, client: Client, run_id: str, emit: Callable[[Event], None]) -> None:
        self.client = client
        self.run_id = run_id
        self._emit = emit
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.steps_seen: dict[str, int] = {}
        self.current: dict[str, str | None] = {}
        self.names: dict[str, str] = {}

    def emit(self, event: Event) -> None:
        name = self.names.get(event.job, "")
        self._emit(attrs.evolve(event, name=name) if name else event)

    async def _job_progress(self, workflow_id: str) -> JobProgress | None:
        handle = self.client.get_workflow_handle(workflow_id)
        try:
            progress: JobProgress = await handle.query("progress", result_type=JobProgress)
        except (RPCError, Exception):
            return None
        return progress

    def _steps(self, job: str, steps: list[StepReport], current: str | None) -> None:
        for report in steps[self.steps_seen.get(job, 0) :]:
            if self.current.get(job) != report.name and report.outcome != "skipped":
                self.emit(Event("step-started", job, step_name=report.name))
            self.current[job] = None
            self.emit(Event("step-finished", job, step=report))
        self.steps_seen[job] = len(steps)
        if current and self.current.get(job) != current:
            self.current[job] = current
            self.emit(Event("step-started", job, step_name=current))

    def _start(self, job: str) -> None:
        if job not in self.started:
            self.started.add(job)
            self.emit(Event("job-started", job))

    def _finish(self, job: str, result: JobResult) -> None:
        if job in self.finished:
            return
        if result.result != "skipped" or result.steps:
            self._start(job)
        self._steps(job, list(result.steps), None)
        self.finished.add(job)
        self.emit(Event("job-finished", job, job_result=result, status=result.result))

    async def poll(self, run: RunProgress) -> None:
        for job, state in run.jobs.items():
            if state.name:
                self.names[job] = state.name
            if job in run.results:
                self._finish(job, run.results[job])
            elif state.status == "running":
                self._start(job)
                progress = await self._job_progress(state.workflow_id)
                if progress is not None:
                    self._steps(job, list(progress.steps), progress.current_step)

    def finish(self, result: RunResult) -> None:
        for job, job_result in result.jobs.items():
            if job_result.name:
                self.names[job] = job_result.name
            self._finish(job, job_result)


async def follow(
    client: Client,
    handle: WorkflowHandle[Any, RunResult],
    emit: Callable[[Event], None],
    *,
    interval: float = 0.2,
) -> RunResult:
    """Wait for the run's result, emitting progress events as steps start and finish."""
    follower = _Follower(client, handle.id, emit)
    result_task = asyncio.ensure_future(handle.result())
    try:
        while not result_task.done():
            with contextlib.suppress(Exception):
                progress = await handle.query("progress", result_type=RunProgress)
                await follower.poll(progress)
            await asyncio.wait([result_task], timeout=interval)
        result = result_task.result()
    finally:
        if not result_task.done():
            result_task.cancel()
    follower.finish(result)
    return result
