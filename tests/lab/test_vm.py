"""The ``ipvs`` tests, run in a throwaway VM on a host whose kernel has no IPVS.

On such a host the outer run deselects them (tests/conftest.py) and this one test boots Debian's
stock kernel with virtme-ng and runs them there; on a host with IPVS they run directly and this
test skips. See docs/ipvs-vm.md.
"""

from __future__ import annotations

import sys

import pytest

from netlab.testing import vm
from tests.lab.host import REPO

VM_TIMEOUT = 900  # seconds: boot ~5-10 s, then the guest runs about 20 times slower than here


@pytest.mark.timeout(VM_TIMEOUT + 300)  # prepare may install packages on a fresh machine
def test_ipvs_suite_in_vm() -> None:
    if vm.host_has_ipvs() and vm.host_has_dummy():
        pytest.skip("ipvs tests run directly on this host")
    kernel = vm.prepare()
    result = vm.run(
        [sys.executable, "-m", "pytest", "-m", "ipvs", "-p", "no:cacheprovider", "tests/lab", "-q"],
        VM_TIMEOUT,
        {"NETLAB_REQUIRE_PRIVILEGED": "1", "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
        kernel=kernel,
    )
    assert result.returncode == 0, (
        f"the ipvs tests failed in the VM (exit {result.returncode}, {result.seconds:.0f}s, "
        f"kernel {kernel.version}):\n{result.output}"
    )
