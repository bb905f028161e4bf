"""How netlab reports diagnostics and check results: rich on a terminal, plain text otherwise,
JSON-ready data on request."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from netlab.cli.output import Out
from netlab.errors import Diagnostic

if TYPE_CHECKING:
    from rich.text import Text

    from netlab.checks import CheckResult

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


def results(out: Out, results: list[CheckResult], *, wide: bool = False) -> None:
    """The table after a run (on a terminal, or with ``-o wide`` anywhere), then the count."""
    if out.console or wide:
        header = ["RESULT", "CHECK", "FROM", "TO", "PROTO", "CONNS", "REACHED", "SOURCE SEEN"]
        if wide:
            header += ["SECONDS", "EXPECTED"]
        rows = []
        for r in results:
            row = [
                "PASS" if r.passed else "FAIL",
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
