"""One writer per state directory: an OS file lock held for the life of the process that writes.

``pollerd run``, ``once`` and ``demo`` poll and record changes; two of them on one state would hand
out the same sequence number twice. The lock is ``flock`` on ``<state_dir>/pollerd.lock``, so the
kernel releases it when the holder exits, however it exits (``kill -9`` included): a stale lock file
never blocks a restart. The file holds the holder's pid, for the message a second writer prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "pollerd.lock"


class StateLocked(Exception):
    """Another process writes to this state directory."""

    def __init__(self, state_dir: Path, holder: int | None) -> None:
        who = f"pid {holder}" if holder else "another process"
        super().__init__(
            f"{state_dir} is in use by another pollerd ({who}); one process writes "
            "to a state directory at a time"
        )
        self.holder = holder


class StateLock:
    """The exclusive lock on one state directory; ``acquire`` raises StateLocked when held."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (creating the state directory) or raise StateLocked naming the holder."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLocked(self.state_dir, holder_pid(self.state_dir)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (the file stays: removing it would race the next taker)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None


def holder_pid(state_dir: Path) -> int | None:
    """The pid of the process holding the lock, or None when nobody does."""
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
