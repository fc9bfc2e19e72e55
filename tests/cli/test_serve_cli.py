"""`loadtool serve` and `loadtool token` as processes (docs/protocol.md §2, §9): the done
criterion end to end (serve, mint a token, two clients chat in the seed dialect) and the
refusals that must exit 2 (or non-zero) with a clear message.

The processes are run with tests/serveproc.py.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Final

import trio

from loadtool import protocol as p
from tests.conftest import SECRET, Clients
from tests.serveproc import run_loadtool, serve_process

CEILING_S: Final = 30


# --- the done criterion -----------------------------------------------------------------------


async def test_serve_token_and_chat_end_to_end(tmp_path: Path, clients: Clients) -> None:
    async with serve_process(tmp_path / "serve.log") as server:
        minted = await run_loadtool(
            "token", "--user", "alice", "--room", "general", "--secret", SECRET
        )
        assert minted.returncode == 0, minted.stderr
        assert re.fullmatch(rb"[\w-]+\.[\w-]+\.[\w-]+\n", minted.stdout), minted.stdout
        alice_token = minted.stdout.decode().strip()
        grant = p.verify_token(SECRET, alice_token)
        assert (grant.user_id, grant.rooms) == ("alice", frozenset({"general"}))
        bob_token = (
            await run_loadtool("token", "--user", "bob", "--room", "general", "--secret", SECRET)
        ).stdout.decode()[:-1]
        with trio.fail_after(CEILING_S):
            alice = await clients.open(f"{server.url}?token={alice_token}", "alice")
            welcome = await alice.recv()
            assert isinstance(welcome, p.Welcome)
            assert (welcome.user_id, welcome.rooms, welcome.protocol) == ("alice", ("general",), 1)
            assert await alice.recv() == p.Joined(room="general", seq=0)
            bob = await clients.open(f"{server.url}?token={bob_token}", "bob")
            assert isinstance(await bob.recv(), p.Welcome)
            assert await bob.recv() == p.Joined(room="general", seq=0)
            assert await alice.recv() == p.Presence(room="general", user_id="bob", status="joined")
            # The seed dialect: no "type", the five ChatMessage fields.
            seed = {
                "id": "seed-1",
                "room": "general",
                "senderId": "alice",
                "text": "hello from the seed client",
                "sentAt": "2026-11-29T10:00:00.000Z",
            }
            await alice.send(seed)
            assert await alice.recv() == p.Ack(id="seed-1", room="general", seq=1)
            expected = p.Message(
                id="seed-1",
                room="general",
                sender_id="alice",
                text="hello from the seed client",
                sent_at="2026-11-29T10:00:00.000Z",
                seq=1,
            )
            assert await bob.recv() == expected
            assert await alice.recv() == expected  # the sender gets it too
            # senderId in a frame is never trusted: it is the token's user.
            await bob.send({**seed, "id": "seed-2", "senderId": "alice"})
            assert await bob.recv() == p.Ack(id="seed-2", room="general", seq=2)
            spoofed = await alice.recv()
            assert isinstance(spoofed, p.Message)
            assert (spoofed.sender_id, spoofed.seq) == ("bob", 2)
            await alice.close()
            await bob.close()


# --- refusals ---------------------------------------------------------------------------------


async def test_serve_with_a_short_secret_exits_2() -> None:
    result = await run_loadtool("serve", "--port", "0", "--secret", "short")
    assert result.returncode == 2
    assert b"secret must be at least 8 characters" in result.stderr
    assert result.stdout == b""


async def test_serve_on_a_port_in_use_exits_2_naming_the_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await run_loadtool("serve", "--port", str(port), "--secret", SECRET)
    assert result.returncode == 2, result.stderr.decode()
    assert f"port {port}".encode() in result.stderr
    assert b"Traceback" not in result.stderr


async def test_token_with_a_bad_user_id_exits_2() -> None:
    result = await run_loadtool(
        "token", "--user", "bad user!", "--room", "general", "--secret", SECRET
    )
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"--user" in result.stderr
    assert b"'bad user!' is not a user id" in result.stderr


async def test_serve_with_db_in_a_missing_directory_fails_naming_the_path(
    tmp_path: Path,
) -> None:
    db = tmp_path / "missing" / "x.db"
    result = await run_loadtool("serve", "--port", "0", "--secret", SECRET, "--db", str(db))
    assert result.returncode != 0
    assert str(db).encode() in result.stderr
    assert result.stdout == b""  # it never listened
    assert not db.parent.exists()


async def test_serve_with_db_in_a_missing_directory_gives_a_clean_error(
    tmp_path: Path,
) -> None:
    db = tmp_path / "missing" / "x.db"
    result = await run_loadtool("serve", "--port", "0", "--secret", SECRET, "--db", str(db))
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    assert re.search(rb"^Error: .*" + re.escape(str(db).encode()), result.stderr, re.MULTILINE)
