"""Processes the benches start and watch: the two servers, `loadtool run`, /proc readings.

Every process here is started by the bench, watched through /proc/<pid> (CPU from `stat`,
RSS from `status`, write syscalls from `io`) and ended by its PID. Loopback only; every
wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attrs
import yaml

REPO: Final = Path(__file__).resolve().parents[1]
CACHE: Final = REPO / ".cache"
SECRET: Final = "bench-secret-0123456789abcdef0123"
STARTUP_S: Final = 30.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
SAMPLE_S: Final = 0.25


class BenchError(RuntimeError):
    """A bench could not run (a tool missing, a process that did not start)."""


# --- /proc ------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """Live child processes of `pid`, recursively (threads are part of their process)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                found.append(kid)
                todo.append(kid)
    return found


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """utime + stime of `pid` (all its threads); with `tree`, plus its reaped children's
    (cutime + cstime) and its live descendants'. 0.0 once the process is gone."""
    try:
        f = _stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(f[11]) + int(f[12])
    if tree:
        ticks += int(f[13]) + int(f[14])
        for kid in descendants(pid):
            try:
                k = _stat_fields(kid)
            except OSError:
                continue
            ticks += int(k[11]) + int(k[12])
    return ticks / CLK_TCK


def rss_kb(pid: int, *, tree: bool = False) -> int:
    """VmRSS in KiB (of the process tree with `tree`); 0 once the process is gone."""
    total = 0
    for p in [pid, *(descendants(pid) if tree else [])]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def metrics_deliveries(url: str) -> int:
    """loadtool_deliveries_total from the reference server's /metrics (HTTP on its port)."""
    import urllib.request

    http = url.replace("ws://", "http://", 1).rstrip("/") + "/metrics"
    with urllib.request.urlopen(http, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("loadtool_deliveries_total"):
                return int(float(line.split()[-1]))
    raise BenchError(f"{http} has no loadtool_deliveries_total")


def write_syscalls(pid: int) -> int:
    """syscw from /proc/<pid>/io: the seed Node server writes each delivery with one call."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("syscw:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@attrs.define
class Samples:
    """Readings of a few processes over time: (unix time, value) per series."""

    series: dict[str, list[tuple[float, float]]] = attrs.field(factory=dict)

    def add(self, name: str, t: float, value: float) -> None:
        self.series.setdefault(name, []).append((t, value))

    def get(self, name: str) -> list[tuple[float, float]]:
        return self.series.get(name, [])


def watch(
    proc: subprocess.Popen[Any],
    probes: dict[str, Any],
    *,
    timeout_s: float,
    every_s: float = SAMPLE_S,
) -> Samples:
    """Sample each probe (a no-argument callable) every `every_s` until `proc` exits.
    Kills `proc` (by PID) when it outlives `timeout_s`."""
    samples = Samples()
    deadline = time.monotonic() + timeout_s
    while True:
        now = time.time()
        for name, probe in probes.items():
            samples.add(name, now, float(probe()))
        if proc.poll() is not None:
            return samples
        if time.monotonic() > deadline:
            stop(proc)
            raise BenchError(f"{proc.args!r} ran longer than {timeout_s:.0f} s and was killed")
        time.sleep(every_s)


def stop(proc: subprocess.Popen[Any], grace_s: float = 5.0) -> None:
    """End a process we started: SIGTERM, then SIGKILL after `grace_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- servers ----------------------------------------------------------------------------


@attrs.frozen
class Server:
    name: str
    url: str
    pid: int
    dialect: str  # "v1" or "seed"
    secret: str | None

    def deliveries(self) -> int:
        """Deliveries the server has made so far, by the server's own account: the
        reference server's counter, or the Node server's write syscalls (`ws` writes each
        frame with one call; a handful of handshake writes are in it too)."""
        if self.name == "reference":
            return metrics_deliveries(self.url)
        return write_syscalls(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


def seed_node_dir() -> Path:
    """shared/targets/seed-node in a folder above the repository (read-only)."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "targets" / "seed-node"
        if (candidate / "server.js").is_file():
            return candidate
    raise BenchError("no shared/targets/seed-node/server.js above the repository")


def _npm_install(prefix: Path, *specs: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("`npm` is not installed (apt-get install -y nodejs npm)")
    env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
    env["ARTILLERY_DISABLE_TELEMETRY"] = "true"
    # --ignore-scripts: Artillery pulls in a Playwright browser whose install script
    # downloads a browser build; the ws engine needs none of it.
    command = [npm, "install", "--no-audit", "--no-fund", "--silent", "--ignore-scripts"]
    command += ["--prefix", str(prefix), *specs]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise BenchError(f"`{' '.join(command)}` failed: {(done.stderr or done.stdout)[-2000:]}")


def seed_node_modules() -> Path:
    """node_modules with `ws` (as .ci/run installs it), installed on first use."""
    given = os.environ.get("LOADTOOL_SEED_NODE_MODULES")
    if given and (Path(given) / "ws" / "package.json").is_file():
        return Path(given)
    modules = CACHE / "seed-node" / "node_modules"
    if not (modules / "ws" / "package.json").is_file():
        _npm_install(CACHE / "seed-node", "ws@^8.18.0")
    return modules


def _read_line_until(proc: subprocess.Popen[str], needle: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise BenchError(f"{proc.args!r} exited before printing {needle!r}")
        if needle in line:
            return line.strip()
    raise BenchError(f"{proc.args!r} did not print {needle!r} within {STARTUP_S:.0f} s")


@contextmanager
def node_server() -> Iterator[Server]:
    """The seed article's Node `ws` broadcast server on a free port."""
    if shutil.which("node") is None:
        raise BenchError("`node` is not installed (apt-get install -y nodejs npm)")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "NODE_PATH": str(seed_node_modules())}
    proc = subprocess.Popen(
        ["node", str(seed_node_dir() / "server.js")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        _read_line_until(proc, "listening")
        yield Server("node", f"ws://127.0.0.1:{port}/", proc.pid, "seed", None)
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def reference_server(*extra: str) -> Iterator[Server]:
    """`loadtool serve` (the reference server) on a free port, limits opened for load."""
    argv = [
        sys.executable,
        "-m",
        "loadtool",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--secret",
        SECRET,
        "--rate",
        "100000",
        "--burst",
        "100000",
        "--max-connections",
        "200000",
        "--max-user-connections",
        "1000",
        "--log-level",
        "error",
        *extra,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = _read_line_until(proc, "ws://")
        yield Server("reference", url.split()[-1], proc.pid, "v1", SECRET)
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def server(name: str) -> Iterator[Server]:
    if name == "node":
        with node_server() as s:
            yield s
    elif name == "reference":
        with reference_server() as s:
            yield s
    else:
        raise ValueError(f"unknown server {name!r}: use 'reference' or 'node'")


# --- loadtool run -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Load:
    """One `loadtool run` scenario: a connect phase, then a steady phase at `rate`."""

    clients: int
    rooms: int = 1
    rate: float = 1.0  # messages/s per client in the steady phase
    seconds: float = 10.0  # steady phase
    message_size: int = 128
    heartbeat: str = "off"
    connect_rate: int = 500

    @property
    def connect_s(self) -> float:
        """The connect phase: every client connected (paced by connect_rate, twice over
        for slow handshakes), plus 2 s."""
        return round(2 * self.clients / self.connect_rate + 2.0, 1)

    def scenario(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "population": {
                "clients": self.clients,
                "rooms": self.rooms,
                "connect_rate": f"{self.connect_rate}/s",
            },
            "phases": [
                {"name": "connect", "duration": f"{self.connect_s}s", "send_rate": 0},
                {"name": "steady", "duration": f"{self.seconds}s", "send_rate": self.rate},
            ],
            "behaviour": {
                "send_rate": self.rate,
                "message_size": self.message_size,
                "heartbeat": self.heartbeat,
            },
            "drain": "3s",
        }

    @property
    def deliveries_per_s(self) -> float:
        """Offered deliveries/s: every member (the sender included) gets every message."""
        return self.clients * self.rate * (self.clients / self.rooms)


@attrs.frozen
class RunOutcome:
    results: dict[str, Any]
    samples: Samples
    pid: int
    exit_code: int

    @property
    def start_unix(self) -> float:
        return datetime.fromisoformat(self.results["start"].replace("Z", "+00:00")).timestamp()

    def delivered_between(self, t0: float, t1: float) -> int:
        """Deliveries in whole run seconds [t0, t1) from the per-second series."""
        return sum(row["delivered"] for row in self.results["timeseries"] if t0 <= row["t"] < t1)


def loadtool_run(
    load: Load,
    target: Server,
    probes: dict[str, Any],
    *,
    name: str = "bench",
    timeout_s: float | None = None,
    every_s: float = SAMPLE_S,
) -> RunOutcome:
    """`loadtool run` (one worker) against `target`, sampling `probes` (each called with
    the generator's PID) and reading its results.json."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        scenario = Path(tmp) / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(load.scenario(name), sort_keys=False))
        argv = [
            sys.executable,
            "-m",
            "loadtool",
            "run",
            str(scenario),
            "--target",
            target.url,
            "--dialect",
            target.dialect,
            "--out",
            str(Path(tmp) / "out"),
            "--quiet",
        ]
        if target.secret:
            argv += ["--secret", target.secret]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        bound = {k: (lambda f=f: f(proc.pid)) for k, f in probes.items()}
        limit = timeout_s or (load.connect_s + load.seconds + 120)
        try:
            samples = watch(proc, bound, timeout_s=limit, every_s=every_s)
        finally:
            stop(proc)
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        results_path = Path(tmp) / "out" / "results.json"
        if not results_path.is_file():
            raise BenchError(f"loadtool run exited {proc.returncode} without results: {stderr}")
        results = json.loads(results_path.read_text())
    return RunOutcome(results, samples, proc.pid, proc.returncode)


def cpu_probe(pid: int) -> float:
    return cpu_seconds(pid)


def steady_cpu_per_delivery(
    outcome: RunOutcome, load: Load, series: str
) -> tuple[float | None, int, float]:
    """(µs of `series` CPU per delivery, deliveries, CPU seconds) over the steady phase's
    whole seconds minus the first and the last, deliveries from loadtool's time series."""
    from .runner import interpolate

    t0 = int(load.connect_s) + 2
    t1 = int(load.connect_s + load.seconds) - 1
    if t1 <= t0:
        t0, t1 = int(load.connect_s) + 1, int(load.connect_s + load.seconds)
    start = outcome.start_unix
    points = outcome.samples.get(series)
    cpu = interpolate(points, start + t1) - interpolate(points, start + t0)
    delivered = outcome.delivered_between(t0, t1)
    return (cpu / delivered * 1e6 if delivered else None), delivered, cpu


def describe(argv: Sequence[str]) -> str:
    return " ".join(argv)
