"""Election night 2023, replayed: the FSO's package on a CKAN endpoint and its files on three hosts.

The publication times are the real ``Last-Modified`` trace of 22 Oct 2023 (``data/``). Around
them the night scripts what consumers must survive:

- the parties file is empty (0 bytes) until the count starts at noon;
- the S3 primary fails at 14:10 UTC; the FSO moves every URL to a fallback host at 14:16
  (versions made in between appear there);
- a resource is added to the package at 16:30;
- at 22:40, after the count, the URLs move to a DAM-like host without ``Last-Modified``; the
  fallback host keeps serving its last, now stale, files without any error;
- ``package_show`` lists the resources in a new order on every call.

``truth`` holds, per file name, the sha256 of every version in the order it became visible at the
URL the package announced: what a perfect consumer delivers.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files

from pollerd.core.waiting import wait_set
from pollerd.sim.ckan import CkanApi, PackageResource
from pollerd.sim.files import FileHost
from pollerd.sim.fso_content import FULL, ElectionContent, Shape
from pollerd.sim.host import Fault
from pollerd.sim.server import SimServer

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


def timeline(script: Script = Script()) -> list[Moment]:  # frozen: safe to share
    """Every moment of the night, in order."""
    by_trace_name = {f.trace_name: f for f in FILES}
    moments = [Moment(at, "publish", by_trace_name[name]) for name, at in load_trace()]
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


class ElectionNight:
    """The package, its hosts and the script; ``step`` (tests) or ``play`` (the demo) runs it."""

    def __init__(self, shape: Shape = FULL, seed: int = 2023, script: Script | None = None) -> None:
        self.ckan = CkanApi(seed=seed)
        self.primary = FileHost("s3")
        self.fallback = FileHost("fallback")
        self.dam = FileHost("dam")
        self.content = ElectionContent(shape, seed)
        self.moments = timeline(script or Script())
        self.truth: dict[str, list[str]] = {}
        self.visible_at: dict[str, tuple[datetime, int]] = {}  # sha256 -> (first visible, size)
        self.phase = "primary"
        self.now = START
        self.api_url = ""
        self._done = 0
        self._bases: dict[str, str] = {}
        self._bodies: dict[str, bytes] = {}
        self._listed: list[NightFile] = []

    @property
    def hosts(self) -> tuple[CkanApi, FileHost, FileHost, FileHost]:
        """Every simulated host, CKAN first."""
        return self.ckan, self.primary, self.fallback, self.dam

    async def open(self, server: SimServer, api_port: int = 0) -> str:
        """Serve CKAN on ``api_port`` and the file hosts on free ports; publish the start state.

        Returns the CKAN action base URL (the source's ``api``).
        """
        api_base = await server.serve(self.ckan.app(), api_port)
        for host in (self.primary, self.fallback, self.dam):
            self._bases[host.name] = await server.serve(host.app())
        for night_file in FILES:
            empty = night_file.kind == "parties"
            self._list(night_file, START, b"" if empty else None)
        self.api_url = f"{api_base}/api/3/action"
        return self.api_url

    @property
    def finished(self) -> bool:
        """Every moment has happened."""
        return self._done >= len(self.moments)

    def step(self) -> Moment:
        """Make the next moment happen (rendering in this thread)."""
        moment = self.moments[self._done]
        self._apply(moment, self._render(moment))
        return moment

    def advance_to(self, at: datetime) -> None:
        """Make every moment up to ``at`` happen."""
        while not self.finished and self.moments[self._done].at <= at:
            self.step()
        self.now = max(self.now, at)

    async def play(
        self, speed: float, stop: asyncio.Event, origin: datetime = START, until: datetime | None = None
    ) -> None:
        """Run the night in real time, ``speed`` times faster, from ``origin`` (advance to it
        first) until it ends, ``until`` passes, or ``stop`` is set."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while not self.finished and not stop.is_set():
            moment = self.moments[self._done]
            if until is not None and moment.at > until:
                return
            wait = (moment.at - origin).total_seconds() / speed - (loop.time() - began)
            if wait > 0:
                await wait_set(stop, wait)
                continue
            self._apply(moment, await asyncio.to_thread(self._render, moment))

    def listed_bytes(self) -> int:
        """Bytes a client downloading every listed file once now would pull."""
        return sum(len(self._bodies[f.trace_name]) for f in self._listed)

    def versions_published(self) -> int:
        """Distinct versions that became visible at the announced URLs."""
        return sum(len(v) for v in self.truth.values())

    def url_of(self, night_file: NightFile) -> str:
        """Where the package says the file is now."""
        if self.phase == "dam":
            return f"{self._bases['dam']}/hub/api/dam/assets/{night_file.asset}/master"
        if self.phase == "fallback":
            return f"{self._bases['fallback']}/ogd-fallback/v4/ogd/{night_file.file_name}"
        return f"{self._bases['s3']}/v4/ogd/{night_file.file_name}"

    def _render(self, moment: Moment) -> bytes | None:
        if moment.file is None:
            return None
        return self.content.render(moment.file.kind, moment.at)

    def _apply(self, moment: Moment, body: bytes | None) -> None:
        self._done += 1
        self.now = moment.at
        if moment.action == "publish" and moment.file is not None and body is not None:
            self._publish(moment.file, body, moment.at)
        elif moment.action == "add" and moment.file is not None:
            self._list(moment.file, moment.at, body)
        elif moment.action == "primary_down":
            self.fail_primary()
        elif moment.action in ("to_fallback", "to_dam"):
            self.move_to(moment.action.removeprefix("to_"), moment.at)

    def fail_primary(self) -> None:
        """S3 answers 503 to everything from now on; new versions wait for the fallback host."""
        self.phase = "outage"
        self.primary.inject("*", Fault("status", status=503, count=-1))

    def _list(self, night_file: NightFile, at: datetime, body: bytes | None) -> None:
        """Put a file on every host and into the package, with its first version."""
        for host in (self.primary, self.fallback, self.dam):
            dam = host is self.dam
            host.add(
                self._path(host, night_file),
                validators="none" if dam else "full",
                content_type="application/octet-stream" if dam else "application/json",
                gzip_encoding=False,
                keep=1,
            )
        self._listed.append(night_file)
        self._publish(night_file, body if body is not None else self.content.render(night_file.kind, at), at)
        self.ckan.put(
            PACKAGE,
            PackageResource(
                night_file.ckan_id,
                self.url_of(night_file),
                night_file.title,
                stray_whitespace=night_file.stray_whitespace,
            ),
        )

    def _publish(self, night_file: NightFile, body: bytes, at: datetime) -> None:
        self._bodies[night_file.trace_name] = body
        host = self._active_host()
        if host is not None:  # during the outage versions wait for the fallback host
            self._show(host, night_file, body, at)

    def move_to(self, phase: str, at: datetime) -> None:
        """The FSO's switch ("fallback" or "dam"): the new host gets the current files, the
        package the new URLs."""
        self.phase = phase
        host = self._active_host()
        assert host is not None
        for night_file in self._listed:
            self._show(host, night_file, self._bodies[night_file.trace_name], at)
            self.ckan.move(PACKAGE, night_file.ckan_id, self.url_of(night_file))

    def _active_host(self) -> FileHost | None:
        return {"primary": self.primary, "fallback": self.fallback, "dam": self.dam}.get(self.phase)

    def _show(self, host: FileHost, night_file: NightFile, body: bytes, at: datetime) -> None:
        host.publish(self._path(host, night_file), body, at=at.timestamp())
        versions = self.truth.setdefault(night_file.file_name, [])
        digest = hashlib.sha256(body).hexdigest()
        if not versions or versions[-1] != digest:
            versions.append(digest)
            self.visible_at.setdefault(digest, (at, len(body)))

    def _path(self, host: FileHost, night_file: NightFile) -> str:
        if host is self.dam:
            return f"/hub/api/dam/assets/{night_file.asset}/master"
        if host is self.fallback:
            return f"/ogd-fallback/v4/ogd/{night_file.file_name}"
        return f"/v4/ogd/{night_file.file_name}"
