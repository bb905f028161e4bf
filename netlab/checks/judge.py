"""The verdict: what the probes observed against what the check expects, every mismatch listed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from netlab.checks.model import (
    CheckResult,
    ResolvedConnect,
    ResolvedDns,
    ResolvedHttp,
    norm,
    outcome_matches,
)
from netlab.checks.observations import (
    CapturedPacket,
    ConntrackEntry,
    DNSResult,
    HttpObservation,
    Observation,
)
from netlab.scenario.checkspec import FAILED, NAMED_SOURCES, SNAT_IF_REMOTE


def evaluate(
    check: ResolvedConnect,
    observations: list[Observation],
    captures: dict[str, list[CapturedPacket]] | None = None,
    seconds: float = 0.0,
    tracked: dict[int, ConntrackEntry] | None = None,
) -> CheckResult:
    """Compare what the probes saw with what the check expects; list every mismatch."""
    expect = check.spec.expect
    failures: list[str] = []
    outcomes = Counter(o.outcome for o in observations)
    answered = [o for o in observations if o.outcome == "connected"]
    reached = Counter(o.hostname for o in answered)
    sources = sorted({o.client_ip for o in answered})

    failures += _judge_outcomes(expect.result, [(o.outcome, o.error) for o in observations])
    got = set(reached)
    if check.expected is not None and expect.result == "connected":
        want = {b.pod for b in check.expected}
        if got - want:
            failures.append(f"reached unexpected endpoints: {', '.join(sorted(got - want))}")
        # One kept connection answers from one endpoint: the listed ones are who may answer.
        one_of = bool(check.spec.hold or check.spec.connection)
        if not check.sticky and check.max_endpoints is None and want - got and not one_of:
            failures.append(
                f"never reached: {', '.join(sorted(want - got))} in {len(observations)} connections"
            )
    if check.sticky and len(got) > 1:
        failures.append(
            "expected one endpoint for every connection (session affinity), reached "
            + ", ".join(f"{k} x{v}" for k, v in sorted(reached.items()))
        )
    if check.max_endpoints is not None and len(got) > check.max_endpoints:
        failures.append(
            f"expected at most {check.max_endpoints} endpoints (one per node the load balancer "
            f"uses, each remembering the client), reached {len(got)}: {', '.join(sorted(got))}"
        )
    if expect.source and answered:
        kept = [o for o in answered if not o.translated]
        if expect.source == "client":
            moved = [o for o in answered if not _saw_client(check, o)]
            seen = sorted({f"{o.client_ip}:{o.client_port}" for o in moved})
            if moved:
                failures.append(
                    f"expected backends to see the client's own address {check.source_ip}, "
                    f"{len(moved)} saw a translated one ({', '.join(seen[:3])})"
                )
        if expect.source == "masqueraded" and kept:
            failures.append(
                f"expected masquerading, but {len(kept)} connections reached the backend "
                f"with the client's own address and port ({check.source_ip})"
            )
        if expect.source == SNAT_IF_REMOTE:
            failures += _judge_snat_if_remote(check, answered)
        if expect.source not in NAMED_SOURCES:  # an address every backend must have seen
            other = sorted({o.client_ip for o in answered if o.client_ip != expect.source})
            if other:
                failures.append(
                    f"expected backends to see {expect.source}, they saw {', '.join(other[:3])}"
                )

    observed: dict[str, Any] = {
        "outcomes": dict(sorted(outcomes.items())),
        "endpoints": dict(sorted(reached.items())),
        "sources": sources,
        "translated": sum(o.translated for o in answered),
    }
    if captures is not None:
        failures += _judge_capture(check, answered, captures, observed)
    if tracked is not None:
        failures += _judge_dnat(check, answered, tracked, observed)

    expected: dict[str, Any] = {"result": expect.result}
    if check.expected is not None:
        expected["endpoints"] = sorted(b.pod for b in check.expected)
    if check.sticky:
        expected["sticky"] = True
    if check.max_endpoints is not None:
        expected["max_endpoints"] = check.max_endpoints
    if expect.source:
        expected["source"] = expect.source
    if expect.dnat is not None:
        expected["dnat"] = expect.dnat
    if check.dial_name:
        expected["name"] = check.dial_name
    expected["client"] = check.source_ip
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{check.dest_ip or check.dial_name}:{check.dest_port}",
        protocol=check.protocol,
        connections=len(observations),
        expected=expected,
        observed=observed,
        failures=failures,
        seconds=seconds,
        derived=check.spec.derived,
        kind=check.spec.kind,
        description=check.spec.description,
    )


def _saw_client(check: ResolvedConnect, o: Observation) -> bool:
    """Whether a backend saw the client's own address.

    The port counts only where masquerading could have kept the address: when the client is
    the node that translates (a node dialling its own Service or NodePort), its masquerade
    address is the one it sent from. Elsewhere a masquerade shows another address, and a port
    alone may move without any SNAT rule: the NAT core picks another source port when the
    connection's reply tuple is still held by an older one (nf_nat_core.c get_unique_tuple).
    """
    if o.client_ip != o.local_ip:
        return False
    node_ip = dict(check.node_ips)
    translator = node_ip.get(check.entry_node) if check.entry_node else None
    if translator is None:
        client_is_translator = check.source_ip in node_ip.values()
    else:
        client_is_translator = check.source_ip == translator
    return not client_is_translator or o.client_port == o.local_port


def _judge_snat_if_remote(check: ResolvedConnect, answered: list[Observation]) -> list[str]:
    """Cilium's NodePort: a backend on the node that took the connection sees the client's own
    address; one on another node sees that node's (SNAT). Without a known entry node (a load
    balancer picked it), the node is the one whose address the backend saw."""
    node_of_ip = {ip: name for name, ip in check.node_ips}
    node_of_pod = {b.pod: b.node for b in check.backends}
    entry = check.entry_node
    wrong: list[str] = []
    for o in answered:
        home = node_of_pod.get(o.hostname, "?")
        if not o.translated:
            if entry and home != entry:
                wrong.append(
                    f"{o.hostname} (on {home}) saw the client's own address, though {entry} "
                    "took the connection"
                )
            continue
        took = node_of_ip.get(o.client_ip)
        if took is None:
            wrong.append(f"{o.hostname} saw {o.client_ip}, which is no node's address")
        elif took == home:
            wrong.append(
                f"{o.hostname} is on {home}, the node that took the connection, yet saw "
                f"{o.client_ip} instead of the client's address"
            )
        elif entry and took != entry:
            wrong.append(f"{o.hostname} saw {took}'s address, though {entry} took the connection")
    if not wrong:
        return []
    more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
    return [
        "expected the client's own address at backends on the node that took the connection "
        f"and that node's address elsewhere: {'; '.join(wrong[:3])}{more}"
    ]


def _judge_outcomes(result: str, seen: list[tuple[str, str]]) -> list[str]:
    """Every connection must have the expected outcome (``failed``: any failure)."""
    wrong = Counter(o for o, _ in seen if not outcome_matches(o, result))
    if not wrong:
        return []
    errors = sorted({e for o, e in seen if not outcome_matches(o, result) and e})
    what = "a failure" if result == FAILED else result
    return [
        f"expected every connection to be {what}, got "
        + ", ".join(f"{v} {k}" for k, v in sorted(wrong.items()))
        + (f" ({'; '.join(errors[:3])})" if errors else "")
    ]


def evaluate_http(
    check: ResolvedHttp, observations: list[HttpObservation], seconds: float = 0.0
) -> CheckResult:
    """Each GET's outcome, and for answered ones their status code and body."""
    expect = check.spec.expect
    failures = _judge_outcomes(expect.result, [(o.outcome, o.error) for o in observations])
    answered = [o for o in observations if o.outcome == "connected"]
    statuses = Counter(o.status for o in answered)
    if expect.result == "connected":
        wrong = {k: v for k, v in statuses.items() if k != check.status}
        if wrong:
            failures.append(
                f"expected HTTP {check.status}, got "
                + ", ".join(f"{k} x{v}" for k, v in sorted(wrong.items()))
            )
        if check.body is not None:
            missing = [o for o in answered if check.body not in o.body]
            if missing:
                failures.append(
                    f"expected the body to contain {check.body!r}, {len(missing)} did not: "
                    f"{_excerpt(missing[0].body)!r}"
                )
    expected: dict[str, Any] = {"result": expect.result}
    if expect.result == "connected":
        expected["status"] = check.status
        if check.body is not None:
            expected["body"] = check.body
    observed: dict[str, Any] = {
        "outcomes": dict(sorted(Counter(o.outcome for o in observations).items())),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
    if answered:
        observed["body"] = _excerpt(answered[0].body)
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{check.dest_ip or check.dial_name}:{check.dest_port}{check.path}",
        protocol="HTTP",
        connections=len(observations),
        expected=expected,
        observed=observed,
        failures=failures,
        seconds=seconds,
        derived=check.spec.derived,
        kind="http",
        description=check.spec.description,
    )


