"""Mutation fuzzing of scenario files: mutants of valid files, and the verdict netlab gives each.

A mutant is made the ways people (and editors, and copy-paste) break YAML files: keys deleted,
renamed or misspelt, values swapped or given the wrong type, numbers out of range, unicode,
control characters and markup inserted, lines dropped, duplicated or re-indented, the file
truncated or re-encoded, YAML's own features (anchors, aliases, merge keys, tags) misused.

Every mutant must get a verdict as the command line gives it: valid, or invalid with every
diagnostic located (``file:line:col``, a message and a hint). Anything else is a finding: an
exception escaping (a crash), a diagnostic without a place or a hint, or a printer that cannot
print it. The unit test runs a few hundred mutants with a fixed seed;
``benchmarks/fuzz_validate.py`` runs thousands in worker processes and also catches hangs and
runaway memory.
"""

from __future__ import annotations

import copy
import io
import random
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

# Valid manifests in the Kubernetes documentation's style, using the fields netlab accepts
# without modelling (probes, resources, env, strategy, DNS config, selectors with expressions),
# so that mutants reach that validation too.
DOCS_STYLE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels: {app: nginx, released: 2024-01-02}
  annotations: {deployed: 2024-01-02T10:00:00Z}
spec:
  replicas: 3
  minReadySeconds: 5
  revisionHistoryLimit: 4
  progressDeadlineSeconds: 120
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 25%}
  selector:
    matchLabels: {app: nginx}
    matchExpressions:
    - {key: tier, operator: In, values: [web, edge]}
  template:
    metadata:
      labels: {app: nginx, tier: web}
    spec:
      dnsPolicy: None
      dnsConfig:
        nameservers: [10.96.0.10]
        searches: [default.svc.cluster.local, svc.cluster.local]
        options: [{name: ndots, value: "2"}]
      containers:
      - name: nginx
        image: nginx:1.14.2
        args: [--since, 2024-01-02]
        ports: [{containerPort: 80, name: http}]
        env:
        - {name: MODE, value: demo}
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        resources:
          requests: {cpu: 250m, memory: 64Mi}
          limits: {cpu: 500m, memory: 128Mi}
        livenessProbe:
          httpGet: {path: /healthz, port: http}
          initialDelaySeconds: 3
          periodSeconds: 3
        readinessProbe:
          tcpSocket: {port: 80}
---
apiVersion: v1
kind: Pod
metadata: {name: node-agent}
spec:
  hostNetwork: true
  containers:
  - name: agent
    image: registry.k8s.io/e2e-test-images/agnhost:2.53
    ports: [{containerPort: 9100}]
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  finalizers: [example.com/cleanup]
spec:
  type: NodePort
  selector: {app: nginx}
  ipFamilyPolicy: SingleStack
  ipFamilies: [IPv4]
  trafficDistribution: PreferClose
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, nodePort: 30053}
  - {name: dns-tcp, port: 53, protocol: TCP, nodePort: 30053}
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
spec:
  finalizers: [kubernetes]
