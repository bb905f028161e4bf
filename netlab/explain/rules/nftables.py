"""nftables mode, explained from the renderer's own :class:`Ruleset`: the map entries that lead
to the Service, its chains rule by rule, and the fixed part of the table (setupNFTables) that
every Service relies on."""

from __future__ import annotations

import re

from netlab.explain.rules.lang import TITLES, Text, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.proxy.nftables.objects import (
    CLUSTER_IPS,
    FIREWALL_IPS,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
)
from netlab.proxy.nftables.render import Ruleset, service_objects
from netlab.proxy.nftables.setup import setup

# fmt: off
T: dict[str, Text] = {
    "base": (
        "A base chain: the kernel runs it at the {hook} hook with priority {priority}; kube-proxy "
        "owns its whole table, so it needs no jumps from anyone else's chains.",
        "一条基础链:内核在 {hook} 钩子处以优先级 {priority} 执行它;kube-proxy 拥有整张表,不需要从"
        "别人的链跳进来。"),
    "jump": (
        "From the base chain {chain}, {new}every packet goes to {target}.",
        "在基础链 {chain} 中,{new_zh}每个数据包都交给 {target}。"),
    "dispatch": (
        "One lookup for every Service: the packet's (address, protocol, port) is looked up in the "
        "verdict map @service-ips and the match sends it to its Service's chain; the cost does "
        "not grow with the number of Services, unlike iptables' list of rules.",
        "所有 Service 共用一次查找:用数据包的(地址、协议、端口)去查判决映射 @service-ips,命中就交给"
        "对应 Service 的链;开销不随 Service 数量增长,不像 iptables 的规则列表。"),
    "dispatch-nodeports": (
        "Packets to a local address (not 127.0.0.0/8) are looked up by (protocol, port) in "
        "@service-nodeports: that is what a NodePort is.",
        "发往本机地址(127.0.0.0/8 除外)的数据包按(协议、端口)在 @service-nodeports 中查找:"
        "这就是 NodePort。"),
    "dispatch-nodeport-ips": (
        "Packets to an address in @nodeport-ips (kube-proxy's nodePortAddresses; nftables "
        "mode's default is the node's primary IP alone) are looked up by (protocol, port) in "
        "@service-nodeports: that is what a NodePort is.",
        "发往 @nodeport-ips 中地址(kube-proxy 的 nodePortAddresses;nftables 模式默认只有节点的"
        "主 IP)的数据包按(协议、端口)在 @service-nodeports 中查找:这就是 NodePort。"),
    "no-endpoints-check": (
        "New connections are looked up in @no-endpoint-services: a Service without endpoints "
        "gets its reject or drop verdict here, in a filter chain, before any NAT.",
        "新连接在 @no-endpoint-services 中查找:没有端点的 Service 在这里(filter 链,NAT 之前)得到"
        "reject 或 drop 的判决。"),
    "no-endpoints-nodeports": (
        "The same for NodePorts: @no-endpoint-nodeports, by (protocol, port).",
        "NodePort 也一样:按(协议、端口)查 @no-endpoint-nodeports。"),
    "reject": (
        "Rejects the packet (an ICMP port unreachable), so the client sees \"connection "
        "refused\" at once.",
        "拒绝数据包(返回 ICMP 端口不可达),客户端立刻看到\"connection refused\"。"),
    "firewall-check": (
        "New connections to an address in @firewall-ips go to that Service's firewall chain "
        "(loadBalancerSourceRanges), before DNAT.",
        "发往 @firewall-ips 中地址的新连接在 DNAT 之前交给该 Service 的防火墙链"
        "(loadBalancerSourceRanges)。"),
    "cluster-ips-reject": (
        "Rejects traffic to a ClusterIP on a port no Service uses: what reaches this rule "
        "matched no entry of @service-ips.",
        "拒绝发往 ClusterIP 上没有 Service 使用的端口的流量:走到这条规则的包没有命中 @service-ips"
        "。"),
    "cluster-ips-drop": (
        "Drops traffic to addresses of the service range ({cidr}) that no Service has.",
        "丢弃发往服务网段({cidr})中未分配给任何 Service 的地址的流量。"),
    "mark": (
        "Sets bit {mark} of the packet mark: \"masquerade this on the way out\".",
        "设置数据包标记的 {mark} 位:\"出去时做伪装\"。"),
    "masq-return": (
        "Packets without the mark keep their source address.",
        "没有标记的包保留源地址。"),
    "masq-xor": (
        "Clears the mark, so a packet crossing the stack again is not masqueraded twice.",
        "清除标记,避免包再次经过协议栈时被重复伪装。"),
    "masq": (
        "Masquerades marked packets (source = the outgoing interface's address, random port), "
        "so replies come back to this node, which undoes the DNAT.",
        "对带标记的包做伪装(源地址换成出口网卡地址,端口随机),让回复回到本节点,由它撤销 DNAT。"),
    "elem-cluster-ips": (
        "{ip} is an active ClusterIP: cluster-ips-check rejects its ports that no Service uses.",
        "{ip} 是一个在用的 ClusterIP:cluster-ips-check 会拒绝它上面没有 Service 使用的端口。"),
    "elem-service-ips": (
        "{dest} ({what}) leads to {target}.",
        "{dest}({what_zh})通向 {target}。"),
    "elem-nodeports": (
        "NodePort {proto} {port} on any local address leads to {target}.",
        "本机任意地址上的 NodePort {proto} {port} 通向 {target}。"),
    "elem-no-endpoints": (
        "{dest} has no usable endpoint: its new connections get \"{verdict}\".",
        "{dest} 没有可用端点:它的新连接得到\"{verdict}\"。"),
    "elem-firewall": (
        "{dest} is checked against loadBalancerSourceRanges in {target}.",
        "{dest} 在 {target} 中按 loadBalancerSourceRanges 检查。"),
    "svc-masq": (
        "Marks for masquerade packets to {ip} that do not come from a pod (not from {cidr}): "
        "otherwise the pod would answer the node or outside host directly, around the DNAT.",
        "给不是来自 Pod(源地址不在 {cidr} 内)、发往 {ip} 的包打上伪装标记:否则 Pod 会绕过 DNAT "
        "直接回复节点或外部主机。"),
    "svc-masq-all": (
        "Marks every packet to {ip} for masquerade (--masquerade-all).",
        "给所有发往 {ip} 的包打上伪装标记(--masquerade-all)。"),
    "pick-vmap": (
        "Picks one of the {n} endpoints at random: numgen draws 0..{last} and the anonymous "
        "verdict map sends the packet to that endpoint's chain; conntrack keeps the choice "
        "for the rest of the connection.",
        "在 {n} 个端点中随机选一个:numgen 产生 0..{last},匿名判决映射把包交给对应端点的链;"
        "conntrack 在连接余下的部分保持这个选择。"),
    "pick-cascade": (
        "Picks {target} with probability 1/{k} of the endpoints left (netlab's fast layout: the "
        "same odds without an anonymous map).",
        "以剩余端点 1/{k} 的概率选择 {target}(netlab 的 fast 布局:概率相同,但不用匿名映射)。"),
    "pick-goto": (
        "Goes to {target}{why}.",
        "交给 {target}{why_zh}。"),
    "affinity": (
        "Session affinity: a client address in {set} (seen recently) goes back to {target}.",
        "会话亲和:在 {set} 中(最近出现过)的客户端地址回到 {target}。"),
    "affinity-update": (
        "Records the client address in {set} (session affinity).",
        "把客户端地址记入 {set}(会话亲和)。"),
    "ep-hairpin": (
        "Marks for masquerade a packet from the endpoint itself ({ip}): a pod reaching itself "
        "through its Service must see another source.",
        "给来自端点自身({ip})的包打上伪装标记:Pod 通过自己的 Service 访问自己时必须看到另一个源地"
        "址。"),
    "ep-dnat": (
        "Rewrites the destination to {endpoint} (DNAT): here the Service becomes a pod; "
        "conntrack undoes it on the replies.",
        "把目的地址改写为 {endpoint}(DNAT):Service 在这里变成 Pod;conntrack 在回复上撤销它。"),
    "ext-masq": (
        "Marks traffic from outside for masquerade (externalTrafficPolicy Cluster: the endpoint "
        "may be on another node, and the reply must come back here).",
        "给外部流量打上伪装标记(externalTrafficPolicy 为 Cluster:端点可能在别的节点上,回复必须回"
        "到这里)。"),
    "ext-pod": (
        "Pods ({cidr}) go to {target}, all endpoints: Local policy is about outside clients.",
        "Pod({cidr})交给 {target}(所有端点):Local 策略针对的是集群外的客户端。"),
    "ext-local-masq": (
        "Traffic from the node itself is marked for masquerade (its source would be the VIP).",
        "来自节点本身的流量打上伪装标记(它的源地址会是 VIP)。"),
    "ext-local-route": (
        "Traffic from the node itself goes to {target}, all endpoints.",
        "来自节点本身的流量交给 {target}(所有端点)。"),
    "ext-policy": (
        "Everything else goes to {target}, the endpoints the traffic policy allows.",
        "其余流量交给 {target},即流量策略允许的端点。"),
    "fw-drop": (
        "Drops sources outside {sources} (loadBalancerSourceRanges).",
        "丢弃 {sources}(loadBalancerSourceRanges)之外的来源。"),
    "fw-return": (
        "Lets {source} through (loadBalancerSourceRanges).",
        "放行 {source}(loadBalancerSourceRanges)。"),
    "fw-drop-rest": (
        "Drops every other source.",
        "丢弃其他所有来源。"),
    "other": (
        "A rule kube-proxy writes in {chain}.",
        "kube-proxy 写在 {chain} 里的一条规则。"),
}
# fmt: on

