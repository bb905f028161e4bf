"""What a pod answers, in the spirit of Kubernetes' agnhost ``netexec``.

TCP speaks HTTP/1.1 (so ``curl`` works) with netexec's paths: ``/hostname`` (the pod's name),
``/clientip`` (``ip:port`` the pod saw the connection come from), ``/echo?msg=..``,
``/healthz``; plus ``/whoami``, a netlab extension returning both as JSON so one connection tells
a probe who answered and what source it saw. A TCP client that does not speak HTTP (``nc``) can
send netexec's UDP commands as lines instead. UDP datagrams: ``hostname``, ``clientip``,
``echo <text>``, ``whoami``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit


def whoami(hostname: str, client: tuple[str, int]) -> str:
    return json.dumps({"hostname": hostname, "clientip": f"{client[0]}:{client[1]}"})


def command(hostname: str, client: tuple[str, int], text: str) -> str:
    """netexec's UDP command set (also used for TCP lines that are not HTTP)."""
    text = text.strip()
    verb, _, arg = text.partition(" ")
    if verb == "hostname":
        return hostname
    if verb == "clientip":
        return f"{client[0]}:{client[1]}"
    if verb == "echo":
        return arg
    if verb == "whoami":
        return whoami(hostname, client)
    return f"unknown command {verb!r}; try hostname, clientip, echo TEXT, whoami"


def http_response(
    hostname: str, client: tuple[str, int], request_line: str, keep_alive: bool = False
) -> bytes:
    """Answer one HTTP request line. Without ``keep_alive`` the answer says the connection
    closes after it; with it (an HTTP/1.1 request that did not ask to close), the connection
    stays open for the next request, as Go's net/http (agnhost netexec) keeps it."""
    parts = request_line.split()
    if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
        return _http(405, "method not allowed\n", head=False)
    url = urlsplit(parts[1])
    head = parts[0] == "HEAD"
    if url.path in ("/", "/hostname"):
        return _http(200, hostname, head, close=not keep_alive)
    if url.path == "/clientip":
        return _http(200, f"{client[0]}:{client[1]}", head, close=not keep_alive)
    if url.path == "/whoami":
        return _http(200, whoami(hostname, client), head, "application/json", not keep_alive)
    if url.path == "/echo":
        return _http(200, parse_qs(url.query).get("msg", [""])[0], head, close=not keep_alive)
    if url.path == "/healthz":
        return _http(200, "ok", head, close=not keep_alive)
    return _http(404, "404 page not found\n", head, close=not keep_alive)


def keeps_alive(request_line: str, headers: list[str]) -> bool:
    """HTTP/1.1 keeps the connection unless the request says ``Connection: close``."""
    if not request_line.rstrip().endswith("HTTP/1.1"):
        return False
    for header in headers:
        name, _, value = header.partition(":")
        if name.strip().lower() == "connection" and "close" in value.lower():
            return False
    return True


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _http(
    status: int,
    body: str,
    head: bool,
    ctype: str = "text/plain; charset=utf-8",
    close: bool = True,
) -> bytes:
    data = body.encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(data)}",
        *(["Connection: close"] if close else []),
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + (b"" if head else data)
