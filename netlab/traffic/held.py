"""Connections kept open between checks: a client that does not reconnect.

A TCP connection stays established (HTTP/1.1 keep-alive: each request is ``GET /whoami`` on the
same connection), so a later check sees whether an existing connection survives a change (a
terminating pod keeps serving it; a removed one closes it).

A UDP flow keeps sending: from the moment it is held, a thread sends ``whoami`` from the same
socket (so the same source port) every ``UDP_INTERVAL`` seconds, as a resolver, a game or a
metrics agent does, and a request is the next answer that comes back. Its datagrams keep
matching the conntrack entry the first one made (and keep a userspace proxy's relay session
alive): the client kube-proxy's stale-UDP cleanup exists for.

The socket is made inside the client's namespace (a socket keeps its namespace) and then used
from other threads. From a node whose mode load-balances at the socket (the ebpf mode's socket
LB acts on a node's cgroup), a short-lived process placed in that cgroup makes and connects the
socket and hands it over (SCM_RIGHTS): a socket belongs to the cgroup it was made in.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

from netlab.checks.observations import Observation
from netlab.kernel import cgroup, process, threads

UDP_INTERVAL = 0.1


class HeldConnection:
    def __init__(self, name: str, protocol: str, dest: tuple[str, int], sock: socket.socket):
        self.name = name
        self.protocol = protocol
        self.dest = dest
        self.sock = sock
        self.closed = False
        # UDP: the answers the sending thread has seen, (when, what) of the latest one.
        self._answered = threading.Condition()
        self._latest: tuple[float, str] | None = None
        self._error: tuple[float, OSError] | None = None
        self._sender: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        name: str,
        netns_name: str,
        protocol: str,
        ip: str,
        port: int,
        source: str | None,
        timeout: float,
        *,
        cgroup_path: str | None = None,
        lab: str = "",
    ) -> tuple[HeldConnection | None, Observation]:
        """Connect from inside ``netns_name`` and make the first request; with ``cgroup_path``,
        from a socket made in that cgroup (by a process tagged with ``lab``)."""
        t0 = time.perf_counter()
        try:
            if cgroup_path is not None:
                sock = _connect_in_cgroup(
                    cgroup_path, lab, netns_name, protocol, ip, port, source, timeout
                )
            else:
                sock = threads.call(
                    _connect, protocol, ip, port, source, timeout, netns_name=netns_name
                )
        except OSError as exc:
            return None, _failure(exc, t0)
        held = cls(name, protocol, (ip, port), sock)
        observed = held.request(timeout)
        if observed.outcome != "connected":
            held.close()
            return None, observed
        return held, observed

    def request(self, timeout: float) -> Observation:
        """One request over the held connection: who answered, what source it saw."""
        t0 = time.perf_counter()
        if self.closed:
            return Observation("closed", error="closed earlier", seconds=0.0)
        local = self.sock.getsockname()
        try:
            if self.protocol == "TCP":
                hostname, cip, cport = self._http(timeout)
            else:
                hostname, cip, cport = self._datagram(timeout)
        except _Closed as exc:
            self.close()
            return Observation("closed", error=str(exc), seconds=time.perf_counter() - t0)
        except (OSError, ValueError, KeyError) as exc:
            if isinstance(exc, OSError) and self.protocol == "TCP":
                self.close()
            return _failure(exc, t0)
        return Observation(
            "connected", hostname, cip, cport, local[0], local[1], seconds=time.perf_counter() - t0
        )

    def _http(self, timeout: float) -> tuple[str, str, int]:
        ip, port = self.dest
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(f"GET /whoami HTTP/1.1\r\nHost: {ip}:{port}\r\n\r\n".encode())
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Closed(f"connection closed ({exc.strerror})") from exc
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            body += self._recv()
        if not head.startswith(b"HTTP/1.1 200"):
            raise ValueError(f"unexpected answer {head.splitlines()[:1]}")
        return _whoami(body[:length].decode(errors="replace"))

    def _recv(self) -> bytes:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError as exc:
            raise _Closed("connection reset") from exc
        if not chunk:
            raise _Closed("closed by the far end")
        return chunk

    def _datagram(self, timeout: float) -> tuple[str, str, int]:
        """The first answer to arrive after now (the flow sends all the time)."""
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._keep_sending, name=f"netlab-flow-{self.name}", daemon=True
            )
            self._sender.start()
        asked = time.monotonic()
        deadline = asked + timeout
        with self._answered:
            while True:
                if self._latest is not None and self._latest[0] >= asked:
                    return _whoami(self._latest[1])
                if self._error is not None and self._error[0] >= asked:
                    raise self._error[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no answer")
                self._answered.wait(left)

    def _keep_sending(self) -> None:
        """Send every UDP_INTERVAL seconds, note every answer (or error), until closed."""
        self.sock.settimeout(UDP_INTERVAL)
        next_send = 0.0
        while not self.closed:
            try:
                if time.monotonic() >= next_send:
                    self.sock.send(b"whoami")
                    next_send = time.monotonic() + UDP_INTERVAL
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:  # an ICMP error (refused, unreachable), or closed
                if self.closed:
                    return
                with self._answered:
                    self._error = (time.monotonic(), exc)
                    self._answered.notify_all()
                time.sleep(UDP_INTERVAL)
                continue
            with self._answered:
                self._latest = (time.monotonic(), data.decode(errors="replace"))
                self._error = None
                self._answered.notify_all()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._sender is not None:
                self._sender.join(timeout=2 * UDP_INTERVAL + 1)
            self.sock.close()


def _connect(
    protocol: str, ip: str, port: int, source: str | None, timeout: float
) -> socket.socket:
    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.settimeout(timeout)
        sock.bind((source or "", 0))
        sock.connect((ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_in_cgroup(
    path: str,
    lab: str,
    netns_name: str,
    protocol: str,
    ip: str,
    port: int,
    source: str | None,
    timeout: float,
) -> socket.socket:
    """The connected socket, made by ``python -m netlab.traffic.held`` run in the cgroup
    ``path`` and passed back over a socketpair; its connect() error is raised here as is."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours:
        with theirs:
            request = {
                "fd": theirs.fileno(),
                "netns": netns_name,
                "protocol": protocol,
                "ip": ip,
                "port": port,
                "source": source,
                "timeout": timeout,
            }
            done = subprocess.run(
                cgroup.wrap(path, process.python_module("netlab.traffic.held")),
                input=json.dumps(request),
                capture_output=True,
                text=True,
                env={**os.environ, process.LAB_ENV: lab},
                pass_fds=(theirs.fileno(),),
                timeout=30 + timeout,
                check=False,
            )
        ours.settimeout(5)
        msg, fds, _, _ = socket.recv_fds(ours, 4096, 1)
    if not fds:
        answer = json.loads(msg or b"{}")
        if answer.get("timeout"):
            raise TimeoutError(answer["error"])
        if "errno" in answer:
            raise OSError(answer["errno"], answer["error"])
        raise OSError(f"the socket maker in {path} failed: {(done.stderr or '').strip()[-300:]}")
    sock = socket.socket(fileno=fds[0])
    sock.settimeout(timeout)
    return sock


