"""JavaScript actions on real Node binaries: inputs, the runner's environment, outputs, the
Node major, pre/main/post with state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gha_testing import run_step, write_action

from waterflow import NodeError
from waterflow.testing import TestRegistry
from waterflow_nodes_gha import provision_node

DUMP_ENV = """
const fs = require('fs');
const names = (process.env.INPUT_NAMES || '').split(',');
const env = {};
for (const name of Object.keys(process.env)) {
  if (/^(INPUT_|GITHUB_|RUNNER_|STATE_|CI$)/.test(name)) env[name] = process.env[name];
}
fs.appendFileSync(process.env.GITHUB_OUTPUT, `env=${JSON.stringify(env)}\\n`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `version=${process.version}\\n`);
console.log(`hello ${process.env.INPUT_WHO}`);
"""


def dump_action(directory: Path, using: str = "node20") -> Path:
    return write_action(
        directory,
        f"""
        name: dump
        inputs:
          who: {{required: true}}
          my-input: {{default: dashed}}
          with space: {{default: spaced}}
          from-github: {{default: "${{{{ github.workspace }}}}/x"}}
          flag: {{default: true}}
          empty: {{description: no default}}
        outputs:
          env: {{description: the environment}}
        runs:
          using: {using}
          main: dist/index.js
        """,
        {"dist/index.js": DUMP_ENV},
    )


async def test_node20_action_gets_inputs_and_the_runner_environment(
    registry: TestRegistry, workspace: Path
) -> None:
    dump_action(workspace / ".github" / "actions" / "dump")
    run = await run_step(
        "./.github/actions/dump",
        {"who": "world", "extra": 3},
        registry=registry,
        workspace=workspace,
        env={"GITHUB_EVENT_NAME": "workflow_dispatch"},
    )
    assert run.ok, run.error
    env = json.loads(run.outcome.outputs["env"])
    assert run.outcome.outputs["version"].startswith("v20.")
    assert env["INPUT_WHO"] == "world"
    assert env["INPUT_MY-INPUT"] == "dashed"  # hyphens kept, as GitHub's runner names it
    assert env["INPUT_WITH_SPACE"] == "spaced"
    assert env["INPUT_FLAG"] == "true"  # a YAML true is the text "true"
    assert env["INPUT_FROM-GITHUB"] == f"{workspace}/x"  # defaults are expressions
    assert env["INPUT_EXTRA"] == "3"  # undeclared inputs still reach the action
    assert env["INPUT_EMPTY"] == ""  # declared without a default: set, empty
    assert env["CI"] == "true"
    assert env["GITHUB_ACTIONS"] == "true"
    assert env["GITHUB_WORKSPACE"] == str(workspace)
    assert env["GITHUB_ACTION_PATH"] == str(workspace / ".github" / "actions" / "dump")
    assert env["GITHUB_ACTION_REPOSITORY"] == ""
    assert env["GITHUB_EVENT_NAME"] == "workflow_dispatch"  # the step's env wins
    assert json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text()) == {}
    assert env["GITHUB_RUN_ID"] == "test-run"
    assert env["GITHUB_JOB"] == "test"
    assert env["GITHUB_RUN_NUMBER"] == "1"
    assert env["GITHUB_SERVER_URL"] == "http://127.0.0.1:9"
    assert env["GITHUB_API_URL"] == "http://127.0.0.1:9/api/v3"
    assert env["RUNNER_OS"] == "Linux"
    assert env["RUNNER_TEMP"]
    assert env["RUNNER_TOOL_CACHE"]
    for kind in ("OUTPUT", "ENV", "PATH", "STATE", "STEP_SUMMARY"):
        assert env[f"GITHUB_{kind}"]


async def test_unexpected_and_deprecated_inputs_are_warned_about(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "act",
        """
        inputs:
          old: {deprecationMessage: use new instead}
          needed: {required: true}
        runs: {using: node20, main: main.js}
        """,
        {"main.js": "console.log('ran')"},
    )
    run = await run_step("./act", {"old": "x", "typo": "y"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert "wf warning: unexpected input(s) 'typo' for ./act; valid inputs are 'old', 'needed'" in (
        run.lines
    )
    assert "wf warning: input 'old' of ./act is deprecated: use new instead" in run.lines
    assert "wf warning: input 'needed' of ./act is required and not supplied" in run.lines


async def test_node24_action_runs_on_node24(
    registry: TestRegistry, workspace: Path, node24: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump_action(workspace / "dump", using="node24")
    monkeypatch.setenv("WATERFLOW_GHA_NODE24", str(node24))
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs["version"].startswith("v24.")


async def test_node24_is_found_in_the_cache_where_setup_node_put_it(
    registry: TestRegistry,
    workspace: Path,
    node24: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `waterflow-gha setup-node 24 --cache C` provisioned <C>/node/24/bin/node.
    monkeypatch.setenv("WATERFLOW_GHA_CACHE", str(node24.parents[3]))
    dump_action(workspace / "dump", using="node24")
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs["version"].startswith("v24.")


async def test_a_missing_major_falls_back_to_node_on_path_and_says_so(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_PROVISION_NODE", "false")
    dump_action(workspace / "dump", using="node16")
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs["version"].startswith("v20.")
    [line] = [line for line in run.lines if "falling back" in line]
    assert "this action wants node16" in line
    assert "WATERFLOW_GHA_PROVISION_NODE is false" in line
    assert "falling back to node v20." in line


async def test_a_configured_node_that_does_not_exist_is_an_error(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_NODES", "20=/nonexistent/node")
    dump_action(workspace / "dump")
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.error == "node20 is configured as '/nonexistent/node', which does not exist"


PRE_POST = {
    "pre.js": """
        const fs = require('fs');
        fs.appendFileSync(process.env.GITHUB_STATE, 'from_pre=1\\n');
        console.log('pre ran');
    """,
    "main.js": """
        console.log(`main sees STATE_from_pre=${process.env.STATE_from_pre}`);
        console.log('::save-state name=from_main::2');
        if (process.env.INPUT_FAIL === 'true') process.exit(3);
    """,
    "post.js": """
        console.log(`post sees ${process.env.STATE_from_pre} ${process.env.STATE_from_main}`);
        console.log(`post input ${process.env.INPUT_FAIL}`);
    """,
}


def pre_post_action(directory: Path, extra: str = "") -> Path:
    return write_action(
        directory,
        f"""
        inputs: {{fail: {{default: "false"}}}}
        runs:
          using: node20
          pre: pre.js
          main: main.js
          post: post.js
          {extra}
        """,
        PRE_POST,
    )


async def test_pre_runs_before_main_and_state_reaches_main_and_post(
    registry: TestRegistry, workspace: Path
) -> None:
    pre_post_action(workspace / "pp", "post-if: success()")
    main = await run_step("./pp", registry=registry, workspace=workspace)
    assert main.ok, main.error
    assert main.stdout() == ["pre ran", "main sees STATE_from_pre=1"]
    assert main.outcome.state == {"from_pre": "1", "from_main": "2"}
    assert main.outcome.post_condition == "success()"

    post = await run_step(
        "./pp", registry=registry, workspace=workspace, phase="post", state=main.outcome.state
    )
    assert post.ok, post.error
    assert post.stdout() == ["post sees 1 2", "post input false"]
    assert post.outcome.post_condition is None


async def test_post_is_asked_for_also_when_main_fails(
    registry: TestRegistry, workspace: Path
) -> None:
    pre_post_action(workspace / "pp")
    run = await run_step("./pp", {"fail": "true"}, registry=registry, workspace=workspace)
    assert run.error is not None
    assert "main script exited with code 3" in run.error
    assert run.outcome.post_condition == "always()"  # GitHub's default post-if
    assert run.outcome.state == {"from_pre": "1", "from_main": "2"}


async def test_pre_if_false_skips_pre(registry: TestRegistry, workspace: Path) -> None:
    pre_post_action(workspace / "pp", "pre-if: runner.os == 'Windows'")
    run = await run_step("./pp", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.stdout() == ["main sees STATE_from_pre=undefined"]
    assert "wf pre script of ./pp skipped: pre-if is false" in run.lines


async def test_a_failing_pre_fails_the_step_before_main(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        "runs: {using: node20, pre: pre.js, main: main.js}",
        {"pre.js": "process.exit(5)", "main.js": "console.log('main ran')"},
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error == "step './a' failed: pre script exited with code 5"
    assert "main ran" not in run.stdout()


async def test_an_action_without_its_main_script_fails_clearly(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(workspace / "a", "runs: {using: node20, main: dist/missing.js}")
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error == "step './a' failed: action ./a: runs.main 'dist/missing.js' not found"


@pytest.mark.parametrize(
    ("action_yml", "message"),
    [
        (None, "action ./a: no action.yml or action.yaml in '{dir}'"),
        (
            "runs: {using: node99, main: x.js}",
            "action ./a (action.yml): runs.using: 'node99' is "
            "not supported; use node12, node16, node20, node24, docker, composite",
        ),
        (
            "runs: {main: x.js}",
            "action ./a (action.yml): runs.using: missing; expected one of "
            "node12, node16, node20, node24, docker, composite",
        ),
        (
            "runs: {using: node20}",
            "action ./a (action.yml): runs.main: missing: the script a node20 action runs",
        ),
        (
            "runs: [",
            "action ./a (action.yml): line 2 column 1: expected the node content, but "
            "found '<stream end>'",
        ),
        (
            "runs: {using: composite}",
            "action ./a (action.yml): runs.steps: missing: a "
            "composite action needs a list of steps",
        ),
        (
            "runs: {using: composite, steps: [{run: x, uses: y}]}",
            "action ./a (action.yml): runs.steps[0]: a step needs exactly one of run and uses",
        ),
        (
            "runs: {using: composite, steps: [{run: x, timeout-minutes: 3}]}",
            "action ./a "
            "(action.yml): runs.steps[0]: unknown key 'timeout-minutes'; a composite step may have "
            "continue-on-error, env, id, if, name, run, shell, uses, with, working-directory",
        ),
        (
            "runs: {using: docker}",
            "action ./a (action.yml): runs.image: missing: a Dockerfile or docker://image",
        ),
        (
            "inputs: {x: {required: maybe}}\nruns: {using: node20, main: m.js}",
            "action ./a (action.yml): inputs.x.required: expected true or false, got 'maybe'",
        ),
    ],
)
async def test_bad_action_metadata_is_one_clear_line(
    registry: TestRegistry, workspace: Path, action_yml: str | None, message: str
) -> None:
    directory = workspace / "a"
    directory.mkdir()
    if action_yml is not None:
        (directory / "action.yml").write_text(action_yml + "\n")
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error == message.format(dir=directory)


async def test_a_missing_local_action_folder(registry: TestRegistry, workspace: Path) -> None:
    run = await run_step("./nowhere", registry=registry, workspace=workspace)
    assert run.error == f"action ./nowhere: '{workspace / 'nowhere'}' does not exist"


async def test_action_yaml_spelling_is_read_too(registry: TestRegistry, workspace: Path) -> None:
    directory = workspace / "a"
    directory.mkdir()
    (directory / "action.yaml").write_text("runs: {using: node20, main: m.js}\n")
    (directory / "m.js").write_text("console.log('::set-output name=x::y')\n")
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.outcome.outputs == {"x": "y"}


async def test_a_missing_major_is_provisioned_into_the_cache_at_first_use(
    registry: TestRegistry, workspace: Path, gha_settings: Path, node24: Path
) -> None:
    # node24 (the session fixture) has npm's own cache warm: this provisions from it again.
    dump_action(workspace / "dump", using="node24")
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs["version"].startswith("v24.")
    assert (gha_settings / "node" / "24" / "bin" / "node").is_file()
    assert any(line.startswith("wf provisioning node24 from the npm package") for line in run.lines)


async def test_node_that_does_not_answer_its_version(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_NODE20", "/bin/false")
    dump_action(workspace / "dump")
    run = await run_step("./dump", {"who": "x"}, registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("node '/bin/false' --version failed")


async def test_no_node_at_all(
    registry: TestRegistry, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATERFLOW_GHA_OFFLINE", "true")
    dump_action(workspace / "dump", using="node16")
    run = await run_step(
        "./dump", {"who": "x"}, registry=registry, workspace=workspace, env={"PATH": "/nowhere"}
    )
    assert run.error == (
        "this action needs node16, and there is none: no WATERFLOW_GHA_NODE16, nothing "
        "provisioned (WATERFLOW_GHA_OFFLINE is set), no node on PATH"
    )


def test_provisioning_a_major_npm_does_not_have(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as info:
        provision_node(tmp_path / "cache", 99, log=lambda line: None)
    assert info.value.message.startswith("cannot provision node99: npm pack node-linux-")
    assert not (tmp_path / "cache" / "node" / "99").exists()


async def test_a_bad_input_default_and_a_bad_pre_state(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        """
        inputs: {x: {default: "${{ github.( }}"}}
        runs: {using: node20, main: m.js}
        """,
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("action ./a: default of input 'x': ")
    write_action(
        workspace / "b",
        "runs: {using: node20, pre: pre.js, main: m.js}",
        {
            "pre.js": "require('fs').appendFileSync(process.env.GITHUB_STATE, 'no equals\\n')",
            "m.js": "console.log('main ran')",
        },
    )
    run = await run_step("./b", registry=registry, workspace=workspace)
    assert run.error == (
        "GITHUB_STATE line 1: 'no equals' is neither NAME=value nor NAME<<DELIMITER; write one "
        "of those forms"
    )
    assert "main ran" not in run.stdout()


async def test_a_bad_pre_if(registry: TestRegistry, workspace: Path) -> None:
    pre_post_action(workspace / "pp", "pre-if: runner.(")
    run = await run_step("./pp", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("action ./pp: pre-if: ")
