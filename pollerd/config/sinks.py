"""The keys of each sink kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, model_validator

from pollerd.config.base import (
    ByteSize,
    Duration,
    EnvPath,
    EventNames,
    HttpUrl,
    PositiveDuration,
    Secret,
    SinkBase,
    Strict,
    http_url,
    postgres_url,
    url_passwords,
    url_secrets,
)
from pollerd.core.languages import LanguageCode
from pollerd.core.templates import TEMPLATE_NAMES, check_template
from pollerd.results.chart_csv import KNOWN_COLUMNS


class StdoutSinkConfig(SinkBase):
    """``kind = "stdout"``: one line per change, JSON (for pipes) or text (for people)."""

    kind: Literal["stdout"]
    format: Literal["json", "text"] = "json"

    @model_validator(mode="before")
    @classmethod
    def _people_read_the_news(cls, data: Any) -> Any:
        """Text is for people: unless ``events`` says otherwise, they see what happened too."""
        if isinstance(data, dict) and data.get("format") == "text" and "events" not in data:
            return {**data, "events": ["versions", "election"]}
        return data


class FilesystemSinkConfig(SinkBase):
    """``kind = "filesystem"``: every version under ``<root>/<source>/<resource>/``."""

    kind: Literal["filesystem"]
    root: Path
    keep_versions: int | None = Field(default=None, ge=1)
    format: Literal["payload", "csv"] = "payload"  # csv: an AP snapshot also as elex's results CSV


class WebhookSinkConfig(SinkBase):
    """``kind = "webhook"``: one signed POST per change."""

    kind: Literal["webhook"]
    url: HttpUrl
    body: Literal["payload", "event", "patch", "delta"] = "payload"
    secret: Secret | None = None
    secret_file: EnvPath | None = None
    timeout: PositiveDuration = 10.0
    inline_max_bytes: ByteSize = 1024 * 1024
    ca_bundle: EnvPath | None = None
    headers: dict[str, Secret] = {}

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookSinkConfig:
        if (self.secret is None) == (self.secret_file is None):
            raise ValueError('a webhook is signed: give secret ("${ENV_VAR}") or secret_file')
        if self.events != ["versions"] and self.body != "event":
            raise ValueError('election events travel in the event JSON: set body = "event"')
        return self

    def secret_values(self) -> Iterator[str]:
        """The signing secret, header values, and what of the URL lets anyone post to it."""
        yield from url_secrets(str(self.url))
        if self.secret is not None:
            yield self.secret.get_secret_value()
        for value in self.headers.values():
            yield value.get_secret_value()


class CommandSinkConfig(SinkBase):
    """``kind = "command"``: run a program per change (an argv list, never a shell)."""

    kind: Literal["command"]
    command: list[str] = Field(min_length=1)
    payload: Literal["stdin", "file"] = "stdin"
    timeout: PositiveDuration = 60.0
    env: dict[str, Secret] = {}

    def secret_values(self) -> Iterator[str]:
        """Environment values given to the program."""
        for value in self.env.values():
            yield value.get_secret_value()


class ChatSinkConfig(SinkBase):
    """``kind = "chat"``: one readable message per election event, or one digest per poll cycle
    when several come at once, to a newsroom's channel: Slack (also Mattermost and Rocket.Chat),
    Teams, Matrix, or plain text; in English, German, French or Italian (``language``), within
    the platform's message size and rate."""

    kind: Literal["chat"]
    url: Secret  # the incoming webhook (a secret: it lets anyone post); Matrix: the homeserver
    format: Literal["slack", "teams", "matrix", "text"] = "slack"
    events: EventNames = ["election"]
    room: str | None = None
    access_token: Secret | None = None
    access_token_file: EnvPath | None = None
    templates: dict[str, str] = {}
    language: LanguageCode = "en"
    group_window: Duration = 2.0
    max_lines: int = Field(default=30, ge=1)
    max_message_size: int | None = Field(default=None, ge=200)  # the platform's limit when unset
    min_interval: Duration | None = None  # between posts; the platform's published rate when unset
    counts_shown: int = Field(default=10, ge=0)
    ops: bool = False
    ops_after: int = Field(default=3, ge=1)
    timeout: PositiveDuration = 10.0

    @model_validator(mode="after")
    def _usable(self, info: ValidationInfo) -> ChatSinkConfig:
        checking = isinstance(info.context, dict) and "missing" in info.context
        if self.url.get_secret_value() or not checking:  # (check-config noted a missing variable)
            http_url(self.url.get_secret_value())
        unknown = sorted(set(self.templates) - set(TEMPLATE_NAMES))
        if unknown:
            raise ValueError(f"templates: no event type {unknown[0]!r} (one of {', '.join(TEMPLATE_NAMES)})")
        for name, template in self.templates.items():
            check_template(name, template)
        if self.format == "matrix":
            if not self.room:
                raise ValueError('format = "matrix" posts to a room: give room ("!id:server")')
            if (self.access_token is None) == (self.access_token_file is None):
                raise ValueError('format = "matrix" needs access_token ("${ENV_VAR}") or access_token_file')
        return self

    def secret_values(self) -> Iterator[str]:
        """The webhook URL (its path and its token-like parts too) and the Matrix access token."""
        yield from url_secrets(self.url.get_secret_value())
        if self.access_token is not None:
            yield self.access_token.get_secret_value()


