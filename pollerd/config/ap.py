"""The ``ap`` source's tables: AP Elections API queries, checked against AP's rules at load time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from pollerd.config.base import (
    Duration,
    EnvPath,
    HttpUrl,
    Name,
    PositiveDuration,
    Secret,
    SourceBase,
    Strict,
)

MAX_URL_LENGTH = 6000  # AP answers 414 above this
Values = str | int | list[str | int]
Flag = bool | Literal["all"]


def _election_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD") from None
    if len(value) != 10:
        raise ValueError(f"{value!r} is not a date written YYYY-MM-DD")
    return value


class ApQuery(Strict):
    """One ``[[sources.queries]]`` table: a name and AP's filters, spelled as AP spells them."""

    name: Name
    state_postal: Values | None = Field(None, alias="statePostal")
    race_id: Values | None = Field(None, alias="raceID")
    reporting_unit_id: Values | None = Field(None, alias="reportingUnitID")
    office_id: Values | None = Field(None, alias="officeID")
    race_type_id: Values | None = Field(None, alias="raceTypeID")
    party: Values | None = None
    national: Flag | None = None
    uncontested: Flag | None = None
    winner: Literal["X", "R", "U", "A"] | None = None
    level: str | None = None
    seat_num: int | str | None = Field(None, alias="seatNum")
    seat_name: str | None = Field(None, alias="seatName")
    results_type: Literal["l", "t", "c", "b"] | None = Field(None, alias="resultsType")
    votetypes: bool | None = None
    avotes: bool | None = None
    candidate_info: Literal["full", "brief"] | None = Field(None, alias="candidateInfo")
    set_zero_counts: bool | None = Field(None, alias="setZeroCounts")
    omit_results: bool | None = Field(None, alias="omitResults")

    @model_validator(mode="after")
    def _ap_rules(self) -> ApQuery:
        if self.race_id is not None or self.reporting_unit_id is not None:
            states = _listed(self.state_postal)
            if len(states) != 1:
                raise ValueError(
                    "raceID and reportingUnitID need exactly one statePostal "
                    "(AP's race and reporting unit IDs are unique only within a state)"
                )
        if self.omit_results and self.set_zero_counts:
            raise ValueError("omitResults and setZeroCounts are mutually exclusive")
        return self

    def params(self) -> list[tuple[str, str]]:
        """The query's filters as AP parameters, in a stable order; ``format=json`` always."""
        params = []
        for field, info in type(self).model_fields.items():
            value = getattr(self, field)
            if field == "name" or value is None:
                continue
            params.append((info.alias or field, _param(value)))
        params.append(("format", "json"))
        return params


def _listed(value: Values | None) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _param(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


CallsMode = Literal["accept", "hold"]


class CallRule(Strict):
    """One ``[[sources.calls]]`` table: which races it covers (each key given must match; none
    given: every race) and what becomes of AP's calls of them. The first table that matches a
    race decides; a race no table matches has its calls accepted."""

    office: Values | None = None  # AP's officeID: P, S, H, G, I, ...
    state: Values | None = None  # statePostal
    race: Values | None = None  # STATE:raceID (``PA:0``), or a whole race key (``PA:0:G``)
    calls: CallsMode

    @model_validator(mode="after")
    def _races_named_with_their_state(self) -> CallRule:
        for race in _listed(self.race):
            if race.count(":") not in (1, 2) or not all(race.split(":")[:2]):
                raise ValueError(
                    f"race {race!r}: name a race as STATE:raceID (PA:0) or STATE:raceID:raceType "
                    "(AP's race IDs are unique only within a state)"
                )
        return self

    def covers(self, office: str, state: str, race_key: str) -> bool:
        """Whether this table speaks of the race (its office, state and key as AP gives them)."""
        if self.office is not None and office.upper() not in {o.upper() for o in _listed(self.office)}:
            return False
        if self.state is not None and state.upper() not in {s.upper() for s in _listed(self.state)}:
            return False
        if self.race is None:
            return True
        return any(race_key == race or race_key.startswith(f"{race}:") for race in _listed(self.race))


Calls = Annotated[
    Annotated[CallsMode, Tag("all")] | Annotated[list[CallRule], Tag("tables")],
    Discriminator(lambda value: "all" if isinstance(value, str) else "tables"),
]  # "accept" or "hold" for every race, or [[sources.calls]] tables


class ApSourceConfig(SourceBase):
    """``kind = "ap"``: AP Elections API queries, followed by ``nextrequest`` or by ETag."""

    kind: Literal["ap"]
    api: HttpUrl = "https://api.ap.org"
    version: Literal["v2", "v3"] = "v3"
    election_date: Annotated[str, AfterValidator(_election_date)]
    api_key: Secret | None = None
    api_key_file: EnvPath | None = None
    mode: Literal["nextrequest", "etag"] = "nextrequest"
    quota_per_minute: int = Field(default=10, ge=1)
    quota_pause: Duration = 5.0
    quota_window: PositiveDuration = 60.0  # AP counts a minute; a replay or a stand-in may not
    raw_deltas: bool = False
    checkpoint_every: int = Field(default=100, ge=1)  # versions; the rest are kept as their change
    rehearsal: bool = False
    include_signature: bool = False
    interval: PositiveDuration = 10.0
    format: Literal["auto", "json", "text", "binary"] = "json"
    queries: list[ApQuery] = Field(min_length=1)
    calls: Calls = "accept"  # AP's calls announced at once, or held for the desk

    def calls_for(self, office: str, state: str, race_key: str) -> CallsMode:
        """Whether AP's calls of a race are accepted as they come or held for the desk."""
        if isinstance(self.calls, str):
            return self.calls
        return next((rule.calls for rule in self.calls if rule.covers(office, state, race_key)), "accept")

    @model_validator(mode="after")
    def _consistent(self) -> ApSourceConfig:
        if (self.api_key is None) == (self.api_key_file is None):
            raise ValueError('give the AP key as exactly one of api_key ("${ENV_VAR}") or api_key_file')
        names = [query.name for query in self.queries]
        if len(set(names)) != len(names):
            raise ValueError("queries: every query needs its own name")
        for i, query in enumerate(self.queries):
            where = f"queries[{i}] ({query.name})"
            if query.results_type == "t" and not self.rehearsal:
                raise ValueError(
                    f'{where}: resultsType = "t" is AP test data; set rehearsal = true '
                    "to run a rehearsal on purpose"
                )
            if self.rehearsal and query.results_type not in (None, "t"):
                raise ValueError(
                    f"{where}: rehearsal = true polls test data (resultsType t), "
                    f"not resultsType {query.results_type!r}"
                )
            length = len(self.query_url(query))
            if length > MAX_URL_LENGTH:
                raise ValueError(
                    f"{where}: the request URL would be {length} characters; AP refuses "
                    f"more than {MAX_URL_LENGTH} (414)"
                )
        return self

    def query_url(self, query: ApQuery) -> str:
        """The first request of a query (no key in it: the key travels in a header)."""
        params = query.params()
        if self.rehearsal and query.results_type is None:
            params.insert(-1, ("resultsType", "t"))
        if self.include_signature:
            params.insert(-1, ("includesignature", "sha256"))
        return (
            f"{self.api.rstrip('/')}/{self.version}/elections/{self.election_date}?"
            f"{urlencode(params, safe=',')}"
        )

    def secret_values(self) -> Iterator[str]:
        """The header secrets and the API key."""
        yield from super().secret_values()
        if self.api_key is not None:
            yield self.api_key.get_secret_value()
