"""The agent's configuration: defaults, then a YAML file, then `WATERFLOW_*` variables, then flags.

Each later source wins key by key. Every value is checked when it is loaded; a bad one raises
`ConfigError`, one line that names the key, where the value came from (`file:line`, the
environment variable or the command line), the bad value and what is expected. A key `a.b`
is set by the variable `WATERFLOW_A_B`; docs/configuration.md is the reference for every key.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, get_args

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, ClassValidationError

from waterflow._node import ENV_FILE_KINDS
from waterflow.agent._reaper import ENV_NAME as STEP_INSTANCE_VARIABLE

__all__ = [
    "CONFIG_KEYS",
    "AgentConfig",
    "AgentSettings",
    "ConfigError",
    "LogFormat",
    "LogLevel",
    "LogSettings",
    "ServerSettings",
    "TLSSettings",
    "TemporalSettings",
    "env_var_for",
    "ignored_environment",
    "load_config",
    "redacted",
    "validate_for_run",
]

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]
LogFormat: TypeAlias = Literal["json", "console"]

ENV_PREFIX = "WATERFLOW_"
#: `WATERFLOW_*` variables that are read elsewhere and are not configuration keys.
NON_CONFIG_VARIABLES = frozenset(
    {
        "WATERFLOW_DISABLE_PLUGINS",
        "WATERFLOW_LOAD_PLUGINS",
        "WATERFLOW_TRACE_PLUGINS",
        # Not the agent's, but set where agents run: a step's (an agent started by a step
        # inherits them) and the `waterflow` command's.
        STEP_INSTANCE_VARIABLE,
        *(f"WATERFLOW_{kind}" for kind in ENV_FILE_KINDS),
        "WATERFLOW_EMBEDDED_DIR",
        "WATERFLOW_UP_DIR",
        "WATERFLOW_TEMPORAL_BIN",
    }
)
NON_CONFIG_PREFIXES = (
    "WATERFLOW_SECRET_",
    "WATERFLOW_GHA_",  # the gha node's settings (docs/nodes/gha.md)
    # The server's own keys (docs/server.md), in an environment it may share with an agent.
    "WATERFLOW_LISTEN_",
    "WATERFLOW_DATABASE_",
    "WATERFLOW_AUTH_",
    "WATERFLOW_REGISTRY_",
)


class ConfigError(Exception):
    """A configuration problem, in one line that names the key and where its value came from."""


def _default_agent_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _data_home(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    home = environ.get("HOME", "")
    return (Path(home) if home else Path.home()) / ".local" / "share"


def _default_work_dir() -> Path:
    return _data_home(os.environ) / "waterflow" / "work"


def _default_log_dir() -> Path:
    return _data_home(os.environ) / "waterflow" / "logs"


@attrs.frozen
class TLSSettings:
    """`temporal.tls`: mutual TLS to the Temporal frontend."""

    enabled: bool = False
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None


@attrs.frozen
class TemporalSettings:
    """`temporal`: where the Temporal frontend is and how hard to try reaching it."""

    address: str = "localhost:7233"
    namespace: str = "default"
    connection_timeout: timedelta = timedelta(seconds=10)
    max_retries: int = 10
    retry_interval: timedelta = timedelta(seconds=5)
    tls: TLSSettings = TLSSettings()


@attrs.frozen
class AgentSettings:
    """`agent`: which task queues this agent serves and how it runs their steps."""

    id: str = attrs.field(factory=_default_agent_id)
    task_queues: tuple[str, ...] = ()
    plugin_dir: Path = Path("/opt/waterflow/plugins")
    auto_reload_plugins: bool = False
    shutdown_timeout: timedelta = timedelta(seconds=30)
    max_concurrent_activities: int = 100
    max_concurrent_workflow_tasks: int = 100
    work_dir: Path = attrs.field(factory=_default_work_dir)
    secrets_dir: Path | None = None
    step_heartbeat_interval: timedelta = timedelta(seconds=5)
    workflow_sandbox: bool = False


@attrs.frozen
class LogSettings:
    """`log`: the process log (stdout) and where per-step log files go."""

    level: LogLevel = "info"
    format: LogFormat = "json"
    output_path: Path = attrs.field(factory=_default_log_dir)


@attrs.frozen
class ServerSettings:
    """`server`: the Waterflow server the agent reports its nodes and step logs to (optional)."""

    address: str | None = None
    token: str | None = None
    tls: bool = False
    tls_ca: Path | None = None


@attrs.frozen
class AgentConfig:
    """The whole configuration of one agent process, as `load_config` returns it."""

    temporal: TemporalSettings = TemporalSettings()
    agent: AgentSettings = attrs.field(factory=AgentSettings)
    log: LogSettings = attrs.field(factory=LogSettings)
    server: ServerSettings = ServerSettings()


# --- the key table, derived from the classes above ---------------------------------------------


def _walk_fields(cls: type, prefix: str) -> Iterator[tuple[str, Any, bool]]:
    """Yield (dotted key, type, is_section) for every field, sections before their keys."""
    for field in attrs.fields(cls):
        key = f"{prefix}{field.name}"
        if attrs.has(field.type):
            yield key, field.type, True
            yield from _walk_fields(field.type, f"{key}.")
        else:
            yield key, field.type, False


attrs.resolve_types(TLSSettings)
attrs.resolve_types(TemporalSettings)
attrs.resolve_types(AgentSettings)
attrs.resolve_types(LogSettings)
attrs.resolve_types(ServerSettings)
attrs.resolve_types(AgentConfig)

_FIELDS = list(_walk_fields(AgentConfig, ""))
#: Sections and keys, dotted, in the order of the classes (for suggestions).
_ALL_KEYS: tuple[str, ...] = tuple(k for k, _, _ in _FIELDS)
_SECTIONS: frozenset[str] = frozenset(k for k, _, section in _FIELDS if section)
_KEY_TYPES: dict[str, Any] = {k: t for k, t, section in _FIELDS if not section}
#: Every configuration key, dotted, in the order of the classes.
CONFIG_KEYS: tuple[str, ...] = tuple(_KEY_TYPES)
_PATH_KEYS = frozenset(k for k, t in _KEY_TYPES.items() if t is Path or Path in get_args(t))


def env_var_for(key: str) -> str:
    """The environment variable that sets a dotted key: `agent.task_queues` is
    `WATERFLOW_AGENT_TASK_QUEUES`."""
    return ENV_PREFIX + key.upper().replace(".", "_")


_ENV_VARS: dict[str, str] = {env_var_for(k): k for k in CONFIG_KEYS}


# --- where a value came from -------------------------------------------------------------------


@attrs.frozen
class _Origin:
    file: str | None = None
    line: int | None = None  # 1-based
    variable: str | None = None
    command_line: bool = False

    def locate(self, key: str) -> str:
        """`key` prefixed or suffixed with where its value came from."""
        if self.file is not None:
            return f"{self.file}:{self.line}: {key}"
        if self.variable is not None:
            return f"{key} (from {self.variable})"
        if self.command_line:
            return f"{key} (from the command line)"
        return key


_DEFAULT_ORIGIN = _Origin()


class _Invalid(Exception):
    """Raised by the structuring hooks: the message after `key: `, and the list index if any."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def _show(value: Any) -> str:
    """A bad value as the user wrote it, quoted."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return repr("true" if value else "false")
    return repr(str(value))


# --- durations ---------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def _parse_duration(text: str) -> timedelta | None:
    """`90s`, `10m`, `1h30m`, `500ms`, `1.5s` -> timedelta; None if it is not a duration."""
    if not _DURATION.fullmatch(text):
        return None
    ms = sum(float(n) * _UNIT_MS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(milliseconds=ms)


def _format_duration(value: timedelta) -> str:
    """The inverse of `_parse_duration`: `1h30m`, `500ms`, `1s500ms`, `0s`."""
    total = round(value.total_seconds() * 1000)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    hours, rest = divmod(abs(total), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")]
    return sign + "".join(f"{n}{unit}" for n, unit in parts if n)


# --- structuring: one private converter --------------------------------------------------------

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_LEVELS: tuple[str, ...] = get_args(LogLevel)
_FORMATS: tuple[str, ...] = get_args(LogFormat)


def _structure_duration(value: Any, _: Any) -> timedelta:
    parsed = _parse_duration(value.strip()) if isinstance(value, str) else None
    if parsed is None:
        raise _Invalid(f"{_show(value)} is not a duration; write it like 30s, 5m or 1h30m")
    return parsed


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int) and str(value).strip().lower() in _TRUE | _FALSE:
        return str(value).strip().lower() in _TRUE
    raise _Invalid(f"{_show(value)} is not a boolean; use true or false")


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise _Invalid(f"{_show(value)} is not a whole number")


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{_show(value)} is not a string; put it in quotes")
    if not value.strip():
        raise _Invalid("must not be empty")
    return value.strip()


def _structure_path(value: Any, _: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise _Invalid(f"{_show(value)} is not a path")
    if not os.fspath(value).strip():
        raise _Invalid("must not be empty")
    path = Path(os.fspath(value).strip()).expanduser()
    return Path(os.path.abspath(path))


def _structure_level(value: Any, _: Any) -> str:
    name = value.strip().lower() if isinstance(value, str) else None
    if name == "warn":
        name = "warning"
    if name not in _LEVELS:
        raise _Invalid(f"{_show(value)} is not a log level; use debug, info, warning or error")
    return name


def _structure_format(value: Any, _: Any) -> str:
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in _FORMATS:
        raise _Invalid(f"{_show(value)} is not a log format; use json or console")
    return name


def _structure_queues(value: Any, _: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise _Invalid(f"{_show(value)} is not a list of task queue names")
    queues: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _Invalid(f"{_show(item)} is not a task queue name; put it in quotes", index)
        name = item.strip()
        if name and name not in queues:
            queues.append(name)
    return tuple(queues)


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(timedelta, _structure_duration)
_converter.register_structure_hook(bool, _structure_bool)
_converter.register_structure_hook(int, _structure_int)
_converter.register_structure_hook(str, _structure_str)
_converter.register_structure_hook(Path, _structure_path)
_converter.register_structure_hook_func(lambda t: t == LogLevel, _structure_level)
_converter.register_structure_hook_func(lambda t: t == LogFormat, _structure_format)
_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_queues)


def _first_failure(exc: BaseException, path: tuple[str, ...] = ()) -> tuple[str, BaseException]:
    """The dotted key and the leaf exception of the first problem cattrs collected."""
    if isinstance(exc, ClassValidationError) and exc.exceptions:
        sub = exc.exceptions[0]
        names = [
            n.name for n in getattr(sub, "__notes__", ()) if isinstance(n, AttributeValidationNote)
        ]
        return _first_failure(sub, path + tuple(names[:1]))
    return ".".join(path), exc


# --- reading the sources -----------------------------------------------------------------------


def _suggest(key: str) -> str:
    """`; did you mean 'x'?`, or the keys that the section does have."""
    section, _, leaf = key.rpartition(".")
    known = _ALL_KEYS
    elsewhere = [k for k in known if k.rpartition(".")[2] == leaf]  # right key, wrong section
    if elsewhere:
        return f"; did you mean {elsewhere[0]!r}?"
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == section}
    close = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {siblings[close[0]]!r}?"
    if siblings:
        where = f"{section} has" if section else "the sections are"
        return f"; {where} {', '.join(siblings)}"
    return ""


def _plain(value: Any) -> Any:
    """ruamel's round-trip types as plain Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {_show(value)}"


