"""docs/lab.schema.json is exactly the schema that validates Lab documents."""

from __future__ import annotations

import json
import os

import jsonschema

from netlab.scenario.labschema import SCHEMA

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "lab.schema.json")


def test_published_schema_is_the_enforced_one() -> None:
    with open(DOC) as f:
        assert json.load(f) == SCHEMA, "regenerate it: netlab schema > docs/lab.schema.json"


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
