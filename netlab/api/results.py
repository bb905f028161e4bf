"""Check results as users get them: a list that knows whether it passed and can say why not."""

from __future__ import annotations

from typing import Any

from netlab.checks.model import CheckResult
from netlab.serial import to_data


class CheckResults(list[CheckResult]):
    """The results of a run of checks, in the order they ran."""

    @property
    def passed(self) -> bool:
        """Every check passed (as ``netlab run``'s exit status 0 says)."""
        return all(r.passed for r in self)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self if not r.passed]

    def summary(self) -> dict[str, int]:
        return {
            "checks": len(self),
            "passed": sum(r.passed for r in self),
            "failed": sum(not r.passed for r in self),
        }

    def report(self) -> str:
        """One line per check and one per mismatch: an assertion message a reader can act on."""
        lines = []
        for r in self:
            lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.name}  {r.summary}")
            lines += [f"     - {f}" for f in r.failures]
        s = self.summary()
        lines.append(f"{s['passed']}/{s['checks']} checks passed")
        return "\n".join(lines)

    def to_data(self) -> list[dict[str, Any]]:
        return [result_data(r) for r in self]


def result_data(r: CheckResult) -> dict[str, Any]:
    """One result as JSON-ready data (the ``checks`` entries of ``netlab run --json``)."""
    data: dict[str, Any] = to_data(r)
    return data
