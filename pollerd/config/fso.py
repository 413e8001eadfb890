"""``kind = \"fso\"``: the keys of a source that watches an opendata.swiss (CKAN) package."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from pollerd.config.base import (
    HostPattern,
    PositiveDuration,
    SourceBase,
    Strict,
    http_url,
)

CKAN_PRESETS = {
    "production": "https://ckan.opendata.swiss/api/3/action",
    "test": "https://ckan.ogdch-abnahme.clients.liip.ch/api/3/action",
}
FSO_FILE_HOSTS = ("*.voteinfo-app.ch", "*.amazonaws.com", "dam-api.bfs.admin.ch", "www.bfs.admin.ch")


def _ckan_api(value: str) -> str:
    return http_url(CKAN_PRESETS.get(value, value)).rstrip("/")


class FsoSelector(Strict):
    """One ``[[sources.select]]`` table: a resource matches when every given criterion does."""

    file: str | None = None
    id: str | None = None
    format: str | None = None
    title: str | None = None
    language: Literal["de", "fr", "it", "en", "rm"] | None = None
    allow_empty: bool | None = None

    @model_validator(mode="after")
    def _has_criterion(self) -> FsoSelector:
        if not (self.file or self.id or self.format or self.title or self.language):
            raise ValueError("a selector needs at least one of file, id, format, title, language")
        return self


class FsoSourceConfig(SourceBase):
    """``kind = "fso"``: the files of an opendata.swiss (CKAN) package, found through its API."""

    kind: Literal["fso"]
    package: Annotated[str, Field(pattern=r"^[a-z0-9_-]{2,100}$")]
    api: Annotated[str, AfterValidator(_ckan_api)] = CKAN_PRESETS["production"]
    discovery_interval: PositiveDuration = 60.0
    select: list[FsoSelector] = []
    details: bool = True
    rediscover_after: int = Field(default=1, ge=1)
    allowed_hosts: list[HostPattern] | None = list(FSO_FILE_HOSTS)
