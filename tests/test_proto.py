"""The committed `waterflow._proto` code is what `nox -s proto` makes of proto/waterflow/v1."""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "packages" / "waterflow-agent-core" / "src" / "waterflow" / "_proto"


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_the_proto_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    fresh = tmp_path / "_proto"
    assert _files(fresh) == _files(COMMITTED), "files differ: run `nox -s proto`"
    drifted = [
        name
        for name in sorted(_files(fresh))
        if not filecmp.cmp(fresh / name, COMMITTED / name, shallow=False)
    ]
    assert not drifted, f"generated code is stale, run `nox -s proto`: {drifted}"


def test_every_generated_file_says_do_not_edit() -> None:
    for name in sorted(_files(COMMITTED)):
        head = (COMMITTED / name).read_text(encoding="utf-8").splitlines()[0]
        assert "DO NOT EDIT" in head or "regenerate with `nox -s proto`" in head, name
        assert "nox -s proto" in head, name


def test_the_api_is_versioned_and_importable() -> None:
    for module in ("nodes_pb2", "agent_pb2", "agent_pb2_grpc", "user_pb2", "user_pb2_grpc"):
        assert importlib.util.find_spec(f"waterflow._proto.v1.{module}") is not None
    from waterflow._proto.v1 import agent_pb2, user_pb2

    assert agent_pb2.DESCRIPTOR.package == "waterflow.v1"
    assert set(agent_pb2.DESCRIPTOR.services_by_name) == {"AgentService"}
    assert set(user_pb2.DESCRIPTOR.services_by_name) == {"UserService"}