_RULE = re.compile(r"^add rule ip kube-proxy (?P<chain>\S+) (?P<rule>.*)$")
_BASE = re.compile(
    r"^add chain ip kube-proxy (?P<chain>\S+) \{ type \S+ hook (?P<hook>\S+) priority "
    r"(?P<prio>-?\d+) ;"
)
SHARED_CHAINS = (
    "services",
    "service-endpoints-check",
    "nodeport-endpoints-check",
    "reject-chain",
    "firewall-check",
    "cluster-ips-check",
    "mark-for-masquerade",
    "masquerading",
)


def _target(rule: str) -> str:
    m = re.search(r"(?:goto|jump) (\S+)", rule)
    return m.group(1) if m else ""


def explain_rule(chain: str, rule: str, lang: str) -> str:
    key, v = classify(chain, rule)
    return say(lang, T[key], **v)


def classify(chain: str, rule: str) -> tuple[str, dict[str, object]]:
    target = _target(rule)
    if chain.startswith(("filter-", "nat-")):
        new = "ct state new " in rule
        return "jump", {
            "chain": chain,
            "target": target,
            "new": "for a new connection, " if new else "",
            "new_zh": "对新连接," if new else "",
        }
    if chain == "services":
        if "@service-nodeports" not in rule:
            return "dispatch", {}
        return ("dispatch-nodeport-ips" if "@nodeport-ips" in rule else "dispatch-nodeports"), {}
    if chain == "service-endpoints-check":
        return "no-endpoints-check", {}
    if chain == "nodeport-endpoints-check":
        return "no-endpoints-nodeports", {}
    if chain == "reject-chain":
        return "reject", {}
    if chain == "firewall-check":
        return "firewall-check", {}
    if chain == "cluster-ips-check":
        if "reject" in rule:
            return "cluster-ips-reject", {}
        m = re.search(r"\{ (\S+) \}", rule)
        return "cluster-ips-drop", {"cidr": m.group(1) if m else ""}
    if chain == "mark-for-masquerade":
        return "mark", {"mark": rule.rsplit(" ", 1)[-1]}
    if chain == "masquerading":
        if rule.endswith("return"):
            return "masq-return", {}
        if " xor " in rule:
            return "masq-xor", {}
        return "masq", {}
    if chain.startswith(("service-", "local-")):
        m = re.match(r"ip daddr (\S+)(?: ip saddr != (\S+))? jump mark-for-masquerade", rule)
        if m:
            if m.group(2):
                return "svc-masq", {"ip": m.group(1), "cidr": m.group(2)}
            return "svc-masq-all", {"ip": m.group(1)}
        a = re.match(r"ip saddr @(\S+) goto (\S+)", rule)
        if a:
            return "affinity", {"set": a.group(1), "target": a.group(2)}
        v = re.match(r"numgen random mod (\d+) vmap", rule)
        if v:
            n = int(v.group(1))
            return "pick-vmap", {"n": n, "last": n - 1}
        c = re.match(r"numgen random mod (\d+) == 0 goto (\S+)", rule)
        if c:
            return "pick-cascade", {"k": c.group(1), "target": c.group(2)}
        return "pick-goto", {
            "target": target,
            "why": " (the only endpoint, or the last one left)",
            "why_zh": "(唯一的端点,或剩下的最后一个)",
        }
    if chain.startswith("endpoint-"):
        if "jump mark-for-masquerade" in rule:
            return "ep-hairpin", {"ip": rule.split()[2]}
        if rule.startswith("update @"):
            return "affinity-update", {"set": rule.split()[1].lstrip("@")}
        return "ep-dnat", {"endpoint": rule.rsplit(" ", 1)[-1]}
    if chain.startswith("external-"):
        if rule == "jump mark-for-masquerade":
            return "ext-masq", {}
        if "short-circuit pod traffic" in rule:
            return "ext-pod", {"cidr": rule.split()[2], "target": target}
        if "masquerade local traffic" in rule:
            return "ext-local-masq", {}
        if "short-circuit local traffic" in rule:
            return "ext-local-route", {"target": target}
        return "ext-policy", {"target": target}
    if chain.startswith("firewall-"):
        if "!=" in rule:
            m = re.search(r"\{ (.*) \}", rule)
            return "fw-drop", {"sources": m.group(1) if m else ""}
        if rule.endswith("return"):
            return "fw-return", {"source": rule.split()[2]}
        return "fw-drop-rest", {}
    return "other", {"chain": chain}


