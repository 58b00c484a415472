"""Sessions for the monorepo. `./dev test` runs lint, types, tests and wheels in .venv.

- lint: ruff (lint and format check) and import-linter's layering contracts.
- types: mypy --strict over every package.
- tests: the whole pytest suite (a real Temporal dev server, real agents, real processes).
- wheels: every package builds its own wheel; waterflow-agent installs alone and lists no
  node, and adding waterflow-nodes-shell makes shell/run appear.
- proto: regenerate `waterflow._proto` from proto/waterflow/v1/*.proto (not a default session:
  tests/test_proto.py fails when the committed code drifts from the .proto files).
- bench: the benchmark suite (bench/run.py, not a default session): every scenario against its
  baseline, one table; `nox -s bench -- sequential` (or hot-reload, ...) runs only those named,
  and `-- fleet-load` a stand-alone bench/*.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "types", "tests", "wheels"]


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "ruff", "check", ".")
    session.run(sys.executable, "-m", "ruff", "format", "--check", ".")
    session.run(str(Path(sys.executable).parent / "lint-imports"))


@nox.session(venv_backend="none")
def types(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "mypy")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    session.run(sys.executable, "-m", "pytest", *session.posargs)


@nox.session(venv_backend="none")
def proto(session: nox.Session) -> None:
    session.run(sys.executable, str(ROOT / "proto" / "generate.py"))


# bench/*.py that are not stand-alone benchmarks: the suite's runner and its modules.
_BENCH_MODULES = {"run", "baseline_temporal", "hot_reload"}


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """The suite (bench/run.py): every scenario, or those named after `--` (sequential,
    concurrent, end-to-end, js-action, agent-start, hot-reload, memory). A stand-alone
    bench/*.py runs when named (`-- fleet-load` runs bench/fleet_load.py); it is not part of
    the default, which stays within about ten minutes on two cores."""
    bench_dir = ROOT / "bench"
    scripts = {
        p.stem.replace("_", "-"): p
        for p in sorted(bench_dir.glob("*.py"))
        if p.stem not in _BENCH_MODULES
    }
    names = list(session.posargs)
    scenarios = [n for n in names if n not in scripts]
    if scenarios or not names:
        if scripts:
            session.log(f"stand-alone benchmarks, run by name: {', '.join(scripts)}")
        session.run(sys.executable, str(bench_dir / "run.py"), *scenarios)
    for name in names:
        if name in scripts:
            session.run(sys.executable, str(scripts[name]))


@nox.session(venv_backend="none")
def wheels(session: nox.Session) -> None:
    with tempfile.TemporaryDirectory(prefix="waterflow-wheels-") as tmp:
        dist = Path(tmp) / "dist"
        for package in PACKAGES:
            session.run(
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--no-isolation",
                "--outdir",
                str(dist),
                str(package),
                silent=True,
            )
        built = sorted(p.name for p in dist.glob("*.whl"))
        session.log(f"built: {', '.join(built)}")
        if len(built) != len(PACKAGES):
            session.error(f"expected {len(PACKAGES)} wheels, got {built}")

        venv = Path(tmp) / "venv"
        session.run(sys.executable, "-m", "venv", str(venv), silent=True)
        pip = [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--find-links",
            str(dist),
        ]
        agent = str(venv / "bin" / "waterflow-agent")

        def nodes() -> list[str]:
            # stdout only: warnings about plugins go to stderr.
            out = subprocess.run([agent, "nodes", "--json"], check=True, capture_output=True)
            return [n["name"] for n in json.loads(out.stdout)]

        session.run(*pip, "waterflow-agent", silent=True)
        alone = nodes()
        if alone:
            session.error(f"waterflow-agent alone lists nodes: {alone}")
        session.log("waterflow-agent alone: no node listed")

        session.run(*pip, "waterflow-nodes-shell", silent=True)
        names = nodes()
        if names != ["shell/run"]:
            session.error(f"with waterflow-nodes-shell expected ['shell/run'], got {names}")
        session.log("with waterflow-nodes-shell: shell/run listed")
