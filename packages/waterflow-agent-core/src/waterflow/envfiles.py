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


def env_files_in(directory: Path) -> EnvFiles:
    """The paths of the five env files of a step in `directory`, without creating anything."""
    return EnvFiles(
        output=directory / "output",
        env=directory / "env",
        path=directory / "path",
        state=directory / "state",
        step_summary=directory / "step_summary.md",
    )


def create_env_files(directory: Path) -> EnvFiles:
    """Create the five env files of a step, empty, in `directory` (created if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = env_files_in(directory)
    for path in (files.output, files.env, files.path, files.state, files.step_summary):
        path.write_bytes(b"")
    return files


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
]
