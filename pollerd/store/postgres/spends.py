"""Request budgets across replicas on PostgreSQL: each replica writes down the requests it made
from a shared budget (by the budget's digest, with the database's time), and a replica that takes
over the sources spending it reads what the others spent in the window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    Connection = AsyncConnection[tuple[Any, ...]]

KEEP = 3600.0  # seconds a spend is kept: longer than any budget's window


async def share(db: Connection, spender: str, spent: dict[str, list[float]]) -> None:
    """Write down ``spender``'s requests (budget digest -> ages in seconds); forget old ones."""
    rows = [(budget, spender, age) for budget, ages in spent.items() for age in ages]
    async with db.transaction():
        await db.execute("DELETE FROM pollerd.spends WHERE settled_at < pollerd.clock() - %s", (KEEP,))
        async with db.cursor() as cursor:
            await cursor.executemany("INSERT INTO pollerd.spends VALUES (%s, %s, pollerd.clock() - %s)", rows)


async def spent_elsewhere(db: Connection, spender: str) -> dict[str, list[float]]:
    """Budget digest -> the ages of the requests every other spender made (the last ``KEEP``)."""
    cursor = await db.execute(
        "SELECT budget, pollerd.clock() - settled_at FROM pollerd.spends"
        " WHERE spender <> %s AND settled_at > pollerd.clock() - %s",
        (spender, KEEP),
    )
    spent: dict[str, list[float]] = {}
    for budget, age in await cursor.fetchall():
        spent.setdefault(str(budget), []).append(float(age))
    return spent