"""

# Outcomes, in the order reports list them.
VALID = "valid"
INVALID = "invalid"  # exit 2, every diagnostic located and with a hint
UNLOCATED = "unlocated"  # exit 2, but a diagnostic lacks its place or its hint
CRASH = "crash"  # an exception escaped: the CLI's "unexpected" (exit 4)
HANG = "hang"  # (worker processes only) no verdict within the time limit
MEMORY = "memory"  # (worker processes only) the memory limit was hit
OUTCOMES = (VALID, INVALID, UNLOCATED, CRASH, HANG, MEMORY)

_WEIRD_TEXT = (
    "",
    " ",
    "[red]markup[/red]",
    "[/]",
    "a\nb",
    "tab\there",
    "nul\x00byte",
    "bell\x07",
    "del\x7f",
    "ünïcödé",
    "日本語",
    "emoji-🙂",
    "\u200bzero-width",
    "right-to-left\u202e",
    "x" * 300,
    "UPPER",
    "-leading",
    "trailing-",
    "with space",
    "dotted.name",
    "slash/name",
    "10.96.0.10",
    "::1",
    "None",
    "null",
    "~",
    "true",
    "0x1F",
    "1e3",
    "*",
    "&anchor",
    "!!int",
    "%",
    "@",
    "`",
    '"quoted"',
    "'single'",
    "\\",
    "{a: b}",
    "[1, 2]",
)
_WEIRD_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    1,
    2,
    53,
    65535,
    65536,
    30000,
    32767,
    32768,
    2147483647,
    2147483648,
    -2147483648,
    2**63,
    10**30,
    2.0,
    2.5,
    -0.0,
    1e400,
    -1e400,
    float("nan"),
    True,
    False,
    None,
)
# Values that make sense for fields netlab knows, so mutants reach deep validation, not just types.
_FIELD_VALUES: dict[str, tuple[Any, ...]] = {
    "type": ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "clusterip", "dns"),
    "protocol": ("TCP", "UDP", "SCTP", "tcp", "HTTP"),
    "clusterIP": ("None", "", "10.96.0.10", "10.96.0.1", "10.96.5.5", "10.0.0.1", "fd00::1"),
    "externalTrafficPolicy": ("Local", "Cluster", "local"),
    "internalTrafficPolicy": ("Local", "Cluster"),
    "sessionAffinity": ("ClientIP", "None"),
    "nodePort": (30000, 32767, 30080, 29999, 0),
    "healthCheckNodePort": (30080, 30000, 1),
    "replicas": (0, 1, 3, 600, 2147483647, -1),
    "nodes": (1, 2, 50, 51, 0, [{"name": "node-1"}, {"name": "node-1"}]),
    "mode": ("iptables", "nftables", "ipvs", "userspace", "ebpf"),
    "via": ("clusterIP", "nodePort", "name", "loadBalancer", "externalIP"),
    "result": ("connected", "refused", "timeout", "unreachable", "closed"),
    "endpoints": ("all", "none", ["node/node-1"], ["no-such-pod"]),
    "hostNetwork": (True, False),
    "nodeName": ("node-1", "node-2", "node-9"),
    "namespace": ("default", "kube-system", "netlab", "missing"),
    "name": ("kubernetes", "kube-dns", "coredns", "web", "client-node-1"),
    "podCIDR": ("10.244.0.0/16", "10.244.0.0/30", "10.96.0.0/12", "0.0.0.0/0"),
    "serviceCIDR": ("10.96.0.0/28", "10.96.0.0/30", "10.96.0.0/12"),
    "nodeCIDRMaskSize": (16, 24, 28, 30, 24.5),
    "pool": ("192.0.2.0/30", "192.0.2.0/24", "192.168.56.0/24"),
    "ipFamilies": (["IPv6"], ["IPv4", "IPv6"], ["IPv4", "IPv4"]),
    "ipFamilyPolicy": ("SingleStack", "PreferDualStack", "RequireDualStack"),
    "dnsPolicy": ("None", "ClusterFirst", "Default"),
    "from": ("pod/web", "node/node-1", "external", "pod/missing", "node/node-9"),
    "to": ("service/web:http", "service/missing", "10.96.0.1:443", "node/node-1:30080"),
    "port": (80, "http", "missing", 0, 70000),
    "targetPort": (8080, "http", "missing", 0),
    "timeout": (1, 0.5, 0, -1, float("nan"), 1e9),
    "connections": (1, 5.0, 0, 10001),
}


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*prefix, i))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 2:
        return word + "x"
    i = rng.randrange(len(word) - 1)
    how = rng.randrange(4)
    if how == 0:  # transpose
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if how == 1:  # drop
        return word[:i] + word[i + 1 :]
    if how == 2:  # case
        return word[:i] + word[i].swapcase() + word[i + 1 :]
    return word[:i] + rng.choice("aeiouxz") + word[i:]


def _weird_value(rng: random.Random) -> Any:
    pick = rng.randrange(5)
    if pick == 0:
        return rng.choice(_WEIRD_TEXT)
    if pick == 1:
        return rng.choice(_WEIRD_NUMBERS)
    if pick == 2:
        return rng.choice(([], {}, [None], {"a": None}, [[[]]], {"": ""}))
    if pick == 3:
        return rng.choice(list(_FIELD_VALUES.values()))[0]
    return rng.choice(_WEIRD_TEXT) + rng.choice(_WEIRD_TEXT)


def _tree_mutation(docs: list[Any], rng: random.Random) -> None:
    """One change to the parsed documents."""
    d = rng.randrange(len(docs))
    paths = [p for p in _paths(docs[d]) if p]
    if not paths:
        docs[d] = _weird_value(rng)
        return
    path = rng.choice(paths)
    parent = _get(docs[d], path[:-1])
    value = parent[path[-1]]
    how = rng.randrange(11)
    if how == 0:  # delete
        del parent[path[-1]]
    elif how == 1 and isinstance(path[-1], str):  # misspell a key
        parent[_typo(path[-1], rng)] = parent.pop(path[-1])
    elif how == 2:  # wrong type or strange value
        parent[path[-1]] = _weird_value(rng)
    elif how == 3 and isinstance(path[-1], str) and path[-1] in _FIELD_VALUES:
        parent[path[-1]] = copy.deepcopy(rng.choice(_FIELD_VALUES[path[-1]]))
    elif how == 4:  # swap with another value of the file
        other = rng.choice(paths)
        try:
            b = _get(docs[d], other)
            _set(docs[d], path, copy.deepcopy(b))
        except (KeyError, IndexError, TypeError):
            pass
    elif how == 5 and isinstance(value, list) and value:  # duplicate an item
        value.append(copy.deepcopy(rng.choice(value)))
    elif how == 6 and isinstance(value, str):  # text inside a string
        i = rng.randrange(len(value) + 1)
        parent[path[-1]] = value[:i] + rng.choice(_WEIRD_TEXT) + value[i:]
    elif how == 7 and isinstance(value, int | float) and not isinstance(value, bool):
        parent[path[-1]] = rng.choice((value + 1, value - 1, -value, value * 1000, str(value)))
    elif how == 8 and isinstance(value, dict):  # an unknown or duplicated field
        parent[path[-1]][rng.choice(("extra", *list(_FIELD_VALUES)))] = _weird_value(rng)
    elif how == 9:  # wrap in a list or a mapping
        parent[path[-1]] = rng.choice(([value], {"value": value}))
    else:  # duplicate a whole document
        docs.append(copy.deepcopy(docs[rng.randrange(len(docs))]))


def _dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=1000)


def _text_mutation(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return rng.choice(_WEIRD_TEXT)
    i = rng.randrange(len(lines))
    how = rng.randrange(12)
    if how == 0:
        del lines[i]
    elif how == 1:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif how == 2:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == 3:
        lines[i] = rng.choice(("  ", " ", "\t", "")) + lines[i]
    elif how == 4:
        return text[: rng.randrange(len(text) + 1)]
    elif how == 5:
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(_WEIRD_TEXT) + lines[i][pos:]
    elif how == 6:
        pos = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:pos] + rng.choice(":-[]{}&*!|>'\"%@`#,?") + lines[i][pos:]
    elif how == 7:
        lines[i] = lines[i].replace(": ", rng.choice((": !!int ", ": !!float ", ": !!bool ")), 1)
    elif how == 8:
        lines[i] = lines[i].replace(": ", ": !!timestamp ", 1)
    elif how == 9:
        lines.insert(i, "---\n")
    elif how == 10:
        words = text.split()
        if len(words) > 1:
            a, b = rng.sample(words, 2)
            return text.replace(a, b, 1)
    else:
        lines[i] = lines[i].replace(": ", ": &a ", 1) + "extra: *a\n"
    return "".join(lines)


def _yaml_bomb(rng: random.Random) -> str:
    """YAML's own traps: alias bombs, self-reference, deep nesting, merge keys."""
    how = rng.randrange(5)
    if how == 0:
        n = rng.randrange(5, 30)
        out = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        out += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, n)]
        return "\n".join(out) + "\n"
    if how == 1:
        return "apiVersion: v1\nkind: Service\nmetadata: &m\n  name: x\n  self: *m\n"
    if how == 2:
        depth = rng.choice((50, 500, 5000))
        return "apiVersion: v1\nkind: Pod\nspec: " + "[" * depth + "]" * depth + "\n"
    if how == 3:
        return (
            "apiVersion: v1\nkind: Pod\nmetadata: &base\n  name: a\n  labels: {app: a}\n"
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  <<: *base\n  name: b\n"
            "spec: {containers: [{name: c, image: i}]}\n"
        )
    depth = rng.choice((20, 200, 2000))
    return "a: " + "{b: " * depth + "c" + "}" * depth + "\n"


