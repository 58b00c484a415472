"""GitHub's shell templates for the `run:` steps of composite actions (Linux)."""

from __future__ import annotations

import os
import shlex
import shutil

from waterflow import NodeError

PLACEHOLDER = "{0}"
_TEMPLATES = {
    "bash": ("bash --noprofile --norc -eo pipefail {0}", ".sh"),
    "sh": ("sh -e {0}", ".sh"),
    "python": ("python {0}", ".py"),
    "pwsh": ("pwsh -command \". '{0}'\"", ".ps1"),
}
_EXTENSIONS = {"bash": ".sh", "sh": ".sh", "python": ".py", "python3": ".py", "pwsh": ".ps1"}


def shell_command(shell: str | None, path: str | None) -> tuple[list[str], str]:
    """The argv template (with `{0}` for the script file) and the script's file extension.

    No shell: `bash -e {0}`, or `sh -e {0}` where there is no bash (GitHub's default). Raises
    NodeError(retryable=False) for a shell that is none of GitHub's forms.
    """
    name = (shell or "").strip()
    if not name:
        if shutil.which("bash", path=path):
            return ["bash", "-e", PLACEHOLDER], ".sh"
        return ["sh", "-e", PLACEHOLDER], ".sh"
    if name in _TEMPLATES:
        template, extension = _TEMPLATES[name]
        argv = shlex.split(template)
        if name == "python" and not shutil.which("python", path=path):
            if not shutil.which("python3", path=path):
                raise NodeError("shell python: no python or python3 on PATH", retryable=False)
            argv[0] = "python3"
        return argv, extension
    if PLACEHOLDER not in name:
        raise NodeError(
            f"shell {name!r} is not supported: use bash, sh, python, pwsh, or a command with "
            "{0} for the script file, e.g. 'perl {0}'",
            retryable=False,
        )
    try:
        argv = shlex.split(name)
    except ValueError as exc:
        raise NodeError(f"shell {name!r} cannot be split: {exc}", retryable=False) from None
    return argv, _EXTENSIONS.get(os.path.basename(argv[0]), "")


def script_argv(template: list[str], script: str) -> list[str]:
    return [part.replace(PLACEHOLDER, script) for part in template]


__all__ = ["script_argv", "shell_command"]
