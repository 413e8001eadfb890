"""``kind = "filesystem"``: every version as a file, plus ``latest.<ext>`` and an event file."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pollerd.config import FilesystemSinkConfig
from pollerd.core.model import Event
from pollerd.core.names import safe_name
from pollerd.desk.published import as_published
from pollerd.results.elex import is_snapshot, results_rows, to_csv
from pollerd.sinks.base import DeliveryFailed
from pollerd.store.durable import atomic_copy, atomic_link, atomic_write, fsync_dir
from pollerd.versions.payload import Payload

EVENT_SUFFIX = ".event.json"


def version_stem(event: Event) -> str:
    """``<UTC timestamp>-<sha8>``: sorts by time, unique per content."""
    moment = event.detected_at
    return f"{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z-{event.sha256[:8]}"


class FilesystemSink:
    """Writes ``<root>/<source>/<resource>/<stamp>-<sha8>.<ext>`` with temp + fsync + rename."""

    def __init__(self, config: FilesystemSinkConfig) -> None:
        self.name = config.name
        self.root = config.root
        self.keep_versions = config.keep_versions
        self.csv = config.format == "csv"

    async def deliver(self, event: Event, payload: Payload, epoch: int | None = None) -> None:
        """Write the version, its event file and ``latest``; rewriting the same event is harmless."""
        document = await payload.document() if self._wants_csv(event) else None
        path = await payload.path()
        try:
            await asyncio.to_thread(self._write, event, path, document)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write under {self.root}: {exc.strerror}") from None

    async def close(self) -> None:
        """Nothing to release."""

    def folder(self, source: str, resource: str) -> Path:
        """The folder of one resource; never outside the root, whatever upstream called it."""
        root = self.root.resolve()
        folder = (root / safe_name(source) / safe_name(resource)).resolve()
        if root not in folder.parents:
            raise DeliveryFailed(f"resource name {resource!r} leaves the output root")
        return folder

    def _write(self, event: Event, payload: Path, document: Any) -> None:
        folder = self.folder(event.source, event.resource)
        folder.mkdir(parents=True, exist_ok=True)
        stem = version_stem(event)
        version = folder / f"{stem}.{event.extension}"
        atomic_copy(payload, version)
        event_file = folder / f"{stem}{EVENT_SUFFIX}"
        atomic_write(json.dumps(event.to_json(), indent=2).encode(), event_file)
        calls = (event.details or {}).get("desk_calls") or {}
        table = to_csv(results_rows(as_published(document, calls))) if is_snapshot(document) else None
        if table is not None:
            atomic_write(table, folder / f"{stem}.csv")
        if _is_newest(folder, event):  # latest.* are other names of the files just made durable
            atomic_link(version, folder / f"latest.{event.extension}")
            if table is not None:
                atomic_link(folder / f"{stem}.csv", folder / "latest.csv")
            atomic_link(event_file, folder / f"latest{EVENT_SUFFIX}")
        fsync_dir(folder)
        if self.keep_versions is not None:
            _prune(folder, self.keep_versions)

    def _wants_csv(self, event: Event) -> bool:
        """With ``format = "csv"``, an AP snapshot is also written as elex's results CSV (a raw
        delta is no snapshot, and other payloads have no such table)."""
        return self.csv and not event.resource.endswith(".delta") and event.extension == "json"


def _is_newest(folder: Path, event: Event) -> bool:
    """Whether ``event`` is at least as new as the one ``latest`` holds, by when each was
    detected (not by sequence: a state that was lost starts counting at 1 again, and a dead
    letter redelivered later is older than what followed it)."""
    try:
        current = json.loads((folder / f"latest{EVENT_SUFFIX}").read_bytes())
        detected = datetime.fromisoformat(str(current["detected_at"]).replace("Z", "+00:00"))
    except (OSError, ValueError, KeyError):
        return True
    return event.detected_at >= detected


def _prune(folder: Path, keep: int) -> None:
    stems = sorted(
        p.name.removesuffix(EVENT_SUFFIX)
        for p in folder.glob(f"*{EVENT_SUFFIX}")
        if not p.name.startswith("latest")
    )
    for stem in stems[:-keep]:
        for path in folder.glob(f"{stem}.*"):
            path.unlink(missing_ok=True)
