"""GitHub's shell templates for `run:` scripts on Linux, for every node that runs scripts
(`shell/run`, the `run:` steps of composite actions)."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import attrs

from waterflow._node import NodeError

PLACEHOLDER = "{0}"
"""Where the script file goes in a template."""

# The extension a program expects of its script (pwsh runs only *.ps1 files).
_EXTENSIONS = {
    "bash": ".sh",
    "sh": ".sh",
    "python": ".py",
    "python3": ".py",
    "pwsh": ".ps1",
    "powershell": ".ps1",
}


@attrs.frozen
class ShellCommand:
    """How a script is run: an argv in which `{0}` stands for the script file."""

    template: tuple[str, ...]
    extension: str = ""

    def argv(self, script: Path | str) -> list[str]:
        return [part.replace(PLACEHOLDER, str(script)) for part in self.template]

    def __str__(self) -> str:
        return " ".join(self.template)


def resolve_shell(shell: str | None, path: str | None) -> ShellCommand:
    """Turn a step's `shell:` into a command; `path` is the step's PATH for lookups.

    No shell: `bash -e {0}` (`sh -e {0}` where there is no bash), GitHub's default. `bash`:
    `bash --noprofile --norc -eo pipefail {0}`; `sh`: `sh -e {0}`; `python`; `pwsh`; a
    command template with `{0}`; or the name of a program on PATH, given the script. Raises
    `NodeError(retryable=False)` for anything else.
    """
    name = (shell or "").strip()
    if name == "":
        if shutil.which("bash", path=path):
            return ShellCommand(("bash", "-e", PLACEHOLDER), ".sh")
        return ShellCommand(("sh", "-e", PLACEHOLDER), ".sh")
    if name == "bash":
        return ShellCommand(
            ("bash", "--noprofile", "--norc", "-eo", "pipefail", PLACEHOLDER), ".sh"
        )
    if name == "sh":
        return ShellCommand(("sh", "-e", PLACEHOLDER), ".sh")
    if name == "python":
        for program in ("python", "python3"):
            if shutil.which(program, path=path):
                return ShellCommand((program, PLACEHOLDER), ".py")
        raise NodeError(
            "shell 'python': neither python nor python3 is on the step's PATH", retryable=False
        )
    if name == "pwsh":
        return ShellCommand(("pwsh", "-command", f". '{PLACEHOLDER}'"), ".ps1")
    if PLACEHOLDER in name:
        try:
            template = tuple(shlex.split(name))
        except ValueError as exc:
            raise NodeError(
                f"shell {name!r} cannot be split into a command: {exc}", retryable=False
            ) from None
        return ShellCommand(template, _EXTENSIONS.get(os.path.basename(template[0]), ""))
    if not any(c.isspace() for c in name) and shutil.which(name, path=path):
        return ShellCommand((name, PLACEHOLDER), _EXTENSIONS.get(os.path.basename(name), ""))
    raise NodeError(
        f"shell {name!r} is not supported: use bash, sh, python, pwsh, the name of a program "
        "on the step's PATH, or a command template with {0} for the script file, "
        "e.g. 'perl {0}'",
        retryable=False,
    )


__all__ = ["PLACEHOLDER", "ShellCommand", "resolve_shell"]
