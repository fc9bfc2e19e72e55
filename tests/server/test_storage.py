"""Message stores: round trips, page semantics, start-up snapshots, refusals, SIGKILL."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Final

import pytest
import trio

from loadtool import protocol as p
from loadtool.server.storage import (
    SCHEMA_VERSION,
    MemoryStore,
    MessageStore,
    Snapshot,
    SqliteStore,
    StorageError,
    StoredMessage,
)

CEILING_S: Final = 30  # seconds any test touching threads or processes may take
SENT_AT: Final = "2026-11-29T10:00:00.000Z"
CRASH_ACKS: Final = 50  # acknowledged batches before the writer is killed
CRASH_BATCH: Final = 4  # messages per batch in the crash test
REPO_ROOT: Final = pathlib.Path(__file__).resolve().parents[2]


def _msg(room: str, seq: int, *, received_at: float | None = None) -> StoredMessage:
    return StoredMessage(
        room=room,
        seq=seq,
        id=f"{room}-{seq}",
        sender_id="alice",
        text=f"message {seq} in {room}",
        sent_at=SENT_AT,
        received_at=float(seq) if received_at is None else received_at,
    )


def _files(directory: pathlib.Path) -> list[str]:
    return sorted(child.name for child in directory.iterdir())


def _seqs(messages: list[StoredMessage]) -> list[int]:
    return [m.seq for m in messages]


@pytest.fixture
async def store(tmp_path: pathlib.Path) -> AsyncIterator[SqliteStore]:
    with trio.fail_after(CEILING_S):
        opened = await SqliteStore.open(tmp_path / "history.db")
    yield opened
    with trio.fail_after(CEILING_S):
        await opened.aclose()


@pytest.fixture
async def ten(store: SqliteStore) -> SqliteStore:
    """Room "r" holds seq 1-10; room "other" holds 1-3 so leaks between rooms show."""
    with trio.fail_after(CEILING_S):
        await store.append([_msg("r", seq) for seq in range(1, 11)])
        await store.append([_msg("other", seq) for seq in range(1, 4)])
    return store


async def test_round_trip_keeps_every_field(store: SqliteStore) -> None:
    message = StoredMessage(
        room="lobby#1",
        seq=1,
        id="id with spaces ✓",
        sender_id="bob@example.com",
        text="héllo 🌍\nsecond line, 'quotes' and \"doubles\"",
        sent_at="2026-11-29T10:00:00.123+00:00",
        received_at=1_780_000_000.123456,
    )
    with trio.fail_after(CEILING_S):
        await store.append([message])
        messages, has_more = await store.page("lobby#1", before=None, after=None, limit=10)
    assert messages == [message]
    assert not has_more
    assert messages[0].to_frame() == p.Message(
        id=message.id,
        room=message.room,
        sender_id=message.sender_id,
        text=message.text,
        sent_at=message.sent_at,
        seq=1,
    )


@pytest.mark.parametrize(
    ("before", "after", "limit", "seqs", "has_more"),
    [
        # newest
        (None, None, 3, [8, 9, 10], True),
        (None, None, 10, list(range(1, 11)), False),  # exactly the room
        (None, None, 50, list(range(1, 11)), False),  # limit bigger than the room
        # after
        (None, 0, 5, [1, 2, 3, 4, 5], True),
        (None, 5, 5, [6, 7, 8, 9, 10], False),  # exact multiple: nothing newer
        (None, 7, 100, [8, 9, 10], False),
        (None, 10, 5, [], False),
        (None, 99, 5, [], False),
        # before
        (11, None, 5, [6, 7, 8, 9, 10], True),
        (6, None, 5, [1, 2, 3, 4, 5], False),  # exact multiple: nothing older
        (4, None, 100, [1, 2, 3], False),
        (1, None, 5, [], False),
        (99, None, 2, [9, 10], True),
    ],
)
async def test_page_modes(
    ten: SqliteStore,
    before: int | None,
    after: int | None,
    limit: int,
    seqs: list[int],
    has_more: bool,
) -> None:
    with trio.fail_after(CEILING_S):
        messages, more = await ten.page("r", before=before, after=after, limit=limit)
    assert _seqs(messages) == seqs
    assert {m.room for m in messages} <= {"r"}
    assert more is has_more


@pytest.mark.parametrize(("before", "after"), [(None, None), (None, 0), (5, None)])
async def test_page_of_empty_room(ten: SqliteStore, before: int | None, after: int | None) -> None:
    with trio.fail_after(CEILING_S):
        assert await ten.page("nobody-here", before=before, after=after, limit=5) == ([], False)


async def test_paging_backwards_and_forwards_visits_every_message_once(ten: SqliteStore) -> None:
    with trio.fail_after(CEILING_S):
        backwards: list[int] = []
        messages, more = await ten.page("r", before=None, after=None, limit=3)
        backwards = _seqs(messages) + backwards
        while more:
            messages, more = await ten.page("r", before=backwards[0], after=None, limit=3)
            backwards = _seqs(messages) + backwards
        forwards: list[int] = []
        more = True
        while more:
            messages, more = await ten.page(
                "r", before=None, after=forwards[-1] if forwards else 0, limit=3
            )
            forwards += _seqs(messages)
    assert backwards == forwards == list(range(1, 11))


async def test_page_refuses_before_and_after_together(ten: SqliteStore) -> None:
    with trio.fail_after(CEILING_S), pytest.raises(ValueError, match="before and after"):
        await ten.page("r", before=5, after=1, limit=5)


async def test_load_of_empty_database(store: SqliteStore) -> None:
    with trio.fail_after(CEILING_S):
        snapshot = await store.load(per_room=10, dedupe_since=0.0, dedupe_limit=10)
    assert snapshot == Snapshot(heads={}, recent={}, dedupe=[])


async def test_load_heads_and_recent(ten: SqliteStore) -> None:
    with trio.fail_after(CEILING_S):
        snapshot = await ten.load(per_room=4, dedupe_since=0.0, dedupe_limit=100)
        everything = await ten.load(per_room=1000, dedupe_since=0.0, dedupe_limit=100)
    assert snapshot.heads == {"r": 10, "other": 3}
    assert {room: _seqs(ms) for room, ms in snapshot.recent.items()} == {
        "r": [7, 8, 9, 10],
        "other": [1, 2, 3],
    }
    assert _seqs(everything.recent["r"]) == list(range(1, 11))


async def test_load_dedupe_filters_by_time_and_keeps_the_newest(store: SqliteStore) -> None:
    # Rooms interleave in time, so the order must come from received_at, not the key.
    times = {("a", 1): 100.0, ("b", 1): 101.0, ("a", 2): 102.0, ("b", 2): 103.0, ("a", 3): 104.0}
    with trio.fail_after(CEILING_S):
        await store.append([_msg(room, seq, received_at=t) for (room, seq), t in times.items()])
        window = await store.load(per_room=10, dedupe_since=102.0, dedupe_limit=100)
        capped = await store.load(per_room=10, dedupe_since=0.0, dedupe_limit=2)
        nothing = await store.load(per_room=10, dedupe_since=500.0, dedupe_limit=100)
        none_kept = await store.load(per_room=10, dedupe_since=0.0, dedupe_limit=0)
    assert [(m.room, m.seq) for m in window.dedupe] == [("a", 2), ("b", 2), ("a", 3)]
    assert [m.received_at for m in capped.dedupe] == [103.0, 104.0]
    assert nothing.dedupe == []
    assert none_kept.dedupe == []
    assert nothing.heads == {"a": 3, "b": 2}  # the window does not limit heads


async def test_reopen_after_aclose_keeps_everything(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.db"
    with trio.fail_after(CEILING_S):
        first = await SqliteStore.open(path)
        await first.append([_msg("r", 1), _msg("r", 2)])
        await first.append([_msg("s", 1)])
        before = await first.load(per_room=10, dedupe_since=0.0, dedupe_limit=10)
        await first.aclose()
        await first.aclose()  # idempotent
        second = await SqliteStore.open(path)
        try:
            after = await second.load(per_room=10, dedupe_since=0.0, dedupe_limit=10)
            await second.append([_msg("r", 3)])  # numbering continues from the database
            page, _ = await second.page("r", before=None, after=None, limit=10)
        finally:
            await second.aclose()
    assert after == before
    assert after.heads == {"r": 2, "s": 1}
    assert _seqs(page) == [1, 2, 3]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_failed_append_stores_nothing_of_the_batch(ten: SqliteStore) -> None:
    with trio.fail_after(CEILING_S):
        with pytest.raises(StorageError, match=r"store 2 messages in .*history\.db"):
            await ten.append([_msg("r", 11), _msg("r", 5)])  # seq 5 is taken
        page, _ = await ten.page("r", before=None, after=None, limit=100)
        await ten.append([_msg("r", 11)])  # the failed transaction left no lock behind
        page_after, _ = await ten.page("r", before=None, after=None, limit=100)
    assert _seqs(page) == list(range(1, 11))
    assert _seqs(page_after) == list(range(1, 12))


async def test_closed_store_refuses_calls(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(CEILING_S):
        store = await SqliteStore.open(tmp_path / "history.db")
        await store.aclose()
        with pytest.raises(StorageError, match="closed"):
            await store.append([_msg("r", 1)])


async def test_garbage_file_is_refused_and_left_alone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    garbage = b"this is not a database\x00\xff" * 200
    path.write_bytes(garbage)
    with trio.fail_after(CEILING_S), pytest.raises(StorageError) as caught:
        await SqliteStore.open(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == garbage
    assert _files(tmp_path) == [path.name]  # no -wal or -journal left behind


async def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE accounts (name TEXT)")
        conn.commit()
    with trio.fail_after(CEILING_S), pytest.raises(StorageError, match="not a loadtool") as caught:
        await SqliteStore.open(path)
    assert str(path) in str(caught.value)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_missing_directory_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "missing" / "history.db"
    with trio.fail_after(CEILING_S), pytest.raises(StorageError, match="does not exist") as caught:
        await SqliteStore.open(path)
    assert str(path) in str(caught.value)
    assert not path.parent.exists()


async def test_schema_version_from_the_future_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.db"
    with trio.fail_after(CEILING_S):
        await (await SqliteStore.open(path)).aclose()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
        conn.commit()
    with trio.fail_after(CEILING_S), pytest.raises(StorageError, match="schema version") as caught:
        await SqliteStore.open(path)
    assert str(path) in str(caught.value)


async def test_memory_store_keeps_nothing() -> None:
    store: MessageStore = MemoryStore()
    assert store.durable is False
    await store.append([_msg("r", 1)])
    assert await store.load(per_room=10, dedupe_since=0.0, dedupe_limit=10) == Snapshot(
        heads={}, recent={}, dedupe=[]
    )
    assert await store.page("r", before=None, after=None, limit=10) == ([], False)
    assert await store.page("r", before=None, after=0, limit=10) == ([], False)
    await store.aclose()


async def test_sqlite_store_is_a_durable_message_store(store: SqliteStore) -> None:
    typed: MessageStore = store
    assert typed.durable is True


# The writer appends CRASH_BATCH messages per batch, alternating two rooms, and prints
# "acked <room> <seq>" only after append returned: the test's notion of "acknowledged".
_WRITER: Final = f"""
import pathlib, sys, time
import trio
from loadtool.server.storage import SqliteStore, StoredMessage

