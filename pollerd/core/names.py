"""Turning names that come from upstream into safe, stable file and folder names."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LENGTH = 100


def safe_name(raw: str) -> str:
    """A name that is one path component: no separators, no '..', no control characters.

    A name that had to be altered gets a short hash of the original, so two different upstream
    names never collapse into one.
    """
    cleaned = _UNSAFE.sub("_", raw).replace("..", "_").lstrip(".-_")[:_MAX_LENGTH]
    if cleaned == raw and cleaned:
        return cleaned
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else f"r-{digest}"


def name_from_url(url: str) -> str:
    """A resource id for a URL: its last path segment, made safe."""
    path = unquote(urlsplit(url).path)
    last = PurePosixPath(path).name if not path.endswith("/") else path.rstrip("/")
    return safe_name(last or urlsplit(url).netloc)
