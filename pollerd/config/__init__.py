"""The configuration file: pydantic models, secret resolution and error reporting by key path.

This is the only module that reads environment variables and secret files.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)

from pollerd.config.ap import ApSourceConfig
from pollerd.config.base import (
    Duration,
    EnvPath,
    Name,
    PositiveDuration,
    Secret,
    Strict,
    database_url,
    host_port,
    url_passwords,
)
from pollerd.config.dc import DcSourceConfig
from pollerd.config.fso import CKAN_PRESETS, FSO_FILE_HOSTS, FsoSelector, FsoSourceConfig
from pollerd.config.http import HttpSourceConfig, ResourceConfig
from pollerd.config.sinks import (
    ChatSinkConfig,
    CommandSinkConfig,
    FilesystemSinkConfig,
    ObjectStoreSinkConfig,
    PostgresSinkConfig,
    StdoutSinkConfig,
    WebhookSinkConfig,
)
from pollerd.core.masking import MASKED

__all__ = [
    "CKAN_PRESETS",
    "FSO_FILE_HOSTS",
    "ApSourceConfig",
    "ChatSinkConfig",
    "CommandSinkConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "DcSourceConfig",
    "FilesystemSinkConfig",
    "FsoSelector",
    "FsoSourceConfig",
    "HttpSourceConfig",
    "ObjectStoreSinkConfig",
    "PostgresSinkConfig",
    "ResourceConfig",
    "SinkConfig",
    "SourceConfig",
    "StdoutSinkConfig",
    "WebhookSinkConfig",
    "load_config",
    "load_report_config",
    "parse_config",
]


MIN_CONTROL_TOKEN = 16


class DaemonConfig(Strict):
    """The ``[daemon]`` table."""

    state_dir: Path = Path("state")
    metrics: Annotated[str, AfterValidator(host_port)] = "127.0.0.1:9108"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_concurrency: int = Field(default=32, ge=1)
    max_per_host: int = Field(default=6, ge=1)
    drain_grace: Duration = 10.0
    user_agent: str | None = None
    stall_after: PositiveDuration | None = None  # default: 3 x the longest interval, at least 60 s
    startup_grace: Duration = 60.0
    redeliver_keep: Duration = (
        24 * 3600.0
    )  # every version's payload, for redelivery (0: pending, dead, current)
    database: Annotated[Secret, AfterValidator(database_url)] | None = None
    database_password_file: EnvPath | None = None
    replica: Name | None = None  # with database: this replica's name (default: host name and pid)
    lease_ttl: PositiveDuration = 15.0  # with database: how long a silent replica keeps its work
    record: EnvPath | None = None  # keep every raw answer of every source here (pollerd replay)
    control_token_file: EnvPath | None = None  # set: the status server takes the desk's decisions
    _database_password: SecretStr | None = PrivateAttr(default=None)  # read from the file
    _control_token: SecretStr | None = PrivateAttr(default=None)  # read from control_token_file

    @property
    def control_token(self) -> SecretStr | None:
        """The token the status page's desk form needs (None: the status server is read-only)."""
        return self._control_token

    @property
    def database_password(self) -> SecretStr | None:
        """The password ``database_password_file`` holds (None: the URL, PGPASSWORD or .pgpass)."""
        return self._database_password

    @model_validator(mode="before")
    @classmethod
    def _no_password_in_the_file(cls, data: Any) -> Any:
        if isinstance(data, dict) and "database_password" in data:
            raise ValueError("database_password: not a key; use database_password_file or PGPASSWORD")
        return data

    def secret_values(self) -> Iterator[str]:
        """The database password, wherever it was given (for redaction)."""
        if self.database is not None:
            yield from url_passwords(self.database.get_secret_value())
        if self.database_password is not None:
            yield self.database_password.get_secret_value()
        if self.control_token is not None:
            yield self.control_token.get_secret_value()


SourceConfig = Annotated[
    HttpSourceConfig | FsoSourceConfig | ApSourceConfig | DcSourceConfig, Field(discriminator="kind")
]


