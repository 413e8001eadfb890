"""A federal vote day, shaped like the FSO's real-time vote file (``sd-t-17-02-YYYYMMDD-
eidgAbstimmung.json``): ``schweiz.vorlagen[]`` with the national ``resultat``, the cantons'
count (``staende``, half cantons counting half) and ``kantone[]`` with their ``gemeinden[]``,
filling up commune by commune.

Four proposals: a referendum whose people's majority tips from no to yes as the cities report
late, and three connected ones: an initiative (``vorlagenArtId`` 4), its direct counter-proposal
(5) and the deciding question (6), the latter two linked to the initiative by
``hauptvorlagenId``. Both the initiative and the counter-proposal pass; the deciding question
favours the counter-proposal. The numbers are invented.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from pollerd.core.cantons import CANTONS
from pollerd.sim.ckan import CkanApi, PackageResource
from pollerd.sim.files import FileHost
from pollerd.sim.fso_content import BOM
from pollerd.sim.server import SimServer

VOTE_PACKAGE = "echtzeitdaten-am-abstimmungstag-zu-eidgenoessischen-abstimmungsvorlagen"
VOTE_FILE = "sd-t-17-02-20240303-eidgAbstimmung.json"
HALF_CANTONS = frozenset({6, 7, 12, 13, 15, 16})  # OW, NW, BS, BL, AR, AI
REFERENDUM, INITIATIVE, COUNTER, QUESTION = 6700, 6710, 6711, 6712
# (id, titles in German, French and Italian, vorlagenArtId, hauptvorlagenId, yes share where
# communes report early, and late)
PROPOSALS = (
    (
        REFERENDUM,
        ("Stromgesetz", "Loi sur l'électricité", "Legge sull'energia elettrica"),
        2,
        None,
        0.44,
        0.62,
    ),
    (
        INITIATIVE,
        (
            "Initiative für bezahlbare Mieten",
            "Initiative pour des loyers abordables",
            "Iniziativa per pigioni accessibili",
        ),
        4,
        None,
        0.56,
        0.60,
    ),
    (
        COUNTER,
        (
            "Gegenentwurf für bezahlbare Mieten",
            "Contre-projet pour des loyers abordables",
            "Controprogetto per pigioni accessibili",
        ),
        5,
        INITIATIVE,
        0.58,
        0.62,
    ),
    (
        QUESTION,
        (
            "Stichfrage: Initiative oder Gegenentwurf?",
            "Question subsidiaire : initiative ou contre-projet ?",
            "Domanda risolutiva: iniziativa o controprogetto?",
        ),
        6,
        INITIATIVE,
        0.40,
        0.44,
    ),
)


@dataclass(frozen=True)
class _Commune:
    number: int
    canton: int  # 1..26
    voters: int
    lean: float  # 0: votes like the early communes, 1: like the late ones


class VoteContent:
    """The vote file after ``counted`` communes have reported (the same count, the same bytes)."""

    def __init__(self, communes_per_canton: int = 3, seed: int = 2024) -> None:
        rng = random.Random(seed)
        self.communes = [
            _Commune(canton * 100 + n, canton, rng.randint(500, 20_000), 0.0)
            for canton in range(1, len(CANTONS) + 1)
            for n in range(1, communes_per_canton + 1)
        ]
        rng.shuffle(self.communes)
        last = max(1, len(self.communes) - 1)
        self.communes = [
            _Commune(c.number, c.canton, c.voters, n / last) for n, c in enumerate(self.communes)
        ]

    @property
    def steps(self) -> int:
        """How many communes report in all."""
        return len(self.communes)

    def render(self, counted: int) -> bytes:
        """The file with the first ``counted`` communes in, UTF-8 with a BOM like the FSO's."""
        document = self.document(counted)
        return BOM + json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def document(self, counted: int) -> dict[str, Any]:
        """The file as JSON data."""
        done = {c.number for c in self.communes[:counted]}
        minute = counted * 3
        return {
            "abstimmtag": "20240303",
            "timestamp": f"2024-03-03T{12 + minute // 60:02d}:{minute % 60:02d}:00",
            "spatial_reference": [{"spatial_unit": "Gemeinde", "spatial_date": "2024-03-03"}],
            "schweiz": {"vorlagen": [self._proposal(p, done) for p in PROPOSALS]},
        }

    def _proposal(self, proposal: tuple[Any, ...], done: set[int]) -> dict[str, Any]:
        number, titles, kind, head, early, late = proposal
        cantons: list[dict[str, Any]] = []
        yes_total = no_total = 0
        cantons_yes = [0, 0]  # whole, half
        cantons_no = [0, 0]
        for canton in range(1, len(CANTONS) + 1):
            rows = [c for c in self.communes if c.canton == canton]
            gemeinden = []
            yes = no = 0
            for commune in sorted(rows, key=lambda c: c.number):
                reported = commune.number in done
                share = early + (late - early) * commune.lean
                c_yes = round(commune.voters * share) if reported else 0
                c_no = commune.voters - c_yes if reported else 0
                yes, no = yes + c_yes, no + c_no
                gemeinden.append(
                    {
                        "geoLevelnummer": str(commune.number),
                        "geoLevelname": f"Gemeinde {commune.number}",
                        "resultat": _result(c_yes, c_no, reported),
                    }
                )
            complete = all(c.number in done for c in rows)
            if complete:
                side = cantons_yes if yes > no else cantons_no
                side[1 if canton in HALF_CANTONS else 0] += 1
            yes_total, no_total = yes_total + yes, no_total + no
            cantons.append(
                {
                    "geoLevelnummer": str(canton),
                    "geoLevelname": CANTONS[canton - 1][1],
                    "resultat": _result(yes, no, complete),
                    "gemeinden": gemeinden,
                }
            )
        finished = all(row["resultat"]["gebietAusgezaehlt"] for row in cantons)
        people = yes_total > no_total
        states = cantons_yes[0] + cantons_yes[1] / 2 > cantons_no[0] + cantons_no[1] / 2
        accepted = people if kind == 2 else people and states
        entry: dict[str, Any] = {
            "vorlagenId": number,
            "vorlagenArtId": kind,
            "vorlagenTitel": [
                {"langKey": language, "text": text}
                for language, text in zip(("de", "fr", "it"), titles, strict=True)
            ],
            "vorlageBeendet": finished,
            "provisorisch": True,
            "vorlageAngenommen": accepted if finished else None,
            "resultat": _result(yes_total, no_total, finished),
            "staende": {
                "jaStaendeGanz": cantons_yes[0],
                "jaStaendeHalb": cantons_yes[1],
                "neinStaendeGanz": cantons_no[0],
                "neinStaendeHalb": cantons_no[1],
            },
            "kantone": cantons,
        }
        if head is not None:
            entry["hauptvorlagenId"] = head
        return entry


