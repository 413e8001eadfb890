"""The keys of each sink kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pollerd.config.base import (
    ByteSize,
    EnvPath,
    HttpUrl,
    PositiveDuration,
    Secret,
    SinkBase,
)


class StdoutSinkConfig(SinkBase):
    """``kind = "stdout"``: one line per change, JSON (for pipes) or text (for people)."""

    kind: Literal["stdout"]
    format: Literal["json", "text"] = "json"


class FilesystemSinkConfig(SinkBase):
    """``kind = "filesystem"``: every version under ``<root>/<source>/<resource>/``."""

    kind: Literal["filesystem"]
    root: Path
    keep_versions: int | None = Field(default=None, ge=1)


class WebhookSinkConfig(SinkBase):
    """``kind = "webhook"``: one signed POST per change."""

    kind: Literal["webhook"]
    url: HttpUrl
    body: Literal["payload", "event", "patch"] = "payload"
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
        return self

    def secret_values(self) -> Iterator[str]:
        """The signing secret and header values."""
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