class ObjectStoreKeys(Strict):
    """Where one resource's objects go (templates of ``{source}``, ``{resource}``, ``{version}``,
    ``{sequence}``, ``{sha256}``, ``{ext}``)."""

    key: str = "{source}/{resource}/{version}.{ext}"
    latest_key: str = "{source}/{resource}/latest.{ext}"

    @model_validator(mode="after")
    def _safe(self) -> ObjectStoreKeys:
        for name in ("key", "latest_key"):
            check_template(name, getattr(self, name))
        if self.key == self.latest_key:
            raise ValueError("key and latest_key must differ: versions would overwrite latest")
        return self


class ObjectStoreSinkConfig(SinkBase):
    """``kind = "objectstore"``: every version under a versioned key, then the ``latest`` key, in
    S3 or an S3-compatible store; credentials from these keys, else the environment, the shared
    credentials file (``profile``) or the instance role. ``format = "csv"``: the version as the CSV
    a chart reads instead (an AP snapshot as elex's results, an FSO file as its cantons' table),
    its rows filtered by ``offices``, ``states`` and ``cantons``, its ``columns`` chosen."""

    kind: Literal["objectstore"]
    bucket: str = Field(min_length=3)
    prefix: str = ""
    endpoint: HttpUrl | None = None
    region: str | None = None
    profile: str | None = None
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    gzip: bool = False
    format: Literal["payload", "csv"] = "payload"
    columns: list[str] | None = Field(default=None, min_length=1)  # format = "csv": chosen, in order
    cache_control: str | None = None  # latest: "max-age=5", or with format = "csv" "no-cache"
    version_cache_control: str = "public, max-age=31536000, immutable"
    event: Literal["metadata", "sidecar"] = "metadata"
    keys: ObjectStoreKeys = ObjectStoreKeys()
    resource_keys: dict[str, ObjectStoreKeys] = {}  # "<source>/<resource>" -> its own keys
    multipart_threshold: ByteSize = 8 * 1024 * 1024
    timeout: PositiveDuration = 60.0

    @model_validator(mode="after")
    def _both_or_neither(self) -> ObjectStoreSinkConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give access_key_id and secret_access_key together (or neither)")
        if self.multipart_threshold < 5 * 1024 * 1024:
            raise ValueError("multipart_threshold: S3 parts are 5 MiB at least")
        if self.columns is not None:
            if self.format != "csv":
                raise ValueError('columns choose a CSV\'s columns: set format = "csv"')
            unknown = [c for c in self.columns if c not in KNOWN_COLUMNS]
            if unknown:
                raise ValueError(f"columns: no table has a column {unknown[0]!r}")
        return self

    @property
    def latest_cache_control(self) -> str:
        """``Cache-Control`` of the latest key: a chart's CSV is never cached."""
        if self.cache_control is not None:
            return self.cache_control
        return "no-cache" if self.format == "csv" else "max-age=5"

    def keys_of(self, source: str, resource: str) -> ObjectStoreKeys:
        """The key templates of one resource."""
        return self.resource_keys.get(f"{source}/{resource}", self.keys)

    def secret_values(self) -> Iterator[str]:
        """The access keys."""
        for value in (self.access_key_id, self.secret_access_key):
            if value is not None:
                yield value.get_secret_value()


class PostgresSinkConfig(SinkBase):
    """``kind = "postgres"``: AP results as elex's tables (races, reporting units, results) kept
    current by upsert, one transaction per change; every other payload into ``documents`` (with a
    ``latest`` view), FSO cantons and Democracy Club ballots as rows; election events as rows."""

    kind: Literal["postgres"]
    url: Secret
    events: EventNames = ["versions", "election"]
    password_file: EnvPath | None = None
    prefix: str = Field(default="", pattern=r"^([a-z_][a-z0-9_]{0,29})?$")
    keep_versions: int | None = Field(default=None, ge=1)  # documents kept per resource (None: all)
    timeout: PositiveDuration = 30.0

    @model_validator(mode="after")
    def _libpq(self, info: ValidationInfo) -> PostgresSinkConfig:
        checking = isinstance(info.context, dict) and "missing" in info.context
        if self.url.get_secret_value() or not checking:  # (check-config noted a missing variable)
            postgres_url(self.url)
        return self

    def secret_values(self) -> Iterator[str]:
        """The password, in the URL or from the file."""
        yield from url_passwords(self.url.get_secret_value())
        if self.password is not None:
            yield self.password.get_secret_value()

    @property
    def password(self) -> SecretStr | None:
        """The password ``password_file`` holds (None: the URL, PGPASSWORD or .pgpass)."""
        return self._password

    _password: SecretStr | None = PrivateAttr(default=None)
