"""Any input gets a verdict: mutants of the shipped scenarios, with a fixed seed and a budget of
seconds, and every input a fuzz run ever found crashing (tests/unit/fuzz_cases/).

A verdict is "valid", or "invalid" with every diagnostic located and with a hint, printed
literally both on a terminal and in a pipe. The longer run is ``benchmarks/fuzz_validate.py``.
"""

from __future__ import annotations

import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import jsonschema
import pytest
import yaml

from netlab.scenario.labcheck import json_numbers, schema_errors
from netlab.scenario.labschema import SCHEMA
from netlab.scenario.labspec import is_lab_document
from netlab.scenario.yamlpos import Document, load_documents
from tests.tooling.mutate import INVALID, VALID, judge, mutants

SEED = 20261204
BUDGET_SECONDS = 8.0  # the mutants stop after this; what ran must all be fine
AT_LEAST = 150  # a budget spent on too few mutants would test little: fail instead
PER_INPUT_SECONDS = 10  # no input may take longer: that would be a hang
CASES = sorted((Path(__file__).parent / "fuzz_cases").glob("*.yaml"))


class Hang(Exception):
    pass


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no verdict within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_mutants_of_the_shipped_scenarios_get_a_verdict() -> None:
    outcomes: Counter[str] = Counter()
    findings: list[str] = []
    start = time.monotonic()
    for label, content in mutants(SEED):
        if time.monotonic() - start > BUDGET_SECONDS:
            break
        with deadline(PER_INPUT_SECONDS):
            verdict = judge(content)
        outcomes[verdict.outcome] += 1
        if verdict.outcome not in (VALID, INVALID):
            findings.append(f"{label}: {verdict.outcome}: {verdict.detail[-600:]}")
    assert findings == [], "\n".join(findings[:5])
    assert sum(outcomes.values()) >= AT_LEAST, outcomes
    assert outcomes[VALID] and outcomes[INVALID], outcomes  # the mutants span both verdicts


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_inputs_once_found_crashing_get_a_verdict(case: Path) -> None:
    with deadline(PER_INPUT_SECONDS):
        verdict = judge(case.read_bytes(), case.name)
    assert verdict.outcome in (VALID, INVALID), verdict.detail


def _lab_documents(count: int) -> Iterator[Document]:
    for _, content in mutants(SEED + 1):
        try:
            docs, _ = load_documents(content.decode("utf-8"), "m.yaml")
        except UnicodeDecodeError:
            continue
        for doc in docs:
            if is_lab_document(doc.data) and not doc.bad:
                count -= 1
                yield doc
        if count <= 0:
            return


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def test_the_lab_schema_walker_agrees_with_a_reference_validator() -> None:
    """labcheck words errors its own way; whether a document is valid is JSON Schema's call."""
    reference = jsonschema.Draft202012Validator(SCHEMA)
    compared = 0
    for doc in _lab_documents(300):
        data = json_numbers(doc.data)
        if not _finite(data):
            continue  # JSON has no NaN: labcheck refuses it, a schema library cannot tell
        ours = bool(schema_errors(doc, SCHEMA, data))
        assert ours == (not reference.is_valid(data)), yaml.safe_dump(data)[:2000]
        compared += 1
    assert compared >= 100
