"""Build information: the stamp the hatch hook writes into the wheel, and the git fallback."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

from waterflow import _buildinfo
from waterflow._buildinfo import BuildInfo, build_info, version_text
from waterflow._version import __version__

PACKAGE = Path(__file__).resolve().parents[1]
SOURCE = PACKAGE / "src" / "waterflow"
STAMP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def head_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def load_hook_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "waterflow_hatch_build", PACKAGE / "hatch_build.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stamp_values(text: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(text, "_build_stamp.py", "exec"), namespace)
    return namespace


# --- at run time -------------------------------------------------------------------------------


@needs_git
def test_source_checkout_asks_git() -> None:
    assert _buildinfo._read_build_info() == BuildInfo(__version__, head_commit(), "dev")


def test_wheel_stamp_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = types.ModuleType("waterflow._build_stamp")
    stamp.__dict__.update(COMMIT="abc1234", BUILD_TIME="2026-11-23T10:30:45Z")
    monkeypatch.setitem(sys.modules, "waterflow._build_stamp", stamp)
    assert _buildinfo._read_build_info() == BuildInfo(
        __version__, "abc1234", "2026-11-23T10:30:45Z"
    )


def test_empty_stamp_reads_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "waterflow._build_stamp", types.ModuleType("stamp"))
    assert _buildinfo._read_build_info() == BuildInfo(__version__, "unknown", "unknown")


def test_no_git_reads_unknown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH
    assert _buildinfo._git_commit(SOURCE) == "unknown"


def test_not_a_checkout_reads_unknown(tmp_path: Path) -> None:
    assert _buildinfo._git_commit(tmp_path) == "unknown"


def test_build_info_is_computed_once() -> None:
    assert build_info() is build_info()


def test_version_text(monkeypatch: pytest.MonkeyPatch) -> None:
    info = BuildInfo("0.1.0", "abc1234", "2026-11-23T10:30:45Z")
    monkeypatch.setattr(_buildinfo, "build_info", lambda: info)
    assert version_text() == (
        "Waterflow Agent\nVersion:    0.1.0\nCommit:     abc1234\nBuild Time: 2026-11-23T10:30:45Z"
    )
    assert version_text("Waterflow").splitlines()[0] == "Waterflow"


# --- the hatch build hook ----------------------------------------------------------------------


def make_hook(target: str, root: Path, directory: Path) -> Any:
    module = load_hook_module()
    return module.BuildStampHook(str(root), {}, None, None, str(directory), target)


def test_hook_stamps_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795429845")
    hook = make_hook("wheel", PACKAGE, tmp_path)
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("standard", build_data)
    ((source, target),) = build_data["force_include"].items()
    assert target == "waterflow/_build_stamp.py"
    assert not source.startswith(str(PACKAGE))
    values = stamp_values(Path(source).read_text(encoding="utf-8"))
    assert values["BUILD_TIME"] == "2026-11-23T10:30:45Z"
    hook.finalize("standard", build_data, str(tmp_path / "x.whl"))
    assert not Path(source).exists()


def test_hook_stamps_the_sdist_source(tmp_path: Path) -> None:
    hook = make_hook("sdist", PACKAGE, tmp_path)
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("standard", build_data)
    assert list(build_data["force_include"].values()) == ["src/waterflow/_build_stamp.py"]
    hook.finalize("standard", build_data, str(tmp_path / "x.tar.gz"))


def test_hook_leaves_editable_installs_alone(tmp_path: Path) -> None:
    hook = make_hook("wheel", PACKAGE, tmp_path)
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("editable", build_data)
    hook.finalize("editable", build_data, str(tmp_path / "x.whl"))
    assert build_data == {"force_include": {}}


def test_hook_takes_the_commit_from_an_sdist_stamp(tmp_path: Path) -> None:
    shipped = tmp_path / "src" / "waterflow" / "_build_stamp.py"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("COMMIT = 'feed123'\nBUILD_TIME = '2026-01-01T00:00:00Z'\n", "utf-8")
    hook = make_hook("wheel", tmp_path, tmp_path / "dist")
    build_data: dict[str, Any] = {"force_include": {}}
    hook.initialize("standard", build_data)
    (source,) = build_data["force_include"]
    assert stamp_values(Path(source).read_text(encoding="utf-8"))["COMMIT"] == "feed123"
    hook.finalize("standard", build_data, "")


def test_hook_without_git(tmp_path: Path) -> None:
    assert load_hook_module().git_commit(str(tmp_path)) == "unknown"


# --- real builds (not installed) ---------------------------------------------------------------


def build(outdir: Path, *flags: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            *flags,
            "--no-isolation",
            str(PACKAGE),
            "--outdir",
            str(outdir),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def wheel_stamp(outdir: Path) -> dict[str, Any]:
    (wheel,) = outdir.glob("waterflow_agent-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names.count("waterflow/_build_stamp.py") == 1
        return stamp_values(archive.read("waterflow/_build_stamp.py").decode("utf-8"))


@needs_git
def test_wheel_carries_the_stamp(tmp_path: Path) -> None:
    build(tmp_path, "--wheel")
    values = wheel_stamp(tmp_path)
    assert values["COMMIT"] == head_commit()
    assert STAMP_TIME.fullmatch(values["BUILD_TIME"])
    assert not (SOURCE / "_build_stamp.py").exists()  # nothing left in the source tree


@needs_git
def test_wheel_built_from_the_sdist_keeps_the_commit(tmp_path: Path) -> None:
    build(tmp_path)  # the sdist, then the wheel from the unpacked sdist (no .git there)
    (sdist,) = tmp_path.glob("waterflow_agent-*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/src/waterflow/_build_stamp.py") for n in archive.getnames())
    values = wheel_stamp(tmp_path)
    assert values["COMMIT"] == head_commit()
    assert STAMP_TIME.fullmatch(values["BUILD_TIME"])
    assert not (SOURCE / "_build_stamp.py").exists()