def main() -> int:
    """``python -m netlab.traffic.held``: make and connect one socket (a JSON request on
    stdin), hand it over on the inherited descriptor ``fd`` (or the connect error, as JSON)."""
    req = json.load(sys.stdin)
    with socket.socket(fileno=int(req["fd"])) as channel:
        try:
            sock = threads.call(
                _connect,
                req["protocol"],
                req["ip"],
                int(req["port"]),
                req["source"],
                float(req["timeout"]),
                netns_name=req["netns"],
            )
        except OSError as exc:
            answer = {"errno": exc.errno, "error": exc.strerror or str(exc)}
            answer["timeout"] = isinstance(exc, TimeoutError)
            channel.sendall(json.dumps(answer).encode())
            return 0
        with sock:
            socket.send_fds(channel, [b"ok"], [sock.fileno()])
    return 0


class _Closed(Exception):
    """The far end closed a held TCP connection."""


def _whoami(body: str) -> tuple[str, str, int]:
    data = json.loads(body)
    ip, _, port = str(data["clientip"]).rpartition(":")
    return str(data["hostname"]), ip, int(port)


def _failure(exc: BaseException, t0: float) -> Observation:
    seconds = time.perf_counter() - t0
    if isinstance(exc, TimeoutError):
        return Observation("timeout", error="no answer", seconds=seconds)
    if isinstance(exc, ConnectionRefusedError):
        return Observation("refused", error="connection refused", seconds=seconds)
    if isinstance(exc, OSError) and exc.strerror:
        kind = "unreachable" if "unreachable" in exc.strerror.lower() else "error"
        return Observation(kind, error=exc.strerror, seconds=seconds)
    return Observation("error", error=f"{type(exc).__name__}: {exc}", seconds=seconds)


if __name__ == "__main__":
    sys.exit(main())
