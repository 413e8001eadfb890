"""The building blocks of the configuration: value types, the strict base, keys every kind shares.

This module and ``config`` are the only ones that read environment variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from pollerd.core.durations import format_duration, parse_duration, parse_size
from pollerd.core.election import ELECTION_TYPES

EVENT_NAMES = ("versions", "election", *ELECTION_TYPES)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _duration(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f'{value!r} has no unit; write "{value}s" for seconds (or "500ms", "2m", "1h")')
    return value


def _size(value: object) -> object:
    return parse_size(value) if isinstance(value, str | int) and not isinstance(value, bool) else value


def _expand_env(value: object, info: ValidationInfo) -> object:
    """Replace every ``${NAME}`` with the environment variable; a missing one is an error, or,
    when the validation context has a ``missing`` list (``check-config``), noted there."""
    if not isinstance(value, str):
        return value
    missing = info.context.get("missing") if isinstance(info.context, dict) else None

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in os.environ:
            return os.environ[name]
        if missing is None:
            raise ValueError(f"environment variable {name} is not set")
        missing.append(f"environment variable {name} is not set here")
        return ""

    return _ENV_REFERENCE.sub(lookup, value)


def database_url(value: SecretStr, info: ValidationInfo) -> SecretStr:
    """``daemon.database``: a libpq URL, or left empty by a variable that is not set where the
    file is only checked (``check-config``, the on-call's reports)."""
    checking = isinstance(info.context, dict) and "missing" in info.context
    return value if checking and not value.get_secret_value() else postgres_url(value)


def postgres_url(value: SecretStr) -> SecretStr:
    """A libpq URL (its text is a secret: it may hold the password)."""
    scheme = urlsplit(value.get_secret_value()).scheme
    if scheme not in ("postgresql", "postgres"):
        raise ValueError('must be a libpq URL: "postgresql://user@host/database"')
    return value


def url_passwords(url: str) -> Iterator[str]:
    """The password a URL holds, as written and decoded (for log redaction)."""
    password = urlsplit(url).password
    if password:
        yield unquote(password)
        yield password


def http_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # never the URL itself: a chat or webhook URL's path is a secret
        raise ValueError(f"not an http(s) URL (its scheme is {parts.scheme!r}, its host {parts.hostname!r})")
    return value


_TOKEN_LIKE = 12  # characters: shorter parts of a URL are words, not tokens


def url_secrets(url: str) -> Iterator[str]:
    """What of a chat or webhook URL lets anyone post to it: the URL, its path and query, and
    each token-like part of the path (a Slack webhook's last part travels alone in its errors).
    A short path (``/hook``) holds no token and would mask the same letters in every other URL."""
    parts = urlsplit(url.strip())
    yield url
    if len(parts.path) >= _TOKEN_LIKE:
        yield parts.path
    if len(parts.query) >= _TOKEN_LIKE:
        yield parts.query
    yield from (part for part in parts.path.split("/") if len(part) >= _TOKEN_LIKE)


def host_port(value: str) -> str:
    if value in ("", "off"):
        return ""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not 'host:port' (or 'off')")
    return value


def _host_pattern(value: str) -> str:
    value = value.strip().lower()
    if not _HOST_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a host name, an IP address or '*.suffix'")
    return value


# written back as the config would write it ("30s"), so a dumped config loads again
_AS_WRITTEN = PlainSerializer(format_duration, return_type=str, when_used="json")
Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0), _AS_WRITTEN]
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0), _AS_WRITTEN]
ByteSize = Annotated[int, BeforeValidator(_size), Field(gt=0)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
HttpUrl = Annotated[str, AfterValidator(http_url)]
Secret = Annotated[SecretStr, BeforeValidator(_expand_env)]
EnvPath = Annotated[Path, BeforeValidator(_expand_env)]
HostPattern = Annotated[str, AfterValidator(_host_pattern)]


class Strict(BaseModel):
    """Base for every config table: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceBase(Strict):
    """Keys every source kind shares: schedule, probing, limits, failure handling, routing."""

    kind: str
    name: Name
    interval: PositiveDuration = 30.0
    jitter: Duration = 0.0
    sinks: list[Name] = Field(min_length=1)
    strategy: Literal["auto", "head", "conditional", "always"] = "auto"
    format: Literal["auto", "json", "text", "binary"] = "auto"
    allow_empty: bool = False
    max_bytes: ByteSize = 50 * 1024 * 1024
    timeout: PositiveDuration = 30.0
    backoff_base: PositiveDuration = 2.0
    backoff_max: PositiveDuration = 300.0
    rediscover_after: int = Field(default=3, ge=1)
    fallback_urls: list[HttpUrl] = []
    fallback_after: int = Field(default=3, ge=1)
    headers: dict[str, Secret] = {}
    header_files: dict[str, EnvPath] = {}
    allowed_hosts: list[HostPattern] | None = None
    record: bool | None = None  # keep its raw answers (default: when [daemon] record is set)

    def secret_values(self) -> Iterator[str]:
        """Every secret this source holds, for log redaction."""
        for value in self.headers.values():
            yield value.get_secret_value()


def _event_names(value: object) -> object:
    """``events = "election"`` is ``events = ["election"]``; every name must be known."""
    names = [value] if isinstance(value, str) else value
    if isinstance(names, list):
        unknown = [n for n in names if n not in EVENT_NAMES]
        if unknown:
            known = ", ".join(ELECTION_TYPES)
            raise ValueError(f"unknown event type {unknown[0]!r}: give versions, election, or any of {known}")
    return names


EventNames = Annotated[list[str], BeforeValidator(_event_names), Field(min_length=1)]


class SinkBase(Strict):
    """Keys every sink shares: its name, what it takes (versions, election events, filters) and
    the delivery policy (retry, dead letter, coalescing)."""

    kind: str
    name: Name
    events: EventNames = ["versions"]
    offices: list[str] | None = None
    states: list[str] | None = None
    cantons: list[int] | None = None
    numbers: bool = False  # with "election": what moved between calls too (votes, leads, expected vote)
    min_votes: int = Field(default=0, ge=0)  # a race's smaller batches are folded into the next
    min_margin_change: float = Field(default=0.0, ge=0)  # points; batches moving less are folded
    retry_base: PositiveDuration = 1.0
    retry_max: PositiveDuration = 300.0
    max_attempts: int | None = Field(default=None, ge=1)
    max_age: PositiveDuration | None = None
    coalesce: bool = False
    max_outbox_bytes: ByteSize | None = None

    @model_validator(mode="after")
    def _every_event_kept(self) -> SinkBase:
        if self.events != ["versions"] and (self.coalesce or self.max_outbox_bytes is not None):
            raise ValueError(
                "coalesce and max_outbox_bytes drop older versions: they are for events = "
                '["versions"] only (an election event must never be dropped)'
            )
        return self

    def secret_values(self) -> Iterator[str]:
        """Every secret this sink holds, for log redaction."""
        return iter(())
