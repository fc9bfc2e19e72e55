"""The gate's report formats (loadtool/conform/report.py), from a hand-built report with
one case of every verdict: JUnit parses and maps each verdict to the right element, HTML
carries every case and escapes what the server sent, JSON round-trips."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import attrs
import orjson
import pytest

from loadtool.conform import report as rep
from loadtool.conform.model import CaseResult, Exchange, Verdict
from loadtool.conform.runner import GateReport

MARKUP = "<script>alert('x')</script> & \"quoted\""


def _result(case_id: str, verdict: Verdict, **kw: object) -> CaseResult:
    return CaseResult(
        id=case_id,
        title=kw.pop("title", f"case {case_id}"),  # type: ignore[arg-type]
        section=kw.pop("section", f"§{case_id.split('.')[0]}.1"),  # type: ignore[arg-type]
        verdict=verdict,
        duration_ms=12.5,
        **kw,  # type: ignore[arg-type]
    )


TRANSCRIPT = (
    Exchange(at_ms=0.1, actor="alice", direction="!!", data="connect /?token=t"),
    Exchange(at_ms=1.5, actor="alice", direction="->", data='{"type":"ping","ts":"\x00odd\ud800"}'),
    Exchange(at_ms=3.0, actor="bob", direction="<-", data=MARKUP),
)

RESULTS = (
    _result("1.1", Verdict.PASS),
    _result("1.2", Verdict.NON_STRICT, reason="echoed 1001, not 1000"),
    _result(
        "2.1", Verdict.FAIL, reason="bob got nothing", expected="a message", transcript=TRANSCRIPT
    ),
    _result("2.2", Verdict.UNSUPPORTED, reason="the target does not declare: rooms"),
    _result("3.1", Verdict.INFO, reason="heartbeatMs 20000", transcript=TRANSCRIPT[:1]),
    _result("3.2", Verdict.XFAIL, reason="broken (expected: known bug)", transcript=TRANSCRIPT),
    _result("10.1", Verdict.XPASS, reason="listed as an expected failure: fixed?"),
    _result("10.2", Verdict.ERROR, reason="KeyError: 'oops'", title=MARKUP, section=""),
    _result(
        "10.3",
        Verdict.CRASHED,
        reason="server crashed: after this case a new client got no service (refused)",
        section="RFC 6455 §5.2",
        transcript=TRANSCRIPT[:1],
    ),
)


def _report(*, strict: bool = False, results: tuple[CaseResult, ...] = RESULTS) -> GateReport:
    return GateReport(target="demo", url="ws://127.0.0.1:1/chat", results=results, strict=strict)


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {c.attrib["name"].split(" ", 1)[0]: c for c in root.iter("testcase")}


def test_junit_has_one_suite_and_one_testcase_per_case() -> None:
    root = ET.fromstring(rep.to_junit(_report()))
    assert root.tag == "testsuite"
    assert root.attrib["tests"] == str(len(RESULTS))
    assert root.attrib["failures"] == "4"  # FAIL, XPASS, ERROR, CRASHED
    assert root.attrib["skipped"] == "1"  # UNSUPPORTED
    cases = _cases(root)
    assert list(cases) == [r.id for r in RESULTS]
    assert cases["2.1"].attrib["name"] == "2.1 case 2.1"
    assert cases["2.1"].attrib["classname"] == "loadtool.conform.2.1"
    assert cases["10.2"].attrib["classname"] == "loadtool.conform.10"  # no section: the group
    assert cases["10.3"].attrib["classname"] == "loadtool.conform.rfc6455.5.2"
    assert cases["1.1"].attrib["time"] == "0.013"


@pytest.mark.parametrize(
    ("case_id", "element"),
    [
        ("1.1", None),
        ("1.2", "system-out"),
        ("2.1", "failure"),
        ("2.2", "skipped"),
        ("3.1", "system-out"),
        ("3.2", "system-out"),
        ("10.1", "failure"),
        ("10.2", "failure"),
        ("10.3", "failure"),
    ],
)
def test_junit_maps_each_verdict(case_id: str, element: str | None) -> None:
    case = _cases(ET.fromstring(rep.to_junit(_report())))[case_id]
    children = [child.tag for child in case]
    assert children == ([element] if element else [])


def test_junit_failure_carries_reason_expected_and_transcript() -> None:
    case = _cases(ET.fromstring(rep.to_junit(_report())))["2.1"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "FAIL"
    assert failure.attrib["message"] == "FAIL: bob got nothing"
    text = failure.text or ""
    assert "expected: a message" in text
    assert "alice ->" in text
    assert MARKUP in text  # escaped in the file, intact once parsed
    assert "\\u0000odd\\ud800" in text  # what XML cannot carry is written as escapes


def test_junit_strict_turns_non_strict_into_a_failure() -> None:
    root = ET.fromstring(rep.to_junit(_report(strict=True)))
    assert root.attrib["failures"] == "5"
    failure = _cases(root)["1.2"].find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "NON-STRICT"


def test_html_has_every_case_and_escapes_markup() -> None:
    page = rep.to_html(_report())
    for result in RESULTS:
        assert f'id="case-{result.id}"' in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert page.count("<details") == 4  # one per case with a transcript
    assert "<details open>" in page  # the failing one is open
    assert "src=" not in page
    assert "href=" not in page  # self-contained: nothing to fetch
    assert "FAILED" in page
    assert f"{len(RESULTS)} cases" in page


def test_json_round_trips() -> None:
    plain = (*TRANSCRIPT[:1], TRANSCRIPT[2])  # no lone surrogate (see the test below)
    original = _report(
        strict=True, results=tuple(attrs.evolve(r, transcript=plain) for r in RESULTS)
    )
    data = json.loads(json.dumps(rep.to_json(original)))
    assert data["target"] == "demo"
    assert data["url"] == "ws://127.0.0.1:1/chat"
    assert data["strict"] is True
    assert data["passed"] is False
    assert data["counts"] == {v.value: 1 for v in Verdict}
    assert data["cases"][2]["transcript"][1]["direction"] == "<-"
    assert rep.from_json(data) == original


def test_every_format_can_be_written_as_utf8_even_with_a_lone_surrogate() -> None:
    report = _report()
    for text in (rep.to_console(report), rep.to_html(report), rep.to_junit(report)):
        assert "\\ud800" in text.encode("utf-8").decode()
        assert "\\u0000odd" in text  # and a control character shows, escaped
    assert "\\ud800" in orjson.dumps(rep.to_json(report)).decode()


def test_from_json_refuses_what_is_not_a_report() -> None:
    with pytest.raises(ValueError, match="not a conformance report"):
        rep.from_json({"format": 1, "target": "x"})
    with pytest.raises(ValueError, match="format 1"):
        rep.from_json({"results": []})


def test_console_table_details_and_summary() -> None:
    text = rep.to_console(_report())
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "VERDICT", "TITLE", "SECTION", "REASON"]
    assert any(line.startswith("2.2   UNSUPPORTED") for line in lines)
    assert "FAIL 2.1 case 2.1 (§2.1)" in text  # the details of a failing case
    assert "  expected: a message" in text
    assert "NON-STRICT 1.2" not in text  # not failing without --strict
    assert lines[-1] == (
        "9 cases: 1 PASS, 1 NON-STRICT, 1 FAIL, 1 UNSUPPORTED, 1 INFO, 1 XFAIL, 1 XPASS, "
        "1 ERROR, 1 CRASHED -> FAILED"
    )
    assert "CRASHED 10.3 case 10.3 (RFC 6455 §5.2)" in text
    assert "reason:   server crashed: " in text


def test_a_stopped_run_says_so_in_every_format() -> None:
    stopped = attrs.evolve(_report(results=RESULTS[:1]), stopped="the server stopped <here>")
    assert not stopped.passed
    assert "STOPPED: the server stopped <here>" in rep.to_console(stopped)
    assert rep.summary_line(stopped) == "1 case: 1 PASS, STOPPED early -> FAILED"
    assert "STOPPED:</b> the server stopped &lt;here&gt;" in rep.to_html(stopped)
    props = ET.fromstring(rep.to_junit(stopped)).find("properties")
    assert props is not None
    assert {p.attrib["name"]: p.attrib["value"] for p in props}["stopped"] == (
        "the server stopped <here>"
    )
    assert rep.from_json(json.loads(json.dumps(rep.to_json(stopped)))) == stopped


def test_a_clean_report_passes() -> None:
    clean = _report(results=(RESULTS[0], RESULTS[3], RESULTS[5]))
    assert rep.summary_line(clean) == "3 cases: 1 PASS, 1 UNSUPPORTED, 1 XFAIL -> PASSED"
    assert ET.fromstring(rep.to_junit(clean)).attrib["failures"] == "0"
