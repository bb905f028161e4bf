"""The ebpf mode's views of decoded map entries (what ``netlab rules`` and ``netlab conntrack``
print), on entries written here as the BTF codecs decode them: integers, addresses as the
integer of their network-order bytes."""

from __future__ import annotations

import ipaddress

from netlab.proxy.ebpf import render as r
from netlab.proxy.ebpf import view


def a(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def decoded() -> view.Decoded:
    fe = {"address": a("10.96.0.10"), "dport": 80, "proto": 6, "scope": 0}
    d = view.Decoded()
    d.services = [
        ({**fe, "backend_slot": 0}, {"count": 1, "rev_nat_index": 3, "flags": 0, "flags2": 0}),
        ({**fe, "backend_slot": 1}, {"backend_id": 7, "rev_nat_index": 3}),
    ]
    d.backends = {7: {"address": a("10.244.1.5"), "port": 8080, "proto": 6, "flags": 0}}
    ct_key = {"saddr": a("10.244.1.4"), "daddr": a("10.96.0.10"), "sport": 40000, "dport": 80}
    d.ct = [
        ({**ct_key, "nexthdr": 6, "flags": view.TUPLE_F_SERVICE}, {"backend_id": 7}),
        ({**ct_key, "nexthdr": 6, "flags": 0}, {"backend_id": 0}),  # not a service entry
    ]
    return d


def test_service_connections_join_the_conntrack_entry_with_its_backend() -> None:
    assert view.service_connections(decoded()) == [
        ("TCP", ("10.244.1.4", 40000), ("10.96.0.10", 80), ("10.244.1.5", 8080))
    ]


def test_lb_list_shows_slot_0_with_the_flag_words_then_the_slots() -> None:
    lines = view.lb_list(decoded()).splitlines()
    assert lines[0].split() == ["SERVICE", "ADDRESS", "BACKEND", "ADDRESS", "(REVNAT_ID)", "(SLOT)"]
    assert lines[1].split() == [
        "10.96.0.10:80/TCP",
        "0.0.0.0:0",
        "(3)",
        "(0)",
        "[ClusterIP,",
        "non-routable]",
    ]
    assert lines[2].split() == ["10.244.1.5:8080/TCP", "(3)", "(1)"]
    assert view.flag_words(r.SVC_FLAG_NODEPORT | r.SVC_FLAG_ROUTABLE, 0) == "NodePort"
