"""The script of election night 2023: the package's files, the real ``Last-Modified`` trace of
22 Oct 2023 (``data/``) and the scripted host events around it, as moments in time order."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files

PACKAGE = "eidg-wahlen-2023"
TRACE_FILE = "fso-2023-10-22-last-modified-trace.csv"
START = datetime(2023, 10, 22, 9, 45, tzinfo=UTC)
END = datetime(2023, 10, 22, 23, 25, tzinfo=UTC)
PRIMARY_DOWN = datetime(2023, 10, 22, 14, 10, tzinfo=UTC)
TO_FALLBACK = datetime(2023, 10, 22, 14, 16, tzinfo=UTC)
ADDED_AT = datetime(2023, 10, 22, 16, 30, tzinfo=UTC)
TO_DAM = datetime(2023, 10, 22, 22, 40, tzinfo=UTC)
PHASES = ("primary", "outage", "fallback", "dam")


@dataclass(frozen=True)
class NightFile:
    """One resource of the package: its trace name, content kind, file name and identities."""

    trace_name: str
    kind: str
    file_name: str
    title: str
    ckan_id: str
    asset: int
    stray_whitespace: bool = False


FILES = (
    NightFile(
        "results",
        "parties",
        "sd-t-17.02-NRW2023-parteien.json",
        "Nationalratswahlen 2023: Parteistärken",
        "6e1bc5a2-1c53-4a1e-8a43-0c5c1f0b6a01",
        27245501,
    ),
    NightFile(
        "voterturnout",
        "turnout",
        "sd-t-17.02-NRW2023-wahlbeteiligung.json",
        "Nationalratswahlen 2023: Wahlbeteiligung",
        "6e1bc5a2-1c53-4a1e-8a43-0c5c1f0b6a02",
        27245502,
        stray_whitespace=True,
    ),
    NightFile(
        "candidates",
        "candidates",
        "sd-t-17.02-NRW2023-kandidierende.json",
        "Nationalratswahlen 2023: Kandidierende",
        "6e1bc5a2-1c53-4a1e-8a43-0c5c1f0b6a03",
        27245503,
    ),
    NightFile(
        "SR_candidates",
        "sr_candidates",
        "sd-t-17.02-SRW2023-kandidierende.json",
        "Ständeratswahlen 2023: Kandidierende",
        "6e1bc5a2-1c53-4a1e-8a43-0c5c1f0b6a04",
        27245504,
    ),
)
ADDED = NightFile(
    "elected",
    "elected",
    "sd-t-17.02-NRW2023-gewaehlte.json",
    "Nationalratswahlen 2023: Gewählte",
    "6e1bc5a2-1c53-4a1e-8a43-0c5c1f0b6a05",
    27245505,
)
_ADDED_UPDATES = 8
_ADDED_EVERY = timedelta(minutes=20)


@dataclass(frozen=True)
class Moment:
    """Something that happens at a time of the night: a publication or a host event."""

    at: datetime
    action: str  # publish | add | primary_down | to_fallback | to_dam
    file: NightFile | None = None


def load_trace() -> list[tuple[str, datetime]]:
    """The real trace: (file, Last-Modified) for every version seen on 22 Oct 2023."""
    text = files("pollerd.sim").joinpath("data", TRACE_FILE).read_text(encoding="utf-8")
    return [
        (row["file"], datetime.fromisoformat(row["last_modified_utc"]))
        for row in csv.DictReader(text.splitlines())
    ]


@dataclass(frozen=True)
class Script:
    """When the scripted events of the night happen (the 2023 defaults, or a benchmark's)."""

    primary_down: datetime = PRIMARY_DOWN
    to_fallback: datetime = TO_FALLBACK
    added_at: datetime = ADDED_AT
    to_dam: datetime = TO_DAM


def timeline(
    script: Script = Script(), trace: list[tuple[str, datetime]] | None = None
) -> list[Moment]:  # frozen: safe to share
    """Every moment of the night, in order (``trace``: other publication times than 2023's)."""
    by_trace_name = {f.trace_name: f for f in FILES}
    moments = [Moment(at, "publish", by_trace_name[name]) for name, at in trace or load_trace()]
    moments += [
        Moment(script.primary_down, "primary_down"),
        Moment(script.to_fallback, "to_fallback"),
        Moment(script.added_at, "add", ADDED),
        Moment(script.to_dam, "to_dam"),
    ]
    moments += [
        Moment(script.added_at + _ADDED_EVERY * n, "publish", ADDED) for n in range(1, _ADDED_UPDATES + 1)
    ]
    return sorted(moments, key=lambda m: m.at)
