"""Crash-safe file writes: write to a temporary name, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_copy(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of ``source``; readers see the old or the new file, whole."""
    with source.open("rb") as src:
        _replace(target, lambda dst: shutil.copyfileobj(src, dst, 1024 * 1024))


def atomic_write(data: bytes, target: Path) -> None:
    """Replace ``target`` with ``data``; readers see the old or the new file, whole."""
    _replace(target, lambda dst: dst.write(data))


def _replace(target: Path, write: Callable[[BinaryIO], object]) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with tmp.open("wb") as dst:
        write(dst)
        dst.flush()
        os.fsync(dst.fileno())
    tmp.replace(target)
