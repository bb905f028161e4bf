"""ebpf mode, explained from the renderer's frontends and backends
(:mod:`netlab.proxy.ebpf.render`): there are no rules to read, only the programs that look a
packet or a socket up and the entries of Cilium's maps they find. Each entry is shown as
``cilium-dbg bpf lb list`` prints it.
"""

from __future__ import annotations

from netlab.explain.rules.lang import Text, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.proxy.ebpf import render as r
from netlab.proxy.ebpf.view import BACKEND_STATES, flag_words

SERVICES = "cilium_lb4_services_v2"
BACKENDS = "cilium_lb4_backends_v3"
REVNAT = "cilium_lb4_reverse_nat"
SOURCE_RANGE = "cilium_lb4_source_range"

# fmt: off
T: dict[str, Text] = {
    "title": (
        "Service {service} on node {node}, ebpf mode: what Cilium's agent wrote into its maps, "
        "and why",
        "节点 {node} 上的 Service {service}(ebpf 模式):Cilium 的 agent 往 BPF 映射表里写了什么,"
        "为什么"),
    "hooks": (
        "The programs that look these entries up (attached once per node, shared by all "
        "Services)",
        "查这些条目的 BPF 程序(每个节点挂载一次,所有 Service 共用)"),
    "service": ("This Service's map entries", "这个 Service 自己的映射表条目"),
    "backends": (
        "Its backends (cilium_lb4_backends_v3, shared by every frontend that uses them)",
        "它的后端(cilium_lb4_backends_v3,被所有用到它们的前端共用)"),
    "from-container": (
        "Runs on every packet a pod of this node sends: looks the destination up in "
        "cilium_lb4_services_v2 (slot 0), picks a backend slot, rewrites the destination (DNAT, "
        "checksums fixed) and records the connection in cilium_ct4_global with its reverse-NAT "
        "index; no backend: an ICMP port unreachable built in BPF.",
        "在本节点每个 Pod 发出的每个数据包上运行:在 cilium_lb4_services_v2 中查目的地址(槽位 0),"
        "选一个后端槽位,改写目的地址(DNAT,同时修正校验和),并把连接连同反向 NAT 编号记入 "
        "cilium_ct4_global;没有后端时,用 BPF 构造 ICMP 端口不可达。"),
    "to-container": (
        "Runs on every packet going into a pod: a reply of a load-balanced connection (found "
        "in cilium_ct4_global) gets its source rewritten back to the frontend from "
        "cilium_lb4_reverse_nat.",
        "在进入 Pod 的每个数据包上运行:负载均衡连接的回包(在 cilium_ct4_global 中找到)按 "
        "cilium_lb4_reverse_nat 把源地址改回前端地址。"),
    "from-netdev": (
        "Runs on every packet arriving at the node's eth0: NodePorts, LoadBalancer and "
        "external IPs (routable frontends only); checks source ranges, DNATs, and SNATs to the "
        "node's address only when the backend is on another node (cilium_snat_v4_external).",
        "在到达节点 eth0 的每个数据包上运行:处理 NodePort、LoadBalancer 和外部 IP(只看可路由的"
        "前端);检查来源网段,做 DNAT,仅当后端在别的节点上时才 SNAT 成节点地址"
        "(cilium_snat_v4_external)。"),
    "sock": (
        "Socket load-balancing for the node's own processes: at connect() and sendmsg() the "
        "destination is replaced by a backend before any packet exists, so nothing is NATed; "
        "recvmsg() and getpeername() show the frontend again (cilium_lb4_reverse_sk). Only "
        "sockets of this node's namespace, in the lab's own cgroup.",
        "节点自身进程的套接字负载均衡:在 connect() 和 sendmsg() 时、数据包还没产生之前就把目的"
        "地址换成后端,因此不需要任何 NAT;recvmsg() 和 getpeername() 再显示回前端地址"
        "(cilium_lb4_reverse_sk)。只作用于本节点命名空间里、位于实验自己 cgroup 中的套接字。"),
    "master": (
        "Slot 0 of frontend {fe}: the Service itself, service ID {id} (also its reverse-NAT "
        "index), {count} backend slot(s) in scope {scope}. {kind}{extra}",
        "前端 {fe} 的槽位 0:代表 Service 本身,服务 ID {id}(也是它的反向 NAT 编号),作用域 "
        "{scope} 中有 {count} 个后端槽位。{kind}{extra}"),
    "slot": (
        "Backend slot {slot} of {count} for {fe}: backend ID {bid}, {backend}{owner}; a new "
        "connection picks a slot at random, so each gets 1/{count}.",
        "{fe} 的第 {slot} 个后端槽位(共 {count} 个):后端 ID {bid},{backend}{owner};新连接随机"
        "选一个槽位,每个 1/{count}。"),
    "revnat": (
        "Reverse NAT {id}: replies from a backend of {fe} get this source again, so the "
        "client sees the address it dialled.",
        "反向 NAT {id}:{fe} 的后端发回的回包源地址被改回这个地址,客户端看到的就是它拨打的地址。"),
    "range": (
        "An allowed source range of {fe}: cil_from_netdev drops clients outside every range "
        "of the service ID {id} (an LPM trie lookup).",
        "{fe} 允许的来源网段:客户端不在服务 ID {id} 的任何网段内时,cil_from_netdev 丢弃它的包"
        "(LPM 前缀树查找)。"),
    "backend": (
        "Backend {bid}: {backend}{owner}, {state}; slots of every frontend that uses it hold "
        "this ID, so moving a pod rewrites one entry.",
        "后端 {bid}:{backend}{owner},状态 {state};所有用到它的前端槽位都存这个 ID,Pod 变化时只需"
        "改写这一条。"),
}

