"""`loadtool serve --redis URL` as a process (docs/scaling.md): Redis unreachable at start
is exit 3 naming the URL; contradictory or malformed options are exit 2; a node started
with a reachable Redis prints its URL and serves."""

from __future__ import annotations

from pathlib import Path

from loadtool import protocol as p
from tests.conftest import Clients, token
from tests.redisproc import RedisProcess
from tests.seednode import free_port
from tests.serveproc import run_loadtool, serve_process


async def test_unreachable_redis_exits_3_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    done = await run_loadtool("serve", "--port", "0", "--secret", "x" * 32, "--redis", url)
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Redis at {url}".encode() in done.stderr


async def test_redis_and_db_together_exit_2(tmp_path: Path) -> None:
    done = await run_loadtool(
        "serve",
        "--secret",
        "x" * 32,
        "--redis",
        "redis://127.0.0.1:1/0",
        "--db",
        str(tmp_path / "d"),
    )
    assert done.returncode == 2
    assert b"--redis and --db exclude each other" in done.stderr


async def test_a_redis_option_that_is_not_a_url_exits_2() -> None:
    done = await run_loadtool("serve", "--secret", "x" * 32, "--redis", "localhost:6379")
    assert done.returncode == 2
    assert b"--redis wants a URL like redis://HOST:PORT/DB" in done.stderr


async def test_node_id_without_redis_exits_2() -> None:
    done = await run_loadtool("serve", "--secret", "x" * 32, "--node-id", "a")
    assert done.returncode == 2
    assert b"give --redis as well" in done.stderr


async def test_a_node_process_serves_through_redis(
    tmp_path: Path, redis_server: RedisProcess, clients: Clients
) -> None:
    args = ("--redis", redis_server.url, "--node-id", "cli-node")
    async with serve_process(tmp_path / "serve.log", *args) as node:
        alice = await clients.open(f"{node.url}?token={token('alice')}", "alice")
        assert isinstance(await alice.recv(), p.Welcome)
        await alice.send(p.SendMessage(id="c-1", room="general", text="through redis"))
        assert (await alice.recv_type(p.Ack)).seq == 1
        await alice.close()
    assert '"node": "cli-node"' in node.stderr() or '"node":"cli-node"' in node.stderr()
