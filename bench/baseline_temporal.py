"""The floor Waterflow is measured against: bare temporalio, same server, same run.

One workflow runs N activities in sequence; each activity does the same work as the Waterflow
step it is compared with:

- `bench_noop`: returns at once (a trivial registered node);
- `bench_script`: writes the script of a `run:` step to a file and runs `bash -e <file>`, as
  `shell/run` does for `run: "true"`;
- `bench_sleep`: runs `sleep S` as a child process (the memory scenario's sleeping steps).

Used in-process by the scenarios (`worker()`, `run_sequence()`, `run_many()`), and as a process
of its own for the scenarios that compare whole processes (start time, memory):

    python bench/baseline_temporal.py worker --address 127.0.0.1:7233 --queue q

prints `Worker started` once its worker runs, and `Activity started` as each activity starts;
SIGTERM stops it (running activities are cancelled and their processes killed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

NOOP = "bench_noop"
SCRIPT = "bench_script"
SLEEP = "bench_sleep"


@dataclass
class SequenceInput:
    activity: str
    steps: int
    argument: str = ""
    #: Where the activities go: "" for the workflow's own task queue, which lets Temporal hand
    #: the next activity to the worker in its reply to the workflow task (eager dispatch).
    activity_queue: str = ""


@activity.defn(name=NOOP)
async def noop(argument: str) -> str:
    return ""


@activity.defn(name=SCRIPT)
async def script(text: str) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-step-") as tmp:
        path = Path(tmp) / f"{uuid.uuid4().hex}.sh"
        path.write_text(text)
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-e",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"exit code {process.returncode}")
    return ""


@activity.defn(name=SLEEP)
async def sleep(seconds: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "sleep",
        seconds,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    print("Activity started", flush=True)
    try:
        await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    return ""


@workflow.defn(name="bench.sequence")
class Sequence:
    @workflow.run
    async def run(self, inp: SequenceInput) -> int:
        for _ in range(inp.steps):
            await workflow.execute_activity(
                inp.activity,
                inp.argument,
                task_queue=inp.activity_queue or None,
                start_to_close_timeout=timedelta(minutes=5),
            )
        return inp.steps


ACTIVITIES = [noop, script, sleep]


def worker(client: Client, queue: str, **options: object) -> Worker:
    """A worker for the bare workflow and activities, with the SDK's defaults."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[Sequence],
        activities=ACTIVITIES,
        **options,  # type: ignore[arg-type]
    )


def activity_worker(client: Client, queue: str, **options: object) -> Worker:
    """A worker for the activities alone (another task queue than the workflow's)."""
    return Worker(client, task_queue=queue, activities=ACTIVITIES, **options)  # type: ignore[arg-type]


async def run_sequence(
    client: Client,
    queue: str,
    activity_name: str,
    steps: int,
    argument: str = "",
    *,
    activity_queue: str = "",
) -> float:
    """Seconds from starting one workflow of `steps` activities to its result."""
    started = time.perf_counter()
    handle = await client.start_workflow(
        Sequence.run,
        SequenceInput(activity_name, steps, argument, activity_queue),
        id=f"bench-{uuid.uuid4().hex[:12]}",
        task_queue=queue,
    )
    await handle.result()
    return time.perf_counter() - started


async def run_many(
    client: Client,
    queue: str,
    activity_name: str,
    workflows: int,
    steps: int,
    argument: str = "",
    *,
    activity_queue: str = "",
) -> float:
    """Seconds from starting `workflows` workflows at once to the last result."""
    started = time.perf_counter()
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                Sequence.run,
                SequenceInput(activity_name, steps, argument, activity_queue),
                id=f"bench-{uuid.uuid4().hex[:12]}",
                task_queue=queue,
            )
            for _ in range(workflows)
        )
    )
    await asyncio.gather(*(h.result() for h in handles))
    return time.perf_counter() - started


async def start_many(
    client: Client, queue: str, activity_name: str, workflows: int, argument: str = ""
) -> list[str]:
    """Start `workflows` one-activity workflows without waiting; return their ids."""
    ids = [f"bench-{uuid.uuid4().hex[:12]}" for _ in range(workflows)]
    await asyncio.gather(
        *(
            client.start_workflow(
                Sequence.run, SequenceInput(activity_name, 1, argument), id=i, task_queue=queue
            )
            for i in ids
        )
    )
    return ids


async def _serve(address: str, queue: str) -> int:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bare = worker(client, queue, graceful_shutdown_timeout=timedelta(0))
    task = asyncio.create_task(bare.run())
    print(f"Worker started pid={os.getpid()}", flush=True)
    await stop.wait()
    await bare.shutdown()
    await asyncio.gather(task, return_exceptions=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("worker", help="run a bare worker process until SIGTERM")
    serve.add_argument("--address", required=True)
    serve.add_argument("--queue", required=True)
    args = parser.parse_args(argv)
    return asyncio.run(_serve(args.address, args.queue))


if __name__ == "__main__":
    # The sandbox imports workflows by module name: run them from `baseline_temporal`, not
    # from `__main__`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import baseline_temporal

    sys.exit(baseline_temporal.main())