def _result(yes: int, no: int, complete: bool) -> dict[str, Any]:
    counted = yes + no
    return {
        "gebietAusgezaehlt": complete,
        "jaStimmenInProzent": round(100 * yes / counted, 2) if counted else None,
        "jaStimmenAbsolut": yes,
        "neinStimmenAbsolut": no,
        "gueltigeStimmen": counted,
    }


class VoteDay:
    """The vote package on a CKAN endpoint and its file on a host; ``report`` moves the count on."""

    def __init__(self, content: VoteContent | None = None) -> None:
        self.content = content or VoteContent()
        self.ckan = CkanApi(seed=3, shuffle=False)
        self.files = FileHost("s3")
        self.counted = 0
        self.api_url = ""
        self._path = f"/v4/ogd/{VOTE_FILE}"

    async def open(self, server: SimServer) -> str:
        """Serve both on free ports, the file before any commune reported; the CKAN action URL."""
        api_base = await server.serve(self.ckan.app())
        files_base = await server.serve(self.files.app())
        self.files.add(self._path)
        self.files.publish(self._path, self.content.render(0))
        self.ckan.put(VOTE_PACKAGE, PackageResource("vote", files_base + self._path, VOTE_FILE))
        self.api_url = f"{api_base}/api/3/action"
        return self.api_url

    def report(self, communes: int) -> None:
        """``communes`` more communes report; a new version of the file."""
        self.counted = min(self.content.steps, self.counted + communes)
        self.files.publish(self._path, self.content.render(self.counted))

    @property
    def finished(self) -> bool:
        """Every commune is in."""
        return self.counted >= self.content.steps
