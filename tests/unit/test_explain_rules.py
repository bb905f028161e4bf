"""``netlab explain`` for every mode and both languages, on every shipped scenario: every rule the
renderers write is recognised (none falls back to the catch-all sentence), the sentences are in
the language asked, and they carry the rule's own values."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from netlab.checks.validate import load_and_validate
from netlab.cluster.state import ClusterState
from netlab.explain.rules import nftables as nft_rules
from netlab.explain.rules import xtables
from netlab.explain.rules.lang import LANGS, say
from netlab.lab.learn import explain
from netlab.lab.record import LabRecord
from netlab.proxy.base import Proxier
from netlab.proxy.registry import MODES, make_proxier
from netlab.proxy.servicemap import is_proxied

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(glob.glob(str(ROOT / "scenarios" / "*.yaml")))
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class FakeLab:
    """What explain reads of a lab: its state, mode and proxier (no kernel involved)."""

    name: str
    state: ClusterState
    proxier: Proxier
    record: LabRecord


def lab_for(path: str, mode: str) -> FakeLab:
    _, state = load_and_validate(path)
    record = LabRecord(name="t", scenario=path, created=0, status="up", mode=mode, cluster=state)
    return FakeLab("t", state, make_proxier(mode, state), record)


FALLBACK_PREFIXES = tuple(
    say(lang, t, chain="\0").split("\0")[0]
    for lang in LANGS
    for t in (xtables.T["other"], nft_rules.T["other"])
)


def _fallback(why: str) -> bool:
    """The catch-all sentence: the rule's shape was not recognised."""
    return why.startswith(FALLBACK_PREFIXES)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_every_rule_of_every_service_is_explained(path: str, mode: str) -> None:
    lab = lab_for(path, mode)
    for svc in lab.state.services:
        for node in lab.state.nodes:
            for lang in LANGS:
                exp = explain(lab, f"{svc.meta.namespace}/{svc.meta.name}", node.name, lang)
                items = [i for s in exp.sections for i in s.items]
                assert items, (svc.meta.name, node.name)
                unknown = [i.text for i in items if _fallback(i.why)]
                assert unknown == [], (svc.meta.name, mode, unknown)
                for i in items:
                    assert bool(CJK.search(i.why)) == (lang == "zh"), i.why
                    assert "{" not in i.why.replace("{ ", "").replace(" }", ""), i.why
                text = "\n".join(exp.lines())
                if is_proxied(svc) and mode != "userspace":
                    assert svc.cluster_ip in text


def test_the_probability_cascade_is_explained_with_its_numbers() -> None:
    lab = lab_for(str(ROOT / "scenarios" / "clusterip.yaml"), "iptables")
    exp = explain(lab, "service/web", "node-1", "en")
    picks = [i.why for s in exp.sections for i in s.items if "--probability" in i.text]
    http = [w for w in picks if "0.3333333333" in w or "0.5000000000" in w]
    assert any(
        "with probability 0.3333333333 (1/3 of the endpoints still left)" in w
        and "each of the 3 endpoints gets 1/3" in w
        for w in http
    )
    assert any("with probability 0.5000000000 (1/2 of the endpoints still left)" in w for w in http)
    last = [i.why for s in exp.sections for i in s.items if i.why.startswith("Otherwise picks")]
    assert last
    zh = explain(lab, "service/web", "node-1", "zh")
    assert (
        zh.title == "节点 node-1 上的 Service default/web(iptables 模式):kube-proxy 写了什么,为什么"
    )


def test_a_headless_service_has_nothing_to_explain_and_says_why() -> None:
    lab = lab_for(str(ROOT / "scenarios" / "headless.yaml"), "nftables")
    headless = next(s for s in lab.state.services if s.headless)
    exp = explain(lab, f"{headless.meta.namespace}/{headless.meta.name}", None, "en")
    (item,) = [i for s in exp.sections for i in s.items]
    assert "headless (clusterIP: None)" in item.why


def test_no_endpoints_rules_are_the_reject_and_the_drop() -> None:
    lab = lab_for(str(ROOT / "scenarios" / "no-endpoints.yaml"), "iptables")
    exp = explain(lab, "nobody", "node-1", "en")
    whys = [i.why for s in exp.sections for i in s.items if "-j REJECT" in i.text]
    assert any(w.startswith("Rejects new TCP connections to ") for w in whys)
    local = explain(lab, "node-local", "node-1", "en")
    drops = [i.why for s in local.sections for i in s.items if i.text.endswith("-j DROP")]
    assert drops and drops[0].startswith("Drops new TCP connections to ")


def test_nftables_nodeports_are_explained_by_the_addresses_that_serve_them() -> None:
    """nftables mode's default nodePortAddresses is the node's primary IP: the dispatch rule
    matches @nodeport-ips, not every local address, and is explained so."""
    lab = lab_for(str(ROOT / "scenarios" / "nodeport.yaml"), "nftables")
    exp = explain(lab, "web", "node-1", "en")
    rules = [i for s in exp.sections for i in s.items if "@service-nodeports" in i.text]
    assert [i.text.split("] ", 1)[-1] for i in rules] == [
        "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    ]
    assert "primary IP" in rules[0].why
