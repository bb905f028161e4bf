"""IPVS mode, explained from the renderer's :class:`IpvsRuleSet`: the Service's virtual and real
servers, its addresses on kube-ipvs0, its ipset entries, and the handful of iptables rules every
Service shares (they match the ipsets, not one rule per Service)."""

from __future__ import annotations

from netlab.explain.rules import xtables
from netlab.explain.rules.lang import TITLES, Text, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.proxy.ipvs.render import DUMMY_DEVICE, IpvsRuleSet
from netlab.proxy.ipvs.servers import ipvsadm_dest_line, ipvsadm_service_line

# fmt: off
T: dict[str, Text] = {
    "vs": (
        "IPVS virtual server {vs}, scheduler {sched}: the kernel's own load balancer takes new "
        "connections to this address at the INPUT hook and hands each to a real server in "
        "turn{persist}; one hash lookup, however many Services there are.",
        "IPVS 虚拟服务器 {vs},调度算法 {sched}:内核自带的负载均衡器在 INPUT 钩子处接管发往这个地"
        "址的"
        "新连接,依次交给各个真实服务器{persist_zh};无论有多少 Service,都只是一次哈希查找。"),
    "rs": (
        "Real server {rs} (forwarding Masq, i.e. NAT: IPVS rewrites the destination as DNAT "
        "would; weight {weight}).",
        "真实服务器 {rs}(转发方式 Masq,即 NAT:IPVS 像 DNAT 一样改写目的地址;权重 {weight})。"),
    "no-rs": (
        "The virtual server has no real server: a new connection finds nowhere to go and is "
        "refused.",
        "这个虚拟服务器没有真实服务器:新连接无处可去,被拒绝。"),
    "bind": (
        "{ip} is bound to the dummy device kube-ipvs0, which stays down: the address becomes "
        "local, so its packets reach INPUT where IPVS waits, and a down device answers no ARP.",
        "{ip} 绑定在虚拟网卡 kube-ipvs0 上(保持 down 状态):地址因此成为本机地址,发往它的包进入 "
        "INPUT,IPVS 在那里等待;网卡是 down 的,所以不会应答 ARP。"),
    "KUBE-CLUSTER-IP": (
        "{entry}: a ClusterIP and port; rules match the set instead of one rule per Service "
        "(masquerade from outside the pod network, accept in KUBE-SERVICES and KUBE-IPVS-FILTER).",
        "{entry}:一个 ClusterIP 和端口;规则匹配这个集合,而不是每个 Service 一条规则(对 Pod 网络之"
        "外的"
        "来源做伪装,在 KUBE-SERVICES 和 KUBE-IPVS-FILTER 中放行)。"),
    "KUBE-LOOP-BACK": (
        "{entry}: an endpoint reaching itself (hairpin); KUBE-POSTROUTING masquerades it so the "
        "pod sees another source.",
        "{entry}:端点访问自己(hairpin);KUBE-POSTROUTING 对它做伪装,让 Pod 看到另一个源地址。"),
    "KUBE-NODE-PORT-TCP": (
        "{entry}: a TCP NodePort; KUBE-NODE-PORT marks its traffic for masquerade.",
        "{entry}:一个 TCP NodePort;KUBE-NODE-PORT 给它的流量打上伪装标记。"),
    "KUBE-NODE-PORT-UDP": (
        "{entry}: a UDP NodePort; KUBE-NODE-PORT marks its traffic for masquerade.",
        "{entry}:一个 UDP NodePort;KUBE-NODE-PORT 给它的流量打上伪装标记。"),
    "KUBE-NODE-PORT-LOCAL-TCP": (
        "{entry}: a TCP NodePort with externalTrafficPolicy Local: returned before the "
        "masquerade rule, so the client address is kept.",
        "{entry}:externalTrafficPolicy 为 Local 的 TCP NodePort:在伪装规则之前返回,保留客户端地址"
        "。"),
    "KUBE-NODE-PORT-LOCAL-UDP": (
        "{entry}: a UDP NodePort with externalTrafficPolicy Local: the client address is kept.",
        "{entry}:externalTrafficPolicy 为 Local 的 UDP NodePort:保留客户端地址。"),
    "KUBE-LOAD-BALANCER": (
        "{entry}: a load-balancer IP and port; KUBE-LOAD-BALANCER marks its traffic for "
        "masquerade.",
        "{entry}:一个负载均衡 IP 和端口;KUBE-LOAD-BALANCER 给它的流量打上伪装标记。"),
    "KUBE-LOAD-BALANCER-LOCAL": (
        "{entry}: a load-balancer IP with externalTrafficPolicy Local: not masqueraded.",
        "{entry}:externalTrafficPolicy 为 Local 的负载均衡 IP:不做伪装。"),
    "KUBE-LOAD-BALANCER-FW": (
        "{entry}: a load-balancer IP with loadBalancerSourceRanges; its sources are checked in "
        "KUBE-SOURCE-RANGES-FIREWALL.",
        "{entry}:设置了 loadBalancerSourceRanges 的负载均衡 IP;来源在 KUBE-SOURCE-RANGES-FIREWALL"
        " 中检查。"),
    "KUBE-LOAD-BALANCER-SOURCE-CIDR": (
        "{entry}: an allowed source range for the load-balancer IP.",
        "{entry}:负载均衡 IP 允许的来源网段。"),
    "KUBE-LOAD-BALANCER-SOURCE-IP": (
        "{entry}: the node itself may reach its load-balancer IP (its source is the LB IP).",
        "{entry}:节点自身可以访问它的负载均衡 IP(源地址是 LB IP)。"),
    "KUBE-EXTERNAL-IP": (
        "{entry}: an external IP; its traffic is marked for masquerade and accepted.",
        "{entry}:一个外部 IP;它的流量被打上伪装标记并放行。"),
    "KUBE-EXTERNAL-IP-LOCAL": (
        "{entry}: an external IP with externalTrafficPolicy Local: accepted, not masqueraded.",
        "{entry}:externalTrafficPolicy 为 Local 的外部 IP:放行,不做伪装。"),
    "KUBE-HEALTH-CHECK-NODE-PORT": (
        "{entry}: a healthCheckNodePort, accepted in the filter table.",
        "{entry}:一个 healthCheckNodePort,在 filter 表中放行。"),
    "KUBE-IPVS-IPS": (
        "{entry}: an address on kube-ipvs0; KUBE-IPVS-FILTER rejects new connections to it on "
        "ports no Service uses.",
        "{entry}:kube-ipvs0 上的一个地址;KUBE-IPVS-FILTER 拒绝发往它上面未被 Service 使用的端口的"
        "新连接。"),
    "set-rule": (
        "Packets whose {match} is in the ipset {set} ({purpose}) {action}.",
        "{match_zh}在 ipset {set}({purpose})中的数据包{action_zh}。"),
    "localhost-return": (
        "Connections from 127.0.0.0/8 leave KUBE-SERVICES at once: IPVS does not serve localhost.",
        "来自 127.0.0.0/8 的连接立刻离开 KUBE-SERVICES:IPVS 不为 localhost 服务。"),
    "to-node-port": (
        "Packets to a local address go on to KUBE-NODE-PORT, where NodePorts are marked.",
        "发往本机地址的数据包继续交给 KUBE-NODE-PORT,NodePort 在那里打标记。"),
    "lb-masq": (
        "Load-balancer traffic that was not returned (Local policy) is marked for masquerade.",
        "没有被返回(Local 策略)的负载均衡流量打上伪装标记。"),
    "ranges-drop": (
        "Sources no range allowed are dropped.",
        "不在任何允许网段中的来源被丢弃。"),
    "ipvs-filter-reject": (
        "New connections to an address on kube-ipvs0 that matched no Service port are "
        "rejected: the VIPs are local addresses, and without this any port of the node would "
        "answer on them.",
        "发往 kube-ipvs0 上地址、但不匹配任何 Service 端口的新连接被拒绝:这些 VIP 是本机地址,"
        "没有这条规则,节点的任何端口都会在它们上面应答。"),
    "out-filter-drop": (
        "The node's own connections to {ip} are dropped: its loadBalancerSourceRanges do not "
        "include the node.",
        "节点自己发往 {ip} 的连接被丢弃:它的 loadBalancerSourceRanges 不包含本节点。"),
}
# fmt: on

