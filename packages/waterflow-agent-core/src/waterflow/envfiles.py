"""The env-file protocol: how a step talks back to the runner, as GitHub Actions runners do.

Every step gets five empty files; their paths are in its environment both as `GITHUB_<KIND>`
and as `WATERFLOW_<KIND>`. After the node returns, the core reads them with `read_env_files`:

| file | what a step writes | what it becomes |
|---|---|---|
| `OUTPUT` | `NAME=value` lines; `NAME<<DELIM`, the value's lines, `DELIM` | `steps.<id>.outputs` |
| `ENV` | the same forms | environment of the job's later steps |
| `PATH` | one directory per line | prepended to `PATH` of the job's later steps |
| `STATE` | the same forms as `OUTPUT` | state kept for the step's post action |
| `STEP_SUMMARY` | Markdown | the step's summary |

For example, in a bash step::

    echo "version=1.2.3" >> "$GITHUB_OUTPUT"
    { echo "notes<<EOF"; git log -3 --oneline; echo "EOF"; } >> "$GITHUB_OUTPUT"

Nodes need not read these files themselves: the core does, for every node.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import attrs

from waterflow._node import EnvFiles

LABELS = {
    "output": "GITHUB_OUTPUT",
    "env": "GITHUB_ENV",
    "path": "GITHUB_PATH",
    "state": "GITHUB_STATE",
    "step_summary": "GITHUB_STEP_SUMMARY",
}
_PREVIEW_CHARS = 60
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class EnvFileError(ValueError):
    """An env file a step wrote is malformed. The message is one line: file, line, fix."""

    def __init__(self, message: str, *, file_label: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file_label = file_label
        self.line = line


@attrs.frozen
class EnvFileResult:
    """What a step wrote to its env files."""

    outputs: dict[str, str]
    env: dict[str, str]
    path: list[str]
    state: dict[str, str]
    summary: str


def env_files_in(directory: Path, tag: str = "") -> EnvFiles:
    """The paths of the five env files of a step in `directory`, without creating anything.
    `tag` ends each name (before `.md`): the steps of a job share one directory, as on
    GitHub's runner, each with files of its own."""
    return EnvFiles(
        output=Path(f"{directory}/output{tag}"),
        env=Path(f"{directory}/env{tag}"),
        path=Path(f"{directory}/path{tag}"),
        state=Path(f"{directory}/state{tag}"),
        step_summary=Path(f"{directory}/step_summary{tag}.md"),
    )


def _paths(files: EnvFiles) -> tuple[Path, ...]:
    return (files.output, files.env, files.path, files.state, files.step_summary)


def create_env_files(directory: Path, tag: str = "") -> EnvFiles:
    """Create the five env files of a step, empty, in `directory` (made if missing): one
    call each, as a step pays for them whether it writes them or not."""
    files = env_files_in(directory, tag)
    for path in _paths(files):
        try:
            fd = os.open(path, _CREATE, 0o666)
        except FileNotFoundError:  # the job's first step here
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, _CREATE, 0o666)
        os.close(fd)
    return files


def remove_env_files(files: EnvFiles) -> None:
    """Remove a step's env files once read (a missing one is fine; a folder a step put in
    one's place goes too). Raises the first OSError once the others are removed."""
    failed: OSError | None = None
    for path in _paths(files):
        try:
            try:
                os.unlink(path)
            except IsADirectoryError:
                shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # named by the env file's path (rmtree names what is in it)
            failed = failed or OSError(exc.errno, exc.strerror, str(path))
    if failed is not None:
        raise failed


def _error(file_label: str, line: int, text: str) -> EnvFileError:
    return EnvFileError(f"{file_label} line {line}: {text}", file_label=file_label, line=line)


def _preview(line: str) -> str:
    if len(line) > _PREVIEW_CHARS:
        return repr(line[:_PREVIEW_CHARS]) + "..."
    return repr(line)


def _lines(text: str) -> list[str]:
    """Split on LF, dropping one CR before it; a last line without newline is kept."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def parse_env_file(text: str, *, file_label: str) -> dict[str, str]:
    """Parse `NAME=value` and `NAME<<DELIMITER` ... `DELIMITER` assignments.

    Whichever of `=` and `<<` comes first on a line decides its form, so `A=x<<y` sets `A` to
    `x<<y`. A heredoc's value is the lines between, joined with `\\n`; it ends at the first
    line that is exactly the delimiter. Empty lines between assignments are ignored; CRLF line
    ends are accepted; a later assignment of a name wins. Names and values are taken as
    written (no trimming). Raises `EnvFileError` naming `file_label` and the line.
    """
    lines = _lines(text)
    result: dict[str, str] = {}
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index]
        index += 1
        if not line:
            continue
        equals = line.find("=")
        heredoc = line.find("<<")
        if equals >= 0 and (heredoc < 0 or equals < heredoc):
            name, value = line[:equals], line[equals + 1 :]
            if not name:
                raise _error(
                    file_label, number, f"{_preview(line)} has no name before '='; write NAME=value"
                )
            result[name] = value
        elif heredoc >= 0:
            name, delimiter = line[:heredoc], line[heredoc + 2 :]
            if not name:
                raise _error(
                    file_label,
                    number,
                    f"{_preview(line)} has no name before '<<'; write NAME<<DELIMITER",
                )
            if not delimiter:
                raise _error(
                    file_label,
                    number,
                    f"heredoc for {name!r} has no delimiter after '<<'; write {name}<<EOF, "
                    "the value's lines, then a line EOF",
                )
            value_lines: list[str] = []
            while True:
                if index >= len(lines):
                    raise _error(
                        file_label,
                        number,
                        f"heredoc {delimiter!r} for {name!r} is never closed; end it with a "
                        f"line {delimiter!r}",
                    )
                value_line = lines[index]
                index += 1
                if value_line == delimiter:
                    break
                value_lines.append(value_line)
            result[name] = "\n".join(value_lines)
        else:
            raise _error(
                file_label,
                number,
                f"{_preview(line)} is neither NAME=value nor NAME<<DELIMITER; write one of "
                "those forms",
            )
    return result


def parse_path_file(text: str) -> list[str]:
    """The directories of a `GITHUB_PATH` file: one per non-empty line, in the order written.

    As on GitHub, the caller prepends them to `PATH` so that the last one written comes first.
    Surrounding whitespace is dropped.
    """
    return [line.strip() for line in _lines(text) if line.strip()]


def _read(path: Path, file_label: str) -> str:
    try:
        if os.stat(path).st_size == 0:  # most steps write none of their files
            return ""
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        return ""  # the step removed it: it wrote nothing, as on GitHub
    except OSError as exc:
        raise EnvFileError(
            f"{file_label}: cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}",
            file_label=file_label,
        ) from None


def read_env_files(files: EnvFiles) -> EnvFileResult:
    """Read and parse what a step wrote to its env files. A missing file counts as empty.

    Raises `EnvFileError` (one line) when a file is malformed or cannot be read.
    """
    return EnvFileResult(
        outputs=parse_env_file(_read(files.output, LABELS["output"]), file_label=LABELS["output"]),
        env=parse_env_file(_read(files.env, LABELS["env"]), file_label=LABELS["env"]),
        path=parse_path_file(_read(files.path, LABELS["path"])),
        state=parse_env_file(_read(files.state, LABELS["state"]), file_label=LABELS["state"]),
        summary=_read(files.step_summary, LABELS["step_summary"]),
    )


__all__ = [
    "EnvFileError",
    "EnvFileResult",
    "create_env_files",
    "env_files_in",
    "parse_env_file",
    "parse_path_file",
    "read_env_files",
    "remove_env_files",
]
