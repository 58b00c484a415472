"""Workflow commands: the `::name key=value::data` lines a step prints, as GitHub's runner
reads them from its stdout and stderr. Shared by every node that runs scripts: pass a
`CommandProcessor` as the `on_output` filter of `StepContext.run_process`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waterflow._masking import SecretMasker
    from waterflow._steplog import StepLog

ANNOTATIONS = ("notice", "warning", "error")
_COMMANDS = frozenset(
    {
        "set-output",
        "save-state",
        "add-mask",
        "debug",
        "group",
        "endgroup",
        "stop-commands",
        "set-env",
        "add-path",
        "echo",
        *ANNOTATIONS,
    }
)
_UNSECURE = ("set-env", "add-path")
_DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def _unescape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for escaped, plain in escapes:
        text = text.replace(escaped, plain)
    return text


def parse_command(line: str) -> tuple[str, dict[str, str], str] | None:
    """`(name, properties, data)` of a workflow command line, None for any other line."""
    text = line.strip()
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    head, data = text[2:end], text[end + 2 :]
    name, _, rest = head.partition(" ")
    properties: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            properties[key.strip()] = _unescape(value, _PROPERTY_ESCAPES)
    return name, properties, _unescape(data, _DATA_ESCAPES)


def append_env_file(path: Path, name: str, value: str) -> None:
    """Append `name` = `value` to an env file in the heredoc form, safe for any value."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def annotation(kind: str, properties: Mapping[str, str], message: str) -> str:
    """How an annotation shows in the step log: `warning src/a.py:3:5: title: message`."""
    where = properties.get("file", "")
    line = properties.get("line", "")
    col = properties.get("col", "")
    if where and line:
        where += f":{line}"
        if col:
            where += f":{col}"
    text = kind + (f" {where}" if where else "") + ":"
    title = properties.get("title", "")
    if title:
        text += f" {title}:"
    return f"{text} {message}"


class CommandProcessor:
    """The `on_output` filter of one step (or one step of a composite action).

    Commands act and are dropped from the log; annotations and groups are logged in a plain
    form; other lines pass through. `outputs` collects `set-output`, `state` `save-state`
    (which is also appended to `state_file`). `failure` is set when a command failed the step,
    as GitHub's runner does for a disabled `set-env`.
    """

    def __init__(
        self,
        *,
        log: StepLog,
        masker: SecretMasker,
        env: Mapping[str, str],
        state_file: Path,
        env_file: Path,
        path_file: Path,
    ) -> None:
        self.log = log
        self.masker = masker
        self.allow_unsecure = truthy(env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS"))
        self.debug = truthy(env.get("ACTIONS_STEP_DEBUG")) or truthy(env.get("RUNNER_DEBUG"))
        self.state_file = state_file
        self.env_file = env_file
        self.path_file = path_file
        self.outputs: dict[str, str] = {}
        self.state: dict[str, str] = {}
        self.failure: str | None = None
        self._stop_token: str | None = None
        self._echo = False
        self._warned: set[str] = set()

    def __call__(self, stream: str, line: str) -> str | None:
        if self._stop_token is not None:
            if line.strip() == f"::{self._stop_token}::":
                self._stop_token = None
                return None
            return line
        parsed = parse_command(line)
        if parsed is None or parsed[0].lower() not in _COMMANDS:
            return line
        name, properties, data = parsed
        name = name.lower()
        if self._echo and name != "add-mask":
            self.log.info(line.strip())
        return self._run(name, properties, data)

    def _once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.info(message)

    def _run(self, name: str, properties: dict[str, str], data: str) -> str | None:
        if name in _UNSECURE and not self.allow_unsecure:
            replacement = "$GITHUB_ENV" if name == "set-env" else "$GITHUB_PATH"
            message = (
                f"error: the {name} command is disabled: write to {replacement} instead, or "
                "set ACTIONS_ALLOW_UNSECURE_COMMANDS=true to allow it"
            )
            self.failure = self.failure or f"the {name} command is disabled"
            return message
        if name == "add-mask":
            if data.strip():
                self.masker.add(data)
            return None
        if name in ("set-output", "save-state", "set-env"):
            key = properties.get("name", "")
            if not key:
                return f"error: the {name} command needs a name: ::{name} name=NAME::value"
            if name == "set-output":
                self._once(name, "warning: set-output is deprecated; write to $GITHUB_OUTPUT")
                self.outputs[key] = data
            elif name == "save-state":
                self._once(name, "warning: save-state is deprecated; write to $GITHUB_STATE")
                self.state[key] = data
                append_env_file(self.state_file, key, data)
            else:
                append_env_file(self.env_file, key, data)
            return None
        if name == "add-path":
            with self.path_file.open("a", encoding="utf-8") as f:
                f.write(data.strip() + "\n")
            return None
        if name == "debug":
            return f"debug: {data}" if self.debug else None
        if name in ANNOTATIONS:
            return annotation(name, properties, data)
        if name == "group":
            return f"[group] {data}"
        if name == "endgroup":
            return "[endgroup]"
        if name == "stop-commands":
            if not data:
                return "error: stop-commands needs a token: ::stop-commands::TOKEN"
            self._stop_token = data
            return None
        # echo
        self._echo = data.strip().lower() == "on"
        return None


__all__ = ["CommandProcessor", "annotation", "append_env_file", "parse_command", "truthy"]
