"""How netlab reports diagnostics and check results: rich on a terminal, plain text otherwise,
JSON-ready data on request."""

from __future__ import annotations

from netlab.checks import CheckResult
from netlab.cli.output import Out
from netlab.errors import Diagnostic


def diagnostics(out: Out, diags: list[Diagnostic]) -> None:
    """All problems at once, grouped by category, each with its place, path and hint."""
    for d in diags:
        if out.console:
            color = "red" if d.severity == "error" else "yellow"
            out.console.print(
                f"[bold]{_esc(d.location)}[/bold]{':' if d.location else ''} "
                f"[{color}]{d.severity}[/{color}]"
                + (f" [magenta]\\[{_esc(d.category)}][/magenta]" if d.category else "")
                + (f" [cyan]{_esc(d.path)}[/cyan]:" if d.path else "")
                + f" {_esc(d.message)}"
            )
            if d.hint:
                out.console.print(f"    [dim]hint:[/dim] {_esc(d.hint)}")
        else:
            out.line(d.format())
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    if errors or warnings:
        out.line(
            f"{errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}"
        )


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def check_line(out: Out, r: CheckResult) -> None:
    mark = "PASS" if r.passed else "FAIL"
    if out.console:
        color = "green" if r.passed else "red"
        count = "" if r.kind == "dns" else f" x{r.connections}"
        out.console.print(
            f"[{color}]{mark}[/{color}] {_esc(r.name)}  [dim]{_esc(r.summary)}{count}[/dim]"
        )
        for f in r.failures:
            out.console.print(f"     [red]-[/red] {_esc(f)}")
    else:
        out.line(
            f"{mark} {r.name}  {r.summary}" + ("" if r.kind == "dns" else f" x{r.connections}")
        )
        for f in r.failures:
            out.line(f"     - {f}")


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
