"""`loadtool conform` as a process (docs/conformance.md "Exit codes"): --list, a gate run
against the embedded reference server with a JUnit file, and the exit codes for bad
options (2) and an unreachable target (3)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

import trio

from loadtool.server.app import RunningServer
from tests.conftest import SECRET

LOADTOOL: Final = Path(sys.executable).parent / "loadtool"
CEILING_S: Final = 60  # the embedded run (server start + the 1.x cases) takes ~2 s


async def loadtool_conform(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`loadtool conform *args` to completion in `cwd` (killed at the ceiling)."""
    with trio.fail_after(CEILING_S):
        done = await trio.run_process(
            [str(LOADTOOL), "conform", *args],
            cwd=str(cwd),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_list_prints_every_case_with_its_section_features_and_description(
    tmp_path: Path,
) -> None:
    done = await loadtool_conform(tmp_path, "--list")
    assert done.returncode == 0, done.stderr
    first = next(line for line in done.stdout.splitlines() if line.startswith("1.1 "))
    assert "§2.1" in first
    assert "[auth]" in first
    assert "upgrade with a valid token is accepted" in first
    assert "welcome" in done.stdout  # 1.1's description, on the lines below
    assert done.stdout.rstrip().endswith(" cases")


async def test_list_honours_cases(tmp_path: Path) -> None:
    done = await loadtool_conform(tmp_path, "--list", "--cases", "1.2,1.3")
    assert done.returncode == 0, done.stderr
    ids = [m[1] for m in re.finditer(r"^(\d+\.\d+) ", done.stdout, re.MULTILINE)]
    assert ids == ["1.2", "1.3"]
    assert done.stdout.rstrip().endswith("2 cases")


async def test_no_url_runs_the_embedded_reference_server(tmp_path: Path) -> None:
    junit = tmp_path / "out.xml"
    done = await loadtool_conform(tmp_path, "--cases", "1.*", "--junit", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-> PASSED" in done.stdout
    assert "target reference at ws://127.0.0.1:" in done.stdout
    suite = ET.parse(junit).getroot()
    cases = list(suite.iter("testcase"))
    assert len(cases) == int(suite.attrib["tests"]) >= 7
    assert all(c.attrib["name"].startswith("1.") for c in cases)
    assert suite.attrib["failures"] == "0"


async def test_an_unexpected_verdict_exits_1_and_writes_every_report(
    tmp_path: Path, server: RunningServer
) -> None:
    target = tmp_path / "target.yaml"
    target.write_text(
        f"name: listed\ntokens: {{secret: {SECRET}}}\n"
        "expected_failures:\n  - {case: '1.2', reason: thought broken}\n"
    )
    out = {kind: tmp_path / f"report.{kind}" for kind in ("json", "xml", "html")}
    done = await loadtool_conform(
        tmp_path, server.url, "--target", str(target), "--cases", "1.1,1.2",
        "--json", str(out["json"]), "--junit", str(out["xml"]), "--html", str(out["html"]),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 cases: 1 PASS, 1 XPASS -> FAILED" in done.stdout
    data = json.loads(out["json"].read_text())
    assert (data["target"], data["passed"]) == ("listed", False)
    assert [c["verdict"] for c in data["cases"]] == ["PASS", "XPASS"]
    assert ET.parse(out["xml"]).getroot().attrib["failures"] == "1"
    assert 'id="case-1.2"' in out["html"].read_text()


async def test_a_refused_preflight_exits_3(tmp_path: Path, server: RunningServer) -> None:
    done = await loadtool_conform(tmp_path, server.url, "--secret", "not-the-secret-0123")
    assert done.returncode == 3
    assert "refused the upgrade: HTTP 401" in done.stderr
    assert "check --secret" in done.stderr


async def test_a_pattern_matching_no_case_exits_2(tmp_path: Path) -> None:
    done = await loadtool_conform(tmp_path, "--cases", "1.*,42.7")
    assert done.returncode == 2
    assert "no case matches '42.7'" in done.stderr


async def test_an_unknown_profile_exits_2(tmp_path: Path) -> None:
    done = await loadtool_conform(tmp_path, "ws://127.0.0.1:1/", "--profile", "everything")
    assert done.returncode == 2
    assert "'everything' is not one of 'reference', 'seed-broadcast'" in done.stderr


async def test_a_malformed_target_file_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text("name: x\nfeature: [rooms]\n")
    done = await loadtool_conform(tmp_path, "ws://127.0.0.1:1/", "--target", str(target))
    assert done.returncode == 2
    assert "target.yaml: unknown key 'feature' (did you mean 'features'?)" in done.stderr


async def test_an_expected_failure_for_no_case_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text("expected_failures:\n  - {case: '42.7', reason: typo}\n")
    done = await loadtool_conform(tmp_path, "ws://127.0.0.1:1/", "--target", str(target))
    assert done.returncode == 2
    assert "expected_failures: no case '42.7'" in done.stderr


async def test_an_unreachable_url_exits_3_before_any_case(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/"
    junit = tmp_path / "out.xml"
    done = await loadtool_conform(tmp_path, url, "--secret", "s" * 32, "--junit", str(junit))
    assert done.returncode == 3
    assert f"{url} is unreachable" in done.stderr
    assert done.stdout == ""
    assert not junit.exists()
