"""The ``democracyclub`` source's tables: postcode and address watch lists, the elections list,
the candidates site's ballots feed, the key and the request budget."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, model_validator

from pollerd.config.base import EnvPath, HttpUrl, PositiveDuration, Secret, SourceBase, Strict
from pollerd.core.durations import format_duration, parse_duration

# The shape of a UK postcode (outward code, inward code), spaces removed, upper case.
_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")
_BUDGET = re.compile(r"^\s*(\d+)\s+per\s+(\S+)\s*$")


def postcode(value: str) -> str:
    """``"sw1a 1aa"`` → ``"SW1A1AA"``; anything not shaped like a UK postcode is an error."""
    compact = re.sub(r"\s+", "", value).upper()
    if not _POSTCODE.match(compact):
        raise ValueError(f"{value!r} is not shaped like a UK postcode")
    return compact


def _slug(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError(f"{value!r} is not an address slug")
    return value


def _budget(value: object) -> object:
    if not isinstance(value, str):
        return value
    match = _BUDGET.match(value)
    if match is None:
        raise ValueError(f'{value!r} is not a budget like "150 per 5m"')
    return (int(match.group(1)), parse_duration(match.group(2)))


Postcode = Annotated[str, AfterValidator(postcode)]
Slug = Annotated[str, AfterValidator(_slug)]


def _written_budget(value: tuple[int, float]) -> str:
    return f"{value[0]} per {format_duration(value[1])}"


# written back as the config would write it, so a dumped config loads again
Budget = Annotated[
    tuple[int, float],
    BeforeValidator(_budget),
    PlainSerializer(_written_budget, return_type=str, when_used="json"),
]


class DcElections(Strict):
    """``[sources.elections]``: which part of ``/elections/`` to watch (the documented filters)."""

    current: bool | None = None
    future: bool | None = None
    identifier_type: Literal["election", "organisation", "ballot"] | None = None
    coords: Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$")] | None = None

    def params(self) -> list[tuple[str, str]]:
        """The filters as query parameters."""
        params: list[tuple[str, str]] = []
        for flag in ("current", "future"):
            if getattr(self, flag):
                params.append((flag, "1"))
        if self.identifier_type:
            params.append(("identifier_type", self.identifier_type))
        if self.coords:
            params.append(("coords", self.coords))
        return params


class DcSourceConfig(SourceBase):
    """``kind = "democracyclub"``: the Democracy Club developer API (and candidates site)."""

    kind: Literal["democracyclub"]
    api: HttpUrl = "https://developers.democracyclub.org.uk/api/v1"
    candidates_api: HttpUrl = "https://candidates.democracyclub.org.uk/api/next"
    auth_token: Secret | None = None
    auth_token_file: EnvPath | None = None
    sandbox: bool = False
    postcodes: list[Postcode] = []
    addresses: list[Slug] = []
    elections: DcElections | None = None
    candidates: bool = False
    request_budget: Budget = (150, 300.0)
    interval: PositiveDuration = 60.0
    format: Literal["auto", "json", "text", "binary"] = "json"

    @model_validator(mode="after")
    def _consistent(self) -> DcSourceConfig:
        if not (self.postcodes or self.addresses or self.elections or self.candidates):
            raise ValueError("watch something: postcodes, addresses, elections or candidates")
        if self.sandbox and (self.elections or self.candidates):
            raise ValueError("the sandbox serves postcodes and addresses only")
        if not self.sandbox and self.auth_token is None and self.auth_token_file is None:
            raise ValueError('the API needs auth_token ("${ENV_VAR}") or auth_token_file (or sandbox = true)')
        if self.auth_token is not None and self.auth_token_file is not None:
            raise ValueError("give auth_token or auth_token_file, not both")
        return self

    def secret_values(self) -> Iterator[str]:
        """The header secrets and the auth token."""
        yield from super().secret_values()
        if self.auth_token is not None:
            yield self.auth_token.get_secret_value()
