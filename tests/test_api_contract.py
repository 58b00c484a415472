"""Meta-tests: the node-author API is pinned, every hook is documented and the docs name it."""

from __future__ import annotations

import inspect
from pathlib import Path

import waterflow
from waterflow import _hookspec
from waterflow.engine.executor import safe_name, step_log_path
from waterflow.engine.types import StepInput

ROOT = Path(__file__).resolve().parent.parent


def test_public_exports_are_pinned() -> None:
    assert waterflow.__all__ == [
        "EnvFiles",
        "Node",
        "NodeError",
        "NodeFactory",
        "NodeMetadata",
        "NodeRegistrar",
        "NodeResult",
        "Output",
        "Parameter",
        "SecretMasker",
        "StepContext",
        "StepInfo",
        "StepLog",
        "__version__",
        "hookimpl",
    ]
    for name in waterflow.__all__:
        assert hasattr(waterflow, name), name


def _hooks() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(_hookspec, inspect.isfunction)
        if hasattr(fn, f"{_hookspec.PROJECT}_spec")
    ]


def test_every_hook_says_when_it_is_called_and_what_it_returns() -> None:
    hooks = _hooks()
    assert hooks == ["node_metadata", "register_nodes"]
    guide = (ROOT / "docs" / "node-authors.md").read_text()
    for name in hooks:
        fn = getattr(_hookspec, name)
        doc = inspect.getdoc(fn) or ""
        assert "Called" in doc, f"{name}: say when it is called"
        assert "Return" in doc, f"{name}: say what it returns"
        assert inspect.signature(fn).return_annotation != inspect.Signature.empty
        assert f"`{name}" in guide, f"docs/node-authors.md does not document {name}"


def test_the_guide_example_is_the_tested_example_plugin() -> None:
    guide = (ROOT / "docs" / "node-authors.md").read_text()
    assert "examples/waterflow-nodes-hello" in guide
    assert (ROOT / "tests" / "test_example_plugin.py").exists()


def test_step_log_names_are_made_safe(tmp_path: Path) -> None:
    from waterflow.dsl import parse_workflow

    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("build (linux, 3.11)") == "build_linux_3.11"
    assert safe_name("...") == "_"
    assert len(safe_name("x" * 500)) == 80
    spec = parse_workflow(
        "jobs:\n  j:\n    runs-on: q\n    steps:\n      - id: a-b\n        run: 'true'\n",
        file="t.yaml",
    )
    inp = StepInput(
        run_id="../run/1",
        workflow="w",
        job="j",
        step=spec.jobs["j"].steps[0],
        contexts={},
        env_layers=[],
        job_env={},
        job_path=[],
        workspace=str(tmp_path),
        temp_dir=str(tmp_path),
    )
    path = step_log_path(tmp_path, inp, attempt=2)
    assert path == tmp_path / "run_1" / "j" / "01-a-b.attempt2.log"
    assert path.resolve().is_relative_to(tmp_path)