_SET_PURPOSE: dict[str, tuple[str, str, str]] = {
    # set -> (what the match is, in English, in Chinese)
    "dst,dst": ("destination address and port", "目的地址和端口", ""),
    "dst": ("destination port", "目的端口", ""),
    "dst,dst,src": ("destination address, port and source", "目的地址、端口和源地址", ""),
}

_ACTIONS: dict[str, tuple[str, str]] = {
    "KUBE-MARK-MASQ": ("are marked for masquerade", "被打上伪装标记"),
    "RETURN": ("leave this chain unchanged", "原样离开这条链"),
    "ACCEPT": ("are accepted", "被放行"),
    "MASQUERADE": ("are masqueraded", "被伪装"),
    "REJECT": ("are rejected", "被拒绝"),
    "DROP": ("are dropped", "被丢弃"),
}


def explain_rule(rule: xtables.Rule, table: str, lang: str, comments: dict[str, str]) -> str:
    """One companion rule of IPVS mode; ``comments`` maps set names to their comments."""
    c, t = rule.chain, rule.target
    if c in ("PREROUTING", "OUTPUT", "POSTROUTING", "INPUT", "FORWARD"):
        return xtables.explain(rule, lang, table)
    if c == "KUBE-SERVICES" and rule.values.get("-s") == "127.0.0.0/8":
        return say(lang, T["localhost-return"])
    if c == "KUBE-SERVICES" and t == "KUBE-NODE-PORT":
        return say(lang, T["to-node-port"])
    if c == "KUBE-LOAD-BALANCER" and not rule.sets:
        return say(lang, T["lb-masq"])
    if c == "KUBE-SOURCE-RANGES-FIREWALL" and not rule.sets:
        return say(lang, T["ranges-drop"])
    if c == "KUBE-IPVS-FILTER" and t == "REJECT":
        return say(lang, T["ipvs-filter-reject"])
    if c == "KUBE-IPVS-OUT-FILTER":
        return say(lang, T["out-filter-drop"], ip=rule.values.get("--vaddr", ""))
    if rule.sets:
        name = rule.sets[0]
        flags = rule.values.get("--match-set", "")
        words = rule.line.split()
        match = words[words.index(name) + 1] if name in words else flags
        what = _SET_PURPOSE.get(match, (match, match, ""))
        action = _ACTIONS.get(t, (f"go to {t}", f"交给 {t}"))
        if "-s" in rule.negated:
            action = (
                f"{action[0]} unless they come from a pod ({rule.values['-s']})",
                f"{action[1]}(来自 Pod 网段 {rule.values['-s']} 的除外)",
            )
        return say(
            lang,
            T["set-rule"],
            match=what[0],
            match_zh=what[1],
            set=name,
            purpose=comments.get(name, ""),
            action=action[0],
            action_zh=action[1],
        )
    return xtables.explain(rule, lang, table)


