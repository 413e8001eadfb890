"""Checks that a downloaded body is what the resource should contain, before anyone sees it.

Called in a worker thread where it reads the file; a small body held in memory is checked where it is.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 512
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
MAX_DEPTH = 1024  # orjson's own limit; election data nests about ten deep


class PayloadRejected(Exception):
    """A body that must not be delivered; ``reason`` is a short label for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def effective_format(configured: str, url: str, content_type: str | None) -> str:
    """Resolve ``auto`` from the URL's extension, then from the content type."""
    if configured != "auto":
        return configured
    suffix = PurePosixPath(unquote(urlsplit(url).path)).suffix.lower()
    if suffix == ".json" or (content_type or "").split(";")[0].strip().endswith("json"):
        return "json"
    if suffix in (".csv", ".txt", ".xml") or (content_type or "").startswith("text/"):
        return "text"
    return "binary"


def extension_for(fmt: str, url: str) -> str:
    """The file extension versions of this resource are stored with."""
    if fmt == "json":
        return "json"
    suffix = PurePosixPath(unquote(urlsplit(url).path)).suffix.lstrip(".").lower()
    if suffix.isalnum() and len(suffix) <= 8:
        return suffix
    return "txt" if fmt == "text" else "bin"


def validate_payload(path: Path, fmt: str, allow_empty: bool) -> Any:
    """Raise PayloadRejected when the file is empty (unless allowed), an HTML page, or bad JSON.

    Returns the parsed document of a non-empty JSON body (None otherwise), so it is parsed once.
    """
    size = path.stat().st_size
    with path.open("rb") as body:
        head = body.read(_SNIFF_BYTES)
    if not _worth_reading(size, head, fmt, allow_empty):
        return None
    return _parse_json(path) if fmt == "json" else None


def validate_body(body: bytes, fmt: str, allow_empty: bool) -> Any:
    """``validate_payload`` of a body held in memory (no file read: fit for the event loop when
    the body is small)."""
    if not _worth_reading(len(body), body[:_SNIFF_BYTES], fmt, allow_empty):
        return None
    return strict_json(body) if fmt == "json" else None


def _worth_reading(size: int, head: bytes, fmt: str, allow_empty: bool) -> bool:
    """False for an empty body that is allowed; PayloadRejected for one that is not, or for an
    HTML page where data was expected."""
    if size == 0:
        if allow_empty:
            return False
        raise PayloadRejected("empty", "the body is empty")
    if fmt != "binary" and head.removeprefix(BOM).lstrip().lower().startswith(_HTML_STARTS):
        raise PayloadRejected("html", "an HTML page where data was expected")
    return True


def _parse_json(path: Path) -> Any:
    return strict_json(path.read_bytes())


def stored_json(path: Path) -> Any:
    """A payload kept earlier, parsed; None when it is gone or is no JSON (it was validated when
    it came, so a reader of the previous version can do without it)."""
    try:
        return kept_json(path.read_bytes())
    except OSError:
        return None


def kept_json(raw: bytes) -> Any:
    """Bytes pollerd validated when they came, parsed again; None when they are no JSON."""
    try:
        return orjson.loads(raw.removeprefix(BOM))
    except orjson.JSONDecodeError:
        return None


def loose_json(raw: bytes | str) -> Any:
    """A body that may be JSON (an error answer, a service's reply), parsed with the payloads'
    bounds (nesting, size of numbers); None when it is not JSON. Never raises on what a server
    sends: a body of 4,096 ``[`` is not JSON, not a crash."""
    try:
        return orjson.loads(raw.removeprefix(BOM) if isinstance(raw, bytes) else raw.removeprefix("\ufeff"))
    except orjson.JSONDecodeError:
        return None


def strict_json(raw: bytes) -> Any:
    """Parse JSON as receivers will: UTF-8 (a BOM allowed), no NaN or Infinity (not JSON, and
    many parsers refuse them), no number past a double's range (``1e999``), nested at most
    MAX_DEPTH deep (deeper is an attack or a bug). PayloadRejected otherwise.

    orjson makes every one of these checks itself, in the parse, at no extra cost."""
    try:
        return orjson.loads(raw.removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        raise PayloadRejected("invalid_json", _reason(exc)) from None


def _reason(exc: orjson.JSONDecodeError) -> str:
    message = str(exc)
    if "depth limit" in message or "recursion" in message:
        return f"nested more than {MAX_DEPTH} deep"
    for constant in ("Infinity", "NaN"):
        if exc.doc[exc.pos : exc.pos + len(constant)] == constant:
            sign = "-" if exc.doc[exc.pos - 1 : exc.pos] == "-" else ""
            return f"{sign}{constant} is not a JSON number"
    if "infinity" in message:
        return "a number out of a double's range"
    return message[:200]
