"""What `waterflow run` prints while a run goes and when it ends."""

from __future__ import annotations

import sys
from typing import TextIO

import click

from waterflow.dsl import WorkflowSpec
from waterflow.engine.client import Event
from waterflow.engine.types import CANCELLED, FAILURE, SKIPPED, SUCCESS, RunResult, StepReport

_MARK = {SUCCESS: "✓", FAILURE: "✗", CANCELLED: "⊘", SKIPPED: "-"}
_TAIL_LINES = 15


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


class Renderer:
    def __init__(
        self, *, quiet: bool = False, stream: TextIO | None = None, err: TextIO | None = None
    ) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stdout
        #: Notes and problems; stderr unless the run's output goes elsewhere (`waterflow up`).
        self.err = err or sys.stderr
        self.color = self.stream.isatty()

    def _out(self, text: str, fg: str | None = None) -> None:
        if self.quiet:
            return
        click.echo(click.style(text, fg=fg) if self.color and fg else text, file=self.stream)

    def note(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, file=self.err)

    def started(self, spec: WorkflowSpec, run_id: str) -> None:
        self._out(f"Run {run_id} of {spec.name} ({spec.file})", fg="cyan")

    def _step(self, job: str, report: StepReport) -> None:
        mark = _MARK.get(report.conclusion, "?")
        note = ""
        if report.outcome == FAILURE and report.conclusion == SUCCESS:
            note = " (failed, continue-on-error)"
        if report.attempts > 1:
            note += f" after {report.attempts} attempts"
        colour = {SUCCESS: "green", FAILURE: "red", CANCELLED: "yellow"}.get(report.conclusion)
        self._out(f"  {mark} {job} / {report.name}  {_seconds(report.duration)}{note}", fg=colour)
        if report.outcome == FAILURE:
            if report.error:
                self._out(f"      {report.error}", fg="red")
            for line in report.log_tail[-_TAIL_LINES:]:
                self._out(f"      | {line}")
            if report.log_path:
                self._out(f"      log: {report.log_path}")
        if report.summary.strip():
            self._out("      summary:")
            for line in report.summary.strip().splitlines():
                self._out(f"        {line}")

    def event(self, event: Event) -> None:
        if event.kind == "job-started":
            self._out(f"▶ {event.label}", fg="cyan")
        elif event.kind == "step-started" and event.step_name:
            self._out(f"  … {event.label} / {event.step_name}")
        elif event.kind == "step-finished" and event.step is not None:
            self._step(event.label, event.step)
        elif event.kind == "job-finished" and event.job_result is not None:
            result = event.job_result
            mark = _MARK.get(result.result, "?")
            why = f": {result.error}" if result.error else ""
            self._out(
                f"{mark} {event.label} {result.result} {_seconds(result.duration)}{why}",
                fg={SUCCESS: "green", FAILURE: "red"}.get(result.result),
            )

    def finished(self, result: RunResult, elapsed: float) -> None:
        for job, job_result in result.jobs.items():
            if job_result.outputs:
                for name, value in job_result.outputs.items():
                    self._out(f"  {job}.outputs.{name} = {value}")
        mark = _MARK.get(result.status, "?")
        self._out(
            f"{mark} {result.workflow} {result.status} in {elapsed:.1f}s (run {result.run_id})",
            fg={SUCCESS: "green", FAILURE: "red"}.get(result.status),
        )
