"""validate_workflow: steps against node metadata, with and without a source file."""

from __future__ import annotations

import json
import textwrap

import attrs
import cattrs
import pytest

from waterflow import NodeMetadata, Parameter
from waterflow.dsl import (
    Pos,
    WorkflowError,
    WorkflowSpec,
    configure_converter,
    parse_workflow,
    validate_workflow,
)


def spec_of(steps: str) -> WorkflowSpec:
    body = textwrap.indent(textwrap.dedent(steps).strip("\n"), "      ")
    return parse_workflow(f"jobs:\n  build:\n    runs-on: linux\n    steps:\n{body}\n", "v.yaml")


def messages(spec: WorkflowSpec, nodes: dict[str, NodeMetadata] | None) -> list[str]:
    return [f"{p.line}:{p.col}: {p.message}" for p in validate_workflow(spec, nodes)]


def test_a_valid_workflow_has_no_problems(nodes: dict[str, NodeMetadata]) -> None:
    spec = spec_of(
        """
        - id: build
          uses: docker/build
          with: {tag: app, push: true, platform: linux/arm64, build_args: {A: "1"}}
        - run: echo ${{ steps.build.outputs.image }}
        """
    )
    assert validate_workflow(spec, nodes) == []
    assert validate_workflow(spec, None) == []


def test_node_problems_point_at_keys_and_values(nodes: dict[str, NodeMetadata]) -> None:
    spec = spec_of(
        """
        - uses: docker/biuld
        - uses: docker/build
          with:
            tga: app
            push: 3
        - uses: ./local-action
        - uses: docker://alpine:3
        - uses: owner/repo/path@v1
        """
    )
    assert messages(spec, nodes) == [
        "5:15: step 1: unknown node 'docker/biuld' (did you mean 'docker/build'?)",
        "7:9: step 2: node 'docker/build' needs parameter 'tag' under with:",
        "8:11: step 2: node 'docker/build' has no parameter 'tga' (did you mean 'tag'?); "
        "it accepts: context, tag, push, platform, build_args",
        "9:17: step 2: parameter 'push' of 'docker/build': expected a boolean (true or false), "
        "got 3",
        "10:15: step 3: GitHub Action './local-action' needs the waterflow-nodes-gha package, "
        "which is not installed",
        "11:15: step 4: GitHub Action 'docker://alpine:3' needs the waterflow-nodes-gha package, "
        "which is not installed",
        "12:15: step 5: GitHub Action 'owner/repo/path@v1' needs the waterflow-nodes-gha "
        "package, which is not installed",
    ]


def test_actions_are_fine_with_the_gha_package(nodes_with_gha: dict[str, NodeMetadata]) -> None:
    spec = spec_of(
        """
        - uses: actions/checkout@v4
          with: {anything: goes}
        - uses: ./.github/actions/setup
        """
    )
    assert validate_workflow(spec, nodes_with_gha) == []


def test_expressions_are_checked_at_run_time(nodes: dict[str, NodeMetadata]) -> None:
    spec = spec_of(
        """
        - uses: docker/build
          with:
            tag: app
            push: "${{ github.event_name == 'push' }}"
            platform: "${{ github.job }}"
        """
    )
    assert validate_workflow(spec, nodes) == []


def test_additional_parameters_and_defaults() -> None:
    nodes = {
        "http/get": NodeMetadata(
            "http/get",
            "1",
            parameters=[Parameter("url", required=True, default="http://x")],
            additional_parameters=True,
        )
    }
    spec = spec_of("- uses: http/get\n  with: {header-x: 1, retries: 3}")
    assert validate_workflow(spec, nodes) == []


def test_run_steps_need_the_shell_node() -> None:
    spec = spec_of("- run: make")
    assert messages(spec, {}) == [
        "5:9: step 1: 'shell/run', the node 'run:' steps use, is not installed "
        "(package waterflow-nodes-shell)"
    ]


def test_parse_with_nodes_reports_everything_at_once(nodes: dict[str, NodeMetadata]) -> None:
    text = "jobs:\n  a:\n    runs-on: q\n    timeout: 5\n    steps:\n      - uses: docker/bild\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, "w.yaml", nodes=nodes)
    assert [str(p) for p in caught.value.problems] == [
        "w.yaml:4:14: job 'a': 'timeout' needs a unit: write '5s' or '5m' or 'timeout-minutes: 5'",
        "w.yaml:6:15: step 1: unknown node 'docker/bild' (did you mean 'docker/build'?)",
    ]


def test_specs_without_a_source_point_at_the_step(nodes: dict[str, NodeMetadata]) -> None:
    spec = spec_of(
        """
        - id: first
          uses: docker/biuld
        - run: echo ${{ steps.first.outputs.x }}
        """
    )
    converter = configure_converter(cattrs.Converter())
    copy = converter.structure(json.loads(json.dumps(converter.unstructure(spec))), WorkflowSpec)
    assert copy == spec
    assert messages(copy, nodes) == [
        "5:9: step 'first': unknown node 'docker/biuld' (did you mean 'docker/build'?)",
    ]
    job = copy.jobs["build"]
    broken = attrs.evolve(
        job,
        needs=("ghost", "build"),
        steps=(
            *job.steps,
            attrs.evolve(
                job.steps[1],
                index=2,
                if_="${{ secrets.X }}",
                with_={"run": "echo ${{ steps.later.outputs.x }}"},
            ),
        ),
    )
    hand_made = attrs.evolve(copy, jobs={"build": broken})
    assert messages(hand_made, None) == [
        "2:3: job 'build' needs unknown job 'ghost'",
        "2:3: job 'build' needs itself",
        "7:9: step 3: 'if' cannot read secrets (conditions are decided where secrets never "
        "are); check the secret in a step that sets an output, and test that output",
        "7:9: step 3: 'steps.later' is not a step before this one",
    ]
    assert validate_workflow(hand_made, None)[0].file == "v.yaml"
    assert broken.pos == Pos(2, 3)


def test_cycles_are_reported_once_with_their_path() -> None:
    text = "jobs:\n" + "".join(
        f"  {j}:\n    runs-on: q\n    needs: [{n}]\n    steps: [{{run: x}}]\n"
        for j, n in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "e"), ("e", "d"), ("f", "a")]
    )
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, "w.yaml")
    assert [p.message for p in caught.value.problems] == [
        "jobs a -> b -> c -> a form a cycle",
        "jobs d -> e -> d form a cycle",
    ]


def test_an_action_without_a_version_gets_a_hint(nodes: dict[str, NodeMetadata]) -> None:
    assert messages(spec_of("- uses: actions/checkout"), nodes) == [
        "5:15: step 1: unknown node 'actions/checkout' (a GitHub Action needs a version: "
        "'actions/checkout@<ref>')"
    ]
