"""The ``netlab`` command line.

Exit statuses: 0 all checks passed, 1 a check failed, 2 invalid input (the scenario or the
command line), 3 a missing prerequisite (root, a tool, a kernel feature), 4 the lab itself could
not be built or removed, 130 interrupted, 141 the output was closed early (``| head``). Errors
are reported without tracebacks, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from netlab import __version__
from netlab.cli import admin, change, completion, get, inspect, learn, report, run
from netlab.cli.args import machine
from netlab.cli.completers import autocomplete
from netlab.cli.output import Out
from netlab.errors import (
    EXIT_LAB,
    NetlabError,
    ScenarioError,
)

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


COMMANDS = (run, inspect, get, learn, change, admin, completion)  # subcommands, in --help's order


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
    """Run one command; every outcome is an exit status and at most a few lines, never a
    traceback (``NETLAB_DEBUG=1`` shows one for an unexpected error)."""
    try:
        parser = build_parser()
        autocomplete(parser)
        args = parser.parse_args(argv)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _terminate)
        return _run(args)
    except BrokenPipeError:
        return _broken_pipe()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    out = Out()
    err = Out(sys.stderr)
    fmt = machine(args)
    try:
        code: int = args.func(args, out)
        return code
    except BrokenPipeError:
        raise
    except ScenarioError as exc:
        if fmt:
            errors = [d.__dict__ for d in exc.diagnostics + exc.warnings]
            out.data({"passed": False, "valid": False, "errors": errors}, fmt)
        else:
            report.diagnostics(err, exc.diagnostics + exc.warnings)
        return exc.exit_code
    except NetlabError as exc:
        hint = getattr(exc, "hint", "")
        detail = getattr(exc, "detail", "")
        if fmt:
            data = {"passed": False, "error": str(exc), "detail": detail, "hint": hint}
            out.data({**data, "exit": exc.exit_code}, fmt)
        else:
            err.line(f"netlab: error: {exc}", style="red")
            if detail:
                err.line(detail)
            if hint:
                err.line(f"hint: {hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        builds = args.command in ("run", "up")
        changes = args.command in ("apply", "scale", "delete", "node")
        err.line(
            "netlab: interrupted; everything this run made has been removed"
            if builds
            else "netlab: interrupted; the lab keeps what was done so far, and the next "
            "change catches up with what falls due meanwhile"
            if changes
            else "netlab: interrupted"
        )
        return EXIT_INTERRUPTED
    except Exception as exc:  # not one of ours: still an exit status and a line, not a trace
        if os.environ.get("NETLAB_DEBUG") == "1":
            raise
        message = f"unexpected {type(exc).__name__}: {exc}"
        hint = "NETLAB_DEBUG=1 shows the traceback; please report it as a netlab bug"
        if fmt:
            out.data({"passed": False, "error": message, "hint": hint, "exit": EXIT_LAB}, fmt)
        else:
            err.line(f"netlab: error: {message}", style="red")
            err.line(f"hint: {hint}")
        return EXIT_LAB


def _broken_pipe() -> int:
    """The reader of our output left (``netlab ... | head -1``): stop quietly. Standard output
    and error are pointed at /dev/null so that flushing them at exit cannot fail again."""
    for stream in (sys.stdout, sys.stderr):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
