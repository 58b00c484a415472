"""The agent: one Temporal client, one worker per task queue, graceful shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from temporalio.client import Client, TLSConfig
from temporalio.worker import Worker

from waterflow._registry import NodeRegistry
from waterflow._reload import PluginReloader, ReloadReport
from waterflow.agent._reaper import Reaper
from waterflow.agent.config import AgentConfig
from waterflow.engine.activities import Activities
from waterflow.engine.converter import data_converter
from waterflow.engine.executor import AgentRuntime, safe_name
from waterflow.engine.job_workflow import JobWorkflow
from waterflow.engine.run_workflow import RunWorkflow
from waterflow.engine.sandbox import workflow_runner
from waterflow.engine.search import ensure_search_attributes
from waterflow.engine.types import CONTROL_QUEUE, claim_queue_for
from waterflow.secrets import load_secrets

if TYPE_CHECKING:
    from waterflow.agent.reporting import ServerLink

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_SHUTDOWN_TIMEOUT = 2
_STICKY_TIMEOUT = timedelta(seconds=1)
# Stopping, the agent keeps refusing the steps that still reach it until none has ended or
# arrived for this long (within shutdown_timeout): the next steps of jobs that were between
# two steps here then move at once instead of waiting agent_pickup_timeout for this agent.
_DRAIN_QUIET = 3.0
#: Under agent.work_dir: wheels from the plugin directory, extracted (run names never start `_`).
PLUGIN_CACHE = "_plugin-cache"


class AgentError(Exception):
    """The agent cannot start; one line for the operator."""


def private_queue_for(agent_id: str) -> str:
    return f"waterflow-agent-{safe_name(agent_id, 200)}"


def _tls(config: AgentConfig) -> TLSConfig | bool:
    tls = config.temporal.tls
    if not tls.enabled:
        return False

    def read(path: Path | str | None) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise AgentError(f"temporal.tls: cannot read {path}: {exc.strerror}") from None

    return TLSConfig(
        server_root_ca_cert=read(tls.ca_cert),
        client_cert=read(tls.client_cert),
        client_private_key=read(tls.client_key),
        domain=tls.server_name,
    )


async def connect(config: AgentConfig) -> Client:
    """Connect to Temporal, retrying `max_retries` times `retry_interval` apart."""
    t = config.temporal
    attempts = max(1, t.max_retries + 1)
    tls = _tls(config)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            return await asyncio.wait_for(
                Client.connect(
                    t.address,
                    namespace=t.namespace,
                    # Temporal shows this as the worker that took each task (default: pid@host).
                    identity=config.agent.id,
                    data_converter=data_converter,
                    tls=tls,
                ),
                timeout=t.connection_timeout.total_seconds(),
            )
        except (TimeoutError, RuntimeError, OSError) as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if attempt < attempts:
                logger.warning(
                    "Cannot reach Temporal; retrying",
                    temporal_address=t.address,
                    attempt=attempt,
                    max_retries=t.max_retries,
                    error=last,
                )
                await asyncio.sleep(t.retry_interval.total_seconds())
    raise AgentError(
        f"cannot connect to Temporal at {t.address} after {attempts} attempts: {last}; "
        "check temporal.address (WATERFLOW_TEMPORAL_ADDRESS) and that the server is up"
    )


class Agent:
    """Polls its task queues and runs steps until stopped."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        registry: NodeRegistry | None = None,
        task_queues: Sequence[str] | None = None,
        client: Client | None = None,
    ) -> None:
        self.config = config
        self.agent_id = config.agent.id
        self.task_queues = list(
            task_queues if task_queues is not None else config.agent.task_queues
        )
        self.private_queue = private_queue_for(self.agent_id)
        self.registry = registry
        self.client = client
        self._workers: list[Worker] = []
        self._running = asyncio.Event()
        self.activities: Activities | None = None
        #: Loads and reloads the plugins; None when a fixed `registry` was given.
        self.reloader: PluginReloader | None = None
        #: Reports nodes and ships step logs to the server; None without server.address.
        self.server_link: ServerLink | None = None
        #: Stops this agent's step processes when it ends, even by SIGKILL.
        self.reaper: Reaper | None = None
        self._private_worker: Worker | None = None
        self._claim_workers: list[Worker] = []
        #: The keyword arguments every worker of this agent gets (set by `start`).
        self._common: dict[str, Any] = {}

    async def reload(self, trigger: str = "request") -> ReloadReport:
        """Rescan installed distributions and the plugin directory (what SIGHUP does)."""
        if self.reloader is None:
            raise AgentError("this agent has no plugins to reload: it was given a fixed registry")
        return await self.reloader.reload(trigger=trigger)

    async def start(self) -> None:
        """Connect, load plugins and start polling. Returns once every worker polls."""
        if self.client is None:
            self.client = await connect(self.config)
        if self.registry is None:
            self.registry = NodeRegistry()
            self.reloader = PluginReloader(
                self.registry,
                plugin_dir=self.config.agent.plugin_dir,
                cache_dir=Path(self.config.agent.work_dir).expanduser() / PLUGIN_CACHE,
            )
            await self.reloader.load()  # a broken plugin is logged; the agent goes on without it
            if self.config.agent.auto_reload_plugins:
                await self.reloader.start_watching()
        if self.config.server.address is not None:
            # grpc and the control plane's messages: imported by the agents that talk to it.
            from waterflow.agent.reporting import ServerLink

            link = self.server_link = ServerLink(
                self.config.server,
                agent_id=self.agent_id,
                task_queues=self.task_queues,
                registry=lambda: self.registry,
            )
            if self.reloader is not None:
                self.reloader.add_listener(lambda _report: link.report())
        secrets_dir = self.config.agent.secrets_dir

        def secrets() -> dict[str, str]:
            return load_secrets(directory=secrets_dir)

        secrets()  # a broken secrets directory fails the start, not the first step
        await ensure_search_attributes(self.client, self.config.temporal.namespace)
        work_dir = Path(self.config.agent.work_dir).expanduser()
        self.reaper = Reaper(self.agent_id)
        self.reaper.start()
        runtime = AgentRuntime(
            agent_id=self.agent_id,
            registry=self.registry,
            secrets=secrets,
            log_dir=Path(self.config.log.output_path).expanduser(),
            base_env=self.reaper.step_environment(),
            log_listener=self.server_link.listener if self.server_link is not None else None,
        )
        self.activities = Activities(
            runtime,
            private_queue=self.private_queue,
            work_dir=work_dir,
            heartbeat_interval=self.config.agent.step_heartbeat_interval.total_seconds(),
            max_running=self.config.agent.max_concurrent_activities,
        )
        common = {
            "graceful_shutdown_timeout": self.config.agent.shutdown_timeout,
            "max_concurrent_workflow_tasks": self.config.agent.max_concurrent_workflow_tasks,
            "default_heartbeat_throttle_interval": self.config.agent.step_heartbeat_interval,
            # Else a step's heartbeats reach Temporal only every 0.8 x its heartbeat timeout,
            # which leaves a loaded agent little margin before the step is taken as lost.
            "max_heartbeat_throttle_interval": self.config.agent.step_heartbeat_interval,
            # A job or run whose workflow this agent cached moves to another agent this soon
            # after the agent stops answering (the SDK's default is 10 s, added to every
            # recovery from a killed agent).
            "sticky_queue_schedule_to_start_timeout": _STICKY_TIMEOUT,
            "workflow_runner": workflow_runner(sandboxed=self.config.agent.workflow_sandbox),
        }
        self._common = common
        for queue in self.task_queues:
            self._add_queue_workers(queue)
        self._workers.append(
            Worker(
                self.client,
                task_queue=CONTROL_QUEUE,
                workflows=[RunWorkflow],
                **common,  # type: ignore[arg-type]
            )
        )
        # Stopped last, by `shutdown`, once the running steps are done or out of time: until
        # then it refuses the steps that still arrive, so that their jobs move at once.
        self._private_worker = Worker(
            self.client,
            task_queue=self.private_queue,
            activities=[self.activities.execute_node],
            max_concurrent_activities=self.config.agent.max_concurrent_activities,
            **{**common, "graceful_shutdown_timeout": timedelta(0)},  # type: ignore[arg-type]
        )
        self._workers.append(self._private_worker)
        if self.server_link is not None:
            from waterflow.agent.reporting import ServerLinkError

            try:
                await self.server_link.start()  # in the background: never waits for the server
            except ServerLinkError as exc:
                raise AgentError(str(exc)) from None
        self._tasks = [asyncio.create_task(w.run()) for w in self._workers]
        self._running.set()
        logger.info(
            "Agent started",
            agent_id=self.agent_id,
            task_queues=self.task_queues,
            private_queue=self.private_queue,
        )

    def _add_queue_workers(self, queue: str) -> list[Worker]:
        """The workers that serve one task queue: its claims, and its job workflows."""
        assert self.client is not None
        assert self.activities is not None
        added: list[Worker] = []
        # Claims (new jobs for this agent) and job workflow tasks on separate workers: a
        # stopping agent takes no new job at once, but goes on deciding for the jobs it
        # holds until its steps are done, so that their next steps are refused (and the
        # jobs move) at once rather than after a sticky timeout and a replay elsewhere.
        claims = Worker(
            self.client,
            task_queue=claim_queue_for(queue),
            activities=[self.activities.claim_workspace],
            **self._common,
        )
        self._claim_workers.append(claims)
        added.append(claims)
        added.append(
            Worker(
                self.client,
                task_queue=queue,
                workflows=[JobWorkflow],
                # As local activities: the claim of a job this agent decides, and its
                # `local` steps (see JobWorkflow._claim and _execute_here). As activities:
                # the steps of the jobs it holds, which Temporal hands back with the
                # workflow task that scheduled them (eager dispatch), and which another agent
                # of the queue refuses when it gets one instead (see JobWorkflow._execute).
                activities=[self.activities.claim_workspace, self.activities.execute_node],
                max_concurrent_activities=self.config.agent.max_concurrent_activities,
                max_concurrent_local_activities=self.config.agent.max_concurrent_activities,
                # Stopped once the steps had their time (see `shutdown`): what still runs
                # then is stopped at once, as on the private queue.
                **{**self._common, "graceful_shutdown_timeout": timedelta(0)},
            )
        )
        self._workers.extend(added)
        logger.info("Registered worker for task queue", task_queue=queue)
        return added

    async def serve_queues(self, queues: Sequence[str]) -> list[str]:
        """Start serving the task queues among `queues` this started agent does not serve yet
        (what an embedded agent that outlives one run needs); returns those added."""
        added = [queue for queue in dict.fromkeys(queues) if queue not in self.task_queues]
        for queue in added:
            self.task_queues.append(queue)
            self._tasks.extend(asyncio.create_task(w.run()) for w in self._add_queue_workers(queue))
        return added

    async def wait(self) -> None:
        """Until a worker stops by itself (which is an error) or `shutdown` is called."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise AgentError(f"a worker stopped: {exc}") from exc

    async def shutdown(self) -> int:
        """Stop polling; let running steps finish within shutdown_timeout.

        Returns 0 when every running step finished in time, 2 when some had to be stopped
        (they are handed back to Temporal and run again on another agent).
        """
        logger.info("Shutting down agent workers")
        if self.reloader is not None:
            await self.reloader.stop()
        timeout = self.config.agent.shutdown_timeout.total_seconds()
        activities = self.activities
        finished_in_time = True
        if activities is not None:
            activities.draining = True

        async def stop(index: int, worker: Worker) -> None:
            logger.info("Stopping worker", index=index, task_queue=worker.task_queue)
            await worker.shutdown()

        # No new job is claimed from here on; steps that still reach the private queue are
        # refused (`draining`) and run elsewhere, while the running ones finish. The workflow
        # workers stay until then: they schedule the refused jobs' next moves without delay.
        private = self._private_worker
        numbered = list(enumerate(self._workers))
        claims = asyncio.gather(*(stop(i, w) for i, w in numbered if w in self._claim_workers))
        if activities is not None:
            begun = asyncio.get_running_loop().time()
            finished_in_time = await activities.wait_idle(timeout)
            if finished_in_time:
                left = timeout - (asyncio.get_running_loop().time() - begun)
                await activities.wait_quiet(_DRAIN_QUIET, max(left, 0.0))
        if private is not None:
            # Past the timeout, this cancels the steps still running (AgentShutdown).
            await stop(len(self._workers) - 1, private)
        await asyncio.gather(
            *(stop(i, w) for i, w in numbered if w is not private and w not in self._claim_workers)
        )
        await claims
        if activities is not None and activities.stopped_by_shutdown:
            finished_in_time = False
        # Each worker's run() returns once its shutdown is complete; leaving one pending would
        # let the interpreter exit under the SDK's native threads.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server_link is not None:
            await self.server_link.stop()  # ships the last lines of the steps, briefly
        if self.reaper is not None:
            # Stops what steps left running in the background, as it would were we killed.
            await asyncio.to_thread(self.reaper.close)
        if finished_in_time:
            logger.info("Agent shutdown complete")
            return EXIT_OK
        logger.error(
            "Worker shutdown failed",
            error=f"steps still running after shutdown_timeout ({timeout:g}s) were stopped; "
            "Temporal runs them again on another agent",
        )
        return EXIT_SHUTDOWN_TIMEOUT
