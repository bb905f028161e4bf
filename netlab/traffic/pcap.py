"""tcpdump in a lab namespace: a pcap file (or decoded lines) of what crossed an interface.

tcpdump runs as a child of netlab, inside the namespace (``nsenter --net``), tagged with the lab
so ``netlab down`` ends it too, in a session of its own so a Ctrl-C at the terminal reaches
netlab, which then stops tcpdump cleanly (SIGINT: it flushes the file and says how many packets
it captured). It is ready once it says "listening on"; packets before that are not seen.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable

from netlab.errors import LabError, PrerequisiteError, UsageError
from netlab.kernel import netns, process

_CAPTURED = re.compile(r"^(\d+) packets? captured", re.M)


class _Lines:
    """Whole lines from a pipe, read with select and os.read: a buffered readline after select
    can leave lines waiting in Python's buffer while select waits on an empty pipe."""

    def __init__(self, fd: int):
        self.fd = fd
        self.pending = b""
        self.eof = False

    def read(self, timeout: float | None) -> list[str]:
        """The lines that arrive within ``timeout`` (at least one unless it expires or the
        pipe ends; then :attr:`eof` says which)."""
        while b"\n" not in self.pending and not self.eof:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return []
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        if self.eof and self.pending:
            lines.append(self.pending)
            self.pending = b""
        return [ln.decode(errors="replace") for ln in lines]


class Tcpdump:
    """One running tcpdump: writing ``path`` (pcap) or printing decoded lines."""

    def __init__(
        self,
        lab: str,
        netns_name: str,
        iface: str,
        path: str | None = None,
        bpf: str = "",
        count: int | None = None,
        ready_timeout: float = 30.0,
    ):
        # --immediate-mode: packets reach tcpdump as they arrive, not when a capture block fills
        # or its timeout (1 s) passes, so a short capture stopped at once still holds them.
        argv = ["tcpdump", "-i", iface, "-n", "-Z", "root", "--immediate-mode"]
        argv += ["-U", "-w", path] if path else ["-l"]
        if count:
            argv += ["-c", str(count)]
        if bpf:
            argv.append(bpf)
        self.path = path
        self.stderr = ""
        try:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net={netns.path(netns_name)}", "--", *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                env={**os.environ, process.LAB_ENV: lab},
            )
        except FileNotFoundError as exc:
            raise PrerequisiteError(
                "nsenter is not installed", hint="apt-get install -y util-linux"
            ) from exc
        assert self.proc.stderr is not None and self.proc.stdout is not None
        self._err = _Lines(self.proc.stderr.fileno())
        self._out = _Lines(self.proc.stdout.fileno())
        deadline = time.monotonic() + ready_timeout
        while "listening on" not in self.stderr:
            left = deadline - time.monotonic()
            lines = self._err.read(max(left, 0))
            if not lines:
                self.close()
                err = self.stderr
                if "not found" in err or ("No such file" in err and "tcpdump" in err):
                    raise PrerequisiteError(
                        "tcpdump is not installed", hint="apt-get install -y tcpdump"
                    )
                if "syntax error" in err or "can't parse filter" in err:
                    raise UsageError(f"tcpdump refused the filter {bpf!r}", hint=err.strip())
                if "No such device" in err or "doesn't exist" in err:
                    raise UsageError(f"no interface {iface} in {netns_name}", hint=err.strip())
                raise LabError(f"tcpdump did not start in {netns_name}", detail=err.strip())
            self.stderr += "".join(f"{ln}\n" for ln in lines)

    def lines(self, on_line: Callable[[str], None], seconds: float | None = None) -> None:
        """Hand each decoded line to ``on_line`` until tcpdump ends (``count`` reached) or
        ``seconds`` pass (printing mode only)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self._out.eof:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            for line in self._out.read(left):
                on_line(line)

    def wait(self, seconds: float | None = None) -> None:
        """Until tcpdump ends by itself (``count`` reached), or ``seconds`` pass."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=seconds)

    def stop(self) -> int:
        """Stop tcpdump (it flushes its file) and return how many packets it captured."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        self.stderr += "".join(f"{ln}\n" for ln in self._err.read(1.0))
        while not self._err.eof:
            more = self._err.read(1.0)
            if not more:
                break
            self.stderr += "".join(f"{ln}\n" for ln in more)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        m = _CAPTURED.search(self.stderr)
        return int(m.group(1)) if m else 0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
