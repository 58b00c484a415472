"""The user CLI `waterflow` and the agent CLI, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(
    *argv: str, cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WATERFLOW_") or k == "WATERFLOW_UP_DIR"  # see conftest
    }
    full_env.update(env)
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env
    )


def run_file(tmp_path: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`waterflow run` of a workflow file `name` holding `text`, made in `tmp_path`."""
    (tmp_path / name).write_text(text)
    return run_embedded(tmp_path, str(tmp_path / name), *args)


def run_embedded(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`waterflow run <args>` on the embedded default, its state and home in `tmp_path`."""
    return run(
        str(BIN / "waterflow"),
        "run",
        *args,
        cwd=tmp_path,
        WATERFLOW_EMBEDDED_DIR=str(tmp_path / "state"),
        HOME=str(tmp_path),
    )


@pytest.mark.e2e
def test_example_runs_end_to_end_on_the_embedded_default(tmp_path: Path) -> None:
    proc = run_embedded(tmp_path, str(ROOT / "examples" / "hello.yaml"), "--input", "who=CI")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "build / Compose the greeting" in out
    assert "deliver / Deliver it" in out
    assert "build.outputs.message = Hello, CI!" in out
    assert "hello success" in out


@pytest.mark.e2e
def test_run_json_prints_the_whole_result_and_exit_1_on_failure(tmp_path: Path) -> None:
    proc = run_file(
        tmp_path,
        "fail.yaml",
        "jobs:\n  j:\n    runs-on: cli-q\n    steps:\n"
        "      - id: a\n        run: echo out=1 >> $GITHUB_OUTPUT\n"
        "      - id: b\n        run: echo bad; exit 4\n",
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "failure"
    steps = result["jobs"]["j"]["steps"]
    assert steps[0]["outputs"] == {"out": "1"}
    assert steps[1]["outcome"] == "failure" and "exited with code 4" in steps[1]["error"]
    assert "bad" in steps[1]["log_tail"]


def test_run_reports_a_bad_file_in_one_line_per_problem(tmp_path: Path) -> None:
    wf = tmp_path / "bad.yaml"
    wf.write_text("jobs:\n  j:\n    runs-on: q\n    steps:\n      - uses: shell/rnu\n")
    proc = run(str(BIN / "waterflow"), "run", str(wf), HOME=str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"{wf}:5:")
    assert "did you mean 'shell/run'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_with_an_unreachable_server_says_so(tmp_path: Path) -> None:
    wf = tmp_path / "ok.yaml"
    wf.write_text("jobs:\n  j:\n    runs-on: q\n    steps:\n      - run: echo hi\n")
    proc = run(str(BIN / "waterflow"), "run", str(wf), "--temporal-address", "127.0.0.1:1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot connect to Temporal")


def test_bad_input_flag(tmp_path: Path) -> None:
    wf = tmp_path / "ok.yaml"
    wf.write_text("jobs:\n  j:\n    runs-on: q\n    steps:\n      - run: echo hi\n")
    proc = run(str(BIN / "waterflow"), "run", str(wf), "--input", "novalue")
    assert proc.returncode == 1
    assert "--input 'novalue': write it as NAME=VALUE" in proc.stderr


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    good = run(str(BIN / "waterflow"), "validate", str(ROOT / "examples" / "hello.yaml"))
    assert good.returncode == 0, good.stderr
    assert "ok (2 jobs, 4 steps)" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs:\n  j:\n    runs_on: q\n    steps: []\n")
    proc = run(str(BIN / "waterflow"), "validate", str(bad))
    assert proc.returncode == 1
    assert "did you mean 'runs-on'" in proc.stderr


def test_agent_version_and_nodes() -> None:
    version = run(str(BIN / "waterflow-agent"), "--version")
    assert version.returncode == 0
    lines = version.stdout.splitlines()
    assert lines[0] == "Waterflow Agent"
    assert lines[1].split() == ["Version:", "0.1.0"]
    assert lines[2].startswith("Commit:") and lines[3].startswith("Build Time:")
    listing = run(str(BIN / "waterflow-agent"), "nodes")
    assert "shell/run" in listing.stdout and "waterflow-nodes-shell" in listing.stdout
    catalog = json.loads(run(str(BIN / "waterflow-agent"), "nodes", "--json").stdout)
    shell = next(n for n in catalog if n["name"] == "shell/run")
    assert shell["distribution"] == "waterflow-nodes-shell"
    assert {p["name"] for p in shell["metadata"]["parameters"]} >= {"run", "shell"}


def test_agent_config_error_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent:\n  task_queues: [a]\n  shutdown_timeout: 30\n")
    proc = run(str(BIN / "waterflow-agent"), "run", "--config", str(cfg))
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "agent.shutdown_timeout" in proc.stderr and f"{cfg}:3" in proc.stderr


def test_agent_without_queues_says_how_to_give_them(tmp_path: Path) -> None:
    proc = run(str(BIN / "waterflow-agent"), "run", HOME=str(tmp_path))
    assert proc.returncode == 1
    assert "agent.task_queues" in proc.stderr and "--task-queues" in proc.stderr


@pytest.mark.e2e
def test_run_shows_step_summaries(tmp_path: Path) -> None:
    proc = run_file(
        tmp_path,
        "summary.yaml",
        "jobs:\n  j:\n    runs-on: sq\n    steps:\n"
        "      - run: |\n          echo '### Results' >> $GITHUB_STEP_SUMMARY\n"
        "          echo '- 3 passed' >> $GITHUB_STEP_SUMMARY\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "      summary:\n        ### Results\n        - 3 passed" in proc.stdout


@pytest.mark.e2e
def test_run_shows_jobs_by_their_rendered_names(tmp_path: Path) -> None:
    proc = run_file(
        tmp_path,
        "named.yaml",
        "jobs:\n"
        "  build:\n"
        "    name: Build on ${{ matrix.os }}\n"
        "    runs-on: nq\n"
        "    strategy: {matrix: {os: [linux]}}\n"
        "    steps:\n"
        "      - run: echo built\n"
        "  plain:\n"
        "    runs-on: nq\n"
        "    steps:\n"
        "      - run: echo plain\n",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "▶ Build on linux" in lines
    assert any(line.startswith("  ✓ Build on linux / Run echo built") for line in lines)
    assert any(line.startswith("✓ Build on linux success") for line in lines)
    # A job without a name is shown by its id, as before.
    assert "▶ plain" in lines
    assert "build (linux)" not in proc.stdout
