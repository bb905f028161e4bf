"""One exception family for netlab; each kind carries the CLI exit status it maps to.

Exit statuses (documented in docs/cli.md): 0 all checks passed, 1 a check failed, 2 invalid input,
3 a missing prerequisite, 4 the lab itself could not be built or torn down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_INVALID = 2
EXIT_PREREQUISITE = 3
EXIT_LAB = 4


@dataclass(frozen=True)
class Diagnostic:
    """One finding about an input file: where it is, what is wrong, and what to do about it."""

    message: str
    file: str = ""
    line: int = 0
    col: int = 0
    path: str = ""
    hint: str = ""
    category: str = ""
    severity: str = "error"  # "error" or "warning"

    @property
    def location(self) -> str:
        if not self.file:
            return ""
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file

    def format(self) -> str:
        """Plain one-line form: ``file:line:col: error: [category] path: message (hint: ...)``."""
        parts = []
        if self.location:
            parts.append(f"{self.location}:")
        parts.append(f"{self.severity}:")
        if self.category:
            parts.append(f"[{self.category}]")
        if self.path:
            parts.append(f"{self.path}:")
        parts.append(self.message)
        text = " ".join(parts)
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class NetlabError(Exception):
    """Base of every error netlab raises on purpose."""

    exit_code = EXIT_LAB


class ScenarioError(NetlabError):
    """The input is invalid; carries every diagnostic found, not just the first."""

    exit_code = EXIT_INVALID

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = [d for d in diagnostics if d.severity == "error"]
        self.warnings = [d for d in diagnostics if d.severity != "error"]
        n = len(self.diagnostics)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in the input")


class UsageError(NetlabError):
    """A command-line argument is wrong (unknown lab, bad target...)."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


class PrerequisiteError(NetlabError):
    """Something the host must provide is missing (root, a kernel feature, a tool)."""

    exit_code = EXIT_PREREQUISITE

    def __init__(self, message: str, hint: str = ""):
        self.hint = hint
        super().__init__(message)


class LabError(NetlabError):
    """Building, changing or removing a lab failed."""

    exit_code = EXIT_LAB

    def __init__(self, message: str, detail: str = "", hint: str = ""):
        self.detail = detail
        self.hint = hint
        super().__init__(message)


@dataclass
class DiagnosticSink:
    """Collects diagnostics so validation can report all of them at once."""

    file: str = ""
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity != "error"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ScenarioError(self.items)
