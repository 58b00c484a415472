"""The server's configuration: defaults, then a YAML file, then `WATERFLOW_*` variables, then flags.

As with the agent, each later source wins key by key, and a bad value is one line that names
the key, where its value came from (`file:line`, the variable, or the command line) and what is
expected. The key `listen.address` is set by `WATERFLOW_LISTEN_ADDRESS`; docs/server.md is the
reference for every key.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

__all__ = [
    "CONFIG_KEYS",
    "AuthSettings",
    "ConfigError",
    "DatabaseSettings",
    "ListenSettings",
    "RegistrySettings",
    "ServerConfig",
    "TemporalSettings",
    "duration_text",
    "env_var_for",
    "load_config",
    "redacted",
]

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]
LogFormat: TypeAlias = Literal["json", "console"]


class ConfigError(Exception):
    """A configuration problem, in one line that names the key and where its value came from."""


def _default_database() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "waterflow" / "server.db"


@attrs.frozen
class ListenSettings:
    """`listen`: where the gRPC endpoint listens, and its TLS certificate."""

    address: str = "0.0.0.0:9090"
    tls_cert: Path | None = None
    tls_key: Path | None = None


@attrs.frozen
class DatabaseSettings:
    """`database`: the SQLite file of node reports and step logs, and how long a run's step
    logs are kept after its last line (`0s`: for ever)."""

    path: Path = attrs.field(factory=_default_database)
    log_retention: timedelta = timedelta(days=30)


@attrs.frozen
class AuthSettings:
    """`auth`: the bearer tokens the server accepts, by role."""

    agent_tokens: tuple[str, ...] = ()
    user_tokens: tuple[str, ...] = ()


@attrs.frozen
class RegistrySettings:
    """`registry`: how long an agent counts as live after its last report or heartbeat, and
    how long after that the server forgets it (`0s`: never)."""

    agent_lease: timedelta = timedelta(seconds=30)
    forget_after: timedelta = timedelta(days=30)


@attrs.frozen
class TemporalSettings:
    """`temporal`: the Temporal frontend runs are submitted to."""

    address: str = "localhost:7233"
    namespace: str = "default"


@attrs.frozen
class LogSettings:
    level: LogLevel = "info"
    format: LogFormat = "json"


@attrs.frozen
class ServerConfig:
    listen: ListenSettings = ListenSettings()
    database: DatabaseSettings = attrs.field(factory=DatabaseSettings)
    auth: AuthSettings = AuthSettings()
    registry: RegistrySettings = RegistrySettings()
    temporal: TemporalSettings = TemporalSettings()
    log: LogSettings = LogSettings()


_SECTIONS: dict[str, type] = {
    "listen": ListenSettings,
    "database": DatabaseSettings,
    "auth": AuthSettings,
    "registry": RegistrySettings,
    "temporal": TemporalSettings,
    "log": LogSettings,
}
for _cls in (*_SECTIONS.values(), ServerConfig):
    attrs.resolve_types(_cls)

_KEY_TYPES: dict[str, Any] = {
    f"{section}.{field.name}": field.type
    for section, cls in _SECTIONS.items()
    for field in attrs.fields(cls)
}
#: Every configuration key, dotted, in the order of the classes.
CONFIG_KEYS: tuple[str, ...] = tuple(_KEY_TYPES)
_SECRET_KEYS = frozenset({"auth.agent_tokens", "auth.user_tokens"})


def env_var_for(key: str) -> str:
    """`listen.address` is set by `WATERFLOW_LISTEN_ADDRESS`."""
    return "WATERFLOW_" + key.upper().replace(".", "_")


_ENV_VARS = {env_var_for(k): k for k in CONFIG_KEYS}


@attrs.frozen
class _Origin:
    file: str | None = None
    line: int = 0
    variable: str | None = None
    command_line: bool = False

    def locate(self, key: str) -> str:
        if self.file is not None:
            return f"{self.file}:{self.line}: {key}"
        if self.variable is not None:
            return f"{key} (from {self.variable})"
        if self.command_line:
            return f"{key} (from the command line)"
        return key


class _Invalid(Exception):
    pass


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, list(CONFIG_KEYS) + list(_SECTIONS), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- values ------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return repr("true" if value else "false")
    return repr(str(value))


def _convert(key: str, kind: Any, value: Any) -> Any:
    if kind is str or kind == (str | None):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _Invalid(f"{_show(value)} is not a string")
        if not str(value).strip():
            raise _Invalid("must not be empty")
        return str(value).strip()
    if kind == (Path | None) or kind is Path:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid(f"{_show(value)} is not a path")
        return Path(os.path.abspath(Path(value.strip()).expanduser()))
    if kind is timedelta:
        text = value.strip() if isinstance(value, str) else ""
        if not _DURATION.fullmatch(text):
            raise _Invalid(f"{_show(value)} is not a duration; write it like 30s, 5m or 1h30m")
        ms = sum(float(n) * _UNIT_MS[u] for n, u in _DURATION_PART.findall(text))
        return timedelta(milliseconds=ms)
    if kind == tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise _Invalid(f"{_show(value)} is not a list")
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise _Invalid(f"{_show(item)} is not a string; put it in quotes")
            if item.strip() and item.strip() not in out:
                out.append(item.strip())
        return tuple(out)
    choices = get_args(kind)
    name = value.strip().lower() if isinstance(value, str) else None
    if name == "warn" and "warning" in choices:
        name = "warning"
    if name not in choices:
        raise _Invalid(f"{_show(value)} is not one of {', '.join(choices)}")
    return name


# --- sources -----------------------------------------------------------------------------------


def _file_layer(path: str) -> tuple[dict[str, Any], dict[str, _Origin]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = (getattr(exc, "problem", None) or str(exc)).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    if document is None:
        return values, origins
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{path}:1: expected a mapping of sections ({', '.join(_SECTIONS)}), "
            f"found {_show(document)}"
        )
    base = Path(os.path.abspath(path)).parent

    def line_of(node: Any, key: Any) -> int:
        try:
            return int(node.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, TypeError):
            return 1

    for section, body in document.items():
        at = line_of(document, section)
        if section not in _SECTIONS:
            raise ConfigError(f"{path}:{at}: unknown section {section!r}{_suggest(str(section))}")
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{path}:{at}: {section}: expected a mapping of keys")
        for name, value in body.items():
            key = f"{section}.{name}"
            at = line_of(body, name)
            if key not in _KEY_TYPES:
                raise ConfigError(f"{path}:{at}: unknown key {key!r}{_suggest(key)}")
            if value is None:
                continue
            if isinstance(value, str) and _KEY_TYPES[key] in (Path, Path | None):
                text = value.strip()
                if text and not text.startswith("~") and not os.path.isabs(text):
                    value = str(base / text)
            if isinstance(value, list):
                value = list(value)
            values[key] = value
            origins[key] = _Origin(file=path, line=at)
    return values, origins


def _problems(config: ServerConfig) -> Iterator[tuple[str, str]]:
    for key, address in (
        ("listen.address", config.listen.address),
        ("temporal.address", config.temporal.address),
    ):
        host, colon, port = address.rpartition(":")
        lowest = 0 if key == "listen.address" else 1  # port 0: any free port
        if not (colon and host and port.isdigit() and lowest <= int(port) < 65536):
            yield key, f"{address!r} is not a host:port address, e.g. 0.0.0.0:9090"
    listen = config.listen
    if (listen.tls_cert is None) != (listen.tls_key is None):
        given, missing = (
            ("tls_cert", "tls_key") if listen.tls_key is None else ("tls_key", "tls_cert")
        )
        yield f"listen.{given}", f"set without listen.{missing}; give both or neither"
    if config.registry.agent_lease < timedelta(seconds=1):
        yield "registry.agent_lease", "must be at least 1s"
    if timedelta(0) < config.database.log_retention < timedelta(hours=1):
        yield "database.log_retention", "must be at least 1h (or 0s to keep logs for ever)"
    if timedelta(0) < config.registry.forget_after < timedelta(hours=1):
        yield "registry.forget_after", "must be at least 1h (or 0s to keep agents for ever)"
    auth = config.auth
    for key, tokens in (
        ("auth.agent_tokens", auth.agent_tokens),
        ("auth.user_tokens", auth.user_tokens),
    ):
        for index, token in enumerate(tokens):
            if len(token) < 16:
                yield (
                    f"{key}[{index}]",
                    "is shorter than 16 characters; make one with `waterflow token`",
                )
    shared = set(auth.agent_tokens) & set(auth.user_tokens)
    if shared:
        yield (
            "auth.user_tokens",
            "a token is both an agent token and a user token; give each role its own",
        )
    if not auth.user_tokens:
        yield (
            "auth.user_tokens",
            "no user token given; every call needs one (make one with `waterflow token`, set "
            "WATERFLOW_AUTH_USER_TOKENS)",
        )
    if not auth.agent_tokens:
        yield (
            "auth.agent_tokens",
            "no agent token given; agents cannot report without one (make one with "
            "`waterflow token`, set WATERFLOW_AUTH_AGENT_TOKENS)",
        )


def load_config(
    path: str | None,
    *,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """defaults < the file at `path` < `environ` < `overrides` (dotted keys; None: not given).
    Raises `ConfigError`."""
    values: dict[str, Any] = {}
    origins: dict[str, _Origin] = {}
    if path is not None:
        values, origins = _file_layer(path)
    for variable, key in _ENV_VARS.items():
        text = environ.get(variable, "").strip()
        if text:
            values[key] = text
            origins[key] = _Origin(variable=variable)
    for key, value in (overrides or {}).items():
        if key not in _KEY_TYPES:
            raise ConfigError(f"unknown configuration key {key!r}{_suggest(key)}")
        if value is not None:
            values[key] = value
            origins[key] = _Origin(command_line=True)

    def fail(key: str, message: str) -> ConfigError:
        origin = origins.get(key.partition("[")[0], _Origin())
        return ConfigError(f"{origin.locate(key)}: {message}")

    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, value in values.items():
        try:
            converted = _convert(key, _KEY_TYPES[key], value)
        except _Invalid as exc:
            raise fail(key, str(exc)) from None
        section, _, name = key.partition(".")
        sections[section][name] = converted
    config = ServerConfig(**{name: _SECTIONS[name](**kw) for name, kw in sections.items()})
    for key, message in _problems(config):
        raise fail(key, message)
    return config


def duration_text(value: timedelta) -> str:
    """A duration as the configuration writes it: `30d`, `1h30m`, `30s`, `0s`."""
    seconds = value.total_seconds()
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{int(count)}{unit}")
    if seconds or not parts:
        parts.append(f"{seconds:g}s")
    return "".join(parts)


def redacted(config: ServerConfig) -> dict[str, Any]:
    """The configuration for the "Configuration loaded" log line; tokens are counted, not shown."""
    data: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        section, _, name = key.partition(".")
        value = getattr(getattr(config, section), name)
        if key in _SECRET_KEYS:
            value = f"{len(value)} token(s)"
        elif isinstance(value, timedelta):
            value = duration_text(value)
        elif isinstance(value, Path):
            value = str(value)
        data.setdefault(section, {})[name] = value
    return data