def mutants(seed: int, sources: list[Path] | None = None) -> Iterator[tuple[str, bytes]]:
    """An endless, reproducible stream of (label, file content): mutants of the shipped
    scenarios (and of :data:`DOCS_STYLE` when ``sources`` is not given)."""
    rng = random.Random(seed)
    texts = [(p.name, p.read_text()) for p in (sources or SCENARIOS)]
    if sources is None:
        texts.append(("docs-style.yaml", DOCS_STYLE))
    parsed = [(name, list(yaml.safe_load_all(text))) for name, text in texts]
    n = 0
    while True:
        n += 1
        kind = rng.randrange(20)
        name, text = rng.choice(texts)
        if kind < 10:
            _, docs = rng.choice(parsed)
            docs = copy.deepcopy(docs)
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                _tree_mutation(docs, rng)
            try:
                out = _dump(docs)
            except (yaml.YAMLError, ValueError, RecursionError):
                continue
            yield f"{n}:tree:{name}", out.encode()
        elif kind < 17:
            for _ in range(rng.choice((1, 1, 2))):
                text = _text_mutation(text, rng)
            yield f"{n}:text:{name}", text.encode("utf-8", "surrogatepass")
        elif kind < 18:
            data = bytearray(text.encode())
            pos = rng.randrange(len(data) + 1)
            data[pos:pos] = rng.choice(
                (b"\xff", b"\xe9", b"\xc3", b"\x00", b"\xed\xa0\x80", bytes([rng.randrange(256)]))
            )
            yield f"{n}:bytes:{name}", bytes(data)
        elif kind < 19:
            yield (
                f"{n}:encoding:{name}",
                text.encode(rng.choice(("utf-16", "latin-1", "utf-32")), "replace"),
            )
        else:
            yield f"{n}:yaml:{name}", _yaml_bomb(rng).encode()


