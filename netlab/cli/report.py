"""How netlab reports diagnostics and check results: rich on a terminal, plain text otherwise,
JSON-ready data on request."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from netlab.cli.output import Out
from netlab.errors import Diagnostic

if TYPE_CHECKING:
    from rich.text import Text

    from netlab.checks import CheckResult
    from netlab.cluster.state import ClusterState
    from netlab.lab.changes import ChangeReport, Phase
    from netlab.scenario.stepspec import StepSpec

# What would break a line, move the cursor or reorder text on a terminal: control characters,
# lone surrogates, line and paragraph separators, bidirectional overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` on one line, shown literally: what a terminal would act on becomes an escape
    (``\\n``, ``\\x07``, ``\\u202e``), so a name with a newline stays on its diagnostic's line."""
    return _UNPRINTABLE.sub(_escape_char, text)


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _lit(text: str, style: str = "") -> Text:
    """User text for rich: a Text, never parsed as markup, so ``[red]`` or a trailing backslash
    in a name prints as written (escaping markup in a string loses trailing backslashes)."""
    from rich.text import Text

    return Text(printable(text), style=style)


def diagnostics(out: Out, diags: list[Diagnostic]) -> None:
    """All problems at once, each on its own line with its place, path and message, and its
    hint on the next line; user text is printed literally on a terminal and in a pipe."""
    for d in diags:
        if out.console:
            from rich.text import Text

            color = "red" if d.severity == "error" else "yellow"
            line = Text.assemble(
                _lit(d.location, "bold"), ": " if d.location else "", (d.severity, color)
            )
            if d.category:
                line.append(" [")
                line.append(_lit(d.category, "magenta"))
                line.append("]")
            if d.path:
                line.append(" ")
                line.append(_lit(d.path, "cyan"))
                line.append(":")
            line.append(" ")
            line.append(_lit(d.message))
            out.console.print(line)
            if d.hint:
                out.console.print(Text.assemble("    ", ("hint:", "dim"), " ", _lit(d.hint)))
        else:
            out.line(
                replace(
                    d,
                    file=printable(d.file),
                    path=printable(d.path),
                    category=printable(d.category),
                    message=printable(d.message),
                    hint=printable(d.hint),
                ).format()
            )
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    if errors or warnings:
        out.line(
            f"{errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}"
        )


def check_line(out: Out, r: CheckResult) -> None:
    mark = "PASS" if r.passed else "FAIL"
    if out.console:
        from rich.text import Text

        color = "green" if r.passed else "red"
        count = "" if r.kind == "dns" else f" x{r.connections}"
        out.console.print(
            Text.assemble((mark, color), " ", _lit(r.name), "  ", _lit(r.summary + count, "dim"))
        )
        for f in r.failures:
            out.console.print(Text.assemble("     ", ("-", "red"), " ", _lit(f)))
    else:
        out.line(
            f"{mark} {printable(r.name)}  {printable(r.summary)}"
            + ("" if r.kind == "dns" else f" x{r.connections}")
        )
        for f in r.failures:
            out.line(f"     - {printable(f)}")


def _reached(r: CheckResult) -> str:
    counts = r.reached or r.observed.get("outcomes", {})
    return ",".join(f"{k}={v}" for k, v in counts.items()) or "-"


def results(
    out: Out,
    results: list[CheckResult],
    *,
    wide: bool = False,
    steps: Sequence[tuple[str, list[CheckResult]]] = (),
) -> None:
    """The table after a run (on a terminal, or with ``-o wide`` anywhere), then the count.
    With ``steps`` (a timeline's step names and results, which follow ``results``), a STEP
    column says which step each check belongs to."""
    if out.console or wide:
        header = ["RESULT", "CHECK", "FROM", "TO", "PROTO", "CONNS", "REACHED", "SOURCE SEEN"]
        if steps:
            header.insert(1, "STEP")
        if wide:
            header += ["SECONDS", "EXPECTED"]
        step_of = {id(r): name for name, rs in steps for r in rs}
        rows = []
        for r in results:
            row = [
                "PASS" if r.passed else "FAIL",
                *([step_of.get(id(r), "-")] if steps else []),
                r.name,
                r.source,
                r.destination,
                r.protocol,
                str(r.connections),
                _reached(r),
                ",".join(r.observed.get("sources", [])) or "-",
            ]
            if wide:
                expected = ",".join(f"{k}={_flat(v)}" for k, v in r.expected.items())
                row += [f"{r.seconds:.2f}", expected or "-"]
            rows.append(row)
        styles = ["green" if r.passed else "red" for r in results]
        out.table(header, rows, title="checks" if out.console else "", styles=styles)
    summary(out, results)


def _flat(value: object) -> str:
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value) or "none"
    return str(value)


def summary(out: Out, results: list[CheckResult]) -> None:
    passed = sum(r.passed for r in results)
    text = f"{passed}/{len(results)} checks passed"
    if out.console:
        color = "green" if passed == len(results) else "red"
        out.console.print(f"[bold {color}]{text}[/bold {color}]")
    else:
        out.line(text)


def change_phase(out: Out, phase: Phase, state: ClusterState, proxy: str) -> None:
    """One realized moment of a change: what the cluster did, and how long every node took."""
    stamp = f"+{phase.at:.1f}s"
    pad = " " * len(stamp)
    for i, line in enumerate(phase.said or ["nothing changed"]):
        out.line(f"  {stamp if i == 0 else pad} {line}")
    synced = ", ".join(f"{s.node} {s.seconds * 1000:.0f} ms" for s in phase.syncs)
    skipped = [n.name for n in state.nodes if not n.reachable]
    parts = [f"{proxy} synced on {synced or 'no node'}"]
    if skipped:
        parts.append(f"not on {', '.join(skipped)} (down)")
    if phase.added or phase.removed:
        parts.append(f"pod sandboxes +{len(phase.added)}/-{len(phase.removed)}")
    if phase.conntrack_deleted:
        deleted = ", ".join(f"{n} {c}" for n, c in phase.conntrack_deleted.items())
        parts.append(f"stale UDP conntrack entries deleted ({deleted})")
    text = f"  {pad} converged in {phase.seconds:.2f}s: " + "; ".join(parts)
    out.line(text, style="dim")


def change_pending(out: Out, done: ChangeReport) -> None:
    """What a change left waiting for time."""
    for line in done.pending:
        out.line(f"  pending: {line}", style="yellow")


def step_title(out: Out, step: StepSpec) -> None:
    what = step.change.describe() if step.change is not None else "no change"
    out.line(f"step {step.name}: {printable(what)}", style="bold")
    if step.description:
        out.line(f"  {printable(step.description)}", style="dim")
