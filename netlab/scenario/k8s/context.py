"""The per-document validation context (where diagnostics go, which paths failed to decode) and
the short practical hints several validators share.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from netlab.errors import Diagnostic
from netlab.scenario.k8s.objects import SUPPORTED_KINDS
from netlab.scenario.yamlpos import Document, Path

# ---------------------------------------------------------------------------------------------
# Hints: short, practical, shared by several checks
# ---------------------------------------------------------------------------------------------

_HINT_KINDS = "netlab accepts: " + ", ".join(f"{v} {k}" for v, k in SUPPORTED_KINDS)
_HINT_LABEL = "use lower-case letters, digits and '-', starting and ending with a letter or digit"
_HINT_PORT = "a port number is 1-65535"
_HINT_PORT_NAME = (
    "port names are at most 15 characters of a-z, 0-9 and '-', with at least one letter "
    "(e.g. http, metrics)"
)
_HINT_LABELS = (
    "label keys are [prefix/]name (name: letters, digits, '-', '_', '.'); values are at most 63 "
    "such characters, or empty"
)
_HINT_QUOTE = (
    "quote the value: YAML reads true, yes, 1.0 as booleans or numbers, but labels and "
    'annotations must be strings (e.g. version: "1.0")'
)


def _name_hint(kind: str) -> str:
    if kind == "Service":
        return (
            "a Service name becomes a DNS label: lower-case letters, digits and '-', starting "
            "with a letter (e.g. web-1)"
        )
    if kind == "Namespace":
        return "a namespace name is a DNS label: " + _HINT_LABEL
    return "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"


# ---------------------------------------------------------------------------------------------
# The per-document context: where diagnostics go, and which paths failed to decode
# ---------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    doc: Document
    out: list[Diagnostic]
    category: str
    bad: list[Path] = field(default_factory=list)
    misspelled: list[Path] = field(default_factory=list)
    failed: bool = False
    # What the API server puts before a decoding error (transformDecodeError in
    # k8s.io/apiserver pkg/endpoints/handlers/rest.go): 'Service in version "v1" cannot be
    # handled as a Service: '.
    decode_prefix: str = ""
    gates: tuple[str, ...] = ()  # the feature gates switched on

    def _suppressed(self, loc: Path) -> bool:
        # A value that failed to decode was dropped, and a misspelled field is missing; checking
        # what is left would only report consequences of the same mistake ("port: '80'" also
        # showing up as port 0, "contaierPort: 80" as a missing containerPort).
        if any(loc[: len(b)] == b or b[: len(loc)] == loc for b in self.bad):
            return True
        return any(loc[: len(m)] == m for m in self.misspelled)

    def emit(
        self,
        loc: Path,
        message: str,
        hint: str,
        *,
        shown: str | None = None,
        key: bool = False,
        severity: str = "error",
        force: bool = False,
    ) -> None:
        """Record a diagnostic positioned at ``loc``; ``shown`` overrides the printed path."""
        if not force and self._suppressed(loc):
            return
        diag = self.doc.diag(
            loc, message, hint=hint, category=self.category, key=key, severity=severity
        )
        if shown is not None:
            diag = dataclasses.replace(diag, path=shown)
        self.out.append(diag)
        if severity == "error":
            self.failed = True

    def warn(self, loc: Path, message: str, hint: str, *, shown: str | None = None) -> None:
        self.emit(loc, message, hint, shown=shown, severity="warning")
