# ruff: noqa: E501  (the workflow text below keeps its lines whole)
"""GitHub workflow files run unchanged by `waterflow run` on the embedded default: the event,
secrets for the embedded agent, actions from local folders, one job, the checkout's github."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

WORKFLOW = """\
name: CI
on: [push, workflow_dispatch]
defaults:
  run:
    shell: bash
jobs:
  prepare:
    runs-on: ubuntu-latest
    outputs:
      greeting: ${{ steps.hello.outputs.greeting }}
    steps:
      - uses: actions/checkout@v4
      - id: hello
        uses: acme/hello@v1
        with:
          who: ${{ github.event.pusher.name }}
  build:
    needs: prepare
    runs-on: [self-hosted, linux]
    steps:
      - id: facts
        env:
          TOKEN: ${{ secrets.DEPLOY_TOKEN }}
        run: |
          echo "event=${{ github.event_name }}" >> "$GITHUB_OUTPUT"
          echo "token=$TOKEN" >> "$GITHUB_OUTPUT"
          echo "greeting=${{ needs.prepare.outputs.greeting }}" >> "$GITHUB_OUTPUT"
          echo "sha=${{ github.sha }}" >> "$GITHUB_OUTPUT"
          echo "repo=${{ github.repository }}" >> "$GITHUB_OUTPUT"
          echo "ref=${{ github.ref }}" >> "$GITHUB_OUTPUT"
          echo "vars=$GITHUB_ACTIONS/$GITHUB_EVENT_NAME/$GITHUB_REPOSITORY/$GITHUB_REF" >> "$GITHUB_OUTPUT"
          python3 -c 'import json, os; print("pusher=" + json.load(open(os.environ["GITHUB_EVENT_PATH"]))["pusher"]["name"])' >> "$GITHUB_OUTPUT"
  unrelated:
    runs-on: ubuntu-latest
    steps:
      - run: echo "not selected"
"""

ACTION = """\
name: hello
inputs:
  who: {description: who, required: true}
outputs:
  greeting: {description: the greeting}
runs:
  using: node20
  main: index.js
"""

SCRIPT = """\
const fs = require('fs');
const who = process.env['INPUT_WHO'];
fs.appendFileSync(process.env['GITHUB_OUTPUT'], `greeting=hello ${who}\\n`);
"""


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    return subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def _waterflow(*argv: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERFLOW_")}
    env.update(HOME=str(home), WATERFLOW_EMBEDDED_DIR=str(home / "state"))
    return subprocess.run(
        [str(BIN / "waterflow"), *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.e2e
def test_a_github_workflow_runs_unchanged(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text(WORKFLOW)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "remote", "add", "origin", "git@git.example.invalid:acme/widgets.git")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "initial")
    sha = _git(repo, "rev-parse", "HEAD")
    action = tmp_path / "hello-action"
    action.mkdir()
    (action / "action.yml").write_text(ACTION)
    (action / "index.js").write_text(SCRIPT)
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"pusher": {"name": "ada"}}))
    secrets = tmp_path / "secrets.env"
    secrets.write_text("# for the deploy\nDEPLOY_TOKEN='s3cret-token-9'\n")

    proc = _waterflow(
        "run",
        ".github/workflows/ci.yml",
        "--json",
        "--event",
        "push",
        "--event-path",
        str(event),
        "--secrets-file",
        str(secrets),
        "--local-repository",
        f"acme/hello@v1={action}",
        "--job",
        "build",
        cwd=repo,
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert list(result["jobs"]) == ["prepare", "build"]  # --job build, with what it needs
    assert result["jobs"]["build"]["runs_on"] == "self-hosted-linux"
    facts = result["jobs"]["build"]["steps"][0]["outputs"]
    assert facts == {
        "event": "push",
        "token": "***",
        "greeting": "hello ada",
        "sha": sha,
        "repo": "acme/widgets",
        "ref": "refs/heads/main",
        "vars": "true/push/acme/widgets/refs/heads/main",
        "pusher": "ada",
    }
    assert "s3cret-token-9" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--secret", "bad name=x"], "--secret: write it as NAME=VALUE"),
        (["--job", "buidl"], "--job 'buidl': wf.yaml has no such job (did you mean 'build'?)"),
        (["--local-repository", "acme/hello=/tmp"], "write it as owner/repo@ref=DIR"),
        (["--event-path", "missing.json"], "--event-path missing.json: cannot read"),
        (
            ["--temporal-address", "127.0.0.1:1", "--secret", "A=b"],
            "--secret, --secrets-file and --local-repository give values to the embedded agent",
        ),
    ],
)
def test_bad_local_options_are_one_line(tmp_path: Path, argv: list[str], message: str) -> None:
    (tmp_path / "wf.yaml").write_text(
        "jobs:\n  build:\n    runs-on: q\n    steps:\n      - run: 'true'\n"
    )
    proc = _waterflow("run", "wf.yaml", *argv, cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert message in lines[-1]
    assert "Traceback" not in proc.stderr


def test_a_bad_secrets_file_line_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "jobs:\n  b:\n    runs-on: q\n    steps:\n      - run: 'true'\n"
    )
    (tmp_path / "s.env").write_text("OK=1\nnot a pair\n")
    proc = _waterflow("run", "wf.yaml", "--secrets-file", "s.env", cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: s.env:2: write each secret as NAME=VALUE (letters, digits and underscores in NAME)"
    )


@pytest.mark.e2e
def test_runs_on_from_the_matrix_on_the_embedded_default(tmp_path: Path) -> None:
    (tmp_path / "wf.yml").write_text(
        "jobs:\n  t:\n    runs-on: ${{ matrix.os }}\n    strategy:\n      matrix:\n"
        "        os: [ubuntu-latest, debian-12]\n    steps:\n      - run: echo on $RUNNER_NAME\n"
    )
    proc = _waterflow("run", "wf.yml", "--json", cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = json.loads(proc.stdout)["jobs"]
    assert [j["runs_on"] for j in jobs.values()] == ["ubuntu-latest", "debian-12"]


def test_runs_on_from_a_computed_matrix_needs_a_fleet(tmp_path: Path) -> None:
    (tmp_path / "wf.yml").write_text(
        "jobs:\n  p:\n    runs-on: q\n    outputs: {m: '${{ steps.s.outputs.m }}'}\n"
        "    steps:\n      - id: s\n        run: echo m=x >> $GITHUB_OUTPUT\n"
        "  t:\n    needs: p\n    runs-on: ${{ matrix.os }}\n    strategy:\n"
        "      matrix: ${{ fromJSON(needs.p.outputs.m) }}\n    steps:\n      - run: 'true'\n"
    )
    proc = _waterflow("run", "wf.yml", cwd=tmp_path, home=tmp_path)
    assert proc.returncode == 1
    assert "depends on a matrix computed during the run" in proc.stderr.strip().splitlines()[-1]
