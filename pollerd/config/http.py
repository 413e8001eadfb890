"""``kind = \"http\"``: the keys of a source that watches a fixed list of URLs."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from pollerd.config.base import (
    HttpUrl,
    Name,
    SourceBase,
    Strict,
)


class ResourceConfig(Strict):
    """One explicitly named resource of an ``http`` source."""

    id: Name
    url: HttpUrl
    format: Literal["auto", "json", "text", "binary"] | None = None
    allow_empty: bool | None = None


class HttpSourceConfig(SourceBase):
    """``kind = "http"``: a fixed list of URLs, for any server."""

    kind: Literal["http"]
    urls: list[HttpUrl] = []
    resources: list[ResourceConfig] = []

    @model_validator(mode="after")
    def _has_resources(self) -> HttpSourceConfig:
        if not self.urls and not self.resources:
            raise ValueError("an http source needs 'urls' or 'resources'")
        return self
