"""iptables rules, recognised by their shape and explained: kube-proxy's iptables mode, the
iptables half of IPVS mode, and the userspace proxy's portals.

A rule is read the way a person reads ``iptables-save``: its chain, its comment, its matches and
its target. :func:`explain` returns one sentence for it, in the language asked, filled in from the
rule's own values (addresses, probabilities, chains).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from netlab.explain.rules.lang import Text, say


@dataclass(frozen=True)
class Rule:
    """One iptables rule line, taken apart."""

    line: str
    chain: str
    target: str = ""
    target_args: tuple[str, ...] = ()
    comment: str = ""
    values: dict[str, str] = field(default_factory=dict)  # "-d" -> "10.96.0.1", "--mode" -> ...
    negated: frozenset[str] = frozenset()  # flags written with "!" before them
    sets: tuple[str, ...] = ()  # ipset names matched

    def has(self, flag: str) -> bool:
        return flag in self.values


def parse(line: str) -> Rule:
    words = shlex.split(line)
    chain = words[1] if len(words) > 1 else ""
    i = 2
    if words and words[0] == "-I" and len(words) > 2 and words[2].isdigit():
        i = 3
    values: dict[str, str] = {}
    negated: set[str] = set()
    sets: list[str] = []
    target, target_args = "", tuple[str, ...]()
    neg = False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg = True
            i += 1
            continue
        if w == "-j":
            target = words[i + 1] if i + 1 < len(words) else ""
            target_args = tuple(words[i + 2 :])
            break
        if w.startswith("-"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("-") else ""
            if w == "--match-set":
                sets.append(value)
            values[w] = value
            if neg:
                negated.add(w)
            i += 2 if value else 1
        else:
            i += 1
        neg = False
    return Rule(
        line=line,
        chain=chain,
        target=target,
        target_args=target_args,
        comment=values.get("--comment", ""),
        values=values,
        negated=frozenset(negated),
        sets=tuple(sets),
    )


def _spn(comment: str) -> str:
    """The Service port name a kube-proxy comment starts with."""
    return comment.split(" ", 1)[0]


def _arg(rule: Rule, flag: str) -> str:
    args = list(rule.target_args)
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else ""


# The sentences. Each says what the rule does, then why kube-proxy writes it.
# fmt: off
T: dict[str, Text] = {
    "jump-nat-services": (
        "Sends every packet {where} through KUBE-SERVICES, where each Service's addresses are "
        "matched; kube-proxy hooks its own chains into the built-in ones once and keeps all its "
        "rules there.",
        "让每个{where_zh}的数据包经过 KUBE-SERVICES,在那里匹配每个 Service 的地址;kube-proxy 只在"
        "内置链里挂一次钩子,自己的规则都放在自己的链里。"),
    "jump-postrouting": (
        "Sends every packet leaving the node through KUBE-POSTROUTING, where packets marked for "
        "masquerade get the node's address as their source.",
        "让每个离开节点的数据包经过 KUBE-POSTROUTING,被标记为需要伪装的包在那里换成节点的源地址。"),
    "jump-filter-services": (
        "New connections {where} are checked in the filter table's KUBE-SERVICES, which rejects "
        "or drops traffic to Services that cannot be served (the nat table is for rewriting, "
        "not for refusing).",
        "{where_zh}的新连接在 filter 表的 KUBE-SERVICES 中检查:没法提供服务的 Service 在这里被拒绝"
        "或丢弃(nat 表只负责改写地址,不负责拒绝)。"),
    "jump-external-services": (
        "New connections {where} are checked in KUBE-EXTERNAL-SERVICES, which refuses NodePorts, "
        "external and load-balancer IPs that have no endpoint for outside traffic.",
        "{where_zh}的新连接在 KUBE-EXTERNAL-SERVICES 中检查:对外流量没有可用端点的 NodePort、外部"
        " IP "
        "和负载均衡 IP 在这里被拒绝。"),
    "jump-filter-nodeports": (
        "Packets to the node go through the filter table's KUBE-NODEPORTS, which opens "
        "healthCheckNodePorts whatever the node's own firewall says.",
        "发往节点本身的数据包经过 filter 表的 KUBE-NODEPORTS,它为 healthCheckNodePort 放行,不受节点"
        "自身防火墙影响。"),
    "jump-forward": (
        "Forwarded packets go through KUBE-FORWARD, so Service traffic is accepted even when the "
        "node's FORWARD policy is DROP.",
        "被转发的数据包经过 KUBE-FORWARD,这样即使节点 FORWARD 链的默认策略是 DROP,Service 流量也"
        "能通过。"),
    "jump-proxy-firewall": (
        "Packets {where} go through KUBE-PROXY-FIREWALL, which enforces "
        "loadBalancerSourceRanges.",
        "{where_zh}的数据包经过 KUBE-PROXY-FIREWALL,在那里执行 loadBalancerSourceRanges。"),
    "jump-firewall": (
        "Packets {where} go through KUBE-FIREWALL, which blocks martian traffic to 127.0.0.0/8 "
        "that route_localnet (needed for localhost NodePorts) would otherwise let in.",
        "{where_zh}的数据包经过 KUBE-FIREWALL:开启 route_localnet(localhost NodePort 需要)后,这条链"
        "挡住从外面发往 127.0.0.0/8 的异常流量。"),
    "jump-other": (
        "Sends packets {where} to {target}.",
        "把{where_zh}的数据包交给 {target}。"),
    "cluster-ip": (
        "Catches {proto} packets to the ClusterIP {ip}:{port} ({spn}) and sends them to the "
        "Service's chain {target}; a ClusterIP belongs to no interface, this match is all that "
        "makes it exist.",
        "截获发往 ClusterIP {ip}:{port}({spn})的 {proto} 数据包,交给该 Service 的链 {target};"
        "ClusterIP 不属于任何网卡,正是这条匹配让它存在。"),
    "external-ip": (
        "Catches {proto} packets to the external IP {ip}:{port} ({spn}) and sends them to "
        "{target}, the chain for traffic from outside the cluster.",
        "截获发往外部 IP {ip}:{port}({spn})的 {proto} 数据包,交给处理集群外流量的链 {target}。"),
    "lb-ip": (
        "Catches {proto} packets to the load-balancer IP {ip}:{port} ({spn}) and sends them to "
        "{target}; kube-proxy handles them on the node so they work even when the cloud's load "
        "balancer delivers them with the LB IP still as destination.",
        "截获发往负载均衡 IP {ip}:{port}({spn})的 {proto} 数据包,交给 {target};云负载均衡器送来的"
        "包目的地址仍是 LB IP,kube-proxy 在节点上直接处理它们。"),
    "nodeport": (
        "Catches {proto} packets to port {port} of any local address (the NodePort of {spn}) and "
        "sends them to {target}.",
        "截获发往本机任意地址 {port} 端口({spn} 的 NodePort)的 {proto} 数据包,交给 {target}。"),
    "health-check": (
        "Accepts connections to the healthCheckNodePort {port} of {spn}, where kube-proxy answers "
        "the cloud load balancer whether this node has local endpoints.",
        "放行到 {spn} 的 healthCheckNodePort {port} 的连接;kube-proxy 在这里告诉云负载均衡器本节点"
        "是否有本地端点。"),
    "reject-cluster-ip": (
        "Rejects new {proto} connections to {ip}:{port} ({spn}): it has no endpoints, and an ICMP "
        "port unreachable makes the client fail at once (\"connection refused\") instead of "
        "waiting for a timeout.",
        "拒绝到 {ip}:{port}({spn})的新 {proto} 连接:它没有端点,返回 ICMP 端口不可达能让客户端立刻"
        "失败(\"connection refused\"),而不是等到超时。"),
    "reject-external": (
        "Rejects new {proto} connections from outside to {dest} ({spn}): the Service has no "
        "endpoints at all.",
        "拒绝从外部到 {dest}({spn})的新 {proto} 连接:这个 Service 一个端点都没有。"),
    "drop-no-local": (
        "Drops new {proto} connections to {dest} ({spn}): with a Local traffic policy only this "
        "node's endpoints may serve, and it has none; dropping (not rejecting) lets a client "
        "or load balancer try elsewhere.",
        "丢弃到 {dest}({spn})的新 {proto} 连接:流量策略为 Local 时只能由本节点的端点服务,而本节点"
        "没有;丢弃(而不是拒绝)让客户端或负载均衡器去别处重试。"),
    "fw-drop": (
        "Drops packets to the load-balancer IP {ip}:{port} ({spn}) that were not DNATed: the "
        "nat table's {fw} only lets loadBalancerSourceRanges through, so what reaches this "
        "rule untranslated came from elsewhere.",
        "丢弃发往负载均衡 IP {ip}:{port}({spn})但没有被 DNAT 的数据包:nat 表的 {fw} 只放行 "
        "loadBalancerSourceRanges 中的来源,走到这里还没改写的包来自别处。"),
    "svc-masq": (
        "Marks for masquerade packets to the ClusterIP that do not come from a pod (source not in "
        "{cidr}): the node itself or an outside host would otherwise get the pod's answer "
        "directly, bypassing the node that must undo the DNAT.",
        "给不是来自 Pod(源地址不在 {cidr} 内)的 ClusterIP 流量打上伪装标记:否则节点本身或外部主机"
        "会直接收到 Pod 的回复,绕过必须撤销 DNAT 的那个节点。"),
    "svc-masq-all": (
        "Marks every packet to the ClusterIP for masquerade (--masquerade-all): backends then "
        "always see a node address.",
        "给所有发往 ClusterIP 的包打上伪装标记(--masquerade-all):后端看到的源地址总是节点地址。"),
    "ext-masq": (
        "Marks traffic from outside for masquerade: with externalTrafficPolicy Cluster the "
        "endpoint may be on another node, and its reply must come back through this node.",
        "给外部流量打上伪装标记:externalTrafficPolicy 为 Cluster 时端点可能在别的节点上,回复必须"
        "经过本节点返回。"),
    "ext-pod-shortcut": (
        "Sends traffic from pods ({cidr}) straight to {target}, all endpoints: Local policy is "
        "about outside clients, pods inside the cluster are served as for Cluster.",
        "来自 Pod({cidr})的流量直接交给 {target}(所有端点):Local 策略针对的是集群外的客户端,"
        "集群内的 Pod 按 Cluster 策略服务。"),
    "ext-local-masq": (
        "Marks traffic from the node itself for masquerade: its source would be the LB or "
        "external IP, which the endpoint cannot answer to.",
        "给来自节点本身的流量打上伪装标记:它的源地址会是 LB 或外部 IP,端点无法回复到那里。"),
    "ext-local-route": (
        "Sends traffic from the node itself to {target}, all endpoints, because it may have "
        "no local one.",
        "把来自节点本身的流量交给 {target}(所有端点),因为本节点可能没有本地端点。"),
    "ext-to-policy": (
        "Everything else goes on to {target}, the endpoints this traffic policy allows.",
        "其余流量继续交给 {target},即该流量策略允许的端点。"),
    "fw-allow": (
        "Lets packets from {source} (loadBalancerSourceRanges) on to {target}.",
        "放行来自 {source}(loadBalancerSourceRanges)的数据包,交给 {target}。"),
    "fw-end": (
        "Does nothing: it marks the end of the allowed sources; what falls through is not "
        "DNATed and KUBE-PROXY-FIREWALL drops it in the filter table.",
        "什么也不做:它标志允许来源的结束;落到这里的包不会被 DNAT,随后在 filter 表的 "
        "KUBE-PROXY-FIREWALL 中被丢弃。"),
    "affinity-check": (
        "Session affinity: a client seen within {seconds}s (the recent list {name}) goes back to "
        "the same endpoint, {target}.",
        "会话亲和:{seconds} 秒内出现过的客户端(recent 列表 {name})回到同一个端点 {target}。"),
    "pick-random": (
        "Picks endpoint {endpoint} with probability {p} (1/{left} of the endpoints still left), "
        "so each of the {n} endpoints gets 1/{n} of new connections; iptables has no load "
        "balancer, a cascade of random matches makes one.",
        "以 {p} 的概率选择端点 {endpoint}(剩余端点的 1/{left}),这样 {n} 个端点各得到 1/{n} 的新"
        "连接;iptables 没有负载均衡器,随机匹配的级联构成了一个。"),
    "pick-last": (
        "Otherwise picks the last endpoint, {endpoint}: the cascade's last step needs no "
        "probability.",
        "否则选择最后一个端点 {endpoint}:级联的最后一步不需要概率。"),
    "pick-only": (
        "Sends every connection to the only endpoint, {endpoint}.",
        "把所有连接交给唯一的端点 {endpoint}。"),
    "sep-hairpin": (
        "Marks for masquerade a packet from the endpoint itself ({ip}): a pod reaching itself "
        "through its Service (hairpin) must see another source, or it would answer itself "
        "directly and the connection would fail.",
        "给来自端点自身({ip})的数据包打上伪装标记:Pod 通过自己的 Service 访问自己(hairpin)时必须"
        "看到另一个源地址,否则它会直接回复自己,连接失败。"),
    "sep-dnat": (
        "Rewrites the destination to the endpoint {endpoint} (DNAT): here the Service becomes a "
        "pod; conntrack remembers it and undoes it on every reply.",
        "把目的地址改写为端点 {endpoint}(DNAT):Service 在这里变成 Pod;conntrack 记住这次改写,"
        "并在每个回复上撤销它。"),
    "sep-dnat-affinity": (
        "Records the client in the recent list {name} (session affinity), then rewrites the "
        "destination to the endpoint {endpoint} (DNAT).",
        "把客户端记入 recent 列表 {name}(会话亲和),然后把目的地址改写为端点 {endpoint}(DNAT)。"),
    "mark-masq": (
        "Sets bit {mark} of the packet mark: \"masquerade this on the way out\"; rules decide it "
        "early (where the reason is known) and KUBE-POSTROUTING acts on it late.",
        "设置数据包标记的 {mark} 位,意思是\"出去时做伪装\";规则在知道原因的地方早早决定,"
        "KUBE-POSTROUTING 在最后执行。"),
    "post-return": (
        "Leaves packets without the {mark} mark alone: most traffic keeps its source address.",
        "没有 {mark} 标记的包不做处理:大多数流量保留原来的源地址。"),
    "post-xor": (
        "Clears the mark, so a packet that crosses the stack again is not masqueraded twice.",
        "清除标记,避免包再次经过协议栈时被重复伪装。"),
    "post-masq": (
        "Masquerades the marked packet: its source becomes the address of the interface it "
        "leaves by{random}, so the reply comes back to this node and conntrack can undo the "
        "DNAT.",
        "对带标记的包做伪装:源地址改成它离开时所走网卡的地址{random_zh},这样回复会回到本节点,"
        "conntrack 才能撤销 DNAT。"),
    "nodeports-last": (
        "Last rule of KUBE-SERVICES: packets to a local address that matched no Service go to "
        "KUBE-NODEPORTS{localhost}; last, so a ClusterIP or LB IP never counts as a NodePort.",
        "KUBE-SERVICES 的最后一条:没有匹配任何 Service 的、发往本机地址的包交给 KUBE-NODEPORTS"
        "{localhost_zh};放在最后,是为了 ClusterIP 或 LB IP 不会被当成 NodePort。"),
    "forward-invalid": (
        "Drops packets conntrack finds INVALID: a late or out-of-window TCP segment would "
        "otherwise be forwarded without the NAT its connection had, and reset it.",
        "丢弃 conntrack 判定为 INVALID 的包:迟到或超出窗口的 TCP 段否则会不经 NAT 被转发,"
        "把连接重置。"),
    "forward-mark": (
        "Accepts forwarded packets marked for masquerade (Service traffic), whatever the "
        "FORWARD policy.",
        "接受带伪装标记的被转发数据包(Service 流量),不受 FORWARD 默认策略影响。"),
    "forward-ct": (
        "Accepts the rest of a connection already accepted (RELATED, ESTABLISHED).",
        "接受已被接受的连接的后续数据包(RELATED、ESTABLISHED)。"),
    "firewall-localnet": (
        "Drops packets to 127.0.0.0/8 from elsewhere unless conntrack knows them: route_localnet "
        "lets localhost NodePorts work, and this closes the hole it opens (CVE-2020-8558).",
        "丢弃从别处发往 127.0.0.0/8 且不被 conntrack 认识的包:route_localnet 让 localhost NodePort "
        "可用,这条规则堵上它打开的漏洞(CVE-2020-8558)。"),
    "other": (
        "A rule kube-proxy writes in {chain}.",
        "kube-proxy 写在 {chain} 里的一条规则。"),
}
# fmt: on

_WHERE: dict[str, tuple[str, str]] = {
    "PREROUTING": ("arriving at the node", "到达节点"),
    "OUTPUT": ("sent by the node itself", "节点自己发出"),
    "FORWARD": ("forwarded by the node", "经节点转发"),
    "INPUT": ("addressed to the node", "发往节点本身"),
    "POSTROUTING": ("leaving the node", "离开节点"),
}


def explain(rule: Rule, lang: str, table: str, endpoints: int = 0) -> str:
    """One sentence on ``rule`` (of ``table``) in ``lang``; ``endpoints`` is how many endpoints
    the rule's Service chain chooses among (for the probability cascade)."""
    key, values = classify(rule, table, endpoints)
    return say(lang, T[key], **values)


