"""Reading a scenario file: bounded in size, decoded as UTF-8, every failure located.

YAML as Kubernetes reads it is UTF-8 (a UTF-8 byte-order mark is allowed). A file saved as
Latin-1, UTF-16 or binary is refused at the first byte that is not UTF-8, with its line and
column, rather than read as something else.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from netlab.errors import Diagnostic

MAX_BYTES = 32 * 1024 * 1024  # far above any scenario; keeps a mistaken path from eating memory

_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SAVE_AS_UTF8 = "save the file as UTF-8 (most editors offer it under 'encoding')"


def read_source(file: str | Path) -> tuple[str | None, list[Diagnostic]]:
    """The file's text, or the diagnostics saying why it cannot be read."""
    name = str(file)
    try:
        with open(file, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return None, [
            Diagnostic(
                message=f"cannot read the file: {reason}",
                file=name,
                category="file",
                hint="check the path; netlab validate FILE takes a scenario's YAML file",
            )
        ]
    if len(data) > MAX_BYTES:
        return None, [
            Diagnostic(
                message=f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
                file=name,
                line=1,
                col=1,
                category="file",
                hint="a scenario is a YAML file of manifests and one Lab document; split it up",
            )
        ]
    return decode_source(data, name)


def decode_source(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """UTF-8 text (without a byte-order mark), or where the bytes stop being UTF-8."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return None, [
                Diagnostic(
                    message=f"the file is {encoding} (it starts with a {encoding} byte-order "
                    "mark); YAML for Kubernetes is UTF-8",
                    file=file,
                    line=1,
                    col=1,
                    category="encoding",
                    hint=_SAVE_AS_UTF8,
                )
            ]
    nul = data.find(b"\x00", 0, 4096)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if 0 <= nul < exc.start:
            return None, _nul(data, nul, file)
        line, col = _position(data, exc.start)
        byte = data[exc.start]
        return None, [
            Diagnostic(
                message=f"the file is not UTF-8: byte 0x{byte:02x} here is not valid UTF-8 "
                f"({exc.reason})",
                file=file,
                line=line,
                col=col,
                category="encoding",
                hint=_SAVE_AS_UTF8
                + (
                    "; this looks like Latin-1 or Windows-1252 text" if 0xA0 <= byte <= 0xFF else ""
                ),
            )
        ]
    if nul >= 0:
        return None, _nul(data, nul, file)
    return text, []


def _nul(data: bytes, nul: int, file: str) -> list[Diagnostic]:
    line, col = _position(data, nul)
    return [
        Diagnostic(
            message="the file holds NUL bytes: it looks like UTF-16 or a binary file, not UTF-8 "
            "YAML",
            file=file,
            line=line,
            col=col,
            category="encoding",
            hint=_SAVE_AS_UTF8,
        )
    ]


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset``, counting what precedes it."""
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0
    before = data[start:offset].decode("utf-8", "replace")
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
