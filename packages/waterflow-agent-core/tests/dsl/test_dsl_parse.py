"""parse_workflow / load_workflow: what a file becomes, and where its problems are."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from waterflow.dsl import (
    Pos,
    Problem,
    RetrySpec,
    WorkflowError,
    WorkflowSpec,
    load_workflow,
    parse_workflow,
)

HERE = Path(__file__).parent


def parse(text: str, file: str = "w.yaml") -> WorkflowSpec:
    return parse_workflow(textwrap.dedent(text), file)


def problems(text: str, file: str = "w.yaml") -> list[str]:
    """`line:col: message` of every problem in `text`."""
    with pytest.raises(WorkflowError) as caught:
        parse(text, file)
    return [f"{p.line}:{p.col}: {p.message}" for p in caught.value.problems]


def job_with_step(step: str, **job: str) -> str:
    """A one-job workflow around one step, given as YAML at step indentation."""
    extra = "".join(f"    {k}: {v}\n" for k, v in job.items())
    body = textwrap.indent(textwrap.dedent(step).strip("\n"), "        ")
    return f"jobs:\n  build:\n    runs-on: linux\n{extra}    steps:\n      - {body.lstrip()}\n"


# -- the model -------------------------------------------------------------------------


def test_the_dsl_md_example_becomes_the_model() -> None:
    spec = load_workflow(HERE / "good" / "deploy.yaml")
    assert spec.name == "deploy"
    assert spec.file == str(HERE / "good" / "deploy.yaml")
    assert spec.env == {"REGISTRY": "registry.internal:5000"}
    assert spec.inputs["tag"].required is True
    assert spec.inputs["tag"].description == "image tag"
    assert list(spec.jobs) == ["build", "notify"]
    build, notify = spec.jobs["build"], spec.jobs["notify"]
    assert build.runs_on == "linux-amd64"
    assert build.timeout == 30 * 60
    assert build.outputs == {"image": "${{ steps.build.outputs.image }}"}
    assert build.pos == Pos(9, 3)
    checkout, docker, smoke = build.steps
    assert (checkout.key, checkout.id, checkout.uses) == ("_1", None, "actions/checkout@v4")
    assert checkout.display_name == "actions/checkout@v4"
    assert checkout.pos == Pos(15, 9)
    assert (docker.key, docker.index, docker.uses) == ("build", 1, "docker/build")
    assert docker.with_ == {
        "context": ".",
        "tag": "${{ env.REGISTRY }}/app:${{ inputs.tag }}",
    }
    assert docker.timeout == 600
    assert docker.heartbeat_timeout == 60
    assert docker.retry == RetrySpec(3, 1.0, 30.0, 2.0)
    assert smoke.uses == "shell/run"
    assert smoke.with_ == {"run": "./smoke-test.sh", "shell": "bash", "working-directory": "tests"}
    assert smoke.display_name == "Run ./smoke-test.sh"
    assert smoke.key == "_3"
    assert notify.needs == ("build",)
    assert notify.if_ == "${{ always() }}"
    assert notify.continue_on_error is False
    assert notify.steps[0].retry is None


def test_defaults_and_hashes() -> None:
    text = "jobs:\n  a:\n    runs-on: q\n    steps:\n      - run: make\n"
    spec = parse_workflow(text, "dir/release.yml")
    assert spec.name == "release"
    assert spec.source_sha256 == hashlib.sha256(text.encode()).hexdigest()
    job = spec.jobs["a"]
    assert (job.name, job.if_, job.timeout, job.needs, job.env, job.outputs) == (
        None,
        None,
        None,
        (),
        {},
        {},
    )
    step = job.steps[0]
    assert (step.id, step.name, step.if_, step.timeout, step.retry) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert step.with_ == {"run": "make"}


def test_on_stays_a_key_and_yaml_1_1_words_stay_strings() -> None:
    spec = parse(
        """
        on: push
        jobs:
          a:
            runs-on: q
            steps:
              - uses: x/y
                with: {a: yes, b: on, c: off, d: 0o17, e: 0x1f, f: 2024-01-02, g: ~, h: .inf}
        """
    )
    assert spec.jobs["a"].steps[0].with_ == {
        "a": "yes",
        "b": "on",
        "c": "off",
        "d": 15,
        "e": 31,
        "f": "2024-01-02",
        "g": None,
        "h": float("inf"),
    }


def test_with_values_keep_their_yaml_types() -> None:
    spec = parse(
        job_with_step(
            """
            uses: x/y
            with:
              s: text
              i: 3
              f: 2.5
              b: true
              l: [1, two, {three: 3}]
              m: {k: [v]}
              q: "3"
            """
        )
    )
    with_ = spec.jobs["build"].steps[0].with_
    assert with_ == {
        "s": "text",
        "i": 3,
        "f": 2.5,
        "b": True,
        "l": [1, "two", {"three": 3}],
        "m": {"k": ["v"]},
        "q": "3",
    }
    assert [type(with_[k]) for k in ("s", "i", "f", "b", "l", "m")] == [
        str,
        int,
        float,
        bool,
        list,
        dict,
    ]


def test_env_values_become_strings_as_on_github() -> None:
    spec = parse(
        """
        env: {A: true, B: 3, C: 1.5, D: 2.0, E: ~, F: text, G: False}
        jobs:
          a:
            runs-on: q
            env: {H: 10}
            steps:
              - run: make
                env: {I: false}
        """
    )
    assert spec.env == {
        "A": "true",
        "B": "3",
        "C": "1.5",
        "D": "2",
        "E": "",
        "F": "text",
        "G": "false",
    }
    assert spec.jobs["a"].env == {"H": "10"}
    assert spec.jobs["a"].steps[0].env == {"I": "false"}


def test_run_steps_take_shell_and_directory_from_defaults() -> None:
    spec = parse(
        """
        defaults: {run: {shell: bash, working-directory: top}}
        jobs:
          a:
            runs-on: q
            defaults: {run: {working-directory: job}}
            steps:
              - run: one
              - run: two
                shell: sh
                working-directory: step
          b:
            runs-on: q
            steps:
              - run: three
        """
    )
    one, two = spec.jobs["a"].steps
    assert one.with_ == {"run": "one", "shell": "bash", "working-directory": "job"}
    assert two.with_ == {"run": "two", "shell": "sh", "working-directory": "step"}
    assert spec.jobs["b"].steps[0].with_ == {
        "run": "three",
        "shell": "bash",
        "working-directory": "top",
    }


@pytest.mark.parametrize(
    ("step", "display"),
    [
        ("run: |\n\n  make all\n  make test", "Run make all"),
        ("run: make\nname: Build it", "Build it"),
        ("uses: docker/build", "docker/build"),
        ("uses: docker/build\nname: ''", "docker/build"),
    ],
)
def test_display_name(step: str, display: str) -> None:
    assert parse(job_with_step(step)).jobs["build"].steps[0].display_name == display


def test_timeouts_and_conditions() -> None:
    spec = parse(
        """
        jobs:
          a:
            runs-on: q
            timeout-minutes: 1.5
            continue-on-error: true
            if: github.ref == 'main'
            steps:
              - run: make
                timeout-minutes: 2
                if: false
                continue-on-error: ${{ inputs.flaky }}
        on: {workflow_dispatch: {inputs: {flaky: {type: boolean}}}}
        """
    )
    job = spec.jobs["a"]
    assert (job.timeout, job.continue_on_error, job.if_) == (90.0, True, "github.ref == 'main'")
    step = job.steps[0]
    assert (step.timeout, step.if_, step.continue_on_error) == (
        120.0,
        "false",
        "${{ inputs.flaky }}",
    )


def test_needs_as_string_or_list_and_merge_keys() -> None:
    spec = parse(
        """
        jobs:
          a: &base
            runs-on: q
            steps: [{run: make}]
          b:
            <<: *base
            needs: a
          c:
            <<: *base
            runs-on: other
            needs: [a, b]
        """
    )
    assert spec.jobs["b"].needs == ("a",)
    assert spec.jobs["b"].runs_on == "q"
    assert spec.jobs["c"].needs == ("a", "b")
    assert spec.jobs["c"].runs_on == "other"


def test_inputs_are_structured() -> None:
    spec = parse_workflow((HERE / "good" / "inputs.yaml").read_text(), "inputs.yaml")
    inputs = spec.inputs
    assert list(inputs) == ["tag", "push", "replicas", "level", "target"]
    assert inputs["push"].type == "boolean"
    assert inputs["push"].default is True
    assert inputs["replicas"].default == 2
    assert inputs["level"].options == ("debug", "info", "warning")
    assert inputs["level"].default == "info"
    assert inputs["target"].type == "environment"
    retry = spec.jobs["build"].steps[0].retry
    assert retry == RetrySpec(4, 0.5, 60.0, 1.5)
    assert spec.jobs["build"].steps[0].timeout == 5400


def test_queue_names_up_to_255_characters() -> None:
    ok = "a" + "-" * 253 + "b"
    assert parse(job_with_step("run: x").replace("linux", ok)).jobs["build"].runs_on == ok
    too_long = "a" * 256
    [problem] = problems(job_with_step("run: x").replace("linux", too_long))
    assert problem.startswith("3:14: job 'build': invalid task queue name 'aaaa")
    for bad in ("-linux", "linux-", "linux.amd64", "linux amd64"):
        [problem] = problems(job_with_step("run: x").replace("linux", repr(bad)))
        assert "invalid task queue name" in problem


# -- problems --------------------------------------------------------------------------


def test_all_problems_are_collected_in_file_order() -> None:
    got = problems(
        """
        name: many
        jobs:
          build:
            runs_on: linux
            steps:
              - id: a
                uses: docker/build
                timeout: 10
                retry: {max_attempts: 0}
              - id: a
                run: echo ${{ steps.a.outputs.x ==  }}
          deploy:
            runs-on: linux
            needs: [biuld]
            steps: []
        """
    )
    assert got == [
        "5:5: unknown key 'runs_on' in job 'build' (did you mean 'runs-on'?)",
        "9:18: step 'a': 'timeout' needs a unit: write '10s' or '10m' or 'timeout-minutes: 10'",
        "10:31: step 'a': 'retry.max_attempts' must be a whole number of at least 1, "
        "not the number 0",
        "11:13: step 'a': step id used twice in job 'build' (first on line 7)",
        "12:45: step 'a': invalid expression: unexpected end of expression; expected a value",
        "15:13: job 'deploy' needs unknown job 'biuld' (did you mean 'build'?)",
        "16:12: job 'deploy': 'steps' is empty: a job needs at least one step",
    ]


def test_problem_and_error_text() -> None:
    problem = Problem("w.yaml", 3, 7, "bad\nthing")
    assert str(problem) == "w.yaml:3:7: bad thing"
    assert str(Problem("w.yaml", 0, 0, "cannot read: gone")) == "w.yaml: cannot read: gone"
    error = WorkflowError([problem, Problem("w.yaml", 4, 1, "worse")])
    assert str(error) == "w.yaml:3:7: bad thing\nw.yaml:4:1: worse"
    assert error.problems[1].message == "worse"


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("jobz: {}", "1:1: unknown key 'jobz' at the top level (did you mean 'jobs'?)"),
        (
            "jobs: {a: {runs-on: q, step: []}}",
            "1:24: unknown key 'step' in job 'a' (did you mean 'steps'?)",
        ),
        (
            "jobs: {a: {runs-on: q, steps: [{run: x, tiemout: 1m}]}}",
            "1:41: unknown key 'tiemout' in step 1 (did you mean 'timeout'?)",
        ),
        (
            "jobs: {a: {runs-on: q, steps: [{run: x, heartbeat-timeout: 1m}]}}",
            "1:41: unknown key 'heartbeat-timeout' in step 1 (did you mean 'heartbeat_timeout'?)",
        ),
        (
            "jobs: {a: {runs-on: q, steps: [{run: x, retry: {backoff: 2}}]}}",
            "1:49: unknown key 'backoff' in 'retry' of step 1",
        ),
        (
            "on: {workflow_dispatch: {inputs: {a: {requried: true}}}}\n"
            "jobs: {a: {runs-on: q, steps: [{run: x}]}}",
            "1:39: unknown key 'requried' in input 'a' (did you mean 'required'?)",
        ),
        (
            "defaults: {run: {shel: bash}}\njobs: {a: {runs-on: q, steps: [{run: x}]}}",
            "1:18: unknown key 'shel' in 'defaults.run' (did you mean 'shell'?)",
        ),
    ],
)
def test_unknown_keys_at_every_level(yaml: str, message: str) -> None:
    assert message in problems(yaml)


def test_expression_columns_in_every_scalar_style() -> None:
    got = problems(
        """
        jobs:
          a:
            runs-on: q
            env:
              PLAIN: x ${{ nope.a }} and ${{ nope.a }}
              SINGLE: 'it''s ${{ nope.b }}'
              DOUBLE: "\\t${{ nope.c }}"
              FOLDED: >
                first line
                then ${{ nope.d }}
            steps:
              - run: |
                  echo one
                    echo ${{ nope.e }}
        """
    )
    assert got == [
        "6:20: job 'a': unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
        "6:38: job 'a': unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
        "7:26: job 'a': unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
        "8:22: job 'a': unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
        "11:18: job 'a': unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
        "15:22: step 1: unknown context 'nope' in expression; contexts are env, inputs, "
        "secrets, steps, needs, job, runner, matrix, strategy, github, vars",
    ]


def test_crlf_line_endings_keep_positions() -> None:
    text = "jobs:\r\n  a:\r\n    runs-on: q_q\r\n    steps: [{run: x}]\r\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, "w.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.col) == (3, 14)


def test_every_duplicate_key_is_reported() -> None:
    got = problems(
        """
        jobs:
          a:
            runs-on: q
            runs-on: r
            steps: [{run: x}]
            runs-on: s
        """
    )
    assert got == [
        "5:5: duplicate key 'runs-on' (first given on line 4)",
        "7:5: duplicate key 'runs-on' (first given on line 4)",
    ]


def test_an_empty_value_is_reported_at_its_key() -> None:
    assert problems(job_with_step("run: x\nif:")) == [
        "6:9: step 1: 'if' must be an expression, not nothing (null)"
    ]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("if: github.ref == 'main'", None),
        ("if: ${{ needs.build.result == 'success' }}", None),
        ("if: ${{ secrets.TOKEN }}", "'if' cannot read secrets"),
        ("if: steps.x.outcome", "'steps.x': no step has run at this point"),
        ("env: {A: '${{ steps.x.outputs.y }}'}", "'steps.x': no step has run at this point"),
        ("env: {A: '${{ job.status }} ${{ runner.os }} ${{ vars.X }}'}", None),
        ("env: {A: '${{ github.sha }} ${{ matrix.x }} ${{ strategy.job-index }}'}", None),
        ("env: {A: '${{ inputs.tag }}'}", "'inputs.tag' is not declared"),
        ("env: {A: \"${{ needs['build'].outputs.x }}\"}", None),
        ("env: {A: \"${{ needs['buidl'].outputs.x }}\"}", "'needs.buidl' is not a job this"),
    ],
)
def test_contexts_of_job_fields(where: str, message: str | None) -> None:
    text = (
        "jobs:\n  build:\n    runs-on: q\n    steps: [{run: x}]\n"
        f"  deploy:\n    runs-on: q\n    needs: build\n    {where}\n    steps: [{{run: x}}]\n"
    )
    if message is None:
        parse_workflow(text)
    else:
        [problem] = problems(text)
        assert message in problem


def test_steps_context_sees_earlier_steps_only() -> None:
    spec = parse(
        """
        jobs:
          a:
            runs-on: q
            outputs: {last: "${{ steps.two.outputs.x }}"}
            steps:
              - id: one
                run: echo
              - id: two
                run: echo ${{ steps.one.outputs.x }} ${{ steps.ONE.outcome }}
        """
    )
    assert spec.jobs["a"].outputs == {"last": "${{ steps.two.outputs.x }}"}
    assert problems(
        """
        jobs:
          a:
            runs-on: q
            steps:
              - id: one
                run: echo ${{ steps.one.outputs.x }}
        """
    ) == ["7:23: step 'one': 'steps.one' is not a step before this one"]


def test_nesting_deeper_than_64_levels_is_refused_where_it_goes_too_deep() -> None:
    # Flow collections: the 65th `[` is column 6 + 64 = 70.
    assert problems("jobs: " + "[" * 70 + "]" * 70) == [
        "1:70: invalid YAML: nested more than 64 levels deep"
    ]
    # Block collections: each `- ` opens a sequence; `jobs` is level 1.
    assert problems("jobs:\n" + "- " * 70 + "x\n") == [
        "2:127: invalid YAML: nested more than 64 levels deep"
    ]
    # 64 levels is still YAML: the workflow's own checks speak, not the depth limit.
    deep = problems("jobs: " + "[" * 63 + "]" * 63)
    assert deep and not any("levels deep" in p for p in deep)


# -- reading files ---------------------------------------------------------------------


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(WorkflowError) as caught:
        load_workflow(missing)
    assert str(caught.value) == f"{missing}: cannot read: No such file or directory"
    with pytest.raises(WorkflowError) as caught:
        load_workflow(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: cannot read: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"jobs:\n  a:\n    name: caf\xe9\n")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(str(path))
    assert str(caught.value) == f"{path}:3:14: cannot read: not UTF-8 text (byte 0xe9)"


def test_a_bom_is_not_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfjobs: {a: {runs-on: q, steps: [{run: x}]}}\n")
    assert list(load_workflow(path).jobs) == ["a"]


def test_runs_on_label_list_names_the_queue_by_its_labels() -> None:
    spec = parse_workflow(
        "jobs:\n  b:\n    runs-on: [self-hosted, linux, x64]\n    steps:\n      - run: make\n",
        "labels.yaml",
    )
    assert spec.jobs["b"].runs_on == "self-hosted-linux-x64"
    with pytest.raises(WorkflowError) as info:
        parse_workflow("jobs:\n  b:\n    runs-on: [lin ux]\n    steps:\n      - run: x\n", "l.yaml")
    assert "make the task queue name 'lin ux', which is not valid" in str(info.value)
    with pytest.raises(WorkflowError, match="'runs-on' is an empty list"):
        parse_workflow("jobs:\n  b:\n    runs-on: []\n    steps:\n      - run: x\n", "l.yaml")
