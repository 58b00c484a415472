"""Fleet load: many steps at once on one agent, and a queue of jobs spread over three agents.

    nox -s bench -- fleet-load        (or: .venv/bin/python bench/fleet_load.py --jobs 500)

Both runs use real `waterflow-agent run` processes on a Temporal dev server of their own,
started with a database file (as a real server keeps its state; `--in-memory` for the faster
kind the seeds also measured):

1. concurrency: one agent, with the default of 100 concurrent steps, gets 100 jobs whose step
   (a shell step) sleeps until released. Measured: the time until all of them run at once; how
   stale each running step's last heartbeat is in Temporal (sampled from the pending
   activities while they run; "on time" means within the heartbeat interval plus 2 s);
   the agent's RSS idle and at its peak, and that of one step's shell.
2. throughput: three agents on one queue; N jobs of 5 steps (`true`) submitted at once. All
   must succeed. Measured: jobs/s and steps/s from the first submission to the last result,
   the latency of each job (submission to result) at p50/p95/p99, how long a job runs once it
   started, how the jobs spread over the agents, and each agent's peak RSS.

Prints a table. Exits 1 when a job fails, a heartbeat is late or an agent got no job.
The functions `concurrency` and `throughput` are also what tests/faults/test_load.py runs, at
a smaller scale, against the test session's server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from waterflow.devserver import DevServer
from waterflow.dsl import parse_workflow
from waterflow.engine.client import start_run
from waterflow.engine.converter import data_converter
from waterflow.engine.types import SUCCESS, RunResult, StepDefaults

AGENT = Path(sys.executable).parent / "waterflow-agent"
START_TIMEOUT = 60.0
# A heartbeat sample is late when it is older than the agent's interval plus this: the agent's
# event loop also runs workflow tasks, and a burst of them delays a heartbeat by a second or so.
LATE_SLACK = 2.0


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:g}s")
        await asyncio.sleep(0.05)


class AgentProcess:
    """A real `waterflow-agent run` process, its log in `<home>/agent.log`."""

    def __init__(self, home: Path, address: str, queue: str, name: str, **env: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = home / "agent.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
        environ.update(
            {
                "WATERFLOW_TEMPORAL_ADDRESS": address,
                "WATERFLOW_AGENT_ID": name,
                "WATERFLOW_AGENT_WORK_DIR": str(home / "work"),
                "WATERFLOW_LOG_OUTPUT_PATH": str(home / "logs"),
                "WATERFLOW_AGENT_PLUGIN_DIR": str(home / "plugins"),
                **env,
            }
        )
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(AGENT), "run", "--task-queues", queue],
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.peak_rss = 0.0

    async def started(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent {self.name} exited; see {self.log}")
            return '"Agent started"' in self.log.read_text(errors="replace")

        await _until(up, START_TIMEOUT, f"agent {self.name} starting")

    def sample(self) -> float:
        rss = rss_mib(self.proc.pid)
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            await _until(lambda: self.proc.poll() is not None, 60, f"agent {self.name} stopping")
        except RuntimeError:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def _start_agents(
    root: Path, address: str, queue: str, names: list[str], **env: str
) -> list[AgentProcess]:
    agents = [AgentProcess(root / n, address, queue, n, **env) for n in names]
    try:
        await asyncio.gather(*(a.started() for a in agents))
    except BaseException:
        await asyncio.gather(*(a.stop() for a in agents))
        raise
    return agents


async def _sampler(agents: list[AgentProcess], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for agent in agents:
            agent.sample()
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def concurrency(
    client: Client,
    address: str,
    root: Path,
    *,
    steps: int = 100,
    heartbeat_interval: float = 5.0,
    heartbeat_timeout: float = 30.0,
    samples: int = 3,
) -> dict[str, Any]:
    """One agent (default concurrency), `steps` jobs whose shell step waits until released."""
    queue = f"load-{uuid.uuid4().hex[:10]}"
    started, release = root / "started", root / "release"
    started.mkdir(parents=True, exist_ok=True)
    (agent,) = await _start_agents(
        root,
        address,
        queue,
        ["solo"],
        WATERFLOW_AGENT_STEP_HEARTBEAT_INTERVAL=f"{heartbeat_interval:g}s",
    )
    try:
        idle_rss = agent.sample()
        text = f"""