class _FileLayer:
    """The keys a YAML file sets, with the line of every value."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        self.directory = Path(os.path.abspath(self.name)).parent
        self.values: dict[str, Any] = {}
        self.origins: dict[str, _Origin] = {}
        document = self._load()
        if document is None:
            return
        if not isinstance(document, Mapping):
            raise ConfigError(
                f"{self.name}:1: expected a mapping of sections (agent, log, server, temporal), "
                f"found {_kind(_plain(document))}"
            )
        self._walk(document, "")

    def _load(self) -> Any:
        try:
            text = Path(self.name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file {self.name} not found") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {self.name} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {self.name}: {exc.strerror}") from None
        # Loaded with a config file only: an agent configured by flags and variables alone
        # starts without the YAML library.
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            return YAML(typ="rt").load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = (exc.problem or exc.context or "").splitlines()[0]
            raise ConfigError(f"{self.name}{line}: invalid YAML: {problem}") from None
        except YAMLError as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"{self.name}: invalid YAML: {first}") from None

    @staticmethod
    def _line(node: Any, what: Literal["key", "value", "item"], which: Any) -> int:
        """The 1-based line of a mapping's key or value, or a sequence's item."""
        try:
            return int(getattr(node.lc, what)(which)[0]) + 1
        except (AttributeError, IndexError, KeyError, TypeError):
            return 1

    def _walk(self, mapping: Any, prefix: str) -> None:
        for raw_key, raw_value in mapping.items():
            key = f"{prefix}{raw_key}"
            key_line = self._line(mapping, "key", raw_key)
            if not isinstance(raw_key, str):
                raise ConfigError(f"{self.name}:{key_line}: {_show(raw_key)} is not a key name")
            if "." in raw_key:  # `temporal.address: x` is not `temporal: {address: x}`
                section, _, leaf = key.rpartition(".")
                hint = f"write it nested, as {leaf} under {section}" if key in _ALL_KEYS else ""
                raise ConfigError(
                    f"{self.name}:{key_line}: unknown key {key!r}"
                    + (f"; {hint}" if hint else _suggest(key))
                )
            if key in _SECTIONS:
                if raw_value is None:
                    continue
                if not isinstance(raw_value, Mapping):
                    raise ConfigError(
                        f"{self.name}:{key_line}: {key}: expected a mapping of keys, "
                        f"found {_kind(_plain(raw_value))}"
                    )
                self._walk(raw_value, f"{key}.")
            elif key in _KEY_TYPES:
                if raw_value is None:  # `key:` with nothing, or `key: null`: the default
                    continue
                line = (
                    key_line
                    if isinstance(raw_value, Mapping | list)
                    else self._line(mapping, "value", raw_key)
                )
                self.values[key] = self._resolve(key, _plain(raw_value))
                self.origins[key] = _Origin(file=self.name, line=line)
                if isinstance(raw_value, list):
                    for index in range(len(raw_value)):
                        item_line = self._line(raw_value, "item", index)
                        self.origins[f"{key}[{index}]"] = _Origin(file=self.name, line=item_line)
            else:
                raise ConfigError(f"{self.name}:{key_line}: unknown key {key!r}{_suggest(key)}")

    def _resolve(self, key: str, value: Any) -> Any:
        """A relative path in the file is relative to the file's directory."""
        if key in _PATH_KEYS and isinstance(value, str):
            text = value.strip()
            if text and not text.startswith("~") and not os.path.isabs(text):
                return str(self.directory / text)
        return value


