"""Multi-document YAML loading that remembers where every key and value came from.

Validation reports ``file:line:col`` and a dotted path for each problem, so the loader keeps, per
document, the position of every mapping key and every value, indexed by the path tuple
(``("spec", "ports", 0, "nodePort")``).

The documents are built straight from the parser's events (libyaml's, the same C parser go-yaml
was ported from, when PyYAML has it), in one pass with an explicit stack, so that any file gets a
verdict quickly and in bounded memory:

- nesting deeper than :data:`MAX_DEPTH` is refused (no recursion that a deep file can overflow);
- an alias shares the value of its anchor instead of copying it, and a file whose aliases would
  expand to far more than it holds is refused with go-yaml's rule and wording ("document contains
  excessive aliasing", ``allowedAliasRatio`` in go-yaml v2.4.0 ``decode.go``, which
  ``sigs.k8s.io/yaml`` and so ``kubectl`` use); an anchor that contains its own alias is refused
  too ("anchor 'x' value contains itself");
- merge keys (``<<: *base``) are applied as YAML 1.1 says: keys written in the mapping win over
  merged ones, earlier merged mappings over later ones;
- scalars are typed as go-yaml types them (:mod:`netlab.scenario.yamlscalar`);
- control characters, which YAML forbids everywhere, are reported at their own position.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import events

from netlab.errors import Diagnostic
from netlab.scenario.yamlscalar import ScalarError, scalar_value

Path = tuple[str | int, ...]

MAX_DEPTH = 100  # levels of nesting; a Kubernetes manifest needs about 15
# go-yaml's allowedAliasRatio: up to 99 % of the nodes decoded may come from aliases in documents
# of up to 400,000 decoded nodes, scaling down to 10 % at 4,000,000.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000
_MAX_REPORTED_CHARACTERS = 10

try:  # libyaml's parser: about ten times faster than PyYAML's pure-Python one
    from yaml._yaml import CParser as _CParser

    _PARSER: Any = _CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _PARSER = yaml.SafeLoader


def dotted(path: Path) -> str:
    """``("spec", "ports", 0, "nodePort")`` -> ``spec.ports[0].nodePort``, the API's form."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """One YAML document: its data as plain Python values, and where each part sits in the file."""

    file: str
    index: int
    data: Any
    line: int
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Values the loader could not read (a tag that does not fit): already reported, so later
    # checks of the same value stay quiet.
    bad: list[Path] = field(default_factory=list)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Line and column of ``path`` (of its key if ``key``), else of its nearest ancestor."""
        p = tuple(path)
        while True:
            table = self.keys if key else self.values
            if p in table:
                return table[p]
            if not key and p in self.keys:
                return self.keys[p]
            if not p:
                return (self.line, 1)
            p = p[:-1]
            key = False

    def sub(self, path: Path) -> Document:
        """The mapping at ``path`` as a document of its own (a manifest written inside the Lab
        document), its positions still those of this file."""
        n = len(path)
        data: Any = self.data
        for part in path:
            data = data[part]
        return Document(
            file=self.file,
            index=self.index,
            data=data,
            line=self.where(path)[0],
            values={p[n:]: v for p, v in self.values.items() if p[:n] == path},
            keys={p[n:]: v for p, v in self.keys.items() if len(p) > n and p[:n] == path},
        )

    def diag(
        self,
        path: Path,
        message: str,
        *,
        hint: str = "",
        category: str = "",
        key: bool = False,
        severity: str = "error",
    ) -> Diagnostic:
        line, col = self.where(path, key=key)
        return Diagnostic(
            message=message,
            file=self.file,
            line=line,
            col=col,
            path=dotted(path),
            hint=hint,
            category=category,
            severity=severity,
        )


def load_documents(text: str, file: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document of ``text``. Problems come back as diagnostics, never exceptions."""
    diags = bad_characters(text, file)
    if diags:
        return [], diags
    builder = _Builder(file, text)
    parser = _PARSER(text)
    try:
        _read(builder, parser.get_event)
    except yaml.MarkedYAMLError as exc:
        builder.diags.append(_syntax_error(exc, file, text))
    except _Stop:
        pass
    except (
        yaml.YAMLError
    ) as exc:  # pragma: no cover - unmarked errors (bad characters) are caught above
        builder.diags.append(
            Diagnostic(
                message=f"YAML error: {exc}",
                file=file,
                line=1,
                col=1,
                category="yaml",
                hint="save the file as UTF-8 YAML",
            )
        )
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()
    return builder.docs, builder.diags


