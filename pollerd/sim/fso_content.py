"""Synthetic FSO election files, shaped like the real ones: BOM, Swiss local ``timestamp``,
``stand``, ``stand_kantone`` and ``level_*`` parts that fill up commune by commune.

The numbers are invented; the shapes, sizes and progress are what a consumer meets on the night.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BOM = b"\xef\xbb\xbf"
SWISS_TIME = ZoneInfo("Europe/Zurich")
CANTONS = (
    ("ZH", 160),
    ("BE", 338),
    ("LU", 80),
    ("UR", 19),
    ("SZ", 30),
    ("OW", 7),
    ("NW", 11),
    ("GL", 3),
    ("ZG", 11),
    ("FR", 126),
    ("SO", 107),
    ("BS", 3),
    ("BL", 86),
    ("SH", 26),
    ("AR", 20),
    ("AI", 5),
    ("SG", 75),
    ("GR", 101),
    ("AG", 200),
    ("TG", 80),
    ("TI", 106),
    ("VD", 300),
    ("VS", 122),
    ("NE", 27),
    ("GE", 45),
    ("JU", 53),
)
PARTIES = ("SVP", "SP", "FDP", "Mitte", "GRÜNE", "GLP", "EVP", "EDU", "Lega", "MCG", "PdA", "Übrige")
COUNT_STARTS = datetime(2023, 10, 22, 10, 0, tzinfo=UTC)
COUNT_ENDS = datetime(2023, 10, 22, 19, 0, tzinfo=UTC)
KINDS = ("parties", "turnout", "candidates", "sr_candidates", "elected")
# The first canton to finish reports unfinished again this long after, for this long, and comes back
# with corrected figures; the second canton's figures are corrected this long after it finished.
REOPENED_AFTER, REOPENED_FOR, CORRECTED_AFTER = (
    timedelta(minutes=10),
    timedelta(minutes=25),
    timedelta(minutes=20),
)


@dataclass(frozen=True)
class Shape:
    """How big the files are: the real night (``FULL``) or a small one for tests (``SMALL``)."""

    communes: int
    candidates: int

    @property
    def scale(self) -> float:
        """Communes relative to the real 2131."""
        return self.communes / sum(n for _, n in CANTONS)


FULL = Shape(communes=2141, candidates=5909)
SMALL = Shape(communes=60, candidates=80)


@dataclass(frozen=True)
class Commune:
    """One commune of the synthetic country."""

    number: int
    canton: int
    voters: int
    shares: tuple[float, ...]


class ElectionContent:
    """Renders each kind of file for a moment of the night; the same moment gives the same bytes."""

    def __init__(self, shape: Shape, seed: int = 2023) -> None:
        rng = random.Random(seed)
        self.shape = shape
        self.communes: list[Commune] = []
        for canton, (_, count) in enumerate(CANTONS):
            for _ in range(max(1, round(count * shape.scale))):
                weights = [rng.random() ** 2 for _ in PARTIES]
                total = sum(weights)
                self.communes.append(
                    Commune(
                        len(self.communes) + 1,
                        canton,
                        rng.randint(200, 40000),
                        tuple(round(w / total, 4) for w in weights),
                    )
                )
        self._order = list(range(len(self.communes)))
        rng.shuffle(self._order)  # the order in which communes report
        self._people = [
            (n, rng.randrange(len(CANTONS)), rng.randrange(len(PARTIES)))
            for n in range(1, shape.candidates + 1)
        ]
        finished = sorted((self._finished_at(c), c) for c in range(len(CANTONS)))
        (first_at, self.reopened), (second_at, self.corrected) = finished[0], finished[1]
        self.reopened_from = first_at + REOPENED_AFTER
        self.reopened_until = self.reopened_from + REOPENED_FOR
        self.corrected_from = second_at + CORRECTED_AFTER

    def _finished_at(self, canton: int) -> datetime:
        """When the canton's last commune reports (to the second)."""
        position = {index: n for n, index in enumerate(self._order)}
        last = max(position[i] for i, m in enumerate(self.communes) if m.canton == canton)
        low, high = 0, int((COUNT_ENDS - COUNT_STARTS).total_seconds())
        while low < high:
            middle = (low + high) // 2
            if round(self.progress(COUNT_STARTS + timedelta(seconds=middle)) * len(self.communes)) > last:
                high = middle
            else:
                low = middle + 1
        return COUNT_STARTS + timedelta(seconds=low)

    def voters(self, commune: Commune, at: datetime) -> int:
        """A commune's voters as published at ``at``: the first commune of two cantons is
        corrected during the night (the reopened canton's while it is open again, and another's
        while it stays finished), as the FSO's real files were."""
        first = next(m for m in self.communes if m.canton == commune.canton) is commune
        if first and commune.canton == self.reopened and at >= self.reopened_from:
            return round(commune.voters * 0.97)
        if first and commune.canton == self.corrected and at >= self.corrected_from:
            return round(commune.voters * 1.02)
        return commune.voters

    def render(self, kind: str, at: datetime) -> bytes:
        """The file ``kind`` as published at ``at``: UTF-8 with a BOM, like the FSO's."""
        document = getattr(self, f"_{kind}")(at)
        return BOM + json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def progress(self, at: datetime) -> float:
        """Share of communes counted at ``at`` (0 before noon, 1 by the evening)."""
        span = (COUNT_ENDS - COUNT_STARTS).total_seconds()
        share: float = min(1.0, max(0.0, (at - COUNT_STARTS).total_seconds() / span))
        return math.pow(share, 0.7)

    def counted(self, at: datetime) -> list[Commune]:
        """The communes whose results are in at ``at``."""
        n = round(self.progress(at) * len(self.communes))
        return [self.communes[i] for i in sorted(self._order[:n])]

    def _header(self, at: datetime, flag_as_text: bool = False) -> dict[str, Any]:
        counted = self.counted(at)
        per_canton = [0] * len(CANTONS)
        for commune in counted:
            per_canton[commune.canton] += 1
        totals = [0] * len(CANTONS)
        for commune in self.communes:
            totals[commune.canton] += 1
        complete = [per_canton[c] == totals[c] for c in range(len(CANTONS))]
        if self.reopened_from <= at < self.reopened_until:
            complete[self.reopened] = False  # the FSO once took a canton's completion back
        stand_kantone = [
            {
                "kanton_nummer": c + 1,
                "kanton_bezeichnung": CANTONS[c][0],
                "kanton_abgeschlossen": str(complete[c]).lower() if flag_as_text else complete[c],
                "gemeinden_total": totals[c],
                "gemeinden_abgeschlossen": per_canton[c],
            }
            for c in range(len(CANTONS))
        ]
        return {
            "timestamp": at.astimezone(SWISS_TIME).strftime("%Y-%m-%dT%H:%M:%S"),
            "wahl_jahr": 2023,
            "spatial_reference": [{"spatial_unit": "Gemeinde", "spatial_date": "2023-10-22"}],
            "stand": {
                "wahl_abgeschlossen": all(complete),
                "kantone_total": len(CANTONS),
                "kantone_abgeschlossen": sum(complete),
                "gemeinden_total": len(self.communes),
                "gemeinden_abgeschlossen": len(counted),
            },
            "stand_kantone": stand_kantone,
        }

    def _party_rows(self, commune: Commune, at: datetime) -> list[dict[str, Any]]:
        voters = self.voters(commune, at)
        return [
            {
                "gemeinde_nummer": commune.number,
                "partei_id": p + 1,
                "partei_bezeichnung_de": name,
                "stimmen_partei": round(voters * share),
                "partei_staerke": round(share * 100, 2),
                "letzte_wahl_partei_staerke": None,
            }
            for p, (name, share) in enumerate(zip(PARTIES, commune.shares, strict=True))
        ]

    def _parties(self, at: datetime) -> dict[str, Any]:
        counted = self.counted(at)
        document = self._header(at)
        voters = {m.number: self.voters(m, at) for m in counted}
        document["level_ch"] = _party_totals(counted, voters)
        document["level_kantone"] = [
            {"kanton_nummer": c + 1, "resultat": _party_totals([m for m in counted if m.canton == c], voters)}
            for c in range(len(CANTONS))
        ]
        document["level_gemeinden"] = [row for m in counted for row in self._party_rows(m, at)]
        return document

    def _turnout(self, at: datetime) -> dict[str, Any]:
        counted = self.counted(at)
        document = self._header(at)
        document["level_ch"] = {"wahlbeteiligung": _turnout(counted)}
        document["level_kantone"] = [
            {"kanton_nummer": c + 1, "wahlbeteiligung": _turnout([m for m in counted if m.canton == c])}
            for c in range(len(CANTONS))
        ]
        document["level_gemeinden"] = [
            {"gemeinde_nummer": m.number, "wahlberechtigte": m.voters * 2, "wahlbeteiligung": _turnout([m])}
            for m in counted
        ]
        return document

    def _candidates(self, at: datetime, council: str = "NR") -> dict[str, Any]:
        counted = self.counted(at)
        progress = [
            sum(1 for m in counted if m.canton == c) / max(1, sum(1 for m in self.communes if m.canton == c))
            for c in range(len(CANTONS))
        ]
        document = self._header(at, flag_as_text=council == "SR")
        people = self._people if council == "NR" else self._people[: max(5, len(self._people) // 30)]
        document["level_kantone"] = [
            {
                "kanton_nummer": canton + 1,
                "kandidat_nummer": f"{party + 1:02d}.{n:03d}",
                "vorname": f"Vorname{n}",
                "name": f"Name{n}",
                "partei_bezeichnung": PARTIES[party],
                "geschlecht": "f" if n % 2 else "m",
                "jahrgang": 1950 + n % 50,
                "beruf": "Kandidatin" if n % 2 else "Kandidat",
                "wohnort": f"Gemeinde{n % 997}",
                "stimmen_kandidat": round(progress[canton] * ((n * 7919) % 40000)),
                "flag_gewaehlt": progress[canton] >= 1.0 and n % 25 == 0,
            }
            for n, canton, party in people
        ]
        return document

    def _sr_candidates(self, at: datetime) -> dict[str, Any]:
        return self._candidates(at, council="SR")

    def _elected(self, at: datetime) -> dict[str, Any]:
        document = self._header(at)
        seats = round(200 * self.progress(at))
        document["level_ch"] = [
            {"kandidat_nummer": f"{n:03d}", "partei_bezeichnung": PARTIES[n % len(PARTIES)]}
            for n in range(1, seats + 1)
        ]
        return document


def _party_totals(communes: list[Commune], voters: dict[int, int]) -> list[dict[str, Any]]:
    votes = [sum(round(voters[m.number] * m.shares[p]) for m in communes) for p in range(len(PARTIES))]
    total = sum(votes) or 1
    return [
        {
            "partei_id": p + 1,
            "partei_bezeichnung_de": name,
            "stimmen_partei": votes[p],
            "partei_staerke": round(votes[p] / total * 100, 2),
        }
        for p, name in enumerate(PARTIES)
    ]


def _turnout(communes: list[Commune]) -> float | None:
    if not communes:
        return None
    return round(sum(40 + m.voters % 20 for m in communes) / len(communes), 2)
