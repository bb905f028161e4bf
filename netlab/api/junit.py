"""Check results as JUnit XML, the report format CI systems read (Jenkins, GitLab, GitHub
Actions' test reporters).

One ``<testsuite>`` per run (the lab, in its proxy mode), one ``<testcase>`` per check; the checks
of a timeline's steps follow, each step's under its own class name (``LAB.MODE.step-NAME``) with
the step's change and how long the nodes took to converge on it in its output. A failed
check has a ``<failure>`` whose text says what was dialled, every mismatch, and the expected and
observed values; a run that could not happen at all (invalid scenario, missing prerequisite,
a lab that could not be built) is one ``<testcase>`` with an ``<error>``. The layout follows the
JUnit schema Jenkins publishes (``junit-4.xsd`` of its dtkit JUnit model, as shipped by
junit-team/junit5 at ``platform-tests/src/test/resources/jenkins-junit.xsd``).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import yaml

from netlab.checks.model import CheckResult
from netlab.errors import UsageError

if TYPE_CHECKING:
    from netlab.lab.timeline import StepResult

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 on, except surrogates
# and U+FFFE/U+FFFF; anything else (terminal escapes in a tool's output) is replaced.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _block(title: str, data: dict[str, Any]) -> str:
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100).rstrip()
    return f"{title}:\n" + "\n".join(f"  {line}" for line in body.splitlines())


def failure_text(r: CheckResult) -> str:
    """What a reader of a CI report needs: the check, each mismatch, expected and observed."""
    count = "" if r.kind == "dns" else f", {r.connections} connections"
    lines = [r.summary + count]
    if r.description:
        lines.append(r.description.strip())
    lines += [f"- {f}" for f in r.failures]
    lines.append(_block("expected", r.expected))
    lines.append(_block("observed", r.observed))
    return "\n".join(lines)


def junit_xml(
    results: Sequence[CheckResult],
    *,
    suite: str,
    mode: str = "",
    properties: dict[str, str] | None = None,
    error: BaseException | str | None = None,
    timestamp: float | None = None,
    steps: Sequence[StepResult] = (),
) -> str:
    """The JUnit XML document of one run. ``suite`` names it (the lab); ``mode`` goes into every
    test's class name so the four modes' reports do not collide; ``error`` says why the run
    produced no results; ``steps`` are the timeline's steps, their checks after ``results``."""
    classname = f"{suite}.{mode}" if mode else suite
    cases: list[tuple[str, CheckResult, str]] = [(classname, r, "") for r in results]
    for step in steps:
        said = f"step {step.name}: {step.change or 'no change'}"
        if step.report is not None:
            said += f" (converged in {step.report.seconds:.3f}s)"
        cases += [(f"{classname}.step-{step.name}", r, said) for r in step.results]
    seconds = sum(r.seconds for _, r, _ in cases)
    failures = sum(not r.passed for _, r, _ in cases)
    errors = 1 if error is not None else 0
    tests = len(cases) + errors
    root = ET.Element(
        "testsuites",
        name="netlab",
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        time=f"{seconds:.3f}",
    )
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp or time.time()))
    ts = ET.SubElement(
        root,
        "testsuite",
        name=_clean(classname),
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{seconds:.3f}",
        timestamp=stamp,
        hostname=_clean(socket.gethostname()),
    )
    props = {"mode": mode, **(properties or {})}
    props = {k: v for k, v in props.items() if v}
    if props:
        pe = ET.SubElement(ts, "properties")
        for key, value in props.items():
            ET.SubElement(pe, "property", name=_clean(key), value=_clean(str(value)))
    if error is not None:
        case = ET.SubElement(
            ts, "testcase", classname=_clean(classname), name="netlab run", time="0"
        )
        message = str(error)
        kind = type(error).__name__ if isinstance(error, BaseException) else "NetlabError"
        detail = "\n".join(
            str(x) for x in (message, getattr(error, "detail", ""), getattr(error, "hint", "")) if x
        )
        for d in getattr(error, "diagnostics", []):
            detail += "\n" + d.format()
        el = ET.SubElement(case, "error", message=_clean(message), type=_clean(kind))
        el.text = _clean(detail)
    for cls, r, said in cases:
        case = ET.SubElement(
            ts,
            "testcase",
            classname=_clean(cls),
            name=_clean(r.name),
            time=f"{r.seconds:.3f}",
        )
        if not r.passed:
            message = "; ".join(r.failures) or "check failed"
            el = ET.SubElement(case, "failure", message=_clean(message), type="CheckFailed")
            el.text = _clean(failure_text(r))
        out = ET.SubElement(case, "system-out")
        text = r.summary + (f"\n{r.description.strip()}" if r.description else "")
        out.text = _clean(f"{said}\n{text}" if said else text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike[str], results: Sequence[CheckResult], **kw: Any) -> None:
    """Write :func:`junit_xml` to ``path`` atomically (a CI step never reads half a report)."""
    text = junit_xml(results, **kw)
    target = os.fspath(path)
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(
            f"cannot write the JUnit report {target}: {exc.strerror}",
            hint="give --junit a path in a directory that exists and is writable",
        ) from None
