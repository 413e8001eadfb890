"""The FSO's 2023 night as a recording: the night's trace player turned into the generator of
the recording ``pollerd demo`` and ``pollerd sim`` replay, and of random nights to rehearse on.

The generator walks the night's moments and writes what a perfect client would have been
answered: ``package_show`` whenever the package changes, each file's new version at the URL the
package announces, the S3 host's 503 from the moment it fails. The shipped night keeps recipes
instead of bodies (586 MB of files, 43 MB compressed): each body is rendered again from the
night's content model when it is first served, and checked against its recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pollerd.record.archive import RECIPES, Answer, ArchiveWriter, SourceInfo
from pollerd.sim.ckan import ACTION_PATH
from pollerd.sim.fso_content import FULL, ElectionContent, Shape
from pollerd.sim.night import PACKAGE, START, ElectionNight, NightFile
from pollerd.sim.night_script import FILES, Moment

RENDERER = "fso-night"
BUILT_IN = Path(__file__).resolve().parent / "data" / "fso-2023"
SOURCE = "nrw2023"
CKAN = "https://ckan.opendata.swiss"
HOSTS = {
    "s3": "https://ogd-static.voteinfo-app.ch",
    "fallback": "https://ogd-fallback.voteinfo-app.ch",
    "dam": "https://dam-api.bfs.admin.ch",
}
_OUTAGE_BODY = b"fault 503\n"  # what the simulated S3 host says while it fails


def render(recipe: dict[str, Any]) -> bytes:
    """A body of the night from its recipe (kind, moment, shape, seed)."""
    shape = recipe.get("shape") or {}
    content = _content(int(shape["communes"]), int(shape["candidates"]), int(recipe["seed"]))
    return content.render(str(recipe["kind"]), datetime.fromisoformat(str(recipe["at"])))


@lru_cache(maxsize=2)
def _content(communes: int, candidates: int, seed: int) -> ElectionContent:
    return ElectionContent(Shape(communes, candidates), seed)


RENDERERS = {RENDERER: render}


@dataclass(frozen=True)
class Generated:
    """What a generated recording holds."""

    answers: int
    versions: int
    body_bytes: int


def generate_night(
    folder: Path,
    night: ElectionNight,
    recipes: bool,
    shape: Shape = FULL,
    seed: int = 2023,
) -> Generated:
    """Write the night (as built: its script, shape and seed) as a recording of one ``fso``
    source under ``folder``; bodies as recipes, or stored."""
    config = {"api": f"{CKAN}/api/3/action", "package": PACKAGE, "interval": "30s", "allow_empty": True}
    writer = ArchiveWriter(folder / SOURCE, SourceInfo(SOURCE, "fso", config))
    try:
        walk = _Walk(
            writer, night, recipes, {"communes": shape.communes, "candidates": shape.candidates}, seed
        )
        night.place(CKAN, HOSTS)
        walk.package(START)
        for night_file in night.listed:
            walk.rendered[night_file.trace_name] = START
            walk.file(night_file, START)
        for moment in night.moments:
            night.step()
            walk.moment(moment)
    finally:
        writer.close()
    return Generated(walk.answers, len(walk.recipes_written | walk.stored), walk.body_bytes)


class _Walk:
    """Writes the answers of each moment."""

    def __init__(
        self, writer: ArchiveWriter, night: ElectionNight, recipes: bool, shape: dict[str, int], seed: int
    ) -> None:
        self.writer, self.night, self.use_recipes = writer, night, recipes
        self.shape, self.seed = shape, seed
        self.rendered: dict[str, datetime] = {}  # trace name -> when its current body was rendered
        self.recipes_written: set[str] = set()
        self.stored: set[str] = set()
        self.answers = 0
        self.body_bytes = 0
        self._recipes = (writer.folder / RECIPES).open("a", encoding="utf-8") if recipes else None

    def moment(self, moment: Moment) -> None:
        at = moment.at
        if moment.action in ("publish", "add") and moment.file is not None:
            self.rendered[moment.file.trace_name] = at
            if moment.action == "add":
                self.package(at)
            self.file(moment.file, at)
        elif moment.action == "primary_down":
            for night_file in self.night.listed:
                url = HOSTS["s3"] + self.night.path_on(self.night.primary, night_file)
                sha = self.writer.keep_bytes(_OUTAGE_BODY)
                headers = {"Content-Type": "text/plain; charset=utf-8"}
                self._append(Answer(at.timestamp(), "GET", url, 503, headers, sha, len(_OUTAGE_BODY)))
        elif moment.action in ("to_fallback", "to_dam"):
            self.package(at)
            for night_file in self.night.listed:
                self.file(night_file, at)

    def package(self, at: datetime) -> None:
        document = self.night.ckan.document(PACKAGE, CKAN)
        body = json.dumps(document, ensure_ascii=False).encode()
        sha = self.writer.keep_bytes(body)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        url = f"{CKAN}{ACTION_PATH}?id={PACKAGE}"
        self._append(Answer(at.timestamp(), "GET", url, 200, headers, sha, len(body)))

    def file(self, night_file: NightFile, at: datetime) -> None:
        host = self.night.host_of(self.night.phase)
        if host is None:
            return  # the outage: the S3 host's 503 stands
        path = self.night.path_on(host, night_file)
        served = host.files[path]
        version = served.current
        assert version is not None
        headers = {**host.validator_headers(served, version), "Content-Type": served.content_type}
        body = version.body
        sha = hashlib.sha256(body).hexdigest()
        if self._recipes is not None and body:
            if sha not in self.recipes_written:
                recipe = {
                    "sha256": sha,
                    "renderer": RENDERER,
                    "kind": night_file.kind,
                    "at": self.rendered[night_file.trace_name].isoformat(),
                    "shape": self.shape,
                    "seed": self.seed,
                }
                self._recipes.write(json.dumps(recipe) + "\n")
                self.recipes_written.add(sha)
                self.body_bytes += len(body)
        elif sha not in self.stored:
            self.writer.keep_bytes(body)
            self.stored.add(sha)
            self.body_bytes += len(body)
        url = HOSTS[host.name] + path
        self._append(Answer(at.timestamp(), "GET", url, 200, headers, sha, len(body)))

    def _append(self, answer: Answer) -> None:
        self.writer.append(answer)
        self.answers += 1


def random_night(seed: int, start: datetime = START, hours: float = 12.0) -> list[tuple[str, datetime]]:
    """A plausible trace for a night that has not happened: each file first published when the
    count starts, then more and more often as cantons report, then rarely until the end."""
    rng = random.Random(seed)
    trace: list[tuple[str, datetime]] = []
    count_starts = start + timedelta(hours=rng.uniform(1.5, 2.5))
    busiest = count_starts + timedelta(hours=rng.uniform(2.0, 4.0))
    end = start + timedelta(hours=hours)
    for night_file in FILES:
        moment = count_starts + timedelta(minutes=rng.uniform(0, 20))
        while moment < end:
            trace.append((night_file.trace_name, moment))
            distance = abs((moment - busiest).total_seconds()) / 3600
            mean_gap = 4 + 30 * min(distance, 3) / 3  # minutes: every 4 at the busiest, every 34 far off
            moment += timedelta(minutes=rng.expovariate(1 / mean_gap) + 0.5)
    return sorted(trace, key=lambda t: t[1])


def generate_random_night(folder: Path, seed: int, shape: Shape = FULL) -> Generated:
    """A recording of a night that has not happened (``random_night``), its bodies stored."""
    night = ElectionNight(shape, seed, trace=random_night(seed))
    return generate_night(folder, night, recipes=False, shape=shape, seed=seed)
