"""Multi-document YAML loading that remembers where every key and value came from.

Validation reports ``file:line:col`` and a dotted path for each problem, so the loader keeps, per
document, the position of every mapping key and every value, indexed by the path tuple
(``("spec", "ports", 0, "nodePort")``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from netlab.errors import Diagnostic

Path = tuple[str | int, ...]


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


class _Loader(yaml.SafeLoader):
    """SafeLoader; only used for its composer and scalar constructors."""


def load_documents(text: str, file: str) -> tuple[list[Document], list[Diagnostic]]:
    """Parse every document of ``text``. Syntax errors come back as diagnostics, not exceptions."""
    docs: list[Document] = []
    diags: list[Diagnostic] = []
    loader = _Loader(text)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            doc = Document(file=file, index=index, data=None, line=node.start_mark.line + 1)
            doc.data = _convert(loader, node, (), doc, diags)
            docs.append(doc)
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        diags.append(
            Diagnostic(
                message=f"YAML syntax error: {exc.problem or exc.context}",
                file=file,
                line=(mark.line + 1) if mark else 0,
                col=(mark.column + 1) if mark else 0,
                category="yaml",
                hint="check indentation and quoting around this position",
            )
        )
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        diags.append(Diagnostic(message=f"YAML error: {exc}", file=file, category="yaml"))
    finally:
        loader.dispose()
    return docs, diags


def _convert(
    loader: _Loader, node: yaml.Node, path: Path, doc: Document, diags: list[Diagnostic]
) -> Any:
    doc.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            child = (*path, key)
            if key in out:
                diags.append(
                    Diagnostic(
                        message=f'duplicate key "{key}" in mapping',
                        file=doc.file,
                        line=key_node.start_mark.line + 1,
                        col=key_node.start_mark.column + 1,
                        path=dotted(child),
                        category="yaml",
                        hint="YAML keeps only the last value; remove one of them",
                    )
                )
            doc.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(loader, value_node, child, doc, diags)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), doc, diags) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
