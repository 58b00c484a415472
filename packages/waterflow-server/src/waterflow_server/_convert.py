"""Runs, jobs, steps and progress events to and from their `waterflow.v1` messages."""

from __future__ import annotations

from waterflow._proto.v1 import user_pb2
from waterflow.engine.client import Event
from waterflow.engine.types import JobProgress, JobResult, RunProgress, RunResult, StepReport


def step_message(report: StepReport) -> user_pb2.Step:
    message = user_pb2.Step(
        key=report.key,
        name=report.name,
        uses=report.uses,
        outcome=report.outcome,
        conclusion=report.conclusion,
        outputs=report.outputs,
        attempts=report.attempts,
        error=report.error or "",
        log_path=report.log_path,
        log_tail=report.log_tail,
        agent_id=report.agent_id,
    )
    if report.started_at is not None:
        message.started_at = report.started_at
    if report.duration is not None:
        message.duration = report.duration
    return message


def step_report(message: user_pb2.Step) -> StepReport:
    return StepReport(
        key=message.key,
        name=message.name,
        uses=message.uses,
        outcome=message.outcome,
        conclusion=message.conclusion,
        outputs=dict(message.outputs),
        started_at=message.started_at if message.HasField("started_at") else None,
        duration=message.duration if message.HasField("duration") else None,
        attempts=message.attempts,
        error=message.error or None,
        log_path=message.log_path,
        log_tail=list(message.log_tail),
        agent_id=message.agent_id,
    )


def job_message(result: JobResult) -> user_pb2.Job:
    message = user_pb2.Job(
        job=result.job,
        status=result.result,
        runs_on=result.runs_on,
        agent_id=result.agent_id,
        steps=[step_message(s) for s in result.steps],
        outputs=result.outputs,
        error=result.error or "",
        name=result.name,
    )
    if result.started_at is not None:
        message.started_at = result.started_at
    if result.duration is not None:
        message.duration = result.duration
    return message


def progress_message(progress: JobProgress, runs_on: str = "") -> user_pb2.Job:
    return user_pb2.Job(
        job=progress.job,
        status=progress.status,
        runs_on=runs_on,
        agent_id=progress.agent_id,
        current_step=progress.current_step or "",
        steps=[step_message(s) for s in progress.steps],
        name=progress.name,
    )


def job_result(message: user_pb2.Job) -> JobResult:
    return JobResult(
        job=message.job,
        result=message.status,
        outputs=dict(message.outputs),
        steps=[step_report(s) for s in message.steps],
        runs_on=message.runs_on,
        agent_id=message.agent_id,
        started_at=message.started_at if message.HasField("started_at") else None,
        duration=message.duration if message.HasField("duration") else None,
        error=message.error or None,
        name=message.name,
    )


def run_jobs(
    result: RunResult | None,
    progress: RunProgress | None,
    live: dict[str, JobProgress] | None = None,
) -> list[user_pb2.Job]:
    """The jobs of a run: from its result when it has one, else from its progress (with the
    jobs' own progress in `live` for the steps of running jobs)."""
    if result is not None:
        return [job_message(j) for j in result.jobs.values()]
    if progress is None:
        return []
    jobs = []
    for name, state in progress.jobs.items():
        if name in progress.results:
            jobs.append(job_message(progress.results[name]))
        else:
            jobs.append(progress_message((live or {}).get(name, state)))
    return jobs


def run_result(run: user_pb2.Run) -> RunResult:
    return RunResult(
        workflow=run.summary.workflow,
        run_id=run.summary.run_id,
        status=run.summary.status,
        jobs={j.job: job_result(j) for j in run.jobs},
        duration=run.duration if run.HasField("duration") else None,
    )


def event_message(event: Event) -> user_pb2.RunEvent:
    message = user_pb2.RunEvent(
        kind=event.kind, job=event.job, step_name=event.step_name or "", name=event.name
    )
    if event.step is not None:
        message.step.CopyFrom(step_message(event.step))
    if event.job_result is not None:
        message.job_result.CopyFrom(job_message(event.job_result))
    return message


def event(message: user_pb2.RunEvent) -> Event:
    return Event(
        kind=message.kind,
        job=message.job,
        step=step_report(message.step) if message.HasField("step") else None,
        step_name=message.step_name or None,
        job_result=job_result(message.job_result) if message.HasField("job_result") else None,
        status=message.job_result.status if message.HasField("job_result") else None,
        name=message.name,
    )
