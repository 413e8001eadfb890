"""Leases on PostgreSQL: which replica polls a source (or delivers to a sink) now, and the fence
every write of that work carries. Times are the database's (``pollerd.clock()``), so replicas'
clocks never decide who holds what.

A lease is a row (name, holder, epoch, expires_at). It is taken when free or expired, the epoch
raised by one; renewed by its holder at that epoch; released on a clean stop. A write made under
a lease checks, in its own transaction, that the holder still holds it at that epoch and that it
has not expired: a replica frozen past its lease (GC, a suspended VM, SIGSTOP) cannot commit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pollerd.store.protocol import StateRefused

if TYPE_CHECKING:  # psycopg is loaded by the PostgreSQL store, not by who only catches Fenced
    from psycopg import AsyncConnection

    Connection = AsyncConnection[tuple[Any, ...]]


@dataclass(frozen=True)
class Fence:
    """A lease as its holder took it: what every write under it is checked against."""

    name: str  # "source:<name>" or "sink:<name>"
    holder: str
    epoch: int


@dataclass(frozen=True)
class LeaseRow:
    """One lease as the status shows it."""

    name: str
    holder: str
    epoch: int
    acquired_at: float
    expires_in: float  # seconds (negative: expired)


class Fenced(StateRefused):
    """A write was refused: its lease was lost (taken over, or expired)."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(
            f"{fence.name}: the lease of epoch {fence.epoch} is no longer held by {fence.holder}"
        )
        self.fence = fence


async def check(db: Connection, fence: Fence | None) -> None:
    """Within the caller's transaction: raise Fenced unless the lease is still held (``None``: an
    unfenced write, the single-writer case)."""
    if fence is None:
        return
    cursor = await db.execute(
        "SELECT 1 FROM pollerd.leases WHERE name = %s AND holder = %s AND epoch = %s"
        " AND expires_at > pollerd.clock() FOR SHARE",
        (fence.name, fence.holder, fence.epoch),
    )
    if await cursor.fetchone() is None:
        raise Fenced(fence)


async def acquire(db: Connection, name: str, holder: str, ttl: float) -> Fence | None:
    """Take the lease if it is free or expired (the epoch raised by one); None if another
    replica holds it."""
    cursor = await db.execute(
        "INSERT INTO pollerd.leases AS l"
        " VALUES (%(name)s, %(holder)s, 1, pollerd.clock(), pollerd.clock() + %(ttl)s)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = l.epoch + 1,"
        " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at"
        " WHERE l.expires_at <= pollerd.clock() RETURNING epoch",
        {"name": name, "holder": holder, "ttl": ttl},
    )
    row = await cursor.fetchone()
    return None if row is None else Fence(name, holder, int(row[0]))


async def renew(db: Connection, fences: list[Fence], ttl: float) -> set[str]:
    """Extend the leases still held at their epochs; the names of those renewed. A lease that
    expired but was not taken over is still its holder's (nobody else wrote under it)."""
    if not fences:
        return set()
    cursor = await db.execute(
        "UPDATE pollerd.leases l SET expires_at = pollerd.clock() + %s"
        " FROM unnest(%s::text[], %s::bigint[]) AS f(name, epoch)"
        " WHERE l.name = f.name AND l.epoch = f.epoch AND l.holder = %s RETURNING l.name",
        (ttl, [f.name for f in fences], [f.epoch for f in fences], fences[0].holder),
    )
    return {str(row[0]) async for row in cursor}


async def release(db: Connection, fences: list[Fence]) -> None:
    """Give leases back at once (a clean stop, or more than a fair share)."""
    for fence in fences:
        await db.execute(
            "UPDATE pollerd.leases SET expires_at = pollerd.clock()"
            " WHERE name = %s AND holder = %s AND epoch = %s",
            (fence.name, fence.holder, fence.epoch),
        )


async def heartbeat(db: Connection, replica: str, ttl: float) -> int:
    """Say this replica is alive; how many replicas are (for each one's fair share)."""
    await db.execute(
        "INSERT INTO pollerd.replicas VALUES (%s, pollerd.clock(), pollerd.clock() + %s)"
        " ON CONFLICT (replica) DO UPDATE SET seen_at = excluded.seen_at, expires_at = excluded.expires_at",
        (replica, ttl),
    )
    cursor = await db.execute("SELECT COUNT(*) FROM pollerd.replicas WHERE expires_at > pollerd.clock()")
    row = await cursor.fetchone()
    return max(1, int(row[0]) if row else 1)


async def leave(db: Connection, replica: str) -> None:
    """This replica stops: it no longer counts for the fair share."""
    await db.execute("DELETE FROM pollerd.replicas WHERE replica = %s", (replica,))


async def leases(db: Connection) -> list[LeaseRow]:
    """Every lease, by name."""
    cursor = await db.execute(
        "SELECT name, holder, epoch, acquired_at, expires_at - pollerd.clock()"
        " FROM pollerd.leases ORDER BY name"
    )
    return [LeaseRow(str(n), str(h), int(e), float(a), float(x)) async for n, h, e, a, x in cursor]