name: concurrency
jobs:
  j:
    runs-on: {queue}
    steps:
      - run: |
          touch {started}/$GITHUB_RUN_ID
          until [ -e {release} ]; do sleep 0.2; done
"""
        spec = parse_workflow(text, file="concurrency.yaml")
        defaults = StepDefaults(heartbeat_timeout=heartbeat_timeout)
        t0 = time.monotonic()
        handles = await asyncio.gather(
            *(start_run(client, spec, defaults=defaults) for _ in range(steps))
        )
        await _until(
            lambda: len(list(started.iterdir())) >= steps, 300, f"{steps} steps running at once"
        )
        all_running = time.monotonic() - t0
        peak_rss = agent.sample()
        shells = [
            p for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == agent.proc.pid
        ]
        shell_rss = max((rss_mib(int(p)) for p in shells), default=0.0)
        staleness: list[float] = []
        for round_ in range(samples):
            if round_:
                await asyncio.sleep(heartbeat_interval)  # the next sample, an interval later
            descriptions = await asyncio.gather(
                *(client.get_workflow_handle(f"{h.id}.j").describe() for h in handles)
            )
            now = time.time()
            for description in descriptions:
                for pending in description.raw_description.pending_activities:
                    if pending.HasField("last_heartbeat_time"):
                        beat = pending.last_heartbeat_time.ToDatetime().timestamp()
                    else:
                        beat = pending.last_started_time.ToDatetime().timestamp()
                    staleness.append(now - beat)
            peak_rss = max(peak_rss, agent.sample())
        release.touch()
        results: list[RunResult] = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), 300
        )
    finally:
        await agent.stop()
    failed = [r.run_id for r in results if r.status != SUCCESS]
    moved = sum(1 for r in results for s in r.jobs["j"].steps if s.attempts != 1)
    # A running step whose heartbeats stopped reaching Temporal is cancelled by the SDK.
    cancelled = agent.log.read_text(errors="replace").count('"message":"Step cancelled"')
    return {
        "steps": steps,
        "all_running_s": all_running,
        "heartbeat_interval_s": heartbeat_interval,
        "staleness_p50_s": percentile(staleness, 50),
        "staleness_max_s": max(staleness, default=math.nan),
        "samples": len(staleness),
        "late": sum(1 for s in staleness if s > heartbeat_interval + LATE_SLACK),
        "idle_rss_mib": idle_rss,
        "peak_rss_mib": peak_rss,
        "shell_rss_mib": shell_rss,
        "failed": failed,
        "moved": moved,
        "cancelled": cancelled,
    }


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2 :].split()[1])


async def throughput(
    client: Client,
    address: str,
    root: Path,
    *,
    agents: int = 3,
    jobs: int = 500,
    steps: int = 5,
) -> dict[str, Any]:
    """`agents` agents on one queue; `jobs` jobs of `steps` trivial steps, submitted at once."""
    queue = f"load-{uuid.uuid4().hex[:10]}"
    names = [f"agent-{i + 1}" for i in range(agents)]
    fleet = await _start_agents(root, address, queue, names)
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(fleet, stop))
    try:
        text = f"""
name: throughput
jobs:
  j:
    runs-on: {queue}
    steps:
""" + "".join(f"      - run: 'true'\n        name: s{i}\n" for i in range(steps))
        spec = parse_workflow(text, file="throughput.yaml")
        submitted: dict[str, float] = {}
        latency: dict[str, float] = {}

        async def one() -> RunResult:
            at = time.monotonic()
            handle = await start_run(client, spec)
            submitted[handle.id] = at
            result: RunResult = await handle.result()
            latency[handle.id] = time.monotonic() - at
            return result

        t0 = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(jobs))), 1800)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        await sampler
        await asyncio.gather(*(a.stop() for a in fleet))
    failed = [r.run_id for r in results if r.status != SUCCESS]
    by_agent = {n: 0 for n in names}
    for r in results:
        for job in r.jobs.values():
            if job.agent_id in by_agent:
                by_agent[job.agent_id] += 1
    durations = [job.duration or 0.0 for r in results for job in r.jobs.values()]
    return {
        "agents": agents,
        "jobs": jobs,
        "steps_per_job": steps,
        "elapsed_s": elapsed,
        "jobs_per_s": jobs / elapsed,
        "steps_per_s": jobs * steps / elapsed,
        "latency_p50_s": percentile(latency.values(), 50),
        "latency_p95_s": percentile(latency.values(), 95),
        "latency_p99_s": percentile(latency.values(), 99),
        "run_p50_s": percentile(durations, 50),
        "run_p95_s": percentile(durations, 95),
        "by_agent": by_agent,
        "peak_rss_mib": {a.name: a.peak_rss for a in fleet},
        "failed": failed,
    }


def table(conc: dict[str, Any] | None, thr: dict[str, Any] | None) -> str:
    rows: list[tuple[str, str]] = []
    if conc is not None:
        n = conc["steps"]
        rows += [
            (f"{n} steps at once on one agent", ""),
            ("  all running after", f"{conc['all_running_s']:.1f} s"),
            (
                "  heartbeat staleness p50 / max",
                f"{conc['staleness_p50_s']:.2f} / {conc['staleness_max_s']:.2f} s "
                f"(interval {conc['heartbeat_interval_s']:g} s, {conc['samples']} samples, "
                f"{conc['late']} late)",
            ),
            (
                "  agent RSS idle / peak",
                f"{conc['idle_rss_mib']:.0f} / {conc['peak_rss_mib']:.0f} MiB",
            ),
            ("  RSS of one step's shell", f"{conc['shell_rss_mib']:.1f} MiB"),
            (
                "  failed / moved / cancelled steps",
                f"{len(conc['failed'])} / {conc['moved']} / {conc['cancelled']}",
            ),
        ]
    if thr is not None:
        rows += [
            (
                f"{thr['jobs']} jobs x {thr['steps_per_job']} steps on {thr['agents']} agents",
                "",
            ),
            ("  all done after", f"{thr['elapsed_s']:.1f} s"),
            (
                "  throughput",
                f"{thr['jobs_per_s']:.1f} jobs/s, {thr['steps_per_s']:.1f} steps/s",
            ),
            (
                "  job latency p50 / p95 / p99",
                f"{thr['latency_p50_s']:.1f} / {thr['latency_p95_s']:.1f} / "
                f"{thr['latency_p99_s']:.1f} s (submission to result)",
            ),
            (
                "  job run time p50 / p95",
                f"{thr['run_p50_s']:.2f} / {thr['run_p95_s']:.2f} s (once started)",
            ),
            ("  jobs per agent", ", ".join(f"{k} {v}" for k, v in thr["by_agent"].items())),
            (
                "  peak RSS per agent",
                ", ".join(f"{k} {v:.0f} MiB" for k, v in thr["peak_rss_mib"].items()),
            ),
            ("  failed jobs", str(len(thr["failed"]))),
        ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def verdict(conc: dict[str, Any] | None, thr: dict[str, Any] | None) -> list[str]:
    """What went wrong, one line each (nothing when all is well)."""
    problems = []
    if conc is not None:
        if conc["failed"]:
            problems.append(f"{len(conc['failed'])} concurrency jobs failed")
        if conc["late"]:
            problems.append(f"{conc['late']} heartbeat samples were late")
        if conc["cancelled"]:
            problems.append(f"{conc['cancelled']} running steps lost their heartbeat")
    if thr is not None:
        if thr["failed"]:
            problems.append(f"{len(thr['failed'])} throughput jobs failed")
        starved = [k for k, v in thr["by_agent"].items() if v == 0]
        if starved:
            problems.append(f"agents that got no job: {', '.join(starved)}")
    return problems


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="waterflow-fleet-load-") as tmp:
        root = Path(tmp)
        server = DevServer(
            db_file=None if args.in_memory else root / "temporal.db",
            log_file=root / "temporal.log",
        )
        await server.start()
        try:
            client = await Client.connect(server.address, data_converter=data_converter)
            conc = thr = None
            if args.steps_at_once:
                conc = await concurrency(
                    client, server.address, root / "concurrency", steps=args.steps_at_once
                )
            if args.jobs:
                thr = await throughput(
                    client, server.address, root / "throughput", agents=args.agents, jobs=args.jobs
                )
        finally:
            server.stop()
    kind = "in memory" if args.in_memory else "with a database file"
    print(f"Temporal dev server {kind}; {os.cpu_count()} CPUs\n")
    print(table(conc, thr))
    problems = verdict(conc, thr)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps-at-once", type=int, default=100, help="0 to skip (default 100)")
    parser.add_argument("--jobs", type=int, default=500, help="0 to skip (default 500)")
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--in-memory", action="store_true", help="no database file")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