def _environment_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, _Origin]]:
    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    for variable, key in _ENV_VARS.items():
        text = environ.get(variable, "").strip()
        if text:  # an empty variable is the same as an unset one
            values[key] = text
            origins[key] = _Origin(variable=variable)
    return values, origins


def _override_layer(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, _Origin]]:
    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    for key, value in overrides.items():
        if key not in _KEY_TYPES:
            raise ConfigError(f"unknown configuration key {key!r}{_suggest(key)}")
        if value is None:  # the flag was not given
            continue
        values[key] = list(value) if isinstance(value, tuple) else value
        origins[key] = _Origin(command_line=True)
    return values, origins


def ignored_environment(environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line for each `WATERFLOW_*` variable that is set, configures nothing, and is named
    so like a configuration variable that it is most likely that one misspelt.

    `load_config` ignores them; `waterflow-agent run` logs these lines as warnings once logging
    is set up. Other `WATERFLOW_*` variables are not reported: they belong to the `waterflow`
    command, the server, a node (`WATERFLOW_GHA_*`) or a plugin, in an environment they share.
    """
    lines = []
    for variable in sorted(environ):
        if (
            not variable.startswith(ENV_PREFIX)
            or variable in _ENV_VARS
            or variable in NON_CONFIG_VARIABLES
            or variable.startswith(NON_CONFIG_PREFIXES)
        ):
            continue
        close = difflib.get_close_matches(variable, list(_ENV_VARS), n=1, cutoff=0.8)
        if close:
            lines.append(
                f"ignoring {variable}: it is not a configuration variable; did you mean {close[0]}?"
            )
    return lines


# --- checks that need the structured value ---------------------------------------------------

_QUEUE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def _host_port_problem(value: str) -> str | None:
    host, colon, port = value.rpartition(":")
    if colon and host and port.isdigit() and 0 < int(port) < 65536 and " " not in value:
        return None
    return f"{value!r} is not a host:port address, e.g. localhost:7233"


def _too_short(value: timedelta) -> str:
    return f"{_format_duration(value)!r} is too short; it must be longer than 0s"


def _semantic_problems(config: AgentConfig) -> Iterator[tuple[str, str]]:
    """(key, message) for every value that has the right type but is not allowed."""
    temporal, agent = config.temporal, config.agent
    problem = _host_port_problem(temporal.address)
    if problem:
        yield "temporal.address", problem
    if temporal.connection_timeout <= timedelta(0):
        yield "temporal.connection_timeout", _too_short(temporal.connection_timeout)
    if temporal.max_retries < 0:
        yield "temporal.max_retries", f"{temporal.max_retries} is negative; use 0 or more"
    tls = temporal.tls
    if (tls.client_cert is None) != (tls.client_key is None):
        given, missing = (
            ("client_cert", "client_key")
            if tls.client_key is None
            else (
                "client_key",
                "client_cert",
            )
        )
        yield (
            f"temporal.tls.{given}",
            f"set without temporal.tls.{missing}; give both or neither",
        )
    for index, name in enumerate(agent.task_queues):
        if len(name) > 255 or not _QUEUE_NAME.fullmatch(name):
            yield (
                f"agent.task_queues[{index}]",
                f"{name!r} is not a valid task queue name; use letters, digits and hyphens, "
                "starting and ending with a letter or digit, at most 255 characters",
            )
    for key, number in (
        ("agent.max_concurrent_activities", agent.max_concurrent_activities),
        ("agent.max_concurrent_workflow_tasks", agent.max_concurrent_workflow_tasks),
    ):
        if number < 1:
            yield key, f"{number} is too small; it must be at least 1"
    if agent.step_heartbeat_interval <= timedelta(0):
        yield "agent.step_heartbeat_interval", _too_short(agent.step_heartbeat_interval)
    server = config.server
    if server.address is not None and server.token is None:
        yield (
            "server.address",
            "set without server.token; the server refuses calls without an agent token "
            "(WATERFLOW_SERVER_TOKEN)",
        )


# --- the API -----------------------------------------------------------------------------------

_NO_OVERRIDES: Mapping[str, Any] = MappingProxyType({})


def _nest(values: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in values.items():
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return tree


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] = _NO_OVERRIDES,
) -> AgentConfig:
    """Load and check the configuration: defaults < the YAML file at `path` < `environ`
    (`WATERFLOW_<SECTION>_<KEY>`) < `overrides` (dotted keys from command-line flags; a None
    value means the flag was not given). Raises `ConfigError`."""
    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    layers: list[tuple[dict[str, Any], dict[str, _Origin]]] = []
    if path is not None:
        file = _FileLayer(path)
        layers.append((file.values, file.origins))
    layers.append(_environment_layer(environ))
    layers.append(_override_layer(overrides))
    for layer_values, layer_origins in layers:
        for key, value in layer_values.items():
            values[key] = value
            for stale in [o for o in origins if o == key or o.startswith(f"{key}[")]:
                del origins[stale]
        origins.update(layer_origins)
    values.setdefault("agent.work_dir", str(_data_home(environ) / "waterflow" / "work"))

    def fail(key: str, message: str) -> ConfigError:
        origin = origins.get(key) or origins.get(key.partition("[")[0]) or _DEFAULT_ORIGIN
        return ConfigError(f"{origin.locate(key)}: {message}")

    try:
        config = _converter.structure(_nest(values), AgentConfig)
    except ClassValidationError as exc:
        key, leaf = _first_failure(exc)
        if isinstance(leaf, _Invalid):
            raise fail(
                key if leaf.index is None else f"{key}[{leaf.index}]", leaf.message
            ) from None
        raise fail(key, f"{type(leaf).__name__}: {leaf}") from None

    if "log.output_path" not in values:
        config = attrs.evolve(
            config, log=attrs.evolve(config.log, output_path=config.agent.work_dir.parent / "logs")
        )
    for key, message in _semantic_problems(config):
        raise fail(key, message)
    return config


def validate_for_run(config: AgentConfig) -> None:
    """What `waterflow-agent run` needs beyond a well-formed configuration."""
    if not config.agent.task_queues:
        raise ConfigError(
            "agent.task_queues: no task queue given; set it in the config file, "
            "WATERFLOW_AGENT_TASK_QUEUES or --task-queues"
        )


def _scrub_address(address: str | None) -> str | None:
    """Drop credentials from `user:password@host:port` style addresses."""
    if address is None or "@" not in address:
        return address
    scheme, sep, rest = address.rpartition("://")
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


_unstructurer = cattrs.Converter()
_unstructurer.register_unstructure_hook(timedelta, _format_duration)
_unstructurer.register_unstructure_hook(Path, str)
_unstructurer.register_unstructure_hook_func(lambda t: t == tuple[str, ...], list)


def redacted(config: AgentConfig) -> dict[str, Any]:
    """The configuration as plain JSON-ready data for the "Configuration loaded" log line.

    Durations are written like `30s`, paths as strings; credentials in addresses are masked.
    """
    data: dict[str, Any] = _unstructurer.unstructure(config)
    data["temporal"]["address"] = _scrub_address(config.temporal.address)
    data["server"]["address"] = _scrub_address(config.server.address)
    if config.server.token is not None:
        data["server"]["token"] = "***"
    return data


_DYNAMIC_DEFAULTS = {
    "agent.id": "<hostname>-<pid>",
    "agent.work_dir": "~/.local/share/waterflow/work",
    "log.output_path": "<agent.work_dir>/../logs",
}


def _default_text(key: str) -> str:
    """How the default of a dotted key reads in docs/configuration.md (checked by a test)."""
    if key in _DYNAMIC_DEFAULTS:
        return _DYNAMIC_DEFAULTS[key]
    value: Any = AgentConfig()
    for part in key.split("."):
        value = getattr(value, part)
    if value is None:
        return "none"
    if isinstance(value, timedelta):
        return _format_duration(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[]"
    return str(value)
