"""The ``ipvs`` tests, run in a throwaway VM on a host whose kernel has no IPVS.

On such a host the outer run deselects them (tests/conftest.py) and this one test has Debian's
stock kernel booted with virtme-ng and runs them there; on a host with IPVS they run directly
and this test is deselected. The VM starts when collection ends and runs beside the host's own
tests (tests/lab/vm_suite.py); this test, moved to the end of the run, waits for its verdict.
The guest must pass exactly the ipvs tests the host collects: none may skip, fail or go missing.
See docs/ipvs-vm.md.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.lab.host import REPO
from tests.lab.vm_suite import GUEST_PYTEST, VM_TIMEOUT, VMSuite


def _ipvs_test_ids() -> list[str]:
    """The ipvs tests as the guest will collect them (NETLAB_IN_VM=1 stops the deselection)."""
    proc = subprocess.run(
        [*GUEST_PYTEST, "--collect-only", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "NETLAB_IN_VM": "1"},
        timeout=120,
        check=True,
    )
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]


@pytest.mark.ipvs_vm
@pytest.mark.timeout(VM_TIMEOUT + 300)  # prepare may install packages on a fresh machine
def test_ipvs_suite_in_vm(vm_suite: VMSuite) -> None:
    """The VM was started when collection ended (tests/conftest.py); this waits for it."""
    expected = _ipvs_test_ids()
    assert expected, "no ipvs tests collected"
    result = vm_suite.wait()
    kernel = vm_suite.kernel.version if vm_suite.kernel else "?"
    assert result.returncode == 0, (
        f"the ipvs tests failed in the VM (exit {result.returncode}, {result.seconds:.0f}s, "
        f"kernel {kernel}):\n{result.output}"
    )
    passed = sorted(re.findall(r"^PASSED (\S+)", result.output, re.M))
    assert passed == sorted(expected), f"the VM did not pass every ipvs test:\n{result.output}"
    summary = re.search(r"^(\d+) passed, \d+ deselected in \S+", result.output, re.M)
    assert summary is not None and int(summary[1]) == len(expected), result.output
