"""Agents wired by hand from their parts, for tests that need two agents to play roles a real
agent never takes alone (one decides a job, another holds its workspace or gets its steps)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from waterflow._registry import NodeRegistry
from waterflow.engine.activities import Activities
from waterflow.engine.executor import AgentRuntime
from waterflow.engine.job_workflow import JobWorkflow
from waterflow.engine.run_workflow import RunWorkflow
from waterflow.engine.sandbox import workflow_runner
from waterflow.engine.types import CONTROL_QUEUE


def activities(agent_id: str, queue: str, tmp_path: Path, registry: NodeRegistry) -> Activities:
    """One agent's activities: its private queue, work dir and step logs under `tmp_path`."""
    runtime = AgentRuntime(
        agent_id=agent_id, registry=registry, secrets=dict, log_dir=tmp_path / agent_id
    )
    return Activities(
        runtime, private_queue=f"{queue}-{agent_id}", work_dir=tmp_path / agent_id / "work"
    )


def deciding_workers(
    client: Client, queue: str, decider: Activities, **options: Any
) -> list[Worker]:
    """The workers that decide runs and the jobs of `queue`, with `decider`'s local activities
    and no remote ones (unless `options` say otherwise)."""
    return [
        Worker(
            client,
            task_queue=queue,
            workflows=[JobWorkflow],
            activities=[decider.claim_workspace, decider.execute_node],
            workflow_runner=workflow_runner(sandboxed=True),
            **{"no_remote_activities": True, **options},
        ),
        Worker(
            client,
            task_queue=CONTROL_QUEUE,
            workflows=[RunWorkflow],
            workflow_runner=workflow_runner(sandboxed=True),
        ),
    ]


@contextlib.asynccontextmanager
async def running(workers: Sequence[Worker]) -> AsyncIterator[None]:
    """The workers run for the duration of the block, and are shut down after it."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