async def main() -> None:
    store = await SqliteStore.open(pathlib.Path(sys.argv[1]))
    heads = {{"a": 0, "b": 0}}
    for n in range(10**9):
        room = "ab"[n % 2]
        batch = []
        for _ in range({CRASH_BATCH}):
            heads[room] += 1
            batch.append(StoredMessage(
                room=room, seq=heads[room], id=f"{{room}}{{heads[room]}}", sender_id="w",
                text="x" * 200, sent_at="{SENT_AT}", received_at=time.time()))
        await store.append(batch)
        print(f"acked {{room}} {{heads[room]}}", flush=True)

trio.run(main)
"""


def _acked(line: bytes) -> tuple[str, int]:
    word, room, seq = line.decode().split()
    assert word == "acked"
    return room, int(seq)


@pytest.mark.slow
async def test_sigkill_loses_no_acknowledged_message(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "history.db"
    pythonpath = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    acked: list[tuple[str, int]] = []
    with trio.fail_after(CEILING_S), (tmp_path / "writer.err").open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", _WRITER, str(path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdout is not None
        buffer = b""
        try:
            while len(acked) < CRASH_ACKS:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    pytest.fail(f"writer exited early: {(tmp_path / 'writer.err').read_text()}")
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                acked += [_acked(line) for line in lines]
        finally:
            proc.kill()  # SIGKILL: no clean-up, no checkpoint, maybe mid-transaction
            await proc.wait()
        # Lines printed before the kill were acknowledged too.
        while chunk := await proc.stdout.receive_some():
            buffer += chunk
        acked += [_acked(line) for line in buffer.split(b"\n") if line]
        await proc.stdout.aclose()
        assert proc.returncode == -9

        store = await SqliteStore.open(path)
        try:
            snapshot = await store.load(per_room=10**6, dedupe_since=0.0, dedupe_limit=10**6)
        finally:
            await store.aclose()

    assert len(acked) >= CRASH_ACKS
    for room in ("a", "b"):
        top = max(seq for r, seq in acked if r == room)
        stored = _seqs(snapshot.recent[room])
        assert stored == list(range(1, snapshot.heads[room] + 1))  # no gaps
        assert snapshot.heads[room] >= top  # every acknowledged seq is there
        assert snapshot.heads[room] % CRASH_BATCH == 0  # whole batches only
