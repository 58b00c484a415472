"""Composite actions: run and uses steps, the inputs and steps contexts, outputs by value,
nested composite and JavaScript actions, if, continue-on-error, env, working-directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from gha_testing import StepRun, run_step, write_action

from waterflow.testing import TestRegistry

OUTER = """
name: outer
inputs:
  name: {required: true}
  greeting-word: {default: Hello}
outputs:
  greeting: {value: "${{ steps.greet.outputs.greeting }}"}
  doubled: {value: "${{ steps.inner.outputs.doubled }}"}
  from-js: {value: "${{ steps.js.outputs.seen }}"}
  flaky: {value: "${{ steps.flaky.outcome }}/${{ steps.flaky.conclusion }}"}
  where: {value: "${{ steps.where.outputs.dir }}"}
  python: {value: "${{ steps.py.outputs.answer }}"}
runs:
  using: composite
  steps:
    - id: greet
      shell: bash
      run: echo "greeting=${{ inputs.greeting-word }} ${{ inputs.name }}" >> "$GITHUB_OUTPUT"
    - shell: bash
      run: |
        test -f "$GITHUB_ACTION_PATH/action.yml"
        echo "FROM_OUTER=set by outer" >> "$GITHUB_ENV"
        echo "INPUT_NAME is '${INPUT_NAME:-}'"
    - id: inner
      uses: ./actions/inner
      with:
        value: ${{ steps.greet.outputs.greeting }}
    - id: js
      uses: ./actions/js
      with:
        who: ${{ inputs.name }}
    - id: flaky
      shell: bash
      run: exit 4
      continue-on-error: true
    - if: failure()
      shell: bash
      run: echo "never printed"
    - id: where
      working-directory: sub
      shell: sh
      env:
        STEP_VAR: ${{ inputs.name }}
      run: echo "dir=$(pwd)|$STEP_VAR|$FROM_OUTER" >> "$GITHUB_OUTPUT"
    - id: py
      shell: python
      run: |
        import os
        with open(os.environ["GITHUB_OUTPUT"], "a") as f:
            f.write("answer=42\\n")
"""

INNER = """
inputs:
  value: {required: true}
outputs:
  doubled: {value: "${{ steps.d.outputs.doubled }}"}
runs:
  using: composite
  steps:
    - id: d
      shell: bash
      run: |
        test "$GITHUB_ACTION_PATH" = "$GITHUB_WORKSPACE/actions/inner"
        echo "doubled=${{ inputs.value }}+${{ inputs.value }}" >> "$GITHUB_OUTPUT"
        echo "summary from inner" >> "$GITHUB_STEP_SUMMARY"
"""

JS = """
inputs: {who: {}}
runs: {using: node20, main: main.js}
"""

JS_MAIN = """
const fs = require('fs');
const env = process.env;
fs.appendFileSync(env.GITHUB_OUTPUT, `seen=${env.INPUT_WHO}:${env.FROM_OUTER}\\n`);
fs.appendFileSync(process.env.GITHUB_PATH, '/opt/from-js/bin\\n');
"""


def composite_tree(workspace: Path) -> None:
    write_action(workspace / "actions" / "outer", OUTER)
    write_action(workspace / "actions" / "inner", INNER)
    write_action(workspace / "actions" / "js", JS, {"main.js": JS_MAIN})
    (workspace / "sub").mkdir()


async def test_composite_with_nested_actions_and_outputs(
    registry: TestRegistry, workspace: Path
) -> None:
    composite_tree(workspace)
    run = await run_step("./actions/outer", {"name": "Ada"}, registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.outputs == {
        "greeting": "Hello Ada",
        "doubled": "Hello Ada+Hello Ada",
        "from-js": "Ada:set by outer",
        "flaky": "failure/success",
        "where": f"{workspace / 'sub'}|Ada|set by outer",
        "python": "42",
    }
    # Inputs reach run steps only through ${{ inputs.* }}, as on GitHub.
    assert "INPUT_NAME is ''" in run.stdout()
    assert "never printed" not in run.log
    # What composite steps write to GITHUB_ENV and GITHUB_PATH reaches the job's next steps.
    assert run.outcome.env == {"FROM_OUTER": "set by outer"}
    assert run.outcome.path == ["/opt/from-js/bin"]
    assert run.outcome.summary == "summary from inner\n"
    assert "wf ./actions/outer step 'flaky' failed: process exited with code 4" in run.lines


FAILING = """
outputs:
  before: {value: "${{ steps.first.outputs.x }}"}
  status: {value: "${{ steps.broken.outcome }}"}
