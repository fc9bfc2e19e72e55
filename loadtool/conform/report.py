"""The gate's report in four shapes, pure: console table, JSON, JUnit XML, HTML.

Every function takes a finished `GateReport` and returns text (or a dict); none of them
opens a file or a socket, so the CLI decides where each goes (docs/conformance.md
"Outputs"). `from_json` reads a JSON report back, so a stored report can be rendered
again later.

What each verdict becomes in JUnit (CI systems show one testcase per case):
FAIL, XPASS, ERROR -> <failure> (reason, expected, transcript); UNSUPPORTED ->
<skipped>; NON-STRICT -> a pass with its reason in <system-out>, or a <failure> under
--strict; INFO and XFAIL -> a pass with the note (and transcript) in <system-out>.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final

from .model import CaseResult, Exchange, Verdict
from .runner import GateReport

JSON_FORMAT: Final = 1  # the version of the JSON report's layout
TITLE_WIDTH: Final = 56  # characters of a title shown in the console table
_JUNIT_FAILING: Final = frozenset({Verdict.FAIL, Verdict.XPASS, Verdict.ERROR, Verdict.CRASHED})
_JUNIT_NOTES: Final = frozenset({Verdict.INFO, Verdict.XFAIL})
# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone surrogates,
# U+FFFE/U+FFFF): a transcript of odd frames may hold them.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Lone surrogates cannot be encoded as UTF-8 at all: a case that logged one must not make
# the report unwritable, so every format shows them as \uXXXX. The console and HTML also
# escape control characters (an ESC from the server must not drive the terminal).
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_UNPRINTABLE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_VERDICT_ORDER: Final = tuple(Verdict)


def failing(report: GateReport, result: CaseResult) -> bool:
    """Does this result make the gate fail (NON-STRICT counts only under --strict)?"""
    return result.verdict.unexpected or (report.strict and result.verdict is Verdict.NON_STRICT)


def summary_line(report: GateReport) -> str:
    """`12 cases: 10 PASS, 1 UNSUPPORTED, 1 FAIL -> FAILED` (counts in verdict order)."""
    counts = report.counts
    shown = ", ".join(f"{counts[v.value]} {v.value}" for v in _VERDICT_ORDER if v.value in counts)
    mode = " (strict)" if report.strict else ""
    verdict = "PASSED" if report.passed else "FAILED"
    extra = ""
    if report.restarts:
        extra += f", server restarted {report.restarts}x"
    if report.stopped:
        extra += ", STOPPED early"
    return f"{count_cases(len(report.results))}: {shown or 'none run'}{extra} -> {verdict}{mode}"


def count_cases(n: int) -> str:
    return f"{n} case" if n == 1 else f"{n} cases"


def format_exchange(exchange: Exchange) -> str:
    """One transcript line: time since the case started, who, direction, what."""
    line = f"{exchange.at_ms:9.1f} ms  {exchange.actor} {exchange.direction} {exchange.data}"
    return _printable(line)


def transcript_text(result: CaseResult) -> str:
    return "\n".join(format_exchange(e) for e in result.transcript)


# --- console ----------------------------------------------------------------------------------


def to_console(report: GateReport, *, details: bool = True) -> str:
    """The table (id, verdict, title, section, reason), then, with `details`, what was
    expected and the transcript of every case that fails the gate, then the summary line."""
    rows = [("ID", "VERDICT", "TITLE", "SECTION", "REASON")]
    rows += [
        (r.id, r.verdict.value, _clip(r.title, TITLE_WIDTH), r.section, _one_line(r.reason))
        for r in report.results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]]).rstrip()
        for row in rows
    ]
    if details:
        for result in report.results:
            if not failing(report, result):
                continue
            lines += ["", f"{result.verdict.value} {result.id} {result.title} ({result.section})"]
            lines.append(f"  reason:   {result.reason}")
            if result.expected:
                lines.append(f"  expected: {result.expected}")
            lines += [f"  {format_exchange(e)}" for e in result.transcript]
    if report.stopped:
        lines += ["", f"STOPPED: {report.stopped}"]
    lines += ["", f"target {report.target} at {report.url}", summary_line(report)]
    return _printable("\n".join(lines))


def progress_line(result: CaseResult, done: int, total: int) -> str:
    """One line per finished case (the CLI prints these as cases finish, on a TTY)."""
    width = len(str(total))
    return f"[{done:>{width}}/{total}] {result.verdict.value:<11} {result.id} {result.title}"


def _encodable(text: str) -> str:
    return _SURROGATE.sub(_escape_char, text)


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _clip(text: str, width: int) -> str:
    text = _one_line(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- JSON -------------------------------------------------------------------------------------


def to_json(report: GateReport) -> dict[str, Any]:
    """A JSON-ready dict: target, url, strict, passed, counts, and every case with its
    transcript (kept for every case that did not simply PASS)."""
    return {
        "format": JSON_FORMAT,
        "target": report.target,
        "url": report.url,
        "strict": report.strict,
        "passed": report.passed,
        "stopped": _encodable(report.stopped),
        "restarts": report.restarts,
        "counts": report.counts,
        "cases": [_encodable_case(r.to_dict()) for r in report.results],
    }


def _encodable_case(case: dict[str, Any]) -> dict[str, Any]:
    out = {k: _encodable(v) if isinstance(v, str) else v for k, v in case.items()}
    out["transcript"] = [{**e, "data": _encodable(e["data"])} for e in case["transcript"]]
    return out


def from_json(data: Mapping[str, Any]) -> GateReport:
    """Read back what `to_json` wrote (`passed` and `counts` are derived again).

    Raises:
        ValueError: `data` is not a conformance report of this format.
    """
    try:
        if data.get("format") != JSON_FORMAT:
            raise ValueError(f"not a conformance report of format {JSON_FORMAT}")
        results = tuple(_result(case) for case in data["cases"])
        return GateReport(
            target=str(data["target"]),
            url=str(data["url"]),
            strict=bool(data["strict"]),
            results=results,
            stopped=str(data.get("stopped", "")),
            restarts=int(data.get("restarts", 0)),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a conformance report: {type(exc).__name__}: {exc}") from None


def _result(case: Mapping[str, Any]) -> CaseResult:
    return CaseResult(
        id=str(case["id"]),
        title=str(case["title"]),
        section=str(case["section"]),
        verdict=Verdict(case["verdict"]),
        reason=str(case.get("reason", "")),
        expected=str(case.get("expected", "")),
        duration_ms=float(case.get("duration_ms", 0.0)),
        transcript=tuple(Exchange(**e) for e in case.get("transcript", ())),
    )


# --- JUnit XML --------------------------------------------------------------------------------


def to_junit(report: GateReport) -> str:
    """JUnit XML: one <testsuite>, one <testcase> per case named "<id> <title>", with
    classname "loadtool.conform.<section number>" (so CI groups cases by protocol section)."""
    failures = sum(1 for r in report.results if failing(report, r))
    skipped = sum(1 for r in report.results if r.verdict is Verdict.UNSUPPORTED)
    seconds = sum(r.duration_ms for r in report.results) / 1000
    suite = ET.Element(
        "testsuite",
        {
            "name": _xml(f"loadtool conform: {report.target}"),
            "tests": str(len(report.results)),
            "failures": str(failures),
            "errors": "0",
            "skipped": str(skipped),
            "time": f"{seconds:.3f}",
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("url", report.url), ("target", report.target)):
        ET.SubElement(properties, "property", {"name": name, "value": _xml(value)})
    ET.SubElement(properties, "property", {"name": "strict", "value": str(report.strict).lower()})
    if report.stopped:
        ET.SubElement(properties, "property", {"name": "stopped", "value": _xml(report.stopped)})
    if report.restarts:
        ET.SubElement(properties, "property", {"name": "restarts", "value": str(report.restarts)})
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "name": _xml(f"{result.id} {result.title}"),
                "classname": f"loadtool.conform.{section_number(result)}",
                "time": f"{result.duration_ms / 1000:.3f}",
            },
        )
        if failing(report, result):
            failure = ET.SubElement(
                case,
                "failure",
                {"message": _xml(_failure_message(result)), "type": result.verdict.value},
            )
            failure.text = _xml(_details(result))
        elif result.verdict is Verdict.UNSUPPORTED:
            ET.SubElement(case, "skipped", {"message": _xml(result.reason)})
        elif result.verdict in _JUNIT_NOTES or result.verdict is Verdict.NON_STRICT:
            out = ET.SubElement(case, "system-out")
            out.text = _xml(_details(result))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode")


def section_number(result: CaseResult) -> str:
    """ "§4.1" -> "4.1", "RFC 6455 §5.2" -> "rfc6455.5.2"; the case's group ("3" for 3.2)
    when the section has no number."""
    section = result.section
    rfc = re.match(r"\s*RFC\s*(\d+)", section)
    prefix = f"rfc{rfc.group(1)}." if rfc else ""
    digits = re.findall(r"\d+", section[rfc.end() :] if rfc else section)
    if digits:
        return prefix + ".".join(digits)
    return prefix.rstrip(".") or result.id.split(".")[0]


def _failure_message(result: CaseResult) -> str:
    return f"{result.verdict.value}: {_one_line(result.reason)}"


def _details(result: CaseResult) -> str:
    lines = [f"{result.verdict.value} {result.id} ({result.section}): {result.reason}"]
    if result.expected:
        lines.append(f"expected: {result.expected}")
    if result.transcript:
        lines += ["transcript:", transcript_text(result)]
    return "\n".join(lines)


def _xml(text: str) -> str:
    """`text` with what XML 1.0 cannot carry written as \\uXXXX (ElementTree escapes the
    rest, but would write these as they are and produce a file no parser reads)."""
    return _NOT_XML.sub(_escape_char, text)


# --- HTML -------------------------------------------------------------------------------------

_COLOURS: Final = {
    Verdict.PASS: "#1a7f37",
    Verdict.NON_STRICT: "#9a6700",
    Verdict.FAIL: "#cf222e",
    Verdict.UNSUPPORTED: "#6e7781",
    Verdict.INFO: "#0969da",
    Verdict.XFAIL: "#8250df",
    Verdict.XPASS: "#bc4c00",
    Verdict.ERROR: "#a40e26",
    Verdict.CRASHED: "#000000",
}

_STYLE: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1f2328; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
.meta { color: #57606a; margin-bottom: 1em; }
.outcome { font-weight: bold; padding: .15em .6em; border-radius: 4px; color: #fff; }
.counts span { display: inline-block; margin: .2em .6em .2em 0; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #d0d7de;
         vertical-align: top; }
th { background: #f6f8fa; }
.v { font-weight: bold; white-space: nowrap; padding: .1em .45em; border-radius: 4px;
     color: #fff; font-size: .85em; }
td.id, td.sec { white-space: nowrap; font-family: ui-monospace, monospace; }
details summary { cursor: pointer; color: #0969da; }
.stopped { background: #ffebe9; border: 1px solid #cf222e; padding: .6em; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap;
      word-break: break-all; font-size: 12px; }
"""


