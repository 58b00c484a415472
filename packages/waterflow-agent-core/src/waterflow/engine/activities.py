"""The agent's activities: `claim_workspace` (on the job's queue) and `execute_node`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import attrs
from loguru import logger
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from waterflow.engine import converter
from waterflow.engine.executor import AgentRuntime, StepFailed, run_step, runner_arch, safe_name
from waterflow.engine.types import (
    ACTIVITY_CLAIM_WORKSPACE,
    ACTIVITY_EXECUTE_NODE,
    AGENT_BUSY,
    AGENT_DRAINING,
    AGENT_SHUTDOWN,
    EVENT_UNKNOWN,
    NOT_HERE,
    AgentSlot,
    ClaimInput,
    StepInput,
    StepOutcome,
    placed,
)

# A step's own deadline fires this long before Temporal's, so that the failure the workflow
# sees carries the step's log tail rather than a bare timeout.
_LOCAL_DEADLINE_MARGIN = 1.0
# How many jobs' event payloads an agent keeps (see StepInput.event_known).
_EVENTS_KEPT = 256


class Activities:
    def __init__(
        self,
        runtime: AgentRuntime,
        *,
        private_queue: str,
        work_dir: Path,
        heartbeat_interval: float = 5.0,
        max_running: int = 100,
    ) -> None:
        self.runtime = runtime
        self.private_queue = private_queue
        self.work_dir = work_dir
        self.heartbeat_interval = heartbeat_interval
        #: Steps this agent runs at once, on all its queues together (agent.max_concurrent_
        #: activities): Temporal's slots are per worker, this is per agent.
        self.max_running = max_running
        self._slot_freed = asyncio.Event()
        self.host = socket.gethostname()
        #: Set when the agent stops: steps that arrive then are refused, unstarted, so that
        #: their jobs move to another agent at once instead of waiting for this one.
        self.draining = False
        self.stopped_by_shutdown = 0
        self.refused = 0
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_change = time.monotonic()  # a step ended or was refused
        # The run's event payload of each job that sent it here, by (run, job): a job sends
        # it with its first step only.
        self._events: OrderedDict[tuple[str, str], Any] = OrderedDict()

    async def wait_quiet(self, quiet: float, timeout: float) -> None:
        """Until no step has ended or been refused for `quiet` seconds (at most `timeout`).

        While the agent drains, a job whose step just ended here sends its next step moments
        later; refusing it (rather than no longer polling) moves the job at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            wait = min(self._last_change + quiet, deadline) - now
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def wait_idle(self, timeout: float) -> bool:
        """True when no step is running, waiting at most `timeout` seconds for that."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _not_here(self, why: str) -> ApplicationError:
        """Refuse a local activity or a step on the job's queue, unstarted: the job sends it
        through the server instead (a claim to the group's claim queue, a step to the
        holder's private queue)."""
        return ApplicationError(
            f"agent {self.runtime.agent_id} {why}",
            type=NOT_HERE,
            non_retryable=True,
            category=ApplicationErrorCategory.BENIGN,
        )

    @activity.defn(name=ACTIVITY_CLAIM_WORKSPACE)
    async def claim_workspace(self, inp: ClaimInput) -> AgentSlot:
        if self.draining and activity.info().is_local:
            raise self._not_here("is stopping and claims no new job")
        run = safe_name(inp.run_id, 120)
        job = safe_name(inp.job)
        workspace = Path(inp.workspace) if inp.workspace else self.work_dir / run / job
        temp_dir = self.work_dir / "_temp" / run / job
        workspace.mkdir(parents=True, exist_ok=True)
        temp_dir.mkdir(parents=True, exist_ok=True)
        logger.info(
            "Workspace claimed",
            run_id=inp.run_id,
            job=inp.job,
            workspace=str(workspace),
        )
        return AgentSlot(
            agent_id=self.runtime.agent_id,
            host=self.host,
            queue=self.private_queue,
            workspace=str(workspace),
            temp_dir=str(temp_dir),
            arch=runner_arch(),
            local_nodes=sorted(
                name for name, meta in self.runtime.registry.metadata().items() if meta.local
            ),
        )

    def _with_event(self, inp: StepInput) -> dict[str, Any]:
        """The step's contexts with the run's event payload, which a job sends only with its
        first step to an agent; kept here for its later steps."""
        key = (inp.run_id, inp.job_key or inp.job)
        github = inp.contexts.get("github", {})
        if not inp.event_known:
            if "event" in github:
                self._events[key] = github["event"]
                self._events.move_to_end(key)
                while len(self._events) > _EVENTS_KEPT:
                    self._events.popitem(last=False)
            return inp.contexts
        if key not in self._events:
            raise ApplicationError(
                f"agent {self.runtime.agent_id} does not have the event payload of this job",
                type=EVENT_UNKNOWN,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        self._events.move_to_end(key)
        return {**inp.contexts, "github": {**github, "event": self._events[key]}}

    @activity.defn(name=ACTIVITY_EXECUTE_NODE)
    async def execute_node(self, inp: StepInput) -> StepOutcome:
        info = activity.info()
        if info.is_local or info.task_queue != self.private_queue:
            # A local step, or one on the job's own queue: only the agent holding the
            # workspace runs it, only while it takes new steps, and only with a free slot;
            # refused, the job sends it to the holder's private queue.
            if self.draining:
                raise self._not_here("is stopping and starts no new step")
            if inp.holder != self.runtime.agent_id:
                raise self._not_here(f"does not hold the workspace (agent {inp.holder} does)")
            if self._running >= self.max_running:
                full = f"runs as many steps as it may ({self._running})"
                if info.is_local:
                    raise self._not_here(full)
                raise ApplicationError(
                    f"agent {self.runtime.agent_id} {full}",
                    type=AGENT_BUSY,
                    non_retryable=True,
                    category=ApplicationErrorCategory.BENIGN,
                )
        else:
            # On the private queue, Temporal holds back what exceeds this worker's slots; the
            # steps that came back to the job workflows' workers share the same limit.
            while self._running >= self.max_running and not self.draining:
                self._slot_freed.clear()
                activity.heartbeat()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), self.heartbeat_interval)
        latest: list[Any] = []

        def heartbeat(*details: Any) -> None:
            latest[:] = list(details)
            if not info.is_local:  # a local activity has no heartbeats: its job's task does
                activity.heartbeat(*details)

        # Heartbeats every heartbeat_interval while the step runs (see _KeepAlive).
        loop = asyncio.get_running_loop()
        beat = _KeepAlive(loop, self.heartbeat_interval, latest)

        timeout = None
        if info.start_to_close_timeout is not None:
            total = info.start_to_close_timeout.total_seconds()
            # At least a second (stopping a container takes time), at most half the step.
            timeout = max(total - max(_LOCAL_DEADLINE_MARGIN, total * 0.02), total * 0.5)
        log = logger.bind(
            run_id=inp.run_id,
            job=inp.job,
            step=inp.step.key,
            uses=inp.step.uses,
            attempt=info.attempt,
            local=info.is_local,
        )
        if self.draining:
            self.refused += 1
            self._last_change = time.monotonic()
            log.info("Step refused: the agent is stopping")
            raise ApplicationError(
                f"agent {self.runtime.agent_id} is stopping and did not start the step",
                type=AGENT_DRAINING,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            )
        inp = attrs.evolve(
            inp,
            contexts=placed(
                self._with_event(inp),
                job=inp.job,
                step=inp.step.key,
                workspace=inp.workspace,
                temp_dir=inp.temp_dir,
                agent_id=self.runtime.agent_id,
                arch=runner_arch(),
            ),
        )
        log.info("Step started")
        if not info.is_local:  # a local activity has no heartbeats: its job's task does
            beat.start()
        self._running += 1
        self._idle.clear()
        try:
            outcome = await run_step(
                inp, self.runtime, attempt=info.attempt, heartbeat=heartbeat, timeout=timeout
            )
        except StepFailed as exc:
            log.info("Step failed: {}", exc.message.splitlines()[0])
            details = [converter.unstructure(exc.outcome)] if exc.outcome else []
            raise ApplicationError(
                exc.message,
                *details,
                type="StepFailed" if exc.retryable else "InvalidStep",
                non_retryable=not exc.retryable,
                # A failing step is the user's business, not the agent's: no traceback.
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        except asyncio.CancelledError:
            why = activity.cancellation_details()
            if why is not None and why.worker_shutdown:
                # Not the user's cancellation: the agent is going away. The workflow runs
                # the step again on another agent of the queue.
                log.warning("Step stopped by agent shutdown")
                self.stopped_by_shutdown += 1
                raise ApplicationError(
                    f"agent {self.runtime.agent_id} shut down before the step finished",
                    type=AGENT_SHUTDOWN,
                    # Expected (the warning above says it): not the SDK's warning and
                    # traceback too, which `waterflow run` would print on the terminal.
                    category=ApplicationErrorCategory.BENIGN,
                ) from None
            log.info("Step cancelled", reason=_cancel_reason(why))
            raise
        finally:
            self._running -= 1
            self._slot_freed.set()
            self._last_change = time.monotonic()
            if self._running == 0:
                self._idle.set()
            beat.stop()
        # After the outcome is on its way to Temporal, as the step's own cleanup (run_step).
        duration = round(outcome.duration, 3)
        loop.call_soon(functools.partial(log.info, "Step finished", duration=duration))
        return outcome


class _KeepAlive:
    """Heartbeats a running step every `interval` seconds with its latest details, from a
    timer rather than a task: a step that ends at once costs no task to start, cancel and
    await. Stopped, it holds no reference cycle: a self-rescheduling closure would, and with
    it the timer's copy of the activity's context, until the garbage collector came by."""

    __slots__ = ("_details", "_handle", "_interval", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, details: list[Any]
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._details = details
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._handle = self._loop.call_later(self._interval, self._beat)

    def _beat(self) -> None:
        activity.heartbeat(*self._details)
        self.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _cancel_reason(why: activity.ActivityCancellationDetails | None) -> str:
    """Why Temporal (or the SDK) cancelled a step, for the agent's log."""
    if why is None:
        return "unknown"
    if why.timed_out:
        # Also what an agent cut off from Temporal does by itself: no heartbeat got through.
        return "timed out: no heartbeat reached Temporal within the step's heartbeat timeout"
    if why.not_found:
        return "Temporal no longer knows this attempt (it was given to another agent)"
    if why.cancel_requested:
        return "the run or the job was cancelled"
    if why.paused:
        return "paused"
    if why.reset:
        return "reset"
    return "unknown"