def _excerpt(body: str, size: int = 200) -> str:
    return body if len(body) <= size else body[:size] + "…"


def _judge_dnat(
    check: ResolvedConnect,
    answered: list[Observation],
    tracked: dict[int, ConntrackEntry],
    observed: dict[str, Any],
) -> list[str]:
    """What connection tracking on the client's node says: was each connection DNATed?"""
    entries = [tracked[o.local_port] for o in answered if o.local_port in tracked]
    dnat = sum(e.dnat for e in entries)
    observed["conntrack"] = {"tracked": len(entries), "dnat": dnat}
    want = check.spec.expect.dnat
    if want is None:
        return []
    if not entries:
        return ["no connection was found in connection tracking on the client's node"]
    if want and dnat != len(entries):
        return [f"{len(entries) - dnat} of {len(entries)} connections were not DNATed"]
    if not want and dnat:
        return [f"{dnat} of {len(entries)} connections were DNATed"]
    return []


def evaluate_dns(check: ResolvedDns, result: DNSResult, seconds: float = 0.0) -> CheckResult:
    """Compare one lookup with the dns check's expectations."""
    plan = check.plan
    failures: list[str] = []
    got = frozenset(norm(d) for d in result.data())
    if not result.rcode:
        failures.append(f"no answer from {result.server}: {result.error}")
    elif result.rcode != plan.rcode:
        failures.append(f"expected {plan.rcode}, got {result.rcode}")
    if plan.answers is not None and result.rcode and got != plan.answers:
        missing, extra = sorted(plan.answers - got), sorted(got - plan.answers)
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        failures.append(f"{plan.qtype} answers differ: " + "; ".join(parts))
    targets = [norm(n) for n in result.cname_chain[1:]]
    if plan.cname is not None and (not targets or targets[0] != plan.cname):
        failures.append(
            f"expected a CNAME to {plan.cname}, got " + (targets[0] if targets else "no CNAME")
        )
    expected: dict[str, Any] = {"rcode": plan.rcode}
    if plan.answers is not None:
        expected["answers"] = sorted(plan.answers)
    if plan.cname is not None:
        expected["cname"] = plan.cname
    observed: dict[str, Any] = {
        "server": result.server,
        "rcode": result.rcode or result.error,
        "answers": sorted(got),
        "cname_chain": [norm(n) for n in result.cname_chain],
        "tried": list(result.tried),
    }
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{plan.qtype} {plan.name}",
        protocol="DNS",
        connections=1,
        expected=expected,
        observed=observed,
        failures=failures,
        seconds=seconds,
        derived=check.spec.derived,
        kind="dns",
        description=check.spec.description,
    )


