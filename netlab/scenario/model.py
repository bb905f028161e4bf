"""A loaded, validated scenario: the lab spec and the Kubernetes objects, typed."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.errors import Diagnostic
from netlab.scenario.k8s import Deployment, Namespace, Pod, Service
from netlab.scenario.labspec import LabSpec
from netlab.scenario.yamlpos import Document


@dataclass
class Scenario:
    file: str
    lab: LabSpec
    namespaces: list[Namespace] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    header: str = ""  # the file's leading comment block: what the scenario teaches
    # Where each object was written, by (kind, namespace, name), and the Lab document, by
    # ("Lab", "", ""): for errors found after loading (an object that does not fit the lab).
    origins: dict[tuple[str, str, str], Document] = field(
        default_factory=dict, compare=False, repr=False
    )