# YAML's printable characters (YAML 1.1 section 5.1); everything else is refused anywhere.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def bad_characters(text: str, file: str) -> list[Diagnostic]:
    """Characters YAML does not allow, each at its line and column (the first few)."""
    out: list[Diagnostic] = []
    for m in _NOT_PRINTABLE.finditer(text):
        pos = m.start()
        code = ord(m.group())
        line = text.count("\n", 0, pos) + 1
        col = pos - text.rfind("\n", 0, pos)
        if 0xD800 <= code <= 0xDFFF:
            message = f"found a lone surrogate U+{code:04X}, which is not a character"
            hint = "the text was not valid Unicode; save the file as UTF-8"
        else:
            message = f"control characters are not allowed (found U+{code:04X})"
            hint = (
                "delete it (an editor or a copy and paste may have put it there); YAML allows "
                "no control character other than tab, line feed and carriage return"
            )
        out.append(
            Diagnostic(message=message, file=file, line=line, col=col, category="yaml", hint=hint)
        )
        if len(out) == _MAX_REPORTED_CHARACTERS:
            break
    return out


def _syntax_error(exc: yaml.MarkedYAMLError, file: str, text: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if problem.startswith("found character that") and mark is not None and mark.index < len(text):
        problem = problem.replace("found character", f"found character {text[mark.index]!r}")
    hint = "check indentation and quoting around this position"
    if "'\\t'" in problem:
        hint = "YAML indents with spaces only: replace the tab with spaces"
    elif exc.context and exc.context_mark is not None and mark is not exc.context_mark:
        where = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        hint = f"{exc.context} that starts at {where}; {hint}"
    return Diagnostic(
        message=f"YAML syntax error: {problem}",
        file=file,
        line=(mark.line + 1) if mark else 1,
        col=(mark.column + 1) if mark else 1,
        category="yaml",
        hint=hint,
    )


class _Stop(Exception):
    """The file is refused as a whole (too deep, too many aliases): stop reading it."""


_EXPECT_KEY = object()  # a mapping waiting for its next key
_DROP = object()  # the next value belongs to an invalid key: read it, keep nothing
_MERGE = object()  # the next value is merged into the mapping (``<<``)
_BUILDING = object()  # an anchor whose node is still being read
_UNREAD = object()  # an alias that could not be followed (reported); null in the data
_TYPED_STARTS = frozenset("0123456789+-.~<yYnNtTfFoO") | {""}
_GENERAL = object()  # an event the fast loop leaves to the handlers
# A plain scalar starting with one of these letters is text unless it is one of YAML 1.1's
# null or boolean words (numbers, timestamps and "<<" start otherwise): yamlscalar's patterns.
_LETTER_STARTS = frozenset("yYnNtTfFoO")
_WORDS = frozenset(
    {"null", "Null", "NULL", "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE"}
    | {"false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF"}
)


class _Frame:
    """A mapping or sequence being read."""

    __slots__ = (
        "anchor",
        "is_list",
        "key",
        "key_mark",
        "merges",
        "path",
        "size",
        "start",
        "value",
    )

    def __init__(
        self,
        value: dict[str, Any] | list[Any],
        path: Path,
        anchor: str | None,
        start: tuple[int, int],
    ):
        self.value: Any = value  # a dict or a list, as is_list says
        self.is_list = isinstance(value, list)
        self.path = path
        self.anchor = anchor
        self.start = start
        self.size = 1
        self.key: Any = _EXPECT_KEY
        self.key_mark: tuple[int, int] = (0, 0)
        self.merges: list[tuple[dict[str, Any], tuple[int, int]]] = []


def _pos(event: Any) -> tuple[int, int]:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


class _Builder:
    """Turns parser events into documents with positions."""

    _handlers: dict[type, Callable[[_Builder, Any], None]]

    def __init__(self, file: str, text: str):
        self.file = file
        self.text = text
        self.docs: list[Document] = []
        self.diags: list[Diagnostic] = []
        self.doc = Document(file=file, index=0, data=None, line=1)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Any] = {}
        self.decoded = 0
        self.aliased = 0

    def _document_start(self, event: Any) -> None:
        self.doc = Document(file=self.file, index=len(self.docs), data=None, line=_pos(event)[0])
        self.anchors, self.stack, self.decoded, self.aliased = {}, [], 0, 0

    def _document_end(self, event: Any) -> None:
        self.docs.append(self.doc)

    # -- nodes -------------------------------------------------------------------------------

    def _path(self) -> Path | None:
        """Where the node that starts now goes (``None``: it is a mapping key)."""
        if not self.stack:
            return ()  # the document's root
        top = self.stack[-1]
        if top.is_list:
            return (*top.path, len(top.value))
        if top.key is _EXPECT_KEY:
            return None
        if top.key is _DROP or top.key is _MERGE:
            return (*top.path, "<<")
        return (*top.path, top.key)

    def _scalar(self, event: Any) -> None:
        self.decoded += 1
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        value = event.value
        path = self._path()
        merge = False
        if event.tag is not None or (event.implicit[0] and value[:1] in _TYPED_STARTS):
            try:
                value, merge = scalar_value(value, event.tag, event.implicit[0])
            except ScalarError as exc:
                self._error(pos, path, str(exc), _tag_hint(event.tag))
                if path is not None:
                    self.doc.bad.append(path)
        self._place(path, pos)
        self._done(value, 1, pos, merge=merge)
        if event.anchor:
            self.anchors[event.anchor] = (value, 1)

    def _alias(self, event: Any) -> None:
        path = self._path()
        name = event.anchor
        found = self.anchors.get(name)
        value: Any = _UNREAD
        size = 1
        if found is None:
            self._error(
                _pos(event),
                path,
                f"unknown anchor '{name}' referenced",
                f"define &{name} before *{name}, in the same document",
            )
        elif found is _BUILDING:
            self._error(
                _pos(event),
                path,
                f"anchor '{name}' value contains itself",
                "an alias cannot stand inside the node its anchor names",
            )
        else:
            value, size = found
            self.decoded += size
            self.aliased += size
            if (
                self.aliased > 100
                and self.decoded > 1000
                and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
            ):
                self._error(
                    _pos(event),
                    path,
                    "document contains excessive aliasing",
                    f"its aliases expand to {self.decoded:,} values; write the repeated parts "
                    "out, or alias fewer levels deep",
                )
                raise _Stop
        self._place(path, _pos(event))
        self._done(value, size, _pos(event))

    def _start(self, event: Any) -> None:
        self.decoded += 1
        if len(self.stack) >= MAX_DEPTH:
            self._error(
                _pos(event),
                None,
                f"exceeded max depth of {MAX_DEPTH}",
                f"netlab reads at most {MAX_DEPTH} levels of nesting; a Kubernetes manifest "
                "needs far fewer",
            )
            raise _Stop
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        path = self._path()
        if path is None:  # a mapping or sequence used as a key: read it, then refuse it
            path = (*self.stack[-1].path, "<key>")
        else:
            self.doc.values[path] = pos
            if not path:
                self.doc.line = pos[0]
        value: dict[str, Any] | list[Any] = {} if type(event) is events.MappingStartEvent else []
        if event.anchor:
            self.anchors[event.anchor] = _BUILDING
        self.stack.append(_Frame(value, path, event.anchor, pos))

    def _end(self, event: Any = None) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict) and frame.merges:
            self._merge(frame)
        if frame.anchor:
            self.anchors[frame.anchor] = (frame.value, frame.size)
        self._done(frame.value, frame.size, frame.start)

    def _done(self, value: Any, size: int, pos: tuple[int, int], *, merge: bool = False) -> None:
        """A node is complete: attach it to its parent (or make it the document)."""
        if not self.stack:
            self.doc.data = None if value is _UNREAD else value
            return
        top = self.stack[-1]
        top.size += size
        if top.is_list:
            assert isinstance(top.value, list)
            top.value.append(None if value is _UNREAD else value)
            return
        if top.key is _EXPECT_KEY:
            top.key = self._key(value, pos, top.path, merge)
            top.key_mark = pos
            return
        key, top.key = top.key, _EXPECT_KEY
        if key is _DROP:
            return
        if key is _MERGE:
            if value is not _UNREAD:  # what the alias failed to name is reported already
                self._merge_source(top, value, pos)
            return
        if value is _UNREAD:
            value = None
        child = (*top.path, key)
        if key in top.value:
            self._duplicate(top, child)
        top.value[key] = value
        self.doc.keys[child] = top.key_mark

    def _duplicate(self, top: _Frame, child: Path) -> None:
        self._error(
            top.key_mark,
            child,
            f'duplicate key "{child[-1]}" in mapping',
            "YAML keeps only the last value; remove one of them",
        )

    def _key(self, value: Any, pos: tuple[int, int], path: Path, merge: bool) -> Any:
        """A mapping key as JSON has it (a string), or why it cannot be one."""
        if merge:
            return _MERGE
        if value is _UNREAD:
            return _DROP
        if isinstance(value, dict | list):
            self._error(
                pos,
                (*path, "<key>"),
                "invalid map key: a key must be a plain value, not a "
                + ("mapping" if isinstance(value, dict) else "sequence"),
                "write the key as a name; a '?' or a '[' or '{' at the start of a key makes it "
                "complex",
            )
            return _DROP
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        return str(value)

    # -- merge keys --------------------------------------------------------------------------

    def _merge_source(self, frame: _Frame, value: Any, pos: tuple[int, int]) -> None:
        sources = value if isinstance(value, list) else [value]
        if not sources or not all(isinstance(s, dict) for s in sources):
            self._error(
                pos,
                (*frame.path, "<<"),
                "map merge requires map or sequence of maps as the value",
                "merge a mapping: <<: *anchor, or several: <<: [*one, *two]",
            )
            return
        frame.merges.extend((s, pos) for s in sources)

    def _merge(self, frame: _Frame) -> None:
        assert isinstance(frame.value, dict)
        for source, pos in frame.merges:
            for k, v in source.items():
                if k not in frame.value:
                    frame.value[k] = v
                    self.doc.values.setdefault((*frame.path, k), pos)
                    self.doc.keys.setdefault((*frame.path, k), pos)

    def _place(self, path: Path | None, pos: tuple[int, int]) -> None:
        """Remember where a value starts (a document starts where its root node does)."""
        if path is None:
            return
        self.doc.values[path] = pos
        if not path:
            self.doc.line = pos[0]

    def _error(self, pos: tuple[int, int], path: Path | None, message: str, hint: str) -> None:
        self.diags.append(
            Diagnostic(
                message=message,
                file=self.file,
                line=pos[0],
                col=pos[1],
                path=dotted(path) if path else "",
                category="yaml",
                hint=hint,
            )
        )


