"""strategy.matrix on a real Temporal server: combinations, include/exclude, fail-fast,
max-parallel, matrices computed by an earlier job, and runs-on chosen by the matrix."""

from __future__ import annotations

from pathlib import Path

import pytest

from waterflow.dsl import MatrixError, expand_matrix, instance_name
from waterflow.engine.types import CANCELLED, FAILURE, SUCCESS

pytestmark = pytest.mark.usefixtures("agent")


def test_expansion_follows_github_rules() -> None:
    combos = expand_matrix(
        {
            "os": ["linux", "mac"],
            "py": ["3.11", "3.12"],
            "exclude": [{"os": "mac", "py": "3.11"}],
            "include": [
                {"os": "linux", "experimental": True},  # merged where os is linux
                {"os": "linux", "py": "3.12", "extra": "x"},  # merged into that one
                {"os": "windows", "py": "3.13"},  # fits none: a new combination
            ],
        }
    )
    assert combos == [
        {"os": "linux", "py": "3.11", "experimental": True},
        {"os": "linux", "py": "3.12", "experimental": True, "extra": "x"},
        {"os": "mac", "py": "3.12"},
        {"os": "windows", "py": "3.13"},
    ]
    assert instance_name("test", combos[1]) == "test (linux, 3.12, true, x)"
    assert expand_matrix({"include": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    with pytest.raises(MatrixError, match="exclude removed them all"):
        expand_matrix({"a": [1], "exclude": [{"a": 1}]})
    with pytest.raises(MatrixError, match="at most 256"):
        expand_matrix({"a": list(range(20)), "b": list(range(20))})


async def test_matrix_runs_each_combination_and_needs_sees_the_whole(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  build:
    runs-on: ${{ matrix.queue }}
    strategy:
      matrix:
        queue: [QUEUE]
        os: [linux, bsd]
        py: ["3.11", "3.12"]
        exclude: [{os: bsd, py: "3.11"}]
    outputs:
      last: ${{ steps.s.outputs.combo }}
    steps:
      - id: s
        run: |
          echo "combo=${{ matrix.os }}-${{ matrix.py }}" >> $GITHUB_OUTPUT
          echo "index=${{ strategy.job-index }}/${{ strategy.job-total }}" >> $GITHUB_OUTPUT
  after:
    needs: build
    runs-on: QUEUE
    steps:
      - id: r
        run: echo "saw=${{ needs.build.result }}" >> $GITHUB_OUTPUT
"""
    )
    assert result.status == SUCCESS, result
    queue = result.jobs["after"].runs_on
    keys = list(result.jobs)
    assert keys == [
        f"build ({queue}, linux, 3.11)",
        f"build ({queue}, linux, 3.12)",
        f"build ({queue}, bsd, 3.12)",
        "after",
    ]
    outputs = [result.jobs[k].steps[0].outputs for k in keys[:3]]
    assert outputs == [
        {"combo": "linux-3.11", "index": "0/3"},
        {"combo": "linux-3.12", "index": "1/3"},
        {"combo": "bsd-3.12", "index": "2/3"},
    ]
    assert result.jobs[keys[0]].matrix == {"queue": queue, "os": "linux", "py": "3.11"}
    assert result.jobs["after"].steps[0].outputs == {"saw": "success"}


async def test_fail_fast_cancels_the_other_combinations(run_workflow, tmp_path: Path) -> None:
    marker = tmp_path / "slow-finished"
    result = await run_workflow(
        f"""
jobs:
  t:
    runs-on: QUEUE
    strategy:
      matrix:
        kind: [fast-fail, slow]
    steps:
      - run: |
          if [ "${{{{ matrix.kind }}}}" = fast-fail ]; then exit 1; fi
          sleep 30; touch {marker}
"""
    )
    assert result.status == FAILURE
    assert result.jobs["t (fast-fail)"].result == FAILURE
    assert result.jobs["t (slow)"].result == CANCELLED
    assert not marker.exists()


async def test_without_fail_fast_and_one_at_a_time(run_workflow, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    result = await run_workflow(
        f"""
jobs:
  t:
    runs-on: QUEUE
    strategy:
      fail-fast: false
      max-parallel: 1
      matrix:
        n: [1, 2, 3]
    steps:
      - run: |
          echo "start ${{{{ matrix.n }}}}" >> {journal}
          sleep 0.3
          echo "end ${{{{ matrix.n }}}}" >> {journal}
          test "${{{{ matrix.n }}}}" != 2
"""
    )
    assert result.status == FAILURE
    assert [r.result for r in result.jobs.values()] == [SUCCESS, FAILURE, SUCCESS]
    assert journal.read_text().split("\n")[:-1] == [
        "start 1",
        "end 1",
        "start 2",
        "end 2",
        "start 3",
        "end 3",
    ]


async def test_matrix_from_an_earlier_job_and_a_bad_queue(run_workflow) -> None:
    result = await run_workflow(
        """
jobs:
  plan:
    runs-on: QUEUE
    outputs:
      matrix: ${{ steps.p.outputs.matrix }}
    steps:
      - id: p
        run: echo 'matrix={"shard":[1,2]}' >> $GITHUB_OUTPUT
  work:
    needs: plan
    runs-on: QUEUE
    strategy:
      matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}
    steps:
      - id: w
        run: echo "shard=${{ matrix.shard }}" >> $GITHUB_OUTPUT
  misplaced:
    runs-on: ${{ matrix.q }}
    strategy:
      matrix:
        q: ["not a queue"]
    steps:
      - run: 'true'
"""
    )
    assert result.jobs["work (1)"].steps[0].outputs == {"shard": "1"}
    assert result.jobs["work (2)"].steps[0].outputs == {"shard": "2"}
    misplaced = result.jobs["misplaced"]
    assert misplaced.result == FAILURE
    assert "runs-on gave 'not a queue', which is not a task queue name" in (misplaced.error or "")


async def test_job_names_are_shown_as_github_shows_them(run_workflow) -> None:
    result = await run_workflow(
        """
on:
  workflow_dispatch:
    inputs:
      target: {required: true}
jobs:
  build:
    name: Build on ${{ matrix.os }}
    runs-on: QUEUE
    strategy:
      matrix:
        os: [linux, bsd]
    steps:
      - run: "true"
  test:
    name: Test
    runs-on: QUEUE
    strategy:
      matrix:
        py: ["3.11", "3.12"]
    steps:
      - run: "true"
  deploy:
    name: Deploy to ${{ inputs.target }}
    needs: [build, test]
    runs-on: QUEUE
    steps:
      - run: "true"
  never:
    name: Never to ${{ inputs.target }}
    if: false
    runs-on: QUEUE
    steps:
      - run: "true"
  odd:
    name: Odd ${{ fromJSON(inputs.target) }}
    runs-on: QUEUE
    steps:
      - run: "true"
  plain:
    runs-on: QUEUE
    steps:
      - run: "true"
""",
        inputs={"target": "prod"},
    )
    assert result.status == SUCCESS, result
    assert {key: job.name for key, job in result.jobs.items()} == {
        # The matrix in the name: each combination its own.
        "build (linux)": "Build on linux",
        "build (bsd)": "Build on bsd",
        # A name without the matrix gets the combination's values, as on GitHub.
        "test (3.11)": "Test (3.11)",
        "test (3.12)": "Test (3.12)",
        "deploy": "Deploy to prod",
        "never": "Never to prod",  # skipped, and still named
        # A name that cannot be rendered is shown as written; the job runs.
        "odd": "Odd ${{ fromJSON(inputs.target) }}",
        "plain": "",  # no name: shown by its id
    }
    assert result.jobs["odd"].result == SUCCESS
