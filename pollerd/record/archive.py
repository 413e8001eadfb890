"""The recording format: one folder per source, an append-only index of answers and the bodies
they carried, each stored once under its SHA-256.

```
<dir>/<source>/source.json      what the source was: name, kind, its config without secrets
<dir>/<source>/answers.jsonl    one answer per line, in the order they arrived
<dir>/<source>/bodies/<sha256>.gz
```

A body is written to a temporary file and renamed into place before the index line that names
it is written, so an index line never points at a missing body. The index is appended one whole
line at a time; a process killed mid-write leaves at most a torn last line, which readers skip
and the next writer cuts off before appending.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

FORMAT = 1
INDEX = "answers.jsonl"
SOURCE = "source.json"
BODIES = "bodies"
RECIPES = "recipes.jsonl"
_COMPRESSION = 6
_CHUNK = 1024 * 1024
_SYNC_EVERY = 1.0  # seconds between fsyncs of the index (a kill -9 loses nothing written)


class BodyDamaged(ValueError):
    """A stored body that cannot be read back as the bytes its name promises."""


@dataclass(frozen=True)
class Answer:
    """One answer as it arrived: when, to which request, what it said.

    ``status`` is None when no answer came (``error`` says why); ``body`` is the SHA-256 of the
    body as served (after transfer decoding), None when there was none (HEAD, 304).
    """

    at: float
    method: str
    url: str
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    size: int = 0
    error: str | None = None

    def line(self) -> bytes:
        """The answer as one index line."""
        fields = {k: v for k, v in asdict(self).items() if v not in (None, {}, 0) or k == "status"}
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    @classmethod
    def of(cls, fields: dict[str, Any]) -> Answer:
        """An answer from a parsed index line (KeyError or TypeError if it is not one)."""
        return cls(
            at=float(fields["at"]),
            method=str(fields["method"]),
            url=str(fields["url"]),
            status=None if fields.get("status") is None else int(fields["status"]),
            headers={str(k): str(v) for k, v in dict(fields.get("headers") or {}).items()},
            body=fields.get("body"),
            size=int(fields.get("size") or 0),
            error=fields.get("error"),
        )


@dataclass(frozen=True)
class SourceInfo:
    """What ``source.json`` says of a recorded source."""

    name: str
    kind: str
    config: dict[str, Any]

    def to_json(self) -> bytes:
        """The file's bytes."""
        document = {"format": FORMAT, "name": self.name, "kind": self.kind, "config": self.config}
        return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


class ArchiveWriter:
    """Appends to one source's recording (blocking calls: run them in a thread)."""

    def __init__(self, folder: Path, info: SourceInfo) -> None:
        self.folder = folder
        self.bodies = folder / BODIES
        self.bodies.mkdir(parents=True, exist_ok=True)
        _replace(folder / SOURCE, info.to_json())
        index = folder / INDEX
        _cut_torn_line(index)
        self._index: BinaryIO = index.open("ab")
        self._synced = time.monotonic()

    def keep_bytes(self, body: bytes) -> str:
        """Store a body (once per content); its SHA-256."""
        digest = hashlib.sha256(body).hexdigest()
        target = self.bodies / f"{digest}.gz"
        if not target.exists():
            _replace(target, gzip.compress(body, _COMPRESSION, mtime=0))
        return digest

    def keep_file(self, path: Path, sha256: str) -> None:
        """Store a body already on disk whose SHA-256 is known (a streamed download)."""
        target = self.bodies / f"{sha256}.gz"
        if target.exists():
            return
        part = self.bodies / f".{uuid.uuid4().hex}.part"
        try:
            with path.open("rb") as source, gzip.GzipFile(part, "wb", _COMPRESSION, mtime=0) as sink:
                shutil.copyfileobj(source, sink, _CHUNK)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)

    def append(self, answer: Answer) -> None:
        """Add one answer to the index (whole line, one write)."""
        self._index.write(answer.line())
        self._index.flush()
        now = time.monotonic()
        if now - self._synced >= _SYNC_EVERY:
            os.fsync(self._index.fileno())
            self._synced = now

    def close(self) -> None:
        """Flush, sync and close the index."""
        if not self._index.closed:
            self._index.flush()
            os.fsync(self._index.fileno())
            self._index.close()


