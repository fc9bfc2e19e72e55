"""A real nginx (the Debian package) in front of reference nodes, running the shipped
deploy/nginx/loadtool.conf, for tests/deploy/test_nginx.py.

    async with nginx_proxy(tmp_path, [node.url, other.url], read_timeout="2s") as proxy:
        proxy.wss_url      # wss://127.0.0.1:<port>/, certificate from a trustme CA
        proxy.ca_file      # that CA, for `loadtool run --ca-file`
        proxy.plain_port   # the same server block without TLS, for the raw test client

The shipped config is used as written except for what must differ here, each rewrite
checked to apply exactly once (so a changed config fails loudly rather than going
untested): the upstream servers (the test's nodes), the listen address (free ports on
127.0.0.1, plus a plain listener), the certificate paths and, when asked, the
proxy_read_timeout. A generated main config keeps every path (pid, logs, temp folders)
in the test's folder: nothing touches /etc/nginx, and no privilege is needed.
`daemon off`; the master is stopped by PID (SIGTERM, which stops its workers too).

Without `nginx` the tests skip, except under CI=true, where it is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio
import trustme

from tests.seednode import free_port, unavailable

REPO: Final = Path(__file__).resolve().parents[2]
SHIPPED_CONF: Final = REPO / "deploy" / "nginx" / "loadtool.conf"
STARTUP_S: Final = 15  # seconds for nginx to listen (or fail)
STOP_S: Final = 10  # seconds for nginx to stop after SIGTERM before SIGKILL
PROBE_INTERVAL_S: Final = 0.05  # between connection attempts while nginx starts


@attrs.frozen
class NginxProxy:
    tls_port: int
    plain_port: int
    ca_file: Path
    error_log: Path

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}/"

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        unavailable("`nginx` is not installed (apt-get install -y nginx): cannot test the proxy")
    return found


def _sub_once(pattern: str, replacement: str, text: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"{SHIPPED_CONF}: expected one match of {pattern!r}, found {count}"
    return new


def render_site(
    upstreams: list[str],
    *,
    tls_port: int,
    plain_port: int,
    cert: Path,
    key: Path,
    read_timeout: str | None,
) -> str:
    """The shipped config with this test's nodes, ports, certificate and timeout."""
    text = SHIPPED_CONF.read_text()
    text, nodes = re.subn(r"^    server [\w.-]+:\d+;\n", "", text, flags=re.MULTILINE)
    assert nodes >= 2, f"{SHIPPED_CONF}: expected an upstream of several nodes"
    servers = "".join(f"    server {urllib.parse.urlsplit(url).netloc};\n" for url in upstreams)
    text = _sub_once(r"^(upstream loadtool_nodes \{\n)", rf"\g<1>{servers}", text)
    text = _sub_once(
        r"^    listen 443 ssl;$",
        f"    listen 127.0.0.1:{tls_port} ssl;\n    listen 127.0.0.1:{plain_port};",
        text,
    )
    text = _sub_once(r"/etc/nginx/certs/tls\.crt", str(cert), text)
    text = _sub_once(r"/etc/nginx/certs/tls\.key", str(key), text)
    if read_timeout is not None:
        text = _sub_once(r"proxy_read_timeout \w+;", f"proxy_read_timeout {read_timeout};", text)
    return text


def _main_conf(folder: Path, site: Path) -> str:
    temp = {name: folder / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    return "\n".join(
        [
            "daemon off;",
            "worker_processes 1;",
            f"pid {folder / 'nginx.pid'};",
            f"error_log {folder / 'error.log'} info;",
            "events { worker_connections 1024; }",
            "http {",
            f"    access_log {folder / 'access.log'};",
            *(f"    {name}_temp_path {path};" for name, path in temp.items()),
            f"    include {site};",
            "}",
            "",
        ]
    )


def _prepare(
    folder: Path, upstreams: list[str], read_timeout: str | None
) -> tuple[list[str], NginxProxy]:
    """Write the certificate, the CA, the site and main configs; nginx's command line."""
    binary = nginx_binary()
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = folder / "tls.crt", folder / "tls.key", folder / "ca.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    tls_port, plain_port = free_port(), free_port()
    site = folder / "loadtool.conf"
    site.write_text(
        render_site(
            upstreams,
            tls_port=tls_port,
            plain_port=plain_port,
            cert=cert,
            key=key,
            read_timeout=read_timeout,
        )
    )
    conf = folder / "nginx.conf"
    conf.write_text(_main_conf(folder, site))
    error_log = folder / "error.log"
    command = [binary, "-p", str(folder), "-e", str(error_log), "-c", str(conf)]
    proxy = NginxProxy(
        tls_port=tls_port, plain_port=plain_port, ca_file=ca_file, error_log=error_log
    )
    return command, proxy


@asynccontextmanager
async def nginx_proxy(
    folder: Path, upstreams: list[str], *, read_timeout: str | None = None
) -> AsyncIterator[NginxProxy]:
    """nginx with the shipped config in front of `upstreams` (ws:// URLs of nodes)."""
    command, proxy = _prepare(folder, upstreams, read_timeout)
    with (folder / "nginx.stderr").open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
    try:
        await _wait_listening(process, proxy, folder)
        yield proxy
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                os.kill(process.pid, signal.SIGTERM)
                with trio.move_on_after(STOP_S):
                    await process.wait()
            if process.returncode is None:
                os.kill(process.pid, signal.SIGKILL)
            await process.wait()


async def _wait_listening(process: trio.Process, proxy: NginxProxy, folder: Path) -> None:
    """Until both ports accept a connection; fails with nginx's own words if it exits."""
    with trio.fail_after(STARTUP_S):
        for port in (proxy.tls_port, proxy.plain_port):
            while True:
                if process.poll() is not None:
                    said = (folder / "nginx.stderr").read_text(errors="replace")
                    raise AssertionError(
                        f"nginx exited ({process.returncode}): {said}{proxy.errors()}"
                    )
                try:
                    probe = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(PROBE_INTERVAL_S)  # nginx has not bound it yet
                    continue
                await probe.aclose()
                break
