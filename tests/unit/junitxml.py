"""A strict check of JUnit XML, shared by the unit and lab tests of ``--junit``.

It enforces what the JUnit schema Jenkins publishes says (``junit-4.xsd`` of Jenkins' dtkit JUnit
model, shipped by junit-team/junit5 at ``platform-tests/src/test/resources/jenkins-junit.xsd``):
which elements nest where and in which order, which attributes each may and must have. And what
that schema cannot say but every CI reader assumes: counts that add up, times that are numbers,
names that are not empty.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    required: frozenset[str]
    optional: frozenset[str]
    children: tuple[tuple[str, int, int | None], ...]  # (tag, min, max or None) in order
    text: bool = False  # mixed or simple content allowed


def _rule(req: str, opt: str, children: tuple[tuple[str, int, int | None], ...] = ()) -> Rule:
    return Rule(frozenset(req.split()), frozenset(opt.split()), children)


RULES: dict[str, Rule] = {
    "testsuites": _rule("", "name time tests failures disabled errors", (("testsuite", 0, None),)),
    "testsuite": _rule(
        "name tests",
        "failures errors time disabled skipped timestamp hostname id package",
        (("properties", 0, 1), ("testcase", 0, None), ("system-out", 0, 1), ("system-err", 0, 1)),
    ),
    "properties": _rule("", "", (("property", 1, None),)),
    "property": _rule("name value", ""),
    "testcase": _rule(
        "name",
        "assertions time classname status",
        (
            ("skipped", 0, 1),
            ("error", 0, None),
            ("failure", 0, None),
            ("system-out", 0, None),
            ("system-err", 0, None),
        ),
    ),
    "failure": Rule(frozenset(), frozenset({"type", "message"}), (), True),
    "error": Rule(frozenset(), frozenset({"type", "message"}), (), True),
    "skipped": Rule(frozenset(), frozenset(), (), True),
    "system-out": Rule(frozenset(), frozenset(), (), True),
    "system-err": Rule(frozenset(), frozenset(), (), True),
}


def _check(el: ET.Element, where: str, problems: list[str]) -> None:
    rule = RULES.get(el.tag)
    if rule is None:
        problems.append(f"{where}: unknown element <{el.tag}>")
        return
    attrs = set(el.attrib)
    for missing in sorted(rule.required - attrs):
        problems.append(f"{where}: <{el.tag}> lacks required attribute {missing}")
    for extra in sorted(attrs - rule.required - rule.optional):
        problems.append(f"{where}: <{el.tag}> has attribute {extra}, which the schema lacks")
    if not rule.text and (el.text or "").strip():
        problems.append(f"{where}: <{el.tag}> holds text")
    # The children, in the schema's sequence order, each within its bounds.
    tags = [c.tag for c in el]
    i = 0
    for tag, low, high in rule.children:
        n = 0
        while i < len(tags) and tags[i] == tag:
            n += 1
            i += 1
        if n < low or (high is not None and n > high):
            problems.append(f"{where}: <{el.tag}> has {n} <{tag}>, allowed {low}..{high or 'n'}")
    if i < len(tags):
        problems.append(f"{where}: <{el.tag}> has <{tags[i]}> out of the schema's order")
    for n, child in enumerate(el):
        _check(child, f"{where}/{child.tag}[{n}]", problems)


def validate_junit(text: str) -> ET.Element:
    """Parse and check a JUnit report; fail with every problem found."""
    root = ET.fromstring(text)
    assert root.tag == "testsuites", f"the root is <{root.tag}>, not <testsuites>"
    problems: list[str] = []
    _check(root, "testsuites", problems)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        counts = {
            "tests": len(cases),
            "failures": sum(len(c.findall("failure")) > 0 for c in cases),
            "errors": sum(len(c.findall("error")) > 0 for c in cases),
            "skipped": sum(len(c.findall("skipped")) > 0 for c in cases),
        }
        for key, n in counts.items():
            if key in suite.attrib and int(suite.attrib[key]) != n:
                problems.append(
                    f"testsuite {suite.get('name')}: {key}={suite.get(key)}, counted {n}"
                )
            totals[key] = totals.get(key, 0) + n
        for case in cases:
            if not case.get("name"):
                problems.append(f"testsuite {suite.get('name')}: a testcase has an empty name")
            float(case.get("time", "0"))
        float(suite.get("time", "0"))
    for key in ("tests", "failures", "errors"):
        if key in root.attrib and int(root.attrib[key]) != totals[key]:
            problems.append(f"testsuites: {key}={root.get(key)}, counted {totals[key]}")
    assert not problems, "\n".join(problems)
    return root
