"""What was built: the version, the git commit and the build time, for `--version` and logs.

A wheel carries `waterflow/_build_stamp.py`, written by the package's hatch build hook
(`hatch_build.py`) and never committed. A source checkout or an editable install has no stamp:
the commit then comes from `git rev-parse --short HEAD` and the build time reads "dev".
"""

from __future__ import annotations

import functools
import importlib
import subprocess
from pathlib import Path

import attrs

from waterflow._version import __version__

__all__ = ["BuildInfo", "build_info", "version_text"]

STAMP_MODULE = "waterflow._build_stamp"
UNKNOWN = "unknown"


@attrs.frozen
class BuildInfo:
    version: str
    commit: str
    build_time: str


def _git_commit(directory: Path) -> str:
    """The short commit of the checkout `directory` is in, or "unknown"."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else UNKNOWN


def _read_build_info() -> BuildInfo:
    try:
        stamp = importlib.import_module(STAMP_MODULE)
    except ImportError:
        return BuildInfo(__version__, _git_commit(Path(__file__).parent), "dev")
    commit = str(getattr(stamp, "COMMIT", "") or UNKNOWN)
    build_time = str(getattr(stamp, "BUILD_TIME", "") or UNKNOWN)
    return BuildInfo(__version__, commit, build_time)


@functools.cache
def build_info() -> BuildInfo:
    """This installation's version, commit and build time (computed once per process)."""
    return _read_build_info()


def version_text(program: str = "Waterflow Agent") -> str:
    """The `--version` text: the program's name, then its version, commit and build time."""
    info = build_info()
    return "\n".join(
        [
            program,
            f"Version:    {info.version}",
            f"Commit:     {info.commit}",
            f"Build Time: {info.build_time}",
        ]
    )
