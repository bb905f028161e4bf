"""One output channel: rich when attached to a terminal, plain text when not, JSON or YAML on
request.

Tables follow kubectl: on a terminal a rich table with a header row; in a pipe, columns aligned
the way kubectl's tab writer aligns them (each column as wide as its widest cell plus three
spaces, at least six; the last column unpadded), so ``awk`` and ``column`` read them as they read
``kubectl get``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # rich is imported only to print to a terminal: a pipe or CI starts faster
    from rich.console import Console

# k8s.io/cli-runtime/pkg/printers/tabwriter.go: tabwriterMinWidth, tabwriterPadding
TAB_MIN_WIDTH = 6
TAB_PADDING = 3


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a table laid out as kubectl lays out ``kubectl get`` in a pipe."""
    lines = [list(header), *[list(r) for r in rows]]
    if not header:
        return []
    widths = [
        max(TAB_MIN_WIDTH, max(len(line[i]) for line in lines) + TAB_PADDING)
        for i in range(len(header) - 1)
    ]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line, widths, strict=False)]
        out.append("".join(cells) + line[-1])
    return out


class Out:
    """One output channel: rich when attached to a terminal, plain text when not."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.rich = self.stream.isatty()
        self.console: Console | None = None
        if self.rich:
            from rich.console import Console

            self.console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def line(self, text: str = "", style: str = "") -> None:
        if self.console:
            self.console.print(text, style=style or None, markup=False)
        else:
            # Flushed per line: CI logs and a parent waiting for progress read it as it happens.
            print(text, file=self.stream, flush=True)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, default=str), file=self.stream, flush=True)

    def yaml(self, data: Any) -> None:
        import yaml

        text = yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False)
        self.stream.write(text)
        self.stream.flush()

    def data(self, data: Any, fmt: str) -> None:
        """Machine-readable output in ``fmt`` (json or yaml)."""
        if fmt == "yaml":
            self.yaml(data)
        else:
            self.json(data)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str = "",
        styles: Sequence[str] = (),
    ) -> None:
        """A table: rich with a header row on a terminal, kubectl-aligned text in a pipe.
        ``styles`` gives each row a rich style (terminal only). Cells are never markup."""
        if self.console:
            from rich import box
            from rich.table import Table
            from rich.text import Text

            t = Table(title=title or None, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
            for name in header:
                t.add_column(name, overflow="fold")
            for i, row in enumerate(rows):
                style = styles[i] if i < len(styles) else None
                t.add_row(*(Text(c) for c in row), style=style or None)
            self.console.print(t)
            return
        if title:
            self.line(title)
        for text in aligned(header, rows):
            self.line(text)
