"""Composite actions: run and uses steps, the inputs and steps contexts, outputs by value,
nested composite and JavaScript actions, if, continue-on-error, env, working-directory."""

from __future__ import annotations

from pathlib import Path

from gha_testing import run_step, write_action

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


async def test_a_nested_action_with_a_post_stage_says_it_is_not_run(
    registry: TestRegistry, workspace: Path
) -> None:
    write_action(
        workspace / "js",
        "runs: {using: node20, main: m.js, post: p.js}",
        {"m.js": "console.log('main')", "p.js": "console.log('post')"},
    )
    write_action(workspace / "c", "runs: {using: composite, steps: [{uses: ./js}]}")
    run = await run_step("./c", registry=registry, workspace=workspace)
    assert run.ok, run.error
    assert run.outcome.post_condition is None
    assert any("post stage of ./js (used by ./c) does not run" in line for line in run.lines)


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