SinkConfig = Annotated[
    StdoutSinkConfig
    | FilesystemSinkConfig
    | WebhookSinkConfig
    | CommandSinkConfig
    | ChatSinkConfig
    | ObjectStoreSinkConfig
    | PostgresSinkConfig,
    Field(discriminator="kind"),
]


class Config(Strict):
    """The whole configuration file."""

    daemon: DaemonConfig = DaemonConfig()
    sources: list[SourceConfig] = Field(min_length=1)
    sinks: list[SinkConfig] = Field(min_length=1)

    def secret_values(self) -> list[str]:
        """Every secret value in the configuration (for redaction), longest first."""
        tables = (self.daemon, *self.sources, *self.sinks)
        values = {value for table in tables for value in table.secret_values() if value}
        return sorted(values, key=len, reverse=True)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``."""
        return next(source for source in self.sources if source.name == name)


def _kinds(union: Any) -> tuple[str, ...]:
    """The ``kind`` values a discriminated union of config tables accepts."""
    members = get_args(get_args(union)[0]) or (get_args(union)[0],)
    return tuple(kind for model in members for kind in get_args(model.model_fields["kind"].annotation))


_KINDS = {"sources": _kinds(SourceConfig), "sinks": _kinds(SinkConfig)}


class ConfigError(Exception):
    """A configuration file that cannot be used; ``problems`` holds 'key.path: reason' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: Path, missing: list[str] | None = None) -> Config:
    """Read, validate and resolve a configuration file, or raise ConfigError with every problem.

    ``missing`` (``check-config``): environment variables and secret files that are not there
    are listed in it instead of being problems, so a file can be checked where it does not run.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from exc
    return parse_config(raw, missing)


def load_report_config(path: Path) -> Config:
    """The config as the on-call's tools read it (``status``, ``deliveries``, ``redeliver``,
    ``healthcheck``): they need no secret of a source or sink, so none is resolved (with the
    systemd unit's credentials those exist only for the service); only a database the state lives
    in must be reachable. Every secret that did resolve is masked in what they print."""
    missing: list[str] = []
    config = load_config(path, missing)
    database = config.daemon.database
    if database is not None and not database.get_secret_value():
        raise ConfigError(["daemon.database: the state is in that database; its variable is not set here"])
    MASKED.use(config.secret_values())
    return config


def parse_config(raw: dict[str, Any], missing: list[str] | None = None) -> Config:
    """Validate an already parsed TOML document, or raise ConfigError with every problem."""
    problems = list(_check_names(raw))
    try:
        config = Config.model_validate(raw, context=None if missing is None else {"missing": missing})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw) + problems) from None
    problems += _cross_check(config)
    if problems:
        raise ConfigError(problems)
    return _with_secret_files(config, missing)


def _describe(exc: ValidationError, raw: Mapping[str, Any]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = _key_path(error["loc"], raw)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            path = f"{path}.kind"
            kinds = _KINDS.get(str(error["loc"][0]), ())
            message = f"missing or unknown kind; expected one of: {', '.join(kinds)}"
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _key_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """Render a pydantic location as ``sources[2].interval``, dropping union tags."""
    path = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(node, Mapping) and part not in node and node.get("kind") == part:
            continue  # the discriminated union's tag, not a key the user wrote
        if node is not None and not isinstance(node, Mapping):
            continue  # a union's tag under a value that is not a table: no key there either
        path += f".{part}" if path else part
        node = node.get(part) if isinstance(node, Mapping) else None
    return path


def _check_names(raw: Mapping[str, Any]) -> Iterator[str]:
    """Names used twice and sinks that do not exist, read from the raw document, so they are
    reported beside every other problem (also when the tables themselves have some)."""
    tables = {
        table: [t if isinstance(t, Mapping) else {} for t in raw.get(table) or []]
        for table in ("sources", "sinks")
        if isinstance(raw.get(table), list)
    }
    for table, rows in tables.items():
        yield from _duplicates(table, [row.get("name") for row in rows])
    sink_names = {row.get("name") for row in tables.get("sinks", []) if isinstance(row.get("name"), str)}
    for i, source in enumerate(tables.get("sources", [])):
        sinks = source.get("sinks")
        for j, sink in enumerate(sinks if isinstance(sinks, list) else []):
            if isinstance(sink, str) and sink not in sink_names:
                yield f"sources[{i}].sinks[{j}]: no sink is called {sink!r}"


def _cross_check(config: Config) -> list[str]:
    problems = []
    for i, source in enumerate(config.sources):
        if source.jitter >= source.interval:
            problems.append(f"sources[{i}].jitter: must be shorter than the interval")
        problems += _duplicate_resources(i, source)
    return problems


def _duplicates(table: str, names: list[Any]) -> Iterator[str]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if isinstance(name, str) and name in seen:
            yield f"{table}[{i}].name: {name!r} is used twice"
        if isinstance(name, str):
            seen.add(name)


def _duplicate_resources(index: int, source: SourceConfig) -> Iterator[str]:
    seen: set[str] = set()
    if not isinstance(source, HttpSourceConfig):
        return
    for j, resource in enumerate(source.resources):
        if resource.id in seen:
            yield f"sources[{index}].resources[{j}].id: {resource.id!r} is used twice"
        seen.add(resource.id)


def _with_secret_files(config: Config, missing: list[str] | None) -> Config:
    """Read every secret file into its table; a missing file is an error with its key path (or,
    with ``missing``, listed there)."""
    problems: list[str] = []
    sources = []
    for i, source in enumerate(config.sources):
        update: dict[str, Any] = {}
        headers = dict(source.headers)
        for header, path in source.header_files.items():
            headers[header] = _read_secret(path, f"sources[{i}].header_files.{header}", problems)
        update["headers"] = headers
        if isinstance(source, ApSourceConfig) and source.api_key_file is not None:
            update["api_key"] = _read_secret(source.api_key_file, f"sources[{i}].api_key_file", problems)
        if isinstance(source, DcSourceConfig) and source.auth_token_file is not None:
            update["auth_token"] = _read_secret(
                source.auth_token_file, f"sources[{i}].auth_token_file", problems
            )
        sources.append(source.model_copy(update=update))
    daemon = config.daemon
    if daemon.database_password_file is not None:
        password = _read_secret(daemon.database_password_file, "daemon.database_password_file", problems)
        daemon = daemon.model_copy()
        daemon._database_password = password
    if daemon.control_token_file is not None:
        token = _read_secret(daemon.control_token_file, "daemon.control_token_file", problems)
        unread = any(problem.startswith("daemon.control_token_file") for problem in problems)
        if not unread and len(token.get_secret_value()) < MIN_CONTROL_TOKEN:
            problems.append(
                f"daemon.control_token_file: the token is shorter than {MIN_CONTROL_TOKEN} characters "
                "(make one with: openssl rand -hex 24)"
            )
        daemon = daemon.model_copy()
        daemon._control_token = token
    sinks = []
    for i, sink in enumerate(config.sinks):
        if isinstance(sink, WebhookSinkConfig) and sink.secret_file is not None:
            sink = sink.model_copy(
                update={"secret": _read_secret(sink.secret_file, f"sinks[{i}].secret_file", problems)}
            )
        if isinstance(sink, ChatSinkConfig) and sink.access_token_file is not None:
            token = _read_secret(sink.access_token_file, f"sinks[{i}].access_token_file", problems)
            sink = sink.model_copy(update={"access_token": token})
        if isinstance(sink, PostgresSinkConfig) and sink.password_file is not None:
            password = _read_secret(sink.password_file, f"sinks[{i}].password_file", problems)
            sink = sink.model_copy()
            sink._password = password
        sinks.append(sink)
    if problems and missing is not None:
        missing += problems
    elif problems:
        raise ConfigError(problems)
    return config.model_copy(update={"daemon": daemon, "sources": sources, "sinks": sinks})


def _read_secret(path: Path, key: str, problems: list[str]) -> SecretStr:
    try:
        return SecretStr(path.read_text(encoding="utf-8").strip())
    except OSError as exc:
        problems.append(f"{key}: {path}: {exc.strerror}")
        return SecretStr("")
