"""report.html in a real browser (Debian's chromium, headless): no console errors, every
image decoded.

How: the Chrome DevTools Protocol over chromium's `--remote-debugging-port`, spoken with
trio-websocket (already a dependency). Chosen over `--dump-dom` with an injected script
because (1) the page under test stays byte-for-byte the file we ship (report.html has no
script and must not need one), and (2) DevTools reports what a script inside the page
cannot see: resource load failures and other browser-side errors arrive as
`Log.entryAdded`, script errors as `Runtime.exceptionThrown`, console calls as
`Runtime.consoleAPICalled`. Everything waits on events (the "DevTools listening" line,
command replies, `Page.loadEventFired`) under `fail_after` ceilings; no sleeps.

Without chromium the tests skip locally and fail under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from loadtool.report.figures import FIGURES
from loadtool.report.page import Markup, image, render_page
from loadtool.report.runreport import write_run_report
from loadtool.report.runs import Run

from ..seednode import unavailable

STARTUP_S: Final = 30  # seconds for chromium to print its DevTools address
PAGE_S: Final = 30  # seconds for the page to load and be inspected
EXIT_S: Final = 10  # seconds for chromium to exit after SIGTERM
_LISTENING: Final = b"DevTools listening on "
_IMAGES_JS: Final = """JSON.stringify(Array.from(document.images, (img) => ({
  alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight
})))"""


@attrs.frozen
class PageCheck:
    title: str
    images: list[dict[str, Any]]
    errors: list[str]  # console errors, exceptions and browser log errors, as text


class DevTools:
    """A minimal sequential CDP client: one command at a time; events seen while waiting
    for a reply are kept (errors) or matched (the load event)."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.errors: list[str] = []
        self._loaded = False

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send_message(json.dumps(message))
        while True:
            reply = await self._next()
            if reply.get("id") == ident:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})

    async def wait_loaded(self) -> None:
        while not self._loaded:
            await self._next()

    async def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self._ws.get_message())
        method, params = message.get("method"), message.get("params", {})
        if method == "Page.loadEventFired":
            self._loaded = True
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log {entry['source']}: {entry['text']} {entry.get('url', '')}")
        return message


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[str]:
    """Headless chromium on a free DevTools port; yields the browser's ws:// address.
    Ends it by its PID: SIGTERM, then SIGKILL if it has not exited in time."""
    binary = shutil.which("chromium")
    if binary is None:
        unavailable("chromium is not installed (apt-get install -y chromium)")
    argv = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    process = await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        async with trio.open_nursery() as nursery:
            buffer = b""
            with trio.fail_after(STARTUP_S):
                while _LISTENING not in buffer or not buffer.split(_LISTENING, 1)[1].count(b"\n"):
                    chunk = await process.stderr.receive_some()
                    if not chunk:
                        raise AssertionError(f"chromium exited early: {buffer.decode()[-2000:]}")
                    buffer += chunk
            url = buffer.split(_LISTENING, 1)[1].split(b"\n", 1)[0].decode().strip()

            async def drain() -> None:  # chromium logs to stderr; a full pipe would stall it
                assert process.stderr is not None
                while await process.stderr.receive_some():
                    pass

            nursery.start_soon(drain)
            yield url
            process.terminate()  # SIGTERM to its PID: chromium shuts down cleanly
            with trio.move_on_after(EXIT_S):
                await process.wait()
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGKILL)
            with trio.move_on_after(EXIT_S, shield=True):
                await process.wait()


async def open_page(page: Path, profile: Path) -> PageCheck:
    """Load `page` in headless chromium and report its title, images and errors."""
    async with chromium(profile) as browser_url:
        with trio.fail_after(PAGE_S):
            async with open_websocket_url(browser_url) as ws:
                tools = DevTools(ws)
                target = await tools.call("Target.createTarget", url="about:blank")
                attached = await tools.call(
                    "Target.attachToTarget", targetId=target["targetId"], flatten=True
                )
                session = attached["sessionId"]
                for domain in ("Page", "Runtime", "Log"):
                    await tools.call(f"{domain}.enable", session)
                await tools.call("Page.navigate", session, url=page.as_uri())
                await tools.wait_loaded()
                found = await tools.call(
                    "Runtime.evaluate", session, expression=_IMAGES_JS, returnByValue=True
                )
                title = await tools.call(
                    "Runtime.evaluate", session, expression="document.title", returnByValue=True
                )
                # Close the page only: closing the browser from here would race its reply
                # against the connection going away; the browser is ended by its PID.
                await tools.call("Target.closeTarget", targetId=target["targetId"])
                return PageCheck(
                    title=title["result"]["value"],
                    images=json.loads(found["result"]["value"]),
                    errors=tools.errors,
                )


async def test_report_renders_with_no_errors_and_every_image(
    tmp_path: Path, two_runs: list[Run]
) -> None:
    files = await trio.to_thread.run_sync(write_run_report, two_runs, tmp_path / "report")
    check = await open_page(files.html, tmp_path / "profile")
    assert check.errors == []
    assert check.title == "loadtool run report: 2 runs compared"
    assert [img["alt"] for img in check.images] == [spec.title for spec in FIGURES]
    for img in check.images:
        assert img["complete"], img
        assert img["width"] > 0, img
        assert img["height"] > 0, img


async def test_the_probe_sees_broken_images(tmp_path: Path) -> None:
    """The check has teeth: an undecodable image is not loaded, and a missing one is
    also an error in the browser's log."""
    page = tmp_path / "broken.html"
    undecodable = image("data:image/png;base64,AAAA", alt="undecodable")
    missing = image("missing.png", alt="missing")
    page.write_text(render_page("broken", [Markup(undecodable + missing)]))
    check = await open_page(page, tmp_path / "profile")
    assert [(img["alt"], img["width"]) for img in check.images] == [
        ("undecodable", 0),
        ("missing", 0),
    ]
    (error,) = check.errors
    assert "missing.png" in error
