"""The high-water mark beside a SQLite state: the newest event the database has committed, kept
in a file of its own. A database that comes back with less (its WAL file removed after a
``kill -9``, an older copy restored) lost commits that receivers may already have: the
sequences after it would be given again to other contents under new event ids. That is found
at start and announced as STATE LOST, as a deleted database is.

The mark is written after every commit (one ``pwrite`` of a few bytes; a killed process loses
nothing the kernel holds) and made durable once a poll cycle (``sync``), so only a power cut
within a cycle can leave it behind the database's own last durable commit: a miss, never a
false alarm."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

MARK_FILE = "pollerd.high-water"
_WIDTH = 20


def newest_event(db: sqlite3.Connection) -> int:
    """The id of the newest event the database ever committed (AUTOINCREMENT never reuses one)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0]) if row else 0


class HighWater:
    """The mark file of one state directory (used from the store's own thread)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / MARK_FILE
        self._fd: int | None = None
        self._dirty = False

    def read(self) -> int | None:
        """The mark, or None when there is none (a state older than the mark, or a new one)."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def lost(self, db: sqlite3.Connection) -> str | None:
        """Evidence that the database lost commits the mark saw, or None."""
        mark, newest = self.read(), newest_event(db)
        if mark is None or mark <= newest:
            return None
        return (
            f"the state database ends at event {newest} but event {mark} was committed before "
            f"({mark - newest} commits lost: a WAL file removed or an older copy restored)"
        )

    def advance(self, db: sqlite3.Connection) -> None:
        """After a commit: the mark moves to the database's newest event."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(self._fd, str(newest_event(db)).rjust(_WIDTH).encode() + b"\n", 0)
        self._dirty = True

    def sync(self) -> None:
        """Make the mark durable (once a cycle)."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        """Sync and close the file."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
