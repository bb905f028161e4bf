"""One output channel: rich when attached to a terminal, plain text when not, JSON on request."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from rich.console import Console


class Out:
    """One output channel: rich when attached to a terminal, plain text when not."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.rich = self.stream.isatty()
        self.console = (
            Console(file=self.stream, highlight=False, soft_wrap=True) if self.rich else None
        )

    def line(self, text: str = "", style: str = "") -> None:
        if self.console:
            self.console.print(text, style=style or None, markup=False)
        else:
            # Flushed per line: CI logs and a parent waiting for progress read it as it happens.
            print(text, file=self.stream, flush=True)

    def json(self, data: Any) -> None:
        print(json.dumps(data, indent=2, default=str), file=self.stream)