def to_html(report: GateReport) -> str:
    """A self-contained page (inline CSS, no scripts, no external assets): the outcome,
    counts per verdict, and a table with one row per case; each case that has a
    transcript shows it in a collapsible <details>. Every text is HTML-escaped."""
    e = html.escape
    counts = report.counts
    outcome_colour = _COLOURS[Verdict.PASS] if report.passed else _COLOURS[Verdict.FAIL]
    outcome = "PASSED" if report.passed else "FAILED"
    badges = "".join(
        f'<span><span class="v" style="background:{_COLOURS[v]}">{e(v.value)}</span> '
        f"{counts[v.value]}</span>"
        for v in _VERDICT_ORDER
        if v.value in counts
    )
    rows = "\n".join(_html_row(report, r) for r in report.results)
    strict = " (strict)" if report.strict else ""
    stopped = (
        f'<p class="stopped"><b>STOPPED:</b> {e(report.stopped)}</p>' if report.stopped else ""
    )
    return _printable(f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>loadtool conform: {e(report.target)} {outcome}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>loadtool conform: {e(report.target)}</h1>
<div class="meta">{e(report.url)}{e(strict)} &middot; {count_cases(len(report.results))} &middot;
<span class="outcome" style="background:{outcome_colour}">{outcome}</span></div>
<div class="counts">{badges}</div>
{stopped}
<table>
<thead><tr><th>ID</th><th>Verdict</th><th>Title</th><th>Section</th><th>Reason</th>\
<th>ms</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p class="meta">{e(summary_line(report))}</p>
</body>
</html>
""")


def _html_row(report: GateReport, result: CaseResult) -> str:
    e = html.escape
    colour = _COLOURS[result.verdict]
    reason = e(result.reason)
    if result.expected:
        reason += f"<br><b>expected:</b> {e(result.expected)}"
    if result.transcript:
        open_ = " open" if failing(report, result) else ""
        reason += (
            f"<details{open_}><summary>transcript ({len(result.transcript)} lines)</summary>"
            f"<pre>{e(transcript_text(result))}</pre></details>"
        )
    return (
        f'<tr id="case-{e(result.id)}"><td class="id">{e(result.id)}</td>'
        f'<td><span class="v" style="background:{colour}">{e(result.verdict.value)}</span></td>'
        f'<td>{e(result.title)}</td><td class="sec">{e(result.section)}</td>'
        f"<td>{reason}</td><td>{result.duration_ms:.0f}</td></tr>"
    )
