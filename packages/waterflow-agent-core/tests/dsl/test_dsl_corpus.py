"""Every file under bad/ fails with exactly the problem its first line names; good/ files pass.

The first line of each file is `# expect: LINE:COL: message` (or `# expect: ok`). Bad files
are checked against the test nodes without the GitHub Actions package, good files with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from waterflow import NodeMetadata
from waterflow.dsl import WorkflowError, load_workflow, validate_workflow

HERE = Path(__file__).parent
BAD = sorted((HERE / "bad").glob("*.yaml"))
GOOD = sorted((HERE / "good").glob("*.yaml"))
PREFIX = "# expect: "


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(PREFIX), f"{path.name}: the first line must be '{PREFIX}...'"
    return first[len(PREFIX) :]


def test_the_corpus_is_there() -> None:
    assert len(BAD) >= 60
    assert len(GOOD) >= 4


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_file(path: Path, nodes: dict[str, NodeMetadata]) -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path, nodes=nodes)
    got = [f"{p.line}:{p.col}: {p.message}" for p in caught.value.problems]
    assert got == [expected(path)]
    assert str(caught.value) == f"{path}:{expected(path)}"


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_file(path: Path, nodes_with_gha: dict[str, NodeMetadata]) -> None:
    assert expected(path) == "ok"
    spec = load_workflow(path, nodes=nodes_with_gha)
    assert validate_workflow(spec, nodes_with_gha) == []
    assert validate_workflow(spec, None) == []
