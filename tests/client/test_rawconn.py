"""The raw connection (loadtool.client.rawconn) against the reference server: a normal
upgrade, raw frames out, every frame in (the welcome that came with the 101 included),
the server's Close and then EOF, and a refused upgrade."""

from __future__ import annotations

from typing import Final

import pytest
import trio

from loadtool.client.rawconn import RawConnection
from loadtool.client.rawframes import RawFrame
from loadtool.client.transport import Endpoint, Rejected
from loadtool.client.wsframes import OP_CLOSE, OP_PONG
from loadtool.server.app import RunningServer
from tests.conftest import token

CEILING_S: Final = 10


async def _connect(server: RunningServer, user: str = "alice") -> RawConnection:
    endpoint = Endpoint.from_url(server.url)
    return await RawConnection.connect(endpoint, target=endpoint.with_query(token=token(user)))


async def test_frames_out_and_in(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        conn = await _connect(server)
        try:
            assert await conn.send(
                [RawFrame.ping(b"p1"), RawFrame.text('{"type":"ping","ts":"t"}')]
            )

            def done() -> bool:
                return any('"pong"' in t for t in conn.texts) and any(
                    f.opcode == OP_PONG for f in conn.frames
                )

            assert await conn.read_until(done, 5)
            assert conn.texts[0].startswith('{"type":"welcome"')
            assert next(f for f in conn.frames if f.opcode == OP_PONG).payload == b"p1"
            assert conn.reader.problems == []
        finally:
            await conn.aclose()


async def test_a_violation_is_answered_with_close_then_eof(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S):
        conn = await _connect(server)
        try:
            await conn.send(RawFrame(opcode=0x3))
            close = await conn.read_to_close(5)
            assert close is not None
            assert close.opcode == OP_CLOSE
            assert close.close_code == 1002
            assert conn.eof
        finally:
            await conn.aclose()


async def test_a_refused_upgrade_raises_rejected(server: RunningServer) -> None:
    with trio.fail_after(CEILING_S), pytest.raises(Rejected) as refused:
        await RawConnection.connect(Endpoint.from_url(server.url))
    assert refused.value.status == 401