def _judge_capture(
    check: ResolvedConnect,
    answered: list[Observation],
    captures: dict[str, list[CapturedPacket]],
    observed: dict[str, Any],
) -> list[str]:
    """For every answered connection, its SYN must have been captured in the pod that answered,
    already DNATed to that pod's own address and target port, from the address the pod reported,
    and in no other pod."""
    syns = {
        pod: [p for p in pkts if p.proto == "TCP" and "S" in p.flags and "A" not in p.flags]
        for pod, pkts in captures.items()
    }
    by_source = {pod: {(p.src, p.sport): p for p in pkts} for pod, pkts in syns.items()}
    answered_by: dict[str, set[tuple[str, int]]] = {}
    for o in answered:
        answered_by.setdefault(o.hostname, set()).add((o.client_ip, o.client_port))
    problems: list[str] = []
    seen = 0
    example = ""
    for o in answered:
        key = (o.client_ip, o.client_port)
        backend = next((b for b in check.backends if b.pod == o.hostname), None)
        if backend is None:
            problems.append(f"{o.hostname} answered but is not an endpoint")
            continue
        syn = by_source.get(backend.pod, {}).get(key)
        if syn is None:
            problems.append(f"no SYN from {key[0]}:{key[1]} was captured in {backend.pod}")
            continue
        if (syn.dst, syn.dport) != (backend.ip, backend.port):
            problems.append(
                f"the SYN reached {backend.pod} addressed to {syn.dst}:{syn.dport}, "
                f"not its own {backend.ip}:{backend.port}"
            )
            continue
        # A SYN with the same source elsewhere is only suspect if that pod did not itself answer
        # a connection from that address and port: a node dialling pods (the userspace proxy)
        # may use one source port towards two different pods.
        elsewhere = [
            pod
            for pod, table in by_source.items()
            if pod != backend.pod and key in table and key not in answered_by.get(pod, set())
        ]
        if elsewhere:
            problems.append(f"the SYN from {key[0]}:{key[1]} also reached {', '.join(elsewhere)}")
            continue
        seen += 1
        example = example or (
            f"{check.dest_ip}:{check.dest_port} -> {syn.dst}:{syn.dport} in {backend.pod} "
            f"(SYN from {syn.src}:{syn.sport})"
        )
    observed["captured_syns"] = {pod: len(pkts) for pod, pkts in syns.items()}
    observed["dnat_seen"] = f"{seen}/{len(answered)}"
    if example:
        observed["dnat_example"] = example
    if not answered:
        return ["no connection was answered, so no SYN could be matched"]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return problems[:3] + ([more.strip()] if more else [])
    return []
