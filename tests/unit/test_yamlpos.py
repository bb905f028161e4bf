"""netlab.scenario.yamlpos: multi-document YAML with the 1-based position of every key and value."""

from __future__ import annotations

import pytest

from netlab.errors import Diagnostic
from netlab.scenario import yamlpos
from netlab.scenario.yamlpos import Document, dotted, load_documents

TWO_DOCS = """\
a: 1
b:
  c: [x, y]
  d:
    - e: 2
---
# a comment line
f: g
"""


def test_dotted_renders_the_api_path_form() -> None:
    assert dotted(()) == ""
    assert dotted(("spec",)) == "spec"
    assert dotted(("spec", "ports", 0, "nodePort")) == "spec.ports[0].nodePort"
    assert dotted(("spec", "checks", 2)) == "spec.checks[2]"
    assert dotted(("items", 0, 1, "x")) == "items[0][1].x"
    assert dotted((0, "a")) == "[0].a"


def test_documents_data_index_and_first_line() -> None:
    docs, diags = load_documents(TWO_DOCS, "f.yaml")
    assert diags == []
    assert [(d.file, d.index, d.line) for d in docs] == [("f.yaml", 0, 1), ("f.yaml", 1, 8)]
    assert docs[0].data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert docs[1].data == {"f": "g"}


def test_value_positions() -> None:
    docs, _ = load_documents(TWO_DOCS, "f.yaml")
    doc = docs[0]
    assert doc.values == {
        (): (1, 1),
        ("a",): (1, 4),
        ("b",): (3, 3),  # a block mapping starts at its first key
        ("b", "c"): (3, 6),
        ("b", "c", 0): (3, 7),
        ("b", "c", 1): (3, 10),
        ("b", "d"): (5, 5),
        ("b", "d", 0): (5, 7),
        ("b", "d", 0, "e"): (5, 10),
    }
    assert docs[1].values == {(): (8, 1), ("f",): (8, 4)}


def test_key_positions() -> None:
    docs, _ = load_documents(TWO_DOCS, "f.yaml")
    assert docs[0].keys == {
        ("a",): (1, 1),
        ("b",): (2, 1),
        ("b", "c"): (3, 3),
        ("b", "d"): (4, 3),
        ("b", "d", 0, "e"): (5, 7),
    }
    assert docs[1].keys == {("f",): (8, 1)}


def test_where_value_and_key() -> None:
    doc = load_documents(TWO_DOCS, "f.yaml")[0][0]
    assert doc.where(("b", "c", 1)) == (3, 10)
    assert doc.where(("b", "c")) == (3, 6)
    assert doc.where(("b", "c"), key=True) == (3, 3)
    assert doc.where(("b", "d"), key=True) == (4, 3)


def test_where_falls_back_to_the_nearest_ancestor() -> None:
    doc = load_documents(TWO_DOCS, "f.yaml")[0][0]
    # A missing path: the closest existing ancestor's value.
    assert doc.where(("b", "c", 7)) == (3, 6)
    assert doc.where(("b", "d", 0, "missing", "deeper")) == (5, 7)
    assert doc.where(("nope",)) == (1, 1)
    # A missing key: the mapping that should hold it (the ancestor's value, not its key).
    assert doc.where(("b", "zzz"), key=True) == (3, 3)


def test_where_without_any_position_uses_the_document_line() -> None:
    doc = Document(file="f.yaml", index=3, data={}, line=42)
    assert doc.where(("spec", "x")) == (42, 1)
    assert doc.where(("spec", "x"), key=True) == (42, 1)
    assert doc.where(()) == (42, 1)


def test_diag_positions_a_diagnostic() -> None:
    doc = load_documents(TWO_DOCS, "f.yaml")[0][0]
    assert doc.diag(("b", "c", 1), "bad item", hint="fix it", category="Thing") == Diagnostic(
        message="bad item",
        file="f.yaml",
        line=3,
        col=10,
        path="b.c[1]",
        hint="fix it",
        category="Thing",
        severity="error",
    )
    warn = doc.diag(("b", "d"), "careful", key=True, severity="warning")
    assert (warn.line, warn.col, warn.path, warn.severity) == (4, 3, "b.d", "warning")


def test_duplicate_key_is_reported_at_the_second_key() -> None:
    text = "a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n"
    docs, diags = load_documents(text, "dup.yaml")
    assert diags == [
        Diagnostic(
            message='duplicate key "x" in mapping',
            file="dup.yaml",
            line=5,
            col=3,
            path="b.x",
            hint="YAML keeps only the last value; remove one of them",
            category="yaml",
        )
    ]
    # The document is still returned, keeping the last value (as YAML does), at its position.
    assert docs[0].data == {"a": 1, "b": {"x": 3, "y": 2}}
    assert docs[0].where(("b", "x")) == (5, 6)
    assert docs[0].where(("b", "x"), key=True) == (5, 3)


def test_duplicate_key_in_a_later_document() -> None:
    _, diags = load_documents("a: 1\n---\nk: 1\nk: 2\n", "dup.yaml")
    assert [(d.line, d.col, d.path, d.message) for d in diags] == [
        (4, 1, "k", 'duplicate key "k" in mapping')
    ]