@dataclass
class Recording:
    """One recorded source, read back: what it was and every complete answer, in order."""

    folder: Path
    info: SourceInfo
    answers: list[Answer]
    skipped: int = 0  # lines that were not answers (a torn last line)

    def body(self, sha256: str) -> bytes:
        """A stored body (blocking); BodyDamaged when its file is not the body it names."""
        path = self.folder / BODIES / f"{sha256}.gz"
        try:
            body = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:  # truncated, not gzip, unreadable
            raise BodyDamaged(f"{path}: {exc or type(exc).__name__}") from None
        if hashlib.sha256(body).hexdigest() != sha256:
            raise BodyDamaged(f"{path}: its bytes are not the body of that SHA-256")
        return body

    def check_bodies(self) -> list[str]:
        """Every stored body this recording names, read and checked: what is wrong (blocking)."""
        named = {answer.body for answer in self.answers if answer.body is not None}
        damaged = []
        for sha256 in sorted(named):
            if self.has_body(sha256):
                try:
                    self.body(sha256)
                except BodyDamaged as exc:
                    damaged.append(str(exc))
        return damaged

    def has_body(self, sha256: str) -> bool:
        """Whether the body is stored here."""
        return (self.folder / BODIES / f"{sha256}.gz").exists()


def read_recording(folder: Path) -> Recording:
    """One source's recording; ValueError when the folder is not one."""
    try:
        info = json.loads((folder / SOURCE).read_text(encoding="utf-8"))
        source = _source_info(info)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{folder}: not a recorded source ({SOURCE}: {exc})") from None
    if info.get("format", FORMAT) > FORMAT:
        raise ValueError(f"{folder}: recorded by a newer pollerd (format {info['format']})")
    answers, skipped = [], 0
    for fields in _lines(folder / INDEX):
        try:
            answers.append(Answer.of(fields))
        except (KeyError, TypeError, ValueError):
            skipped += 1
    return Recording(folder, source, answers, skipped)


def _source_info(info: object) -> SourceInfo:
    """``source.json`` read, its types checked; ValueError naming the first that is wrong."""
    if not isinstance(info, dict):
        raise ValueError("not a JSON object")
    for key in ("name", "kind"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise ValueError(f"{key} must be a non-empty string")
    config = info.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError("config must be an object")
    form = info.get("format", FORMAT)
    if isinstance(form, bool) or not isinstance(form, int):
        raise ValueError("format must be a whole number")
    return SourceInfo(info["name"], info["kind"], config)


def read_archive(root: Path) -> list[Recording]:
    """Every recorded source under ``root`` (or ``root`` itself when it is one source's folder)."""
    if (root / SOURCE).exists():
        return [read_recording(root)]
    if not root.is_dir():
        raise ValueError(f"{root}: no such recording")
    recordings = [read_recording(p) for p in sorted(root.iterdir()) if (p / SOURCE).exists()]
    if not recordings:
        raise ValueError(f"{root}: no recorded source in it (no */{SOURCE})")
    return recordings


def _lines(index: Path) -> Iterator[dict[str, Any]]:
    """The index's complete lines, parsed; a torn or garbled line is skipped."""
    try:
        text = index.read_bytes()
    except FileNotFoundError:
        return
    for raw in text.split(b"\n")[:-1]:  # whatever follows the last newline is torn
        try:
            fields = json.loads(raw)
        except ValueError:
            yield {}
            continue
        yield fields if isinstance(fields, dict) else {}


def _cut_torn_line(index: Path) -> None:
    """Remove an incomplete last line (a writer killed mid-line) before appending."""
    try:
        with index.open("rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return
            file.seek(size - 1)
            if file.read(1) == b"\n":
                return
            keep = size
            while keep > 0:
                step = min(_CHUNK, keep)
                file.seek(keep - step)
                block = file.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    keep = keep - step + newline + 1
                    break
                keep -= step
            file.truncate(keep)
    except FileNotFoundError:
        return


def _replace(target: Path, data: bytes) -> None:
    part = target.with_name(f".{uuid.uuid4().hex}.part")
    try:
        part.write_bytes(data)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
