"""Durable message history for the reference server: a protocol and two stores.

The server core keeps each room's recent messages in memory and assigns seq numbers
itself; a store only makes accepted messages durable (group commit: one `append` per
batch, acks go out after it returns) and answers history pages older than the in-memory
ring. `MemoryStore` stores nothing (the ring is the whole history); `SqliteStore` keeps
everything in one SQLite file so a restarted server continues seq numbering, history and
dedupe where it stopped, even after SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Final, Protocol, TypeVar

import attrs
import trio

from .. import protocol as p

SCHEMA_VERSION: Final = 1  # the `meta` schema_version this code reads and writes
BUSY_TIMEOUT_MS: Final = 5_000  # ms to wait for another process's lock before failing

_T = TypeVar("_T")

_COLUMNS: Final = "room, seq, id, sender_id, text, sent_at, received_at"

# Statements run one by one: `executescript` would commit the surrounding transaction.
_SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE messages ("
    " room TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, sender_id TEXT NOT NULL,"
    " text TEXT NOT NULL, sent_at TEXT NOT NULL, received_at REAL NOT NULL,"
    " PRIMARY KEY (room, seq)) WITHOUT ROWID",
    "CREATE INDEX messages_received_at ON messages (received_at)",
)

# One row per room without scanning every message: hop from room to room along the
# primary key (a "skip scan"), then read each room's head from the same index.
_HEADS_SQL: Final = """
WITH RECURSIVE rooms(room) AS (
    SELECT MIN(room) FROM messages
    UNION ALL
    SELECT (SELECT MIN(room) FROM messages WHERE room > rooms.room)
    FROM rooms WHERE rooms.room IS NOT NULL
)
SELECT room, (SELECT MAX(seq) FROM messages WHERE messages.room = rooms.room)
FROM rooms WHERE room IS NOT NULL
"""


class StorageError(Exception):
    """The message database cannot be opened, read or written; the text names the file."""


@attrs.frozen(kw_only=True)
class StoredMessage:
    """An accepted message as the server keeps it: the wire fields plus its receive time."""

    room: str
    seq: int
    id: str
    sender_id: str
    text: str
    sent_at: str  # ISO-8601 UTC as on the wire
    received_at: float  # unix seconds, server clock; dedupe windows are measured on it

    def to_frame(self) -> p.Message:
        return p.Message(
            id=self.id,
            room=self.room,
            sender_id=self.sender_id,
            text=self.text,
            sent_at=self.sent_at,
            seq=self.seq,
        )


@attrs.frozen(kw_only=True)
class Snapshot:
    """What a store hands the server at start-up."""

    heads: dict[str, int]  # room -> highest stored seq
    recent: dict[str, list[StoredMessage]]  # room -> last `per_room` messages, ascending seq
    # received_at >= dedupe_since, ascending received_at, at most dedupe_limit (the newest)
    dedupe: list[StoredMessage]


class HistorySource(Protocol):
    """Where history pages older than a node's memory come from (a store, or Redis)."""

    async def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """One history page, ascending by seq, and whether more lie beyond it."""
        ...


class MessageStore(Protocol):
    """Durability and deep history; the server never runs two calls at once."""

    @property
    def durable(self) -> bool:
        """True when an acknowledged message survives a crash (acks wait for `append`)."""
        ...

    async def load(self, *, per_room: int, dedupe_since: float, dedupe_limit: int) -> Snapshot:
        """Everything the server needs to continue after a restart."""
        ...

    async def append(self, batch: Sequence[StoredMessage]) -> None:
        """Store a batch in one transaction; durable when it returns (file database)."""
        ...

    async def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """One history page, ascending by seq, and whether more lie beyond it."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """No durability: the server's in-memory ring is the whole history."""

    @property
    def durable(self) -> bool:
        return False

    async def load(self, *, per_room: int, dedupe_since: float, dedupe_limit: int) -> Snapshot:
        await trio.lowlevel.checkpoint()
        return Snapshot(heads={}, recent={}, dedupe=[])

    async def append(self, batch: Sequence[StoredMessage]) -> None:
        await trio.lowlevel.checkpoint()

    async def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        await trio.lowlevel.checkpoint()
        return [], False

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


