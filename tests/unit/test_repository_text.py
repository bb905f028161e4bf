"""The repository speaks of netlab alone: no file names a path of the machines it was built on, a
work-tracking number or a look-up tool's id. Upstream is cited by repository, path and release."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Written with character classes so that this file does not match itself.
FORBIDDEN = {
    "a build machine's path": re.compile(r"/w[o]rk/|\.\./s[h]ared/"),
    "a look-up tool's id": re.compile(r"search-i[n]dex|\bindex i[d]s? [0-9]|\bi[d] [0-9]{6,}"),
    "a work-tracking number": re.compile(r"\bi[s]sues? #?[0-9]{1,4}\b"),
}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_file_names_machines_tracking_numbers_or_lookup_ids() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{lineno}: {what}: {line.strip()[:80]}")
    assert not found, "\n".join(found)
