"""`loadtool serve` and `loadtool token` as processes (docs/protocol.md §2, §9): the done
criterion end to end (serve, mint a token, two clients chat in the seed dialect) and the
refusals that must exit 2 (or non-zero) with a clear message.

`serve_process` (start `loadtool serve --port 0`, read its URL line, kill it by PID in a
finally) is shared with tests/server/test_shutdown.py and test_durability.py.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio
from trio_websocket import connect_websocket_url

from loadtool import protocol as p
from tests.conftest import SECRET, Client

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
STARTUP_S: Final = 20  # seconds for a `loadtool` process to start (or fail)
CEILING_S: Final = 30
URL_LINE: Final = re.compile(rb"ws://127\.0\.0\.1:(\d+)/\n")


@attrs.define
class ServeProcess:
    """A running `loadtool serve`: its process, its URL and the file its stderr goes to."""

    process: trio.Process
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    def stderr(self) -> str:
        return _text(self.log)


@asynccontextmanager
async def serve_process(log: Path, *args: str) -> AsyncIterator[ServeProcess]:
    """Run `loadtool serve --port 0 --secret SECRET *args`; stderr goes to `log`.

    Yields once the URL line is read; on exit kills the process (SIGKILL, by PID) if it
    still runs and reaps it.
    """
    command = [str(LOADTOOL), "serve", "--port", "0", "--secret", SECRET, *args]
    with log.open("wb") as stderr:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr)
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(STARTUP_S):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, f"serve exited without a URL line: {_text(log)}"
                line += chunk
        assert URL_LINE.fullmatch(line), line
        yield ServeProcess(process=process, url=line.decode().strip(), log=log)
    finally:
        if process.returncode is None:
            os.kill(process.pid, 9)  # SIGKILL
        with trio.CancelScope(shield=True):
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()


def _text(path: Path) -> str:
    return path.read_text(errors="replace")


async def ws_client(nursery: trio.Nursery, url: str, token: str, *, user: str) -> Client:
    """A trio-websocket client on `url?token=...` (the welcome is left unread)."""
    return Client(ws=await connect_websocket_url(nursery, f"{url}?token={token}"), user=user)


async def run_loadtool(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run `loadtool *args` to completion (killed if it outlives STARTUP_S)."""
    with trio.fail_after(STARTUP_S):
        return await trio.run_process(
            [str(LOADTOOL), *args], capture_stdout=True, capture_stderr=True, check=False
        )


# --- the done criterion -----------------------------------------------------------------------


async def test_serve_token_and_chat_end_to_end(tmp_path: Path, nursery: trio.Nursery) -> None:
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
            alice = await ws_client(nursery, server.url, alice_token, user="alice")
            welcome = await alice.recv()
            assert isinstance(welcome, p.Welcome)
            assert (welcome.user_id, welcome.rooms, welcome.protocol) == ("alice", ("general",), 1)
            assert await alice.recv() == p.Joined(room="general", seq=0)
            bob = await ws_client(nursery, server.url, bob_token, user="bob")
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
