"""How netlab reports diagnostics and check results: rich on a terminal, plain text otherwise,
JSON-ready data on request."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from netlab.checks import CheckResult
from netlab.cli.output import Out
from netlab.errors import Diagnostic
from netlab.serial import to_data


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


def results_table(out: Out, results: list[CheckResult]) -> None:
    if not out.console:
        return
    table = Table(title="checks", show_lines=False)
    for col in ("", "check", "from", "to", "proto", "conns", "reached", "source seen"):
        table.add_column(col)
    for r in results:
        reached = ", ".join(f"{k} x{v}" for k, v in r.observed.get("endpoints", {}).items())
        if not reached:
            reached = ", ".join(f"{k} x{v}" for k, v in r.observed.get("outcomes", {}).items())
        table.add_row(
            "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]",
            r.name,
            r.source,
            r.destination,
            r.protocol,
            str(r.connections),
            reached,
            ", ".join(r.observed.get("sources", [])),
        )
    out.console.print(table)


def summary(out: Out, results: list[CheckResult]) -> None:
    passed = sum(r.passed for r in results)
    text = f"{passed}/{len(results)} checks passed"
    if out.console:
        color = "green" if passed == len(results) else "red"
        out.console.print(f"[bold {color}]{text}[/bold {color}]")
    else:
        out.line(text)


def result_data(r: CheckResult) -> dict[str, Any]:
    data: dict[str, Any] = to_data(r)
    return data