def _element(container: str, key: tuple[str, ...], value: str, comment: str, lang: str) -> str:
    dest = " . ".join(key)
    if container == CLUSTER_IPS:
        return say(lang, T["elem-cluster-ips"], ip=key[0])
    if container == SERVICE_IPS:
        return say(
            lang,
            T["elem-service-ips"],
            dest=dest,
            target=_target(value),
            what="a ClusterIP, external IP or load-balancer IP",
            what_zh="ClusterIP、外部 IP 或负载均衡 IP",
        )
    if container == SERVICE_NODEPORTS:
        return say(lang, T["elem-nodeports"], proto=key[0], port=key[1], target=_target(value))
    if container in (NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS):
        return say(lang, T["elem-no-endpoints"], dest=dest, verdict=value)
    if container == FIREWALL_IPS:
        return say(lang, T["elem-firewall"], dest=dest, target=_target(value))
    return say(lang, T["other"], chain=container)


def explain(ruleset: Ruleset, namespace: str, name: str, node: str, lang: str) -> Explanation:
    key = f"{namespace}/{name}"
    exp = Explanation(
        key,
        node,
        "nftables",
        lang,
        say(lang, TITLES["title"], service=key, node=node, mode="nftables"),
    )
    fixed: list[str] = []
    setup(
        fixed,
        first=False,
        masquerade_mark=ruleset.opts.masquerade_mark,
        service_cidr=ruleset.opts.service_cidr,
        nodeport_ips=ruleset.opts.nodeport_ips,
    )
    entry = Section(say(lang, TITLES["entry"]))
    shared = Section(say(lang, TITLES["shared"]))
    for line in fixed:
        b = _BASE.match(line)
        if b:
            entry.items.append(
                Item(
                    f"chain {b['chain']}",
                    line.removeprefix("add chain ip kube-proxy "),
                    say(lang, T["base"], hook=b["hook"], priority=b["prio"]),
                )
            )
            continue
        r = _RULE.match(line)
        if not r:
            continue
        where = f"chain {r['chain']}"
        item = Item(where, r["rule"], explain_rule(r["chain"], r["rule"], lang))
        if r["chain"].startswith(("filter-", "nat-")):
            entry.items.append(item)
        elif r["chain"] in SHARED_CHAINS:
            shared.items.append(item)
    dispatch = Section(say(lang, TITLES["dispatch"]))
    mine = Section(say(lang, TITLES["service"]))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for objs in service_objects(ruleset, namespace, name):
        for e in objs.elements:
            if (e.container, e.key) in seen:
                continue
            seen.add((e.container, e.key))
            dispatch.items.append(
                Item(
                    f"{'set' if e.container == CLUSTER_IPS else 'map'} {e.container}",
                    e.body(),
                    _element(e.container, e.key, e.value, e.comment, lang),
                )
            )
        for chain, rules in objs.chains.items():
            for rule in rules:
                mine.items.append(Item(f"chain {chain}", rule, explain_rule(chain, rule, lang)))
    exp.sections = [entry, dispatch, mine, shared]
    return exp
