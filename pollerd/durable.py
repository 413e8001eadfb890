"""Crash-safe file writes: write to a temporary name, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_copy(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of ``source``; readers see the old or the new file, whole."""
    tmp = target.with_name(f".{target.name}.tmp")
    with source.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(target)


def atomic_write(data: bytes, target: Path) -> None:
    """Replace ``target`` with ``data``; readers see the old or the new file, whole."""
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as dst:
        dst.write(data)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(target)
