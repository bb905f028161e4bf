"""netlab: a Kubernetes Services lab built from Linux network namespaces.

The public API (docs/api.md)::

    import netlab

    report = netlab.validate("scenario.yaml")        # errors as data, with positions
    with netlab.up("scenario.yaml", mode="nftables") as lab:
        assert lab.check().passed
        print(lab.connect("pod/client-node-1", "service/web:http").reached)

Names are loaded on first use, so ``import netlab`` (and ``netlab validate``) stays light: the
kernel layer and pyroute2 are imported only when a lab is brought up or opened.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "validate": "netlab.api.scenarios",
    "load": "netlab.api.scenarios",
    "schema": "netlab.api.scenarios",
    "graph": "netlab.api.scenarios",
    "Validation": "netlab.api.scenarios",
    "up": "netlab.api.lab",
    "attach": "netlab.api.lab",
    "labs": "netlab.api.lab",
    "down": "netlab.api.lab",
    "cleanup": "netlab.api.lab",
    "doctor": "netlab.api.lab",
    "parse_check": "netlab.api.lab",
    "Lab": "netlab.api.lab",
    "DownReport": "netlab.api.lab",
    "ChangeReport": "netlab.lab.changes",
    "StepResult": "netlab.lab.timeline",
    "LabStatus": "netlab.api.status",
    "LabSummary": "netlab.api.status",
    "Listing": "netlab.api.listing",
    "CheckResults": "netlab.api.results",
    "CheckResult": "netlab.checks.model",
    "junit_xml": "netlab.api.junit",
    "write_junit": "netlab.api.junit",
    "Scenario": "netlab.scenario.model",
    "Diagnostic": "netlab.errors",
    "NetlabError": "netlab.errors",
    "ScenarioError": "netlab.errors",
    "UsageError": "netlab.errors",
    "PrerequisiteError": "netlab.errors",
    "LabError": "netlab.errors",
}

__all__ = [
    "ChangeReport",
    "CheckResult",
    "CheckResults",
    "Diagnostic",
    "DownReport",
    "Lab",
    "LabError",
    "LabStatus",
    "LabSummary",
    "Listing",
    "NetlabError",
    "PrerequisiteError",
    "Scenario",
    "ScenarioError",
    "StepResult",
    "UsageError",
    "Validation",
    "__version__",
    "attach",
    "cleanup",
    "doctor",
    "down",
    "graph",
    "junit_xml",
    "labs",
    "load",
    "parse_check",
    "schema",
    "up",
    "validate",
    "write_junit",
]

if TYPE_CHECKING:
    from netlab.api.junit import junit_xml, write_junit
    from netlab.api.lab import (
        DownReport,
        Lab,
        attach,
        cleanup,
        doctor,
        down,
        labs,
        parse_check,
        up,
    )
    from netlab.api.listing import Listing
    from netlab.api.results import CheckResults
    from netlab.api.scenarios import Validation, load, schema, validate
    from netlab.api.status import LabStatus, LabSummary
    from netlab.checks.model import CheckResult
    from netlab.errors import (
        Diagnostic,
        LabError,
        NetlabError,
        PrerequisiteError,
        ScenarioError,
        UsageError,
    )
    from netlab.lab.changes import ChangeReport
    from netlab.lab.timeline import StepResult
    from netlab.scenario.model import Scenario


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'netlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
