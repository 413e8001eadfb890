"""Election night 2023, replayed: the FSO's package on a CKAN endpoint and its files on three hosts.

The publication times are the real ``Last-Modified`` trace of 22 Oct 2023 (``data/``). Around
them the night scripts what consumers must survive:

- the parties file is empty (0 bytes) until the count starts at noon: not published yet, so
  not a version of it (``truth`` starts with its first results);
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
import hashlib
from datetime import datetime

from pollerd.core.waiting import wait_set
from pollerd.sim.ckan import CkanApi, PackageResource
from pollerd.sim.files import FileHost
from pollerd.sim.fso_content import FULL, ElectionContent, Shape
from pollerd.sim.host import Fault
from pollerd.sim.night_script import (
    ADDED,
    ADDED_AT,
    END,
    FILES,
    PACKAGE,
    PHASES,
    PRIMARY_DOWN,
    START,
    TO_DAM,
    TO_FALLBACK,
    TRACE_FILE,
    Moment,
    NightFile,
    Script,
    load_trace,
    timeline,
)
from pollerd.sim.server import SimServer

__all__ = [
    "ADDED",
    "ADDED_AT",
    "END",
    "FILES",
    "PACKAGE",
    "PHASES",
    "PRIMARY_DOWN",
    "START",
    "TO_DAM",
    "TO_FALLBACK",
    "TRACE_FILE",
    "ElectionNight",
    "Moment",
    "NightFile",
    "Script",
    "load_trace",
    "timeline",
]


class ElectionNight:
    """The package, its hosts and the script; ``step`` (tests) or ``play`` (the demo) runs it."""

    def __init__(
        self,
        shape: Shape = FULL,
        seed: int = 2023,
        script: Script | None = None,
        trace: list[tuple[str, datetime]] | None = None,
    ) -> None:
        self.ckan = CkanApi(seed=seed)
        self.primary = FileHost("s3")
        self.fallback = FileHost("fallback")
        self.dam = FileHost("dam")
        self.content = ElectionContent(shape, seed)
        self.moments = timeline(script or Script(), trace)
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
        bases = {
            host.name: await server.serve(host.app()) for host in (self.primary, self.fallback, self.dam)
        }
        return self.place(api_base, bases)

    def place(self, api_base: str, bases: dict[str, str]) -> str:
        """Publish the start state with CKAN at ``api_base`` and the file hosts at ``bases`` (by
        host name: s3, fallback, dam), served or not; the CKAN action base URL."""
        self._bases = dict(bases)
        for night_file in FILES:
            empty = night_file.kind == "parties"
            self._list(night_file, START, b"" if empty else None)
        self.api_url = f"{api_base}/api/3/action"
        return self.api_url

    @property
    def listed(self) -> list[NightFile]:
        """The files the package lists now."""
        return list(self._listed)

    def host_of(self, phase: str) -> FileHost | None:
        """The host a phase's URLs point at (None during the outage)."""
        return {"primary": self.primary, "fallback": self.fallback, "dam": self.dam}.get(phase)

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
                self.path_on(host, night_file),
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
        return self.host_of(self.phase)

    def _show(self, host: FileHost, night_file: NightFile, body: bytes, at: datetime) -> None:
        host.publish(self.path_on(host, night_file), body, at=at.timestamp())
        versions = self.truth.setdefault(night_file.file_name, [])
        if not body:
            return  # an empty file before the first results: not published yet
        digest = hashlib.sha256(body).hexdigest()
        if not versions or versions[-1] != digest:
            versions.append(digest)
            self.visible_at.setdefault(digest, (at, len(body)))

    def path_on(self, host: FileHost, night_file: NightFile) -> str:
        """Where a host serves a file."""
        if host is self.dam:
            return f"/hub/api/dam/assets/{night_file.asset}/master"
        if host is self.fallback:
            return f"/ogd-fallback/v4/ogd/{night_file.file_name}"
        return f"/v4/ogd/{night_file.file_name}"
