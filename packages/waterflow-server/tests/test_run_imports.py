"""`waterflow run --temporal-address` starts a run and follows it, nothing more: it loads no
node plugins and does not import the agent. Each of those costs every run a noticeable part of
a second; these tests say which one came back. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Modules only the embedded default needs: the plugins, the agent with Temporal's worker, the
# client of Waterflow's own server, and what only some node packages import.
EMBEDDED_ONLY = (
    "waterflow_nodes_",
    "waterflow._plugins",
    "waterflow.agent.worker",
    "waterflow.agent.reporting",
    "waterflow_server._client",
    "httpx",
)

_RUN = """
import sys
from waterflow_server import cli  # what the `waterflow` entry point imports
from waterflow_server._run import run_command

code = run_command(
    sys.argv[1], inputs=(), temporal_address=sys.argv[2] or None, namespace="default",
    workspace=None, as_json=False,
)
print(code)
print("\\n".join(sorted(sys.modules)))
"""


def _run(file: Path, temporal_address: str) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, str(file), temporal_address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, *modules = proc.stdout.splitlines()
    return int(code), modules, proc.stderr


def _embedded_only(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(EMBEDDED_ONLY)]


def test_run_on_a_temporal_address_loads_no_plugins_and_no_agent(tmp_path: Path) -> None:
    wf = tmp_path / "ok.yaml"
    wf.write_text("jobs:\n  j:\n    runs-on: q\n    steps:\n      - run: echo hi\n")
    # Nothing listens on port 1: the run stops at connecting, after everything it imports.
    code, modules, stderr = _run(wf, "127.0.0.1:1")
    assert code == 1
    assert stderr.strip().splitlines()[-1].startswith("error: cannot connect to Temporal")
    assert _embedded_only(modules) == []


def test_the_embedded_default_still_checks_steps_against_the_installed_nodes(
    tmp_path: Path,
) -> None:
    wf = tmp_path / "unknown.yaml"
    wf.write_text("jobs:\n  j:\n    runs-on: q\n    steps:\n      - uses: nope/missing\n")
    code, modules, stderr = _run(wf, "")
    assert code == 1
    assert "unknown node 'nope/missing'" in stderr
    assert "waterflow_nodes_shell" in modules  # the plugins were loaded to check against