class SqliteStore:
    """Every message in one SQLite file (WAL, synchronous=FULL: a returned append is on disk).

    sqlite3 blocks, so each call runs in a worker thread; a trio.Lock keeps the single
    connection to one call at a time. Worker calls are never abandoned on cancellation,
    so a cancelled caller cannot leave a transaction running behind the lock.
    """

    def __init__(self, path: pathlib.Path, connection: sqlite3.Connection) -> None:
        """Use `SqliteStore.open`, which creates or checks the schema first."""
        self._path = path
        self._conn: sqlite3.Connection | None = connection
        self._lock = trio.Lock()

    @classmethod
    async def open(cls, path: pathlib.Path) -> SqliteStore:
        """Open or create the database at `path`.

        Raises:
            StorageError: the file cannot be opened or created, is not a loadtool database,
                or was written by a newer loadtool (unknown schema version).
        """
        try:
            connection = await trio.to_thread.run_sync(_connect, path)
        except (sqlite3.Error, _Refused, OSError) as exc:
            raise StorageError(f"cannot open message database {path}: {exc}") from exc
        return cls(path, connection)

    @property
    def durable(self) -> bool:
        return True

    async def load(self, *, per_room: int, dedupe_since: float, dedupe_limit: int) -> Snapshot:
        if per_room < 0 or dedupe_limit < 0:
            raise ValueError("per_room and dedupe_limit must not be negative")

        def run(conn: sqlite3.Connection) -> Snapshot:
            heads = {str(room): int(head) for room, head in conn.execute(_HEADS_SQL)}
            recent = {
                room: _messages(
                    conn,
                    f"SELECT {_COLUMNS} FROM messages WHERE room = ? ORDER BY seq DESC LIMIT ?",
                    (room, per_room),
                )[::-1]
                for room in heads
            }
            # Ties on received_at are broken by the primary key, which the index carries.
            dedupe = _messages(
                conn,
                f"SELECT {_COLUMNS} FROM messages WHERE received_at >= ?"
                " ORDER BY received_at DESC, room DESC, seq DESC LIMIT ?",
                (dedupe_since, dedupe_limit),
            )[::-1]
            return Snapshot(heads=heads, recent=recent, dedupe=dedupe)

        return await self._call("read the start-up snapshot from", run)

    async def append(self, batch: Sequence[StoredMessage]) -> None:
        """Insert the batch in one transaction; on failure nothing of it is stored.

        Raises:
            StorageError: the write or the commit failed (e.g. disk full, a (room, seq)
                that is already stored); the transaction was rolled back.
        """
        if not batch:
            await trio.lowlevel.checkpoint()
            return
        rows = [(m.room, m.seq, m.id, m.sender_id, m.text, m.sent_at, m.received_at) for m in batch]

        def run(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )

        await self._call(f"store {len(rows)} messages in", run)

    async def page(
        self, room: str, *, before: int | None, after: int | None, limit: int
    ) -> tuple[list[StoredMessage], bool]:
        """Neither: the newest `limit`. after=N: the oldest `limit` above N. before=N: the
        newest `limit` below N. has_more says whether messages lie beyond the page in the
        direction the page was taken (older for newest/before, newer for after)."""
        if before is not None and after is not None:
            raise ValueError("give at most one of before and after")
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        select = f"SELECT {_COLUMNS} FROM messages WHERE room = ?"
        # One row more than asked tells whether more exist, without a second query.
        args: tuple[object, ...]
        if after is not None:
            sql, args = f"{select} AND seq > ? ORDER BY seq LIMIT ?", (room, after, limit + 1)
        elif before is not None:
            sql = f"{select} AND seq < ? ORDER BY seq DESC LIMIT ?"
            args = (room, before, limit + 1)
        else:
            sql, args = f"{select} ORDER BY seq DESC LIMIT ?", (room, limit + 1)
        newest_first = after is None

        def run(conn: sqlite3.Connection) -> tuple[list[StoredMessage], bool]:
            rows = _messages(conn, sql, args)
            has_more = len(rows) > limit
            rows = rows[:limit]
            return (rows[::-1] if newest_first else rows), has_more

        return await self._call("read history from", run)

    async def aclose(self) -> None:
        """Close the connection (checkpointing the WAL); later calls raise StorageError."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await trio.to_thread.run_sync(conn.close)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot close message database {self._path}: {exc}") from exc

    async def _call(self, what: str, run: Callable[[sqlite3.Connection], _T]) -> _T:
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"cannot {what} {self._path}: the store is closed")
            try:
                return await trio.to_thread.run_sync(run, conn)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot {what} {self._path}: {exc}") from exc


class _Refused(Exception):
    """Opening refused for a reason found here rather than by sqlite3 (wrong schema, no dir)."""


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error so nothing is half-written."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT may already have rolled back
            conn.execute("ROLLBACK")
        raise


def _connect(path: pathlib.Path) -> sqlite3.Connection:
    """Open, check and if new initialise the database (runs in a worker thread)."""
    if not path.parent.is_dir():
        raise _Refused(f"directory {path.parent} does not exist")
    # isolation_level=None: no implicit transactions; _transaction says where they are.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Check before changing anything, so a foreign database is left as it was.
        fresh = _schema_version(conn) is None
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        if fresh:
            with _transaction(conn):
                if _schema_version(conn) is None:  # nobody created it meanwhile
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
            _sync_directory(path.parent)
    except BaseException:
        conn.close()
        raise
    return conn


def _schema_version(conn: sqlite3.Connection) -> int | None:
    """None for an empty database; raises _Refused for anything but our own schema."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables:
        return None
    if "meta" not in tables or "messages" not in tables:
        raise _Refused("not a loadtool message database")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise _Refused("not a loadtool message database (no schema version)")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise _Refused(f"unknown schema version {row[0]!r}") from None
    if version != SCHEMA_VERSION:
        raise _Refused(
            f"schema version {version} is not supported (this loadtool reads version"
            f" {SCHEMA_VERSION}); was it written by a newer loadtool?"
        )
    return version


def _sync_directory(directory: pathlib.Path) -> None:
    """Make a newly created database file's directory entry durable (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _messages(conn: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> list[StoredMessage]:
    return [
        StoredMessage(
            room=room,
            seq=seq,
            id=id_,
            sender_id=sender_id,
            text=text,
            sent_at=sent_at,
            received_at=float(received_at),
        )
        for room, seq, id_, sender_id, text, sent_at, received_at in conn.execute(sql, args)
    ]