_Builder._handlers = {
    events.DocumentStartEvent: _Builder._document_start,
    events.DocumentEndEvent: _Builder._document_end,
    events.ScalarEvent: _Builder._scalar,
    events.AliasEvent: _Builder._alias,
    events.MappingStartEvent: _Builder._start,
    events.SequenceStartEvent: _Builder._start,
    events.MappingEndEvent: _Builder._end,
    events.SequenceEndEvent: _Builder._end,
}


_SCALAR = events.ScalarEvent
_MAPPING_START, _MAPPING_END = events.MappingStartEvent, events.MappingEndEvent
_SEQUENCE_START, _SEQUENCE_END = events.SequenceStartEvent, events.SequenceEndEvent


def _read(b: _Builder, get_event: Callable[[], Any]) -> None:
    """Feed every event of the stream to ``b``.

    Nearly every event of a manifest is a plain name, text or decimal number inside a mapping or
    a sequence, or the start or end of one without an anchor. Those are handled here, in one
    loop over local variables, doing exactly what the builder's handlers would do; everything
    else (documents, the root node, tags, anchors, aliases, merge keys, typed scalars, keys that
    are not plain, too deep a nesting) goes to the handlers. The loop costs about as much as
    libyaml producing the events.
    """
    handlers = _Builder._handlers
    stack = b.stack
    top: _Frame | None = None
    values, keys = b.doc.values, b.doc.keys
    while (event := get_event()) is not None:
        cls = type(event)
        if top is not None:
            if cls is _SCALAR:
                value: Any = event.value
                if event.tag is None and not event.anchor:
                    if event.implicit[0] and value[:1] in _TYPED_STARTS:
                        if value[:1] in _LETTER_STARTS:
                            # a name such as "name" or "targetPort": text unless a YAML word
                            if value in _WORDS:
                                value = _GENERAL
                        elif (
                            value.isdigit()
                            and value.isascii()
                            and value[0] != "0"
                            and len(value) < 4000
                            and (top.is_list or top.key is not _EXPECT_KEY)
                        ):
                            value = int(value)  # a decimal port or count (not octal 0755)
                        else:
                            value = _GENERAL
                    if value is not _GENERAL:
                        mark = event.start_mark
                        pos = (mark.line + 1, mark.column + 1)
                        key = top.key
                        if top.is_list:
                            values[(*top.path, len(top.value))] = pos
                            top.value.append(value)
                        elif key is _EXPECT_KEY:
                            top.key, top.key_mark = value, pos
                        elif type(key) is str:
                            child = (*top.path, key)
                            values[child] = pos
                            top.key = _EXPECT_KEY
                            if key in top.value:
                                b._duplicate(top, child)
                            top.value[key] = value
                            keys[child] = top.key_mark
                        else:  # the value of a merge key or of a key that was refused
                            b._scalar(event)
                            continue
                        top.size += 1
                        b.decoded += 1
                        continue
            elif cls is _MAPPING_END or cls is _SEQUENCE_END:
                if len(stack) > 1 and not top.merges and not top.anchor:
                    parent = stack[-2]
                    key = parent.key
                    if parent.is_list or type(key) is str:
                        stack.pop()
                        frame, top = top, parent
                        top.size += frame.size
                        if top.is_list:
                            top.value.append(frame.value)
                            continue
                        child = (*top.path, key)
                        top.key = _EXPECT_KEY
                        if key in top.value:
                            b._duplicate(top, child)
                        top.value[key] = frame.value
                        keys[child] = top.key_mark
                        continue
            elif cls is _MAPPING_START or cls is _SEQUENCE_START:
                key = top.key
                if (
                    not event.anchor
                    and len(stack) < MAX_DEPTH
                    and (top.is_list or type(key) is str)
                ):
                    path = (*top.path, len(top.value) if top.is_list else key)
                    mark = event.start_mark
                    pos = (mark.line + 1, mark.column + 1)
                    values[path] = pos
                    top = _Frame({} if cls is _MAPPING_START else [], path, None, pos)
                    stack.append(top)
                    b.decoded += 1
                    continue
        handler = handlers.get(cls)
        if handler is not None:
            handler(b, event)
            stack = b.stack
            top = stack[-1] if stack else None
            values, keys = b.doc.values, b.doc.keys


def _allowed_alias_ratio(decoded: int) -> float:
    """go-yaml v2.4.0 ``allowedAliasRatio``."""
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def _tag_hint(tag: str | None) -> str:
    short = (tag or "").replace("tag:yaml.org,2002:", "!!")
    return f"remove the {short} tag, or write a value of that type"