runs:
  using: composite
  steps:
    - id: first
      shell: bash
      run: echo "x=1" >> "$GITHUB_OUTPUT"
    - id: broken
      shell: bash
      run: echo "about to fail"; exit 2
    - shell: bash
      run: echo "skipped after the failure"
    - if: failure()
      shell: bash
      run: echo "failure() step runs"
    - if: always()
      shell: bash
      run: echo "always() step runs"
"""


async def test_a_failing_composite_step_fails_the_action(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(workspace / "a", FAILING)
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error == ("step './a' failed: ./a step 'broken' failed: process exited with code 2")
    assert run.stdout() == ["about to fail", "failure() step runs", "always() step runs"]
    assert run.outcome.outputs == {"before": "1", "status": "failure"}


async def test_bad_expressions_and_folders_in_composite_steps(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        """
        runs:
          using: composite
          steps:
            - run: echo ${{ inputs.x ==}}
              shell: bash
        """,
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("step './a' failed: ./a step #1 failed: ")
    assert "expected" in run.error

    write_action(
        workspace / "b",
        """
        runs:
          using: composite
          steps:
            - {run: pwd, shell: bash, working-directory: missing}
        """,
    )
    run = await run_step("./b", registry=registry, workspace=workspace)
    assert run.error == (
        "step './b' failed: ./b step #1 failed: working-directory 'missing' does not exist"
    )

    write_action(
        workspace / "c",
        """
        runs:
          using: composite
          steps:
            - {run: pwd, shell: "fish"}
        """,
    )
    run = await run_step("./c", registry=registry, workspace=workspace)
    assert run.error == (
        "step './c' failed: ./c step #1 failed: shell 'fish' is not supported: use bash, sh, "
        "python, pwsh, the name of a program on the step's PATH, or a command template with "
        "{0} for the script file, e.g. 'perl {0}'"
    )


async def test_a_custom_shell_and_the_default_shell(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        """
        runs:
          using: composite
          steps:
            - run: 'echo "default shell, flags $-"'
            - run: print("via {0}")
              shell: python3 {0}
        """,
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.ok, run.error
    [default, custom] = run.stdout()
    assert default.startswith("default shell, flags ")
    assert "e" in default.split()[-1]
    assert custom == "via {0}"


async def test_composite_actions_nest_at_most_nine_deep(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "loop",
        """
        runs:
          using: composite
          steps:
            - uses: ./loop
        """,
    )
    run = await run_step("./loop", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.endswith("action ./loop: composite actions nest more than 9 deep")


def post_action(directory: Path, tag: str, extra: str = "") -> None:
    """A JavaScript action whose main stage saves state and whose post stage prints it."""
    write_action(
        directory,
        f"""
        inputs:
          token: {{required: true}}
        runs:
          using: node20
          main: m.js
          post: p.js
          {extra}
        """,
        {
            "m.js": f"""
                require("fs").appendFileSync(process.env.GITHUB_STATE, "seen={tag}\\n");
                console.log("main {tag}");
            """,
            "p.js": f"""
                const env = process.env;
                console.log(`post {tag} state=${{env.STATE_seen}} token=${{env.INPUT_TOKEN}}`);
                if (env.INPUT_TOKEN === "fail-{tag}") process.exit(3);
            """,
        },
    )


NESTING = """
inputs:
  token: {required: true}
runs:
  using: composite
  steps:
    - uses: ./a
      with: {token: "${{ inputs.token }}"}
    - uses: ./inner
      with: {token: "${{ inputs.token }}"}
    - uses: ./on-failure
      with: {token: "${{ inputs.token }}"}
"""


@pytest.fixture
def nesting(workspace: Path) -> Path:
    """./c uses ./a, then ./inner (a composite action using ./b), then ./on-failure: three
    JavaScript actions with post stages, the last one's post only after a failure."""
    post_action(workspace / "a", "a")
    post_action(workspace / "b", "b")
    post_action(workspace / "on-failure", "f", "post-if: failure()")
    write_action(
        workspace / "inner",
        """
        inputs: {token: {required: true}}
        runs:
          using: composite
          steps: [{uses: ./b, with: {token: "${{ inputs.token }}"}}]
        """,
    )
    return write_action(workspace / "c", NESTING)


async def run_c(
    token: str, *, registry: TestRegistry, workspace: Path, main: StepRun | None = None, **kw: Any
) -> StepRun:
    """./c's main step, or with `main` its post step (the state `main` left)."""
    if main is not None:
        kw.update(phase="post", state=main.outcome.state)
    return await run_step("./c", {"token": token}, registry=registry, workspace=workspace, **kw)


