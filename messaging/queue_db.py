"""Where the queue's statements run: on the event loop itself when the database is SQLite,
in Django's database thread otherwise.

A thread hop (asgiref's SyncToAsync, the GIL handed over and back, the loop woken through its
self-pipe) cost more server CPU than the short transaction it carried (`bench/queue_commit.py`,
docs/benchmarks.md). So on SQLite, the embedded default, each event loop
keeps a connection of its own to the database file and runs the queue's reads and group
commits on the loop, blocking it for the fraction of a millisecond a statement takes.

It never waits for a lock on the loop: its busy timeout is zero, and when another connection
(an HTTP request's, another process's) holds the write lock, or SQLite answers busy at all, the
same function runs in Django's thread instead, which waits like every other write does. On
other databases (PostgreSQL: a network round trip per statement) every call takes that thread.

The functions run here take a DB-API cursor first and use `%s` placeholders, which this
module's cursor turns into SQLite's `?` as Django's does.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection, connections, transaction

T = TypeVar("T")

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class _Cursor:
    """A sqlite3 cursor that takes Django's `%s` placeholders (the queue's SQL has no other %)."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(_convert(sql), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_convert(sql), params)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


_converted: dict[str, str] = {}


def _convert(sql: str) -> str:
    found = _converted.get(sql)
    if found is None:
        found = _converted[sql] = sql.replace("%s", "?")
    return found


def _busy(error: sqlite3.OperationalError) -> bool:
    return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _BUSY


@functools.cache
def _operations() -> Any:
    return connections["default"].ops


def datetime_param(moment: datetime) -> Any:
    """A datetime as a statement's parameter, written as Django's backend writes it (its
    operations are fetched once: in async code each task would build a connection wrapper)."""
    return _operations().adapt_datetimefield_value(moment)


_inline: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, sqlite3.Connection] = (
    weakref.WeakKeyDictionary()
)


def inline_enabled() -> bool:
    # From the settings, not `connection`: in async code each task would build a wrapper.
    engine = connections.settings["default"]["ENGINE"]
    return engine == "django.db.backends.sqlite3" and settings.PARLEY_INLINE_SQLITE


def _loop_connection() -> sqlite3.Connection | None:
    """This loop's own connection, opened on first use and closed with the loop."""
    if not inline_enabled():
        return None
    loop = asyncio.get_running_loop()
    found = _inline.get(loop)
    if found is None:
        name = connections["default"].settings_dict["NAME"]
        # isolation_level=None: no implicit transactions, BEGIN IMMEDIATE is ours to say;
        # timeout=0: a held lock answers busy at once instead of blocking the loop.
        found = sqlite3.connect(name, timeout=0, isolation_level=None, check_same_thread=False)
        found.execute("PRAGMA synchronous=NORMAL")
        found.execute("PRAGMA foreign_keys=ON")
        _inline[loop] = found
        weakref.finalize(loop, found.close)
    return found


def _in_thread_read(fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    with connection.cursor() as cursor:
        return fn(cursor, **kwargs)


def _in_thread_write(fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    with transaction.atomic(), connection.cursor() as cursor:
        return fn(cursor, **kwargs)


async def read(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """`fn(cursor, **kwargs)`: statements that only read, each its own snapshot."""
    own = _loop_connection()
    if own is not None:
        try:
            return fn(_Cursor(own.cursor()), **kwargs)
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
    return await database_sync_to_async(_in_thread_read)(fn, kwargs)


async def write(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """`fn(cursor, **kwargs)` in one transaction that holds the write lock from its start:
    committed when it returns, rolled back when it raises."""
    own = _loop_connection()
    if own is not None:
        try:
            own.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        else:
            try:
                result = fn(_Cursor(own.cursor()), **kwargs)
                own.execute("COMMIT")
                return result
            except BaseException as error:
                if own.in_transaction:  # SQLite may have rolled back already
                    own.execute("ROLLBACK")
                if not (isinstance(error, sqlite3.OperationalError) and _busy(error)):
                    raise
    return await database_sync_to_async(_in_thread_write)(fn, kwargs)
