"""Socket probes: N fresh connections from inside a namespace, and what each one saw.

A probe is a real client: a TCP connection (then ``GET /whoami``) or a UDP datagram
(``whoami``) from a socket opened inside the source namespace. Every connection uses a new
ephemeral port, so each is a new conntrack entry and kube-proxy picks an endpoint afresh. The
outcome is what a client sees: an answer (which pod, and the source address that pod saw),
``refused`` (REJECT: an ICMP port unreachable or a TCP reset), ``timeout`` (DROP), or
``unreachable``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from netlab.checks.observations import HttpObservation, Observation
from netlab.errors import LabError
from netlab.kernel import cgroup, process, threads
from netlab.serial import from_data, to_data

CONCURRENCY = 64


def _classify(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "refused", "connection reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", exc.strerror or str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


def _parse_whoami(body: str) -> tuple[str, str, int]:
    data = json.loads(body)
    ip, _, port = str(data["clientip"]).rpartition(":")
    return str(data["hostname"]), ip, int(port)


async def _tcp(
    ip: str, port: int, timeout: float, source: str | None, sock: socket.socket | None = None
) -> Observation:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    bound = sock is not None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if source and not bound:
            sock.bind((source, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), timeout)
    except (OSError, TimeoutError) as exc:
        sock.close()
        outcome, text = _classify(exc)
        return Observation(outcome, error=text, seconds=time.perf_counter() - t0)
    # Connected. From here a reset or an empty answer means the far end accepted and then
    # closed: what the userspace proxy does with no endpoint to send to.
    try:
        local = sock.getsockname()
        request = f"GET /whoami HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        data = b""
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not chunk:
                break
            data += chunk
        if not data:
            return Observation(
                "closed", error="closed without an answer", seconds=time.perf_counter() - t0
            )
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        if not head.startswith("HTTP/1.1 200"):
            return Observation(
                "error",
                error=f"unexpected answer {head.splitlines()[:1]}",
                seconds=time.perf_counter() - t0,
            )
        hostname, cip, cport = _parse_whoami(body)
        return Observation(
            "connected", hostname, cip, cport, local[0], local[1], seconds=time.perf_counter() - t0
        )
    except ConnectionResetError:
        return Observation(
            "closed", error="reset after connecting", seconds=time.perf_counter() - t0
        )
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        outcome, text = _classify(exc)
        return Observation(outcome, error=text, seconds=time.perf_counter() - t0)
    finally:
        sock.close()


async def _udp(
    ip: str, port: int, timeout: float, source: str | None, sock: socket.socket | None = None
) -> Observation:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    bound = sock is not None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        if not bound:
            sock.bind((source or "", 0))
        sock.connect((ip, port))
        local = sock.getsockname()
        await loop.sock_sendall(sock, b"whoami")
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
        hostname, cip, cport = _parse_whoami(data.decode(errors="replace"))
        return Observation(
            "connected", hostname, cip, cport, local[0], local[1], seconds=time.perf_counter() - t0
        )
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        outcome, text = _classify(exc)
        return Observation(outcome, error=text, seconds=time.perf_counter() - t0)
    finally:
        sock.close()


async def _many(
    targets: list[str | Observation], port: int, protocol: str, timeout: float, source: str | None
) -> list[Observation]:
    """One connection per target address; a target that is already an Observation (a name
    that did not resolve) is passed through as it is."""
    gate = asyncio.Semaphore(CONCURRENCY)
    one = _tcp if protocol == "TCP" else _udp

    async def guarded(ip: str) -> Observation:
        async with gate:
            return await one(ip, port, timeout, source)

    async def done(o: Observation) -> Observation:
        return o

    return list(
        await asyncio.gather(
            *(done(t) if isinstance(t, Observation) else guarded(t) for t in targets)
        )
    )


def probe(
    netns_name: str,
    ip: str,
    port: int,
    protocol: str = "TCP",
    count: int = 1,
    timeout: float = 1.0,
    source: str | None = None,
) -> list[Observation]:
    """Open ``count`` connections from inside ``netns_name`` to ``ip:port``."""
    return probe_each(netns_name, [ip] * count, port, protocol, timeout, source)


def probe_each(
    netns_name: str,
    targets: list[str | Observation],
    port: int,
    protocol: str = "TCP",
    timeout: float = 1.0,
    source: str | None = None,
    *,
    cgroup_path: str | None = None,
    lab: str = "",
) -> list[Observation]:
    """One connection from inside ``netns_name`` to each target address (e.g. each the answer
    of a fresh DNS lookup, as a client resolving a name per connection gets).

    ``cgroup_path``: the sockets must belong to that cgroup (the ebpf mode's socket LB acts on
    a node's cgroup), so the probe runs in a short-lived process placed there, tagged with
    ``lab``, instead of on a thread of this one."""
    if cgroup_path is not None:
        request = {"port": port, "protocol": protocol, "timeout": timeout, "source": source}
        answers = iter(_probe_in_cgroup(cgroup_path, lab, netns_name, targets, request))
        return [t if isinstance(t, Observation) else next(answers) for t in targets]
    return threads.call(
        lambda: asyncio.run(_many(targets, port, protocol, timeout, source)),
        netns_name=netns_name,
    )


def bind_client(
    netns_name: str, protocol: str, dest_ip: str, source: str | None = None
) -> socket.socket:
    """A client socket opened inside ``netns_name`` and bound to the address the kernel would
    pick to reach ``dest_ip`` (or ``source``) and a port it picks, so that what it will send is
    known (and can be traced) before it connects."""

    def make() -> socket.socket:
        address = source
        if not address:  # the route's source address, as connect() would choose it
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((dest_ip, 9))
                address = probe.getsockname()[0]
        kind = socket.SOCK_STREAM if protocol.upper() == "TCP" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.bind((address, 0))
        return sock

    return threads.call(make, netns_name=netns_name)


def connect_once(
    netns_name: str, sock: socket.socket, ip: str, port: int, protocol: str, timeout: float = 1.0
) -> Observation:
    """One connection (``GET /whoami`` or a ``whoami`` datagram) from a socket made by
    :func:`bind_client`; the socket is closed afterwards."""
    one = _tcp if protocol.upper() == "TCP" else _udp
    return threads.call(
        lambda: asyncio.run(one(ip, port, timeout, None, sock)), netns_name=netns_name
    )


def _probe_in_cgroup(
    path: str, lab: str, netns_name: str, targets: list[str | Observation], request: dict[str, Any]
) -> list[Any]:
    """Run one probe_each or http_each in a short-lived process placed in the cgroup ``path``;
    ``request`` holds the probe's other arguments. Names that did not resolve stay as they are
    (the caller turns them into its own failure)."""
    dial = [t for t in targets if isinstance(t, str)]
    request = {**request, "netns": netns_name, "targets": dial}
    argv = cgroup.wrap(path, process.python_module("netlab.traffic.probe"))
    env = {**os.environ, process.LAB_ENV: lab}
    budget = 30 + float(request["timeout"]) * (1 + len(dial) / CONCURRENCY)
    try:
        done = subprocess.run(
            argv,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=env,
            timeout=budget,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"the probe in {path} did not finish within {budget:.0f}s") from exc
    if done.returncode != 0:
        raise LabError(f"the probe in {path} failed", detail=(done.stderr or done.stdout).strip())
    kind = HttpObservation if request.get("path") is not None else Observation
    return [from_data(kind, d) for d in json.loads(done.stdout)]


def main() -> int:
    """``python -m netlab.traffic.probe``: one probe_each (or http_each, when the request has a
    ``path``) from a JSON request on stdin, the observations as JSON on stdout (how a probe runs
    in another cgroup)."""
    req = json.load(sys.stdin)
    targets: list[str | Observation] = list(req["targets"])
    found: list[Observation] | list[HttpObservation]
    if req.get("path") is not None:
        found = http_each(
            req["netns"],
            targets,
            int(req["port"]),
            req["path"],
            float(req["timeout"]),
            req["source"],
        )
    else:
        found = probe_each(
            req["netns"],
            targets,
            int(req["port"]),
            req["protocol"],
            float(req["timeout"]),
            req["source"],
        )
    json.dump(to_data(found), sys.stdout)
    return 0


HttpAnswer = HttpObservation  # what a health check or an http check got back

MAX_HTTP_ANSWER = 1 << 20  # bytes read from one answer at most


def _http_body(head: str, raw: bytes) -> bytes:
    """The body, de-chunked when the answer says ``Transfer-Encoding: chunked``."""
    if "transfer-encoding: chunked" not in head.lower():
        return raw
    out = b""
    while raw:
        size_line, _, rest = raw.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        raw = rest[size + 2 :]
    return out


async def _http_get(
    ip: str, port: int, path: str, timeout: float, source: str | None = None
) -> HttpObservation:
    """One GET over a fresh connection, classified as a connection is (refused, timeout...)."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if source:
            sock.bind((source, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), timeout)
    except (OSError, TimeoutError) as exc:
        sock.close()
        outcome, text = _classify(exc)
        return HttpObservation(outcome, error=text, seconds=time.perf_counter() - t0)
    try:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: netlab\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        data = b""
        while len(data) < MAX_HTTP_ANSWER:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not chunk:
                break
            data += chunk
        if not data:
            return HttpObservation(
                "closed", error="closed without an answer", seconds=time.perf_counter() - t0
            )
        head, _, body = data.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        parts = text.split(" ", 2)
        if not parts[0].startswith("HTTP/") or len(parts) < 2 or not parts[1].isdigit():
            return HttpObservation(
                "error", error=f"not HTTP: {text[:40]!r}", seconds=time.perf_counter() - t0
            )
        return HttpObservation(
            "connected",
            int(parts[1]),
            _http_body(text, body).decode(errors="replace"),
            seconds=time.perf_counter() - t0,
        )
    except ConnectionResetError:
        return HttpObservation(
            "closed", error="reset after connecting", seconds=time.perf_counter() - t0
        )
    except (OSError, TimeoutError) as exc:
        outcome, text = _classify(exc)
        return HttpObservation(outcome, error=text, seconds=time.perf_counter() - t0)
    finally:
        sock.close()


def http_get(
    netns_name: str, targets: list[tuple[str, int]], path: str = "/", timeout: float = 1.0
) -> list[HttpObservation]:
    """GET ``path`` from each ``(ip, port)``, concurrently, from inside ``netns_name``."""

    async def all_of() -> list[HttpObservation]:
        return list(await asyncio.gather(*(_http_get(ip, p, path, timeout) for ip, p in targets)))

    return threads.call(lambda: asyncio.run(all_of()), netns_name=netns_name)


def http_each(
    netns_name: str,
    targets: list[str | Observation],
    port: int,
    path: str = "/",
    timeout: float = 1.0,
    source: str | None = None,
    *,
    cgroup_path: str | None = None,
    lab: str = "",
) -> list[HttpObservation]:
    """One GET from inside ``netns_name`` to each target address (a name that did not resolve
    passes through as its failure). ``cgroup_path``: run in that cgroup, as
    :func:`probe_each` does (a node's GET through the ebpf mode's socket LB)."""
    if cgroup_path is not None:
        request = {"port": port, "path": path, "timeout": timeout, "source": source}
        answers = iter(_probe_in_cgroup(cgroup_path, lab, netns_name, targets, request))
        return [
            HttpObservation(t.outcome, error=t.error)
            if isinstance(t, Observation)
            else next(answers)
            for t in targets
        ]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(target: str | Observation) -> HttpObservation:
        if isinstance(target, Observation):
            return HttpObservation(target.outcome, error=target.error)
        async with gate:
            return await _http_get(target, port, path, timeout, source)

    async def all_of() -> list[HttpObservation]:
        return list(await asyncio.gather(*(one(t) for t in targets)))

    return threads.call(lambda: asyncio.run(all_of()), netns_name=netns_name)


if __name__ == "__main__":
    sys.exit(main())
