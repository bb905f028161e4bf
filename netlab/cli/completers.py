"""What a TAB completes to: argcomplete's hook, and completers for lab names and their targets.

The shell runs ``netlab`` with argcomplete's variables set; :func:`autocomplete` answers from the
parser (commands, options, choices) and from the labs that are up: lab names, and a lab's pods,
nodes and Services, read straight from the state files (no kernel, no root-only imports, so a
TAB stays quick).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

Completer = Callable[..., list[str]]


def complete_with(action: argparse.Action, completer: Completer) -> None:
    """Attach a completer to an argument (argcomplete reads the ``completer`` attribute)."""
    setattr(action, "completer", completer)  # noqa: B010 - argparse.Action has no such field


def _state(lab: str) -> dict[str, Any]:
    from netlab.lab import paths

    try:
        with open(os.path.join(paths.STATE_ROOT, lab, paths.STATE_FILE)) as f:
            data: dict[str, Any] = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lab_names(**_: Any) -> list[str]:
    """The labs that are up."""
    from netlab.lab import paths

    try:
        entries = sorted(os.listdir(paths.STATE_ROOT))
    except OSError:
        return []
    return [
        e for e in entries if os.path.isfile(os.path.join(paths.STATE_ROOT, e, paths.STATE_FILE))
    ]


def _cluster(parsed_args: argparse.Namespace | None) -> dict[str, Any]:
    lab = getattr(parsed_args, "lab", None)
    cluster = _state(lab).get("cluster", {}) if isinstance(lab, str) else {}
    return cluster if isinstance(cluster, dict) else {}


def pods(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    """``pod/NAME`` for pods in default, ``pod/NAMESPACE/NAME`` for the others."""
    out = []
    for p in _cluster(parsed_args).get("pods", []):
        ns, name = p.get("namespace", ""), p.get("name", "")
        out.append(f"pod/{name}" if ns == "default" else f"pod/{ns}/{name}")
    return out


def nodes(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    return [f"node/{n.get('name', '')}" for n in _cluster(parsed_args).get("nodes", [])]


def node_names(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    return [str(n.get("name", "")) for n in _cluster(parsed_args).get("nodes", [])]


def deployments(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    """``deployment/NAME`` in default, ``deployment/NAMESPACE/NAME`` elsewhere."""
    out = []
    for d in _cluster(parsed_args).get("deployments", []):
        meta = d.get("meta", {})
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        out.append(f"deployment/{name}" if ns == "default" else f"deployment/{ns}/{name}")
    return out


def deletables(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    """What ``delete`` takes: pods, Services and Deployments."""
    found = [f"service/{ref}" for ref in services(parsed_args)]
    found = [s.replace("service/default/", "service/", 1) for s in found]
    return [*pods(parsed_args), *found, *deployments(parsed_args)]


def targets(parsed_args: argparse.Namespace | None = None, **kw: Any) -> list[str]:
    """Where ``exec`` can run a command."""
    return [*pods(parsed_args), *nodes(parsed_args), "external", "fabric"]


def services(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    out = []
    for s in _cluster(parsed_args).get("services", []):
        meta = s.get("meta", {})
        out.append(f"{meta.get('namespace', '')}/{meta.get('name', '')}")
    return out


def namespaces(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    cluster = _cluster(parsed_args)
    found = {p.get("namespace", "") for p in cluster.get("pods", [])}
    found |= {s.get("meta", {}).get("namespace", "") for s in cluster.get("services", [])}
    return sorted(n for n in found if n)


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit, when the shell is asking (argcomplete's variable is set)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)
