"""Developer sessions: nox -s unit | lab | ipvs_vm | lint | typecheck (lab, ipvs_vm: root)."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "unit"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def unit(session: nox.Session) -> None:
    """Pure tests: no root, no kernel."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session
def lab(session: nox.Session) -> None:
    """Real labs in real namespaces (root; NETLAB_REQUIRE_PRIVILEGED=1 forbids skipping)."""
    session.install("-e", ".[dev]")
    env = {"NETLAB_REQUIRE_PRIVILEGED": os.environ.get("NETLAB_REQUIRE_PRIVILEGED", "1")}
    session.run("pytest", "tests/lab", *session.posargs, env=env)


@nox.session
def ipvs_vm(session: nox.Session) -> None:
    """The ipvs tests in a throwaway VM with Debian's stock kernel (root; docs/ipvs-vm.md)."""
    session.install("-e", ".[dev]")
    env = {"NETLAB_REQUIRE_PRIVILEGED": os.environ.get("NETLAB_REQUIRE_PRIVILEGED", "1")}
    session.run(
        "python",
        "-m",
        "tests.tooling.vm",
        "--",
        "python",
        "-m",
        "pytest",
        "-m",
        "ipvs",
        "-p",
        "no:cacheprovider",
        "tests/lab",
        *session.posargs,
        env=env,
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "netlab", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "netlab", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy", "netlab", "tests", "benchmarks")