KINDS: dict[str, Text] = {
    "ClusterIP": (
        "Looked up by cil_from_container for pods and at connect() for the node's sockets; "
        "not routable, so from outside the node it is dropped.",
        "Pod 的包由 cil_from_container 查到,节点自己的套接字在 connect() 时查到;不可路由,从节点外"
        "部来的包被丢弃。"),
    "NodePort-any": (
        "The NodePort surrogate 0.0.0.0:{port}: matches any local address of the node (and "
        "127.0.0.1) at connect() time.",
        "NodePort 的通配前端 0.0.0.0:{port}:在 connect() 时匹配节点的任何本地地址(包括 "
        "127.0.0.1)。"),
    "NodePort": (
        "The NodePort on the node's own address: cil_from_netdev serves clients arriving on "
        "eth0.",
        "节点自身地址上的 NodePort:cil_from_netdev 服务从 eth0 进来的客户端。"),
    "ExternalIPs": (
        "An external IP: routable, so cil_from_netdev serves it for clients outside the node.",
        "一个外部 IP:可路由,cil_from_netdev 为节点外部的客户端服务。"),
    "LoadBalancer": (
        "A LoadBalancer address: routable, so cil_from_netdev serves it for clients outside "
        "the node.",
        "一个 LoadBalancer 地址:可路由,cil_from_netdev 为节点外部的客户端服务。"),
}

EXTRAS: dict[str, Text] = {
    "none": (
        " No backend: a pod's connection is answered with an ICMP port unreachable built in "
        "BPF (refused), a node socket's connect() fails with EHOSTUNREACH.",
        " 没有后端:Pod 的连接收到 BPF 构造的 ICMP 端口不可达(被拒绝),节点套接字的 connect() "
        "以 EHOSTUNREACH 失败。"),
    "local": (
        " externalTrafficPolicy Local: only this node's endpoints, and the client's address "
        "is kept.",
        " externalTrafficPolicy 为 Local:只用本节点的端点,保留客户端地址。"),
    "int-local": (
        " internalTrafficPolicy Local: only this node's endpoints.",
        " internalTrafficPolicy 为 Local:只用本节点的端点。"),
    "two-scopes": (
        " Two scopes: the external one for clients from outside, the internal one (/i) for "
        "traffic from inside the cluster.",
        " 两个作用域:外部作用域给集群外的客户端,内部作用域(/i)给集群内的流量。"),
    "affinity": (
        " ClientIP affinity: a client's backend is remembered in cilium_lb4_affinity for "
        "{timeout}s.",
        " ClientIP 亲和性:客户端选中的后端记在 cilium_lb4_affinity 中,保留 {timeout} 秒。"),
    "ranges": (
        " Source ranges are checked (cilium_lb4_source_range).",
        " 会检查来源网段(cilium_lb4_source_range)。"),
}
# fmt: on

SCOPES: dict[int, Text] = {r.SCOPE_EXT: ("external", "外部"), r.SCOPE_INT: ("internal", "内部")}


def _fe(f: r.Frontend, scope: int) -> str:
    text = f"{f.address}:{f.port}/{r.PROTO_NAME.get(f.proto, f.proto)}"
    return text + "/i" if scope == r.SCOPE_INT else text