def classify(rule: Rule, table: str, endpoints: int = 0) -> tuple[str, dict[str, object]]:
    c, t, comment = rule.chain, rule.target, rule.comment
    proto = rule.values.get("-p", "").upper()
    spn = _spn(comment)
    ip = rule.values.get("-d", "").removesuffix("/32")
    port = rule.values.get("--dport", "")
    if c in _WHERE:
        where, where_zh = _WHERE[c]
        values: dict[str, object] = {"where": where, "where_zh": where_zh, "target": t}
        key = {
            ("nat", "KUBE-SERVICES"): "jump-nat-services",
            ("nat", "KUBE-POSTROUTING"): "jump-postrouting",
            ("filter", "KUBE-SERVICES"): "jump-filter-services",
            ("filter", "KUBE-EXTERNAL-SERVICES"): "jump-external-services",
            ("filter", "KUBE-NODEPORTS"): "jump-filter-nodeports",
            ("filter", "KUBE-FORWARD"): "jump-forward",
            ("filter", "KUBE-PROXY-FIREWALL"): "jump-proxy-firewall",
            ("filter", "KUBE-FIREWALL"): "jump-firewall",
        }.get((table, t), "jump-other")
        return key, values
    v: dict[str, object] = {"proto": proto, "spn": spn, "ip": ip, "port": port, "target": t}
    if c == "KUBE-SERVICES" and table == "nat":
        if comment.endswith(" cluster IP"):
            return "cluster-ip", v
        if comment.endswith(" external IP"):
            return "external-ip", v
        if comment.endswith(" loadbalancer IP"):
            return "lb-ip", v
        if t == "KUBE-NODEPORTS":
            local = "" if "-d" not in rule.negated else " (not 127.0.0.0/8)"
            local_zh = "" if "-d" not in rule.negated else "(127.0.0.0/8 除外)"
            return "nodeports-last", {"localhost": local, "localhost_zh": local_zh}
    if c == "KUBE-NODEPORTS" and table == "nat":
        return "nodeport", v
    if c == "KUBE-NODEPORTS" and table == "filter" and t == "ACCEPT":
        return "health-check", v
    if t in ("REJECT", "DROP") and comment.endswith(("has no endpoints", "has no local endpoints")):
        spn = _spn(comment)
        dest = f"{ip}:{port}" if ip else f"NodePort {port}"
        v.update(spn=spn, dest=dest)
        if t == "DROP":
            return "drop-no-local", v
        return ("reject-cluster-ip" if c == "KUBE-SERVICES" else "reject-external"), v
    if c == "KUBE-PROXY-FIREWALL" and t == "DROP":
        v["fw"] = comment.rsplit(" ", 1)[-1]
        return "fw-drop", v
    if c.startswith(("KUBE-SVC-", "KUBE-SVL-")):
        if t == "KUBE-MARK-MASQ":
            if "-s" in rule.negated:
                return "svc-masq", {"cidr": rule.values["-s"]}
            return "svc-masq-all", {}
        endpoint = comment.split(" -> ", 1)[-1] if " -> " in comment else t
        if rule.has("--rcheck"):
            return "affinity-check", {
                "seconds": rule.values.get("--seconds", ""),
                "name": rule.values.get("--name", ""),
                "target": t,
            }
        if rule.has("--probability"):
            p = float(rule.values["--probability"])
            left = round(1 / p) if p else 0
            return "pick-random", {
                "endpoint": endpoint,
                "p": rule.values["--probability"],
                "left": left,
                "n": endpoints or left,
            }
        return ("pick-only" if endpoints == 1 else "pick-last"), {"endpoint": endpoint}
    if c.startswith("KUBE-EXT-"):
        if "masquerade traffic for" in comment:
            return "ext-masq", {}
        if comment.startswith("pod traffic for"):
            return "ext-pod-shortcut", {"cidr": rule.values.get("-s", ""), "target": t}
        if comment.startswith("masquerade LOCAL"):
            return "ext-local-masq", {}
        if comment.startswith("route LOCAL"):
            return "ext-local-route", {"target": t}
        return "ext-to-policy", {"target": t}
    if c.startswith("KUBE-FW-"):
        if not t:
            return "fw-end", {}
        return "fw-allow", {"source": rule.values.get("-s", ""), "target": t}
    if c.startswith("KUBE-SEP-"):
        if t == "KUBE-MARK-MASQ":
            return "sep-hairpin", {"ip": rule.values.get("-s", "").removesuffix("/32")}
        if t == "DNAT":
            endpoint = _arg(rule, "--to-destination")
            if rule.has("--set"):
                return "sep-dnat-affinity", {"endpoint": endpoint, "name": rule.values["--name"]}
            return "sep-dnat", {"endpoint": endpoint}
    if c == "KUBE-MARK-MASQ":
        return "mark-masq", {"mark": _arg(rule, "--or-mark") or _arg(rule, "--set-xmark")}
    if c == "KUBE-POSTROUTING":
        if t == "RETURN":
            return "post-return", {"mark": rule.values.get("--mark", "").split("/")[0]}
        if t == "MARK":
            return "post-xor", {}
        if t == "MASQUERADE":
            fully = "--random-fully" in rule.target_args
            return "post-masq", {
                "random": " and a random port (--random-fully)" if fully else "",
                "random_zh": ",源端口随机选取(--random-fully)" if fully else "",
            }
    if c == "KUBE-FORWARD":
        state = rule.values.get("--ctstate", "")
        if state == "INVALID":
            return "forward-invalid", {}
        if rule.has("--mark"):
            return "forward-mark", {}
        return "forward-ct", {}
    if c == "KUBE-FIREWALL":
        return "firewall-localnet", {}
    return "other", {"chain": c}