async def test_the_post_stages_of_actions_a_composite_action_used_run_at_its_post_step(
    registry: TestRegistry, workspace: Path, nesting: Path
) -> None:
    secret = "tok-3f9a"
    main = await run_c(secret, registry=registry, workspace=workspace, secrets={"T": secret})
    assert main.ok, main.error
    assert main.stdout() == ["main a", "main b", "main f"]
    assert main.outcome.post_condition == "always()"
    # What travels through Temporal names a file on the agent, and holds no input.
    assert secret not in str(main.outcome.state)

    post = await run_c(
        secret, registry=registry, workspace=workspace, main=main, secrets={"T": secret}
    )
    assert post.ok, post.error
    # The last used first, each with its own state and its inputs whole (masked in the log).
    assert post.stdout() == ["post b state=b token=***", "post a state=a token=***"]
    assert any("post stage of ./on-failure (used by ./c) skipped" in x for x in post.lines)


async def test_a_nested_post_stage_sees_the_job_status_and_one_failing_fails_the_step(
    registry: TestRegistry, workspace: Path, nesting: Path
) -> None:
    main = await run_c("fail-b", registry=registry, workspace=workspace)
    assert main.ok, main.error
    post = await run_c(
        "fail-b", registry=registry, workspace=workspace, main=main, job_status="failure"
    )
    # ./b's post fails; the others still run, ./on-failure's because the job failed.
    assert post.stdout() == [
        "post f state=f token=fail-b",
        "post b state=b token=fail-b",
        "post a state=a token=fail-b",
    ]
    assert post.error is not None
    assert post.error.endswith(
        "post stage of ./b (used by ./inner): post script exited with code 3"
    )


async def test_a_nested_post_stage_that_cannot_start_fails_alone(
    registry: TestRegistry, workspace: Path, nesting: Path
) -> None:
    # ./on-failure's post-if breaks and ./b is gone by the end of the job: each is one line
    # in the post step's error, and ./a's post stage still runs.
    post_action(workspace / "on-failure", "f", "post-if: failure() && (")
    main = await run_c("t", registry=registry, workspace=workspace)
    assert main.ok, main.error
    shutil.rmtree(workspace / "b")
    post = await run_c("t", registry=registry, workspace=workspace, main=main)
    assert post.stdout() == ["post a state=a token=t"]
    assert post.error is not None
    assert post.error.startswith(
        "step './c' failed: post stage of ./on-failure (used by ./c): post-if: unexpected end "
        "of expression"
    )
    assert post.error.endswith(
        f"; post stage of ./b (used by ./inner): action ./b: '{workspace / 'b'}' does not exist"
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "is not on this agent (the main step ran on another)"),
        ("{not json", "cannot be read: Expecting property name enclosed in double quotes"),
    ],
    ids=["elsewhere", "damaged"],
)
async def test_nested_post_stages_whose_record_cannot_be_read_are_one_line(
    registry: TestRegistry, workspace: Path, nesting: Path, content: str | None, why: str
) -> None:
    record = workspace.parent / "record.json"
    if content is not None:
        record.write_text(content)
    post = await run_c(
        "t",
        registry=registry,
        workspace=workspace,
        phase="post",
        state={"waterflow_gha_nested": str(record)},
    )
    assert post.ok, post.error
    assert post.stdout() == []
    assert any(
        f"the post stages of the actions ./c used do not run: their record {record} {why}" in line
        for line in post.lines
    )


async def test_a_nested_action_whose_state_is_unreadable_fails_the_step(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "js",
        "runs: {using: node20, main: m.js, post: p.js}",
        {
            "m.js": 'require("fs").appendFileSync(process.env.GITHUB_STATE, "x<<END\\nno end\\n")',
            "p.js": "console.log('post')",
        },
    )
    write_action(workspace / "c", "runs: {using: composite, steps: [{uses: ./js}]}")
    run = await run_step("./c", registry=registry, workspace=workspace)
    assert run.error == (
        "step './c' failed: ./c step #1 failed: GITHUB_STATE line 1: heredoc 'END' for 'x' is "
        "never closed; end it with a line 'END'"
    )
    assert run.outcome.post_condition is None  # nothing to run the post stage with


async def test_bad_if_output_and_env_file_in_composite_steps(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "a",
        """
        outputs:
          broken: {value: "${{ steps.( }}"}
        runs:
          using: composite
          steps:
            - if: ${{ inputs.( }}
              run: echo never
            - if: always()
              shell: bash
              run: echo "no equals sign" >> "$GITHUB_OUTPUT"
            - if: always()
              shell: bash
              continue-on-error: ${{ inputs.( }}
              run: exit 1
        """,
    )
    run = await run_step("./a", registry=registry, workspace=workspace)
    assert run.error is not None
    assert run.error.startswith("step './a' failed: ./a step #1: if: ")  # the first one
    lines = "\n".join(run.lines)
    assert "./a step #2 failed: GITHUB_OUTPUT line 1: 'no equals sign' is neither" in lines
    assert "wf continue-on-error: " in lines
    assert "./a step #3 failed: process exited with code 1" in lines