@pytest.mark.parametrize(
    ("text", "message", "line", "col", "hint"),
    [
        # libyaml's words, which go-yaml (and so kubectl) share
        (
            "a: [1\nb: 2\n",
            "YAML syntax error: did not find expected ',' or ']'",
            2,
            2,
            "while parsing a flow sequence that starts at line 1, column 4; check indentation "
            "and quoting around this position",
        ),
        (
            "a: b: c\n",
            "YAML syntax error: mapping values are not allowed in this context",
            1,
            5,
            "check indentation and quoting around this position",
        ),
        (
            "a:\n\tb: 1\n",
            "YAML syntax error: found character '\\t' that cannot start any token",
            2,
            1,
            "YAML indents with spaces only: replace the tab with spaces",
        ),
    ],
)
def test_syntax_errors_are_returned_not_raised(
    text: str, message: str, line: int, col: int, hint: str
) -> None:
    docs, diags = load_documents(text, "bad.yaml")
    assert docs == []
    assert diags == [
        Diagnostic(message=message, file="bad.yaml", line=line, col=col, hint=hint, category="yaml")
    ]


def test_documents_before_a_syntax_error_are_kept() -> None:
    docs, diags = load_documents("a: 1\n---\nb: [\n", "bad.yaml")
    assert [d.data for d in docs] == [{"a": 1}]
    assert [(d.line, d.col, d.message) for d in diags] == [
        (4, 1, "YAML syntax error: did not find expected node content")
    ]


def test_empty_text_and_empty_documents() -> None:
    assert load_documents("", "e.yaml") == ([], [])
    docs, diags = load_documents("---\n---\na: 1\n", "e.yaml")
    assert diags == []
    assert [(d.index, d.data) for d in docs] == [(0, None), (1, {"a": 1})]
    assert docs[1].line == 3


def test_non_string_keys_become_strings_as_in_json() -> None:
    docs, _ = load_documents("1: x\ntrue: y\n~: z\n", "k.yaml")
    assert docs[0].data == {"1": "x", "true": "y", "null": "z"}
    assert docs[0].keys == {("1",): (1, 1), ("true",): (2, 1), ("null",): (3, 1)}


def test_merge_keys_are_flattened() -> None:
    docs, diags = load_documents("a: &x {b: 1}\nc:\n  <<: *x\n  d: 2\n", "m.yaml")
    assert diags == []
    assert docs[0].data == {"a": {"b": 1}, "c": {"b": 1, "d": 2}}
    assert docs[0].where(("c", "d")) == (4, 6)


def _by_handlers_alone(text: str) -> tuple[list[Document], list[Diagnostic]]:
    """The documents as the builder's handlers make them, every event through its handler."""
    builder = yamlpos._Builder("f.yaml", text)
    parser = yamlpos._PARSER(text)
    while (event := parser.get_event()) is not None:
        handler = builder._handlers.get(type(event))
        if handler is not None:
            handler(builder, event)
    return builder.docs, builder.diags


TRICKY = [
    # names and words that look typed, as keys, values and list items
    "name: n\ntargetPort: t\nnull: x\ntrue: y\non: off\nyes: No\nn: y\nfalse: ~\nt: ''\n",
    "a: [1, 0755, 0x1f, +2, -3, 1_000, 1.5, .inf, 2024-01-02, y, n, null, '', x]\n",
    "1: a\n0755: b\n-1: c\n1.5: d\n'2': e\n",
    "p: 80\nq: 0\nr: '80'\ns: !!str 80\nt: !!int '7'\nu: 99999999999999999999\n",
    # duplicates, merges, anchors, aliases, refused keys, empty values
    "a: 1\na: 2\nb: {c: 1, c: 2}\n",
    "base: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  y: 3\nlist: [*b, *b]\n",
    "a: &s text\nb: *s\nc: &m [1, {d: e}]\nd: *m\n",
    "? [a, b]\n: 1\n? {c: d}\n: 2\nok: 3\n",
    "<<: 5\na:\n  <<: [x]\n  b:\n",
    "a:\nb: ~\nc: [~, null]\nd: {e: }\n",
    "- 1\n- [2, [3, [4]]]\n- {a: [b, {c: d}]}\n- !!bool yes\n- !!int x\n",
    "---\na: 1\n---\n- x\n---\nplain\n---\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_fast_loop_does_what_the_handlers_do(text: str) -> None:
    """load_documents handles the common events in a loop of its own, for speed; everything it
    builds (data, positions of keys and values, unreadable values, diagnostics) must be what the
    builder's handlers build from the same events."""
    fast_docs, fast_diags = load_documents(text, "f.yaml")
    docs, diags = _by_handlers_alone(text)
    assert fast_diags == diags
    assert [(d.index, d.line, d.data, d.values, d.keys, d.bad) for d in fast_docs] == [
        (d.index, d.line, d.data, d.values, d.keys, d.bad) for d in docs
    ]