def _extra(f: r.Frontend, ids: tuple[int, ...], lang: str) -> str:
    keys = []
    if not ids:
        keys.append("none")
    if f.flags & r.SVC_FLAG_EXT_LOCAL_SCOPE:
        keys.append("local")
    if f.flags2 & r.SVC_FLAG_INT_LOCAL_SCOPE:
        keys.append("int-local")
    if f.flags2 & r.SVC_FLAG_TWO_SCOPES:
        keys.append("two-scopes")
    if f.flags & r.SVC_FLAG_AFFINITY:
        keys.append("affinity")
    if f.flags & r.SVC_FLAG_SOURCE_RANGE:
        keys.append("ranges")
    return "".join(say(lang, EXTRAS[k], timeout=f.affinity_timeout) for k in keys)


def _hooks(node: str, lang: str) -> Section:
    s = Section(say(lang, T["hooks"]))
    s.items = [
        Item("tc ingress, pod veths", "cil_from_container", say(lang, T["from-container"])),
        Item("tc egress, pod veths", "cil_to_container", say(lang, T["to-container"])),
        Item("tc ingress, eth0", "cil_from_netdev", say(lang, T["from-netdev"])),
        Item(
            f"cgroup of node {node}",
            "cil_sock4_connect, cil_sock4_sendmsg, cil_sock4_recvmsg, cil_sock4_getpeername",
            say(lang, T["sock"]),
        ),
    ]
    return s


def explain(
    rendered: list[r.Rendered],
    names: dict[str, str],
    namespace: str,
    name: str,
    node: str,
    lang: str,
) -> Explanation:
    """The Service's frontends and backends on ``node`` as entries of Cilium's maps, each with
    what it does and why. ``names``: address -> pod (or node) name, for the backends."""
    key = f"{namespace}/{name}"
    exp = Explanation(key, node, "ebpf", lang, say(lang, T["title"], service=key, node=node))
    mine = Section(say(lang, T["service"]))
    shared = Section(say(lang, T["backends"]))
    seen: set[int] = set()
    for rend in rendered:
        if not rend.frontends or rend.frontends[0].service != key:
            continue
        backends = {b.id: b for b in rend.backends}
        for f in rend.frontends:
            for scope, ids in f.scopes:
                fe = _fe(f, scope)
                kind = "NodePort-any" if f.address == "0.0.0.0" else f.type
                values = {
                    "fe": fe,
                    "id": f.id,
                    "count": len(ids),
                    "scope": say(lang, SCOPES[scope]),
                }
                mine.items.append(
                    Item(
                        SERVICES,
                        f"{fe}   0.0.0.0:0 ({f.id}) (0) [{flag_words(f.flags, f.flags2)}]",
                        say(
                            lang,
                            T["master"],
                            **values,
                            kind=say(lang, KINDS[kind], port=f.port),
                            extra=_extra(f, ids, lang),
                        ),
                    )
                )
                for slot, bid in enumerate(ids, start=1):
                    b = backends[bid]
                    backend = f"{b.address}:{b.port}/{r.PROTO_NAME.get(b.proto, b.proto)}"
                    owner = f" ({names[b.address]})" if b.address in names else ""
                    mine.items.append(
                        Item(
                            SERVICES,
                            f"{fe}   {backend} ({f.id}) ({slot})",
                            say(
                                lang,
                                T["slot"],
                                **values,
                                slot=slot,
                                bid=bid,
                                backend=backend,
                                owner=owner,
                            ),
                        )
                    )
            fe = _fe(f, r.SCOPE_EXT)
            mine.items.append(
                Item(
                    REVNAT,
                    f"{f.id} => {f.address}:{f.port}",
                    say(lang, T["revnat"], id=f.id, fe=fe),
                )
            )
            for cidr in f.source_ranges:
                mine.items.append(
                    Item(SOURCE_RANGE, f"{f.id} {cidr}", say(lang, T["range"], id=f.id, fe=fe))
                )
        for b in rend.backends:
            if b.id in seen:
                continue
            seen.add(b.id)
            backend = f"{b.address}:{b.port}/{r.PROTO_NAME.get(b.proto, b.proto)}"
            owner = f" ({names[b.address]})" if b.address in names else ""
            state = BACKEND_STATES.get(b.state, "unknown")
            shared.items.append(
                Item(
                    BACKENDS,
                    f"{b.id} => {backend} ({state})",
                    say(lang, T["backend"], bid=b.id, backend=backend, owner=owner, state=state),
                )
            )
    exp.sections = [_hooks(node, lang), mine, shared]
    return exp
