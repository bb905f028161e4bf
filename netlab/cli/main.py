"""The ``netlab`` command line.

Exit statuses: 0 all checks passed, 1 a check failed, 2 invalid input (the scenario or the
command line), 3 a missing prerequisite (root, a tool, a kernel feature), 4 the lab itself could
not be built or removed. Errors are reported without tracebacks.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from netlab import __version__
from netlab.cli import admin, change, inspect, report, run
from netlab.cli.output import Out
from netlab.errors import (
    EXIT_LAB,
    NetlabError,
    ScenarioError,
)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


COMMANDS = (run, inspect, change, admin)  # each registers its subcommands, in --help's order


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netlab",
        description="A Kubernetes Services lab: real namespaces, kube-proxy's rules, real packets.",
        epilog="exit status: 0 passed, 1 a check failed, 2 invalid input, 3 missing "
        "prerequisite, 4 the lab could not be built or removed",
    )
    p.add_argument("--version", action="version", version=f"netlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    for module in COMMANDS:
        module.register(add)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Out()
    err = Out(sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        code: int = args.func(args, out)
        return code
    except ScenarioError as exc:
        if getattr(args, "json", False):
            out.json(
                {
                    "passed": False,
                    "valid": False,
                    "errors": [d.__dict__ for d in exc.diagnostics + exc.warnings],
                }
            )
        else:
            report.diagnostics(err, exc.diagnostics + exc.warnings)
        return exc.exit_code
    except NetlabError as exc:
        hint = getattr(exc, "hint", "")
        detail = getattr(exc, "detail", "")
        if getattr(args, "json", False):
            out.json(
                {
                    "passed": False,
                    "error": str(exc),
                    "detail": detail,
                    "hint": hint,
                    "exit": exc.exit_code,
                }
            )
        else:
            err.line(f"netlab: error: {exc}", style="red")
            if detail:
                err.line(detail)
            if hint:
                err.line(f"hint: {hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        builds = args.command in ("run", "up")
        err.line(
            "netlab: interrupted; everything this run made has been removed"
            if builds
            else "netlab: interrupted"
        )
        return 130
    except Exception as exc:  # not one of ours: still an exit status and a line, not a trace
        if os.environ.get("NETLAB_DEBUG") == "1":
            raise
        message = f"unexpected {type(exc).__name__}: {exc}"
        hint = "NETLAB_DEBUG=1 shows the traceback; please report it as a netlab bug"
        if getattr(args, "json", False):
            out.json({"passed": False, "error": message, "hint": hint, "exit": EXIT_LAB})
        else:
            err.line(f"netlab: error: {message}", style="red")
            err.line(f"hint: {hint}")
        return EXIT_LAB


if __name__ == "__main__":
    sys.exit(main())
