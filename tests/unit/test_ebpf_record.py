"""The record of a lab's BPF objects: what the ebpf mode appends is what cleanup reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.proxy.ebpf import record


def test_appended_objects_are_read_back_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / record.RECORD)
    record.append(path, [41, 42], [7])
    record.append(path, iter([43]), [])  # a new pod's programs, later
    assert (tmp_path / record.RECORD).read_text() == "prog 41\nprog 42\nmap 7\nprog 43\n"
    assert record.read(path) == [("prog", 41), ("prog", 42), ("map", 7), ("prog", 43)]


def test_lines_that_are_not_a_record_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / record.RECORD
    path.write_text("prog 5\nmap x\n12\nlink 3\n\nmap 9\nprog\n")
    assert record.read(str(path)) == [("prog", 5), ("map", 9)]


def test_a_missing_record_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        record.read(str(tmp_path / "none"))
