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
    """Replace ``target`` with a copy of ``source``; readers see the old or the new file, whole.

    The kernel copies (sendfile), so a large payload costs no memory here.
    """
    with source.open("rb") as src:
        _replace(target, lambda dst: _copy(src, dst))


def _copy(src: BinaryIO, dst: BinaryIO) -> None:
    size = os.fstat(src.fileno()).st_size
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(dst.fileno(), src.fileno(), offset, size - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:  # a file system without sendfile between files: copy by hand
        src.seek(offset)
        dst.seek(offset)
        shutil.copyfileobj(src, dst, 64 * 1024)


def atomic_link(source: Path, target: Path) -> None:
    """Replace ``target`` with another name of ``source`` (a file already made durable): no copy
    and no fsync of the data; readers see the old or the new file, whole. A copy where the file
    system has no hard links."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        atomic_copy(source, target)
        return
    tmp.replace(target)


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
