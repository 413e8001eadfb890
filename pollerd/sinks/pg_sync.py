"""Making part of a table equal a set of rows, writing only what differs: rows are copied into a
temporary table, upserted where new or changed, and the rows of the same scope that are no longer
among them are deleted. Runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection, sql

from pollerd.sinks.pg_tables import Table


def typed(table: Table, rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows as the table takes them (values in column order, typed), by key; rows without a key
    are left out, and of a repeated key the last wins."""
    key_at = table.key_at
    by_key: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        values = table.values(row)
        if values is not None:
            by_key[tuple(values[i] for i in key_at)] = values
    return by_key


async def sync(
    db: AsyncConnection[Any],
    prefix: str,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    scope: Sequence[str] = (),
    within: Iterable[tuple[Any, ...]] = (),
    unless_older: str | None = None,
) -> int:
    """Upsert ``rows``; with ``scope`` (columns) delete the rows whose scope values are ``within``
    and are not among ``rows``; with ``unless_older`` (a column) keep a stored row that says it is
    newer than the incoming one. The number of rows inserted, changed or deleted (a row that is
    already so is not written)."""
    target, incoming = _names(prefix, table)
    found = typed(table, rows)
    places = list(within)
    if not found and not (scope and places):
        return 0
    written = await _upsert_all(db, prefix, table, found.values(), unless_older)
    if scope and places:
        written += await _delete_stale(db, table, target, incoming, scope, places)
    return written


async def apply(
    db: AsyncConnection[Any],
    prefix: str,
    table: Table,
    changed: Iterable[tuple[Any, ...]],
    gone: Iterable[tuple[Any, ...]],
) -> int:
    """Upsert rows known to differ (typed values) and delete rows by key: for a writer that knows
    what the table holds. The number of rows written."""
    target, _ = _names(prefix, table)
    rows = list(changed)
    written = await _upsert_all(db, prefix, table, rows, None) if rows else 0
    keys = list(gone)
    if keys:
        kinds = dict(table.columns)
        statement = sql.SQL("DELETE FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
            target,
            sql.SQL(", ").join(map(sql.Identifier, table.key)),
            sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(kinds[k])) for k in table.key),
        )
        cursor = await db.execute(statement, [list(column) for column in zip(*keys, strict=True)])
        written += max(cursor.rowcount, 0)
    return written


def _names(prefix: str, table: Table) -> tuple[sql.Identifier, sql.Identifier]:
    return sql.Identifier(prefix + table.name), sql.Identifier(f"{prefix}{table.name}_incoming")


async def _upsert_all(
    db: AsyncConnection[Any],
    prefix: str,
    table: Table,
    values: Iterable[tuple[Any, ...]],
    unless_older: str | None,
) -> int:
    """COPY the rows into the table's temporary twin (emptied at each commit), then upsert the
    ones that differ."""
    target, incoming = _names(prefix, table)
    columns = sql.SQL(", ").join(map(sql.Identifier, table.names))
    await db.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(incoming, target)
    )
    async with db.cursor() as cursor:
        async with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(incoming, columns)) as copy:
            for row in values:
                await copy.write_row(row)
        await cursor.execute(_upsert(table, target, incoming, columns, unless_older))
        return max(cursor.rowcount, 0)


def _upsert(
    table: Table,
    target: sql.Identifier,
    incoming: sql.Identifier,
    columns: sql.Composable,
    unless_older: str | None,
) -> sql.Composed:
    keys = sql.SQL(", ").join(map(sql.Identifier, table.key))
    rest = [sql.Identifier(name) for name in table.names if name not in table.key]
    action: sql.Composable
    if not rest:
        action = sql.SQL("DO NOTHING")
    else:
        mine = sql.SQL(", ").join(sql.SQL("{}.{}").format(target, c) for c in rest)
        theirs = sql.SQL(", ").join(sql.SQL("excluded.{}").format(c) for c in rest)
        action = sql.SQL("DO UPDATE SET ({}) = ROW({}) WHERE ROW({}) IS DISTINCT FROM ROW({})").format(
            sql.SQL(", ").join(rest), theirs, mine, theirs
        )
        if unless_older is not None:
            action += sql.SQL(" AND ({new} IS NULL OR {old} IS NULL OR {new} >= {old})").format(
                new=sql.SQL("excluded.{}").format(sql.Identifier(unless_older)),
                old=sql.SQL("{}.{}").format(target, sql.Identifier(unless_older)),
            )
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
        target, columns, columns, incoming, keys, action
    )


async def _delete_stale(
    db: AsyncConnection[Any],
    table: Table,
    target: sql.Identifier,
    incoming: sql.Identifier,
    scope: Sequence[str],
    places: list[tuple[Any, ...]],
) -> int:
    kinds = dict(table.columns)
    arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(kinds[c])) for c in scope)
    same_key = sql.SQL(" AND ").join(sql.SQL("i.{k} = t.{k}").format(k=sql.Identifier(k)) for k in table.key)
    statement = sql.SQL(
        "DELETE FROM {} t WHERE ({}) IN (SELECT * FROM unnest({}))"
        " AND NOT EXISTS (SELECT 1 FROM {} i WHERE {})"
    ).format(
        target,
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in scope),
        arrays,
        incoming,
        same_key,
    )
    cursor = await db.execute(statement, [list(column) for column in zip(*places, strict=True)])
    return max(cursor.rowcount, 0)