def explain(ruleset: IpvsRuleSet, namespace: str, name: str, node: str, lang: str) -> Explanation:
    key = f"{namespace}/{name}"
    exp = Explanation(
        key, node, "ipvs", lang, say(lang, TITLES["title"], service=key, node=node, mode="ipvs")
    )
    virtual = Section(say(lang, TITLES["virtual"]))
    mine = [
        vs
        for vs in ruleset.virtual_servers
        if vs.service == key or vs.service.startswith(f"{key}:")
    ]
    for vs in mine:
        persist = f", sticky per client for {vs.timeout}s" if vs.persistent else ""
        persist_zh = f",按客户端保持 {vs.timeout} 秒" if vs.persistent else ""
        virtual.items.append(
            Item(
                "ipvs",
                ipvsadm_service_line(vs),
                say(
                    lang,
                    T["vs"],
                    vs=str(vs),
                    sched=vs.scheduler,
                    persist=persist,
                    persist_zh=persist_zh,
                ),
            )
        )
        for rs in vs.real_servers:
            virtual.items.append(
                Item(
                    "ipvs",
                    ipvsadm_dest_line(vs, rs),
                    say(lang, T["rs"], rs=str(rs), weight=rs.weight),
                )
            )
        if not vs.real_servers:
            virtual.items.append(Item("ipvs", "(no real server)", say(lang, T["no-rs"])))
    addresses = Section(say(lang, TITLES["addresses"]))
    vips = {vs.address for vs in mine}
    for ip in ruleset.addresses:
        if ip in vips:
            addresses.items.append(Item(DUMMY_DEVICE, f"{ip}/32", say(lang, T["bind"], ip=ip)))
    sets = Section(say(lang, TITLES["ipsets"]))
    ports = {str(vs.port) for vs in mine}
    endpoints = {rs.ip for vs in mine for rs in vs.real_servers}
    for s in ruleset.ipsets:
        for entry in s.entries:
            head = entry.split(",", 1)[0]
            ours = head in vips or head in endpoints or (s.type == "bitmap:port" and entry in ports)
            if ours and s.name in T:
                sets.items.append(Item(f"ipset {s.name}", entry, say(lang, T[s.name], entry=entry)))
    companion = Section(say(lang, TITLES["companion"]))
    comments = {s.name: s.comment for s in ruleset.ipsets}
    for table, boot, rules in (
        ("nat", ruleset.bootstrap.get("nat", ()), ruleset.nat_rules),
        ("filter", ruleset.bootstrap.get("filter", ()), ruleset.filter_rules),
    ):
        for line in (*boot, *rules):
            r = xtables.parse(line)
            companion.items.append(
                Item(f"{table} {r.chain}", line, explain_rule(r, table, lang, comments))
            )
    exp.sections = [virtual, addresses, sets, companion]
    return exp
