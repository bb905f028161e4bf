"""A file of Kubernetes manifests to apply to a live lab (``netlab apply LAB FILE``): every
document validated as the API server validates it, each remembered where it was written, so
what the running cluster refuses later is located too."""

from __future__ import annotations

import os
from pathlib import Path

from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.changespec import ApplyChange
from netlab.scenario.checkspec import Origin
from netlab.scenario.k8s import Deployment, Namespace, Pod, Service
from netlab.scenario.k8s.parse import parse_object
from netlab.scenario.labspec import is_lab_document
from netlab.scenario.yamlpos import load_documents


def load_manifests(file: str | os.PathLike[str], *, prune: bool = False) -> ApplyChange:
    """Read and validate ``file``; raise :class:`ScenarioError` with every error found."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(
            [
                Diagnostic(
                    message=f"cannot read the file: {exc.strerror}", file=str(file), category="file"
                )
            ]
        ) from None
    return parse_manifests(text, str(file), prune=prune)


def parse_manifests(text: str, file: str, *, prune: bool = False) -> ApplyChange:
    docs, out = load_documents(text, file)
    namespaces: list[Namespace] = []
    pods: list[Pod] = []
    deployments: list[Deployment] = []
    services: list[Service] = []
    origins: dict[str, Origin] = {}
    for doc in docs:
        if doc.data is None:
            continue
        if is_lab_document(doc.data):
            out.append(
                doc.diag(
                    (),
                    "a Lab document cannot be applied to a running lab",
                    hint="apply takes Kubernetes manifests; a Lab document describes a new lab "
                    "(netlab up)",
                    category="Lab",
                )
            )
            continue
        obj = parse_object(doc, out)
        if obj is None:
            continue
        kind = type(obj).__name__
        ns = "" if isinstance(obj, Namespace) else obj.meta.namespace
        key = f"{kind}/{ns}/{obj.meta.name}"
        if key in origins:
            out.append(
                doc.diag(
                    ("metadata", "name"),
                    f'{kind} "{obj.meta.name}" appears twice in the file',
                    hint="each object once: the later one would silently win",
                    category=f"{kind} {ns + '/' if ns else ''}{obj.meta.name}",
                )
            )
            continue
        origins[key] = Origin(doc.file, doc.line, 1, "")
        if isinstance(obj, Namespace):
            namespaces.append(obj)
        elif isinstance(obj, Pod):
            pods.append(obj)
        elif isinstance(obj, Deployment):
            deployments.append(obj)
        else:
            services.append(obj)
    if not docs and not out:
        out.append(Diagnostic(message="no manifests in the file", file=file, category="file"))
    if any(d.severity == "error" for d in out):
        raise ScenarioError(out)
    return ApplyChange(
        namespaces=tuple(namespaces),
        pods=tuple(pods),
        deployments=tuple(deployments),
        services=tuple(services),
        prune=prune,
        source=file,
        origins=origins,
    )
