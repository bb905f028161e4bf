"""The ipvs tests' VM run, started in the background as soon as collection is done.

The emulated VM takes about ten minutes and keeps mostly one of the host's CPUs busy; the host's
own tests keep mostly the other. Run one after the other they add up; started at once, the VM
runs beside them and ``tests/lab/test_vm.py`` (moved to the end of the run) only waits for its
verdict. The emulator runs at a lower priority, so the host's tests keep their pace and the VM
takes the CPU time they leave.
"""

from __future__ import annotations

import sys
import threading

from tests.lab.host import REPO
from tests.tooling import vm

VM_TIMEOUT = 1800  # seconds: boot ~5 s, then the guest runs 20-60 times slower than here, beside
# the host's own tests
NICENESS = 10
GUEST_PYTEST = [sys.executable, "-m", "pytest", "-m", "ipvs", "-p", "no:cacheprovider", "tests/lab"]
GUEST_ENV = {"NETLAB_REQUIRE_PRIVILEGED": "1", "PYTHONUNBUFFERED": "1"}


class VMSuite:
    """One background run of the ipvs tests in the VM: :meth:`start`, then :meth:`wait`."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        # Set when the run has ended; not Thread.join()/is_alive(), which Python 3.11 gets
        # wrong after a join that Ctrl-C cut short (the VM would be left running).
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ipvs-vm", daemon=True)
        self.log: list[str] = []  # what preparing the VM said (installs, the kernel chosen)
        self.kernel: vm.Kernel | None = None
        self._result: vm.VMResult | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self.kernel = vm.prepare(self.log.append)
            self._result = vm.run(
                [*GUEST_PYTEST, "-q", "-rA"],
                VM_TIMEOUT,
                GUEST_ENV,
                cwd=REPO,
                kernel=self.kernel,
                log=self.log.append,
                cancel=self._cancel,
                niceness=NICENESS,
            )
        except BaseException as e:  # reported by wait(), in the test's own thread
            self._error = e
        finally:
            self._done.set()

    def wait(self) -> vm.VMResult:
        """The run's result once it has ended (it ends by itself: the VM has a timeout)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Stop the VM if it still runs (the session ended without waiting for it)."""
        self._cancel.set()
        if self._thread.ident is not None:
            self._done.wait(timeout=60)  # the VM is killed within seconds of the request