@dataclass
class Verdict:
    outcome: str
    detail: str = ""


def located(d: Any) -> bool:
    """A diagnostic a user can act on: its file, line and column, its message and a hint, and
    the path of the field unless it is about the file or its YAML as such."""
    has_path = bool(d.path) or d.category in ("yaml", "encoding", "file")
    return bool(d.file and d.line > 0 and d.col > 0 and d.message and d.hint and has_path)


def judge(content: bytes, file: str = "mutant.yaml") -> Verdict:
    """What ``netlab validate`` makes of ``content``: load, validate, print the diagnostics."""
    from netlab.checks.validate import load_and_validate
    from netlab.cli import report
    from netlab.cli.output import Out
    from netlab.errors import ScenarioError

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        path.write_bytes(content)
        try:
            scenario, _ = load_and_validate(path)
        except ScenarioError as exc:
            diags = exc.diagnostics + exc.warnings
            try:
                _print_all(diags, report.diagnostics, Out)
            except Exception:
                return Verdict(CRASH, "printing: " + traceback.format_exc(limit=-3))
            bad = [d for d in exc.diagnostics if not located(d)]
            if bad or not exc.diagnostics:
                return Verdict(UNLOCATED, "; ".join(d.format() for d in bad[:3]) or "no errors")
            return Verdict(INVALID, exc.diagnostics[0].message)
        except Exception:
            return Verdict(CRASH, traceback.format_exc(limit=-4))
        try:
            _print_all(scenario.warnings, report.diagnostics, Out)
        except Exception:
            return Verdict(CRASH, "printing: " + traceback.format_exc(limit=-3))
        return Verdict(VALID)


def _print_all(diags: list[Any], printer: Callable[..., None], out_cls: Any) -> None:
    """Print through the real printer, as a terminal would show it and as a pipe would."""
    from rich.console import Console

    for terminal in (True, False):
        buf = io.StringIO()
        out = out_cls(buf)
        if terminal:
            out.console = Console(file=buf, force_terminal=True, highlight=False, soft_wrap=True)
        printer(out, diags)
        text = buf.getvalue()
        text.encode("utf-8")  # a terminal or pipe in UTF-8 must be able to take it
        if not terminal:
            lines = [ln for ln in text.splitlines() if not ln.startswith("    hint: ")]
            if len(lines) != len(diags) + (1 if diags else 0):
                raise AssertionError(f"{len(diags)} diagnostics printed as {len(lines)} lines")
