"""`waterflow-gha setup-node`: the working path is the session's node24 fixture; here, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def setup_node(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, "-m", "waterflow_nodes_gha._cli", "setup-node", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_without_npm_it_says_so_in_one_line(tmp_path: Path) -> None:
    done = setup_node("16", "--cache", str(tmp_path / "cache"), path=str(tmp_path))
    assert done.returncode == 1
    assert done.stderr == "waterflow-gha: error: cannot provision node16: npm is not on PATH\n"


def test_an_unknown_major_is_refused(tmp_path: Path) -> None:
    done = setup_node("30", path=os.environ["PATH"])
    assert done.returncode == 2
    assert "invalid choice: '30'" in done.stderr


def test_the_console_script_is_installed() -> None:
    done = subprocess.run(
        [str(BIN / "waterflow-gha"), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "setup-node" in done.stdout
