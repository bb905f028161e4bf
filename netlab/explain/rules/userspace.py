"""The userspace proxy, explained from its renderer's portals: the iptables rules that steer a
Service's traffic into the proxy's socket on the node, and the socket itself."""

from __future__ import annotations

from netlab.explain.rules import xtables
from netlab.explain.rules.lang import TITLES, Text, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.proxy.userspace.render import Portal, render

# fmt: off
T: dict[str, Text] = {
    "portals-jump": (
        "Sends packets {where} to {target} first (inserted at the top): ClusterIPs must be "
        "caught before the NodePort rules.",
        "把{where_zh}的数据包先交给 {target}(插在最前面):ClusterIP 必须在 NodePort 规则之前被截获"
        "。"),
    "nodeport-jump": (
        "Packets {where} to a local address go to {target}, appended last so ClusterIPs win.",
        "{where_zh}、发往本机地址的数据包交给 {target},追加在最后,让 ClusterIP 优先。"),
    "non-local-jump": (
        "Packets to the node go through {target}, which lets NodePort traffic in past the node's "
        "own firewall.",
        "发往节点的数据包经过 {target},让 NodePort 流量越过节点自己的防火墙。"),
    "redirect": (
        "Redirects {proto} packets arriving for {dest} ({spn}) to the proxy's own socket, port "
        "{port} on this node (REDIRECT = DNAT to the address of the interface they came in "
        "on); the proxy, not the kernel, then picks an endpoint.",
        "把到达节点、发往 {dest}({spn})的 {proto} 数据包重定向到代理自己的套接字,即本节点的 "
        "{port} 端口(REDIRECT 就是 DNAT 到进入网卡的地址);之后由代理程序而不是内核选择端点。"),
    "host-dnat": (
        "Sends {proto} connections the node itself makes to {dest} ({spn}) to the proxy socket "
        "at {to}: a DNAT to the node's IP, because REDIRECT of local traffic would answer from "
        "the wrong address.",
        "把节点自己发往 {dest}({spn})的 {proto} 连接交给位于 {to} 的代理套接字:DNAT 到节点 IP,"
        "因为对本机流量做 REDIRECT 会用错误的地址回复。"),
    "non-local-accept": (
        "Accepts new {proto} connections to the proxy port {port} of {spn} from outside the "
        "node, so its NodePort works whatever the INPUT policy.",
        "放行从节点外部到 {spn} 代理端口 {port} 的新 {proto} 连接,让它的 NodePort 不受 INPUT "
        "默认策略影响。"),
    "socket": (
        "The proxy socket: the userspace kube-proxy listens on 0.0.0.0:{port}/{proto} in the "
        "node, accepts each connection, picks an endpoint round-robin ({endpoints}), dials it "
        "from the node and copies bytes both ways; backends therefore see the node's address, "
        "and every byte crosses user space twice.",
        "代理套接字:用户态 kube-proxy 在节点上监听 0.0.0.0:{port}/{proto},接受每个连接,轮询选择"
        "一个端点({endpoints}),从节点发起到它的连接,再双向复制数据;所以后端看到的是节点的地址,"
        "每个字节都要两次穿过用户态。"),
    "socket-none": (
        "The proxy socket 0.0.0.0:{port}/{proto} has no endpoint to dial: it accepts a TCP "
        "connection and closes it at once, and drops UDP datagrams.",
        "代理套接字 0.0.0.0:{port}/{proto} 没有可连接的端点:TCP 连接被接受后立即关闭,UDP 数据报被"
        "丢弃。"),
}
# fmt: on

_WHERE = {
    "PREROUTING": ("arriving at the node", "到达节点"),
    "OUTPUT": ("sent by the node itself", "节点自己发出"),
}


def _explain(r: xtables.Rule, lang: str) -> str:
    proto = r.values.get("-p", "").upper()
    spn = r.comment
    dest = r.values.get("-d", "").removesuffix("/32")
    port = r.values.get("--dport", "")
    dest = f"{dest}:{port}" if dest else f"NodePort {port}"
    if r.chain in _WHERE:
        where, where_zh = _WHERE[r.chain]
        key = "portals-jump" if "PORTALS" in r.target else "nodeport-jump"
        return say(lang, T[key], where=where, where_zh=where_zh, target=r.target)
    if r.chain == "INPUT":
        return say(lang, T["non-local-jump"], target=r.target)
    if r.target == "REDIRECT":
        to = r.target_args[-1] if r.target_args else ""
        return say(lang, T["redirect"], proto=proto, dest=dest, spn=spn, port=to)
    if r.target == "DNAT":
        to = r.target_args[-1] if r.target_args else ""
        return say(lang, T["host-dnat"], proto=proto, dest=dest, spn=spn, to=to)
    if r.target == "ACCEPT":
        return say(lang, T["non-local-accept"], proto=proto, port=port, spn=spn)
    return xtables.explain(r, lang, "nat")


def explain(
    portals: list[Portal], node_ip: str, namespace: str, name: str, node: str, lang: str
) -> Explanation:
    key = f"{namespace}/{name}"
    exp = Explanation(
        key,
        node,
        "userspace",
        lang,
        say(lang, TITLES["title"], service=key, node=node, mode="userspace"),
    )
    text = render(portals, node_ip, bootstrap=True)
    entry = Section(say(lang, TITLES["entry"]))
    mine = Section(say(lang, TITLES["service"]))
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            continue
        if not line.startswith(("-A ", "-I ")):
            continue
        r = xtables.parse(line)
        item = Item(f"{table} {r.chain}", line, _explain(r, lang))
        if r.chain in ("PREROUTING", "OUTPUT", "INPUT"):
            entry.items.append(item)
        elif r.comment == key or r.comment.startswith(f"{key}:"):
            mine.items.append(item)
    sockets = Section(say(lang, TITLES["proxy"]))
    for p in portals:
        info = p.service.info
        if (info.spn.namespace, info.spn.name) != (namespace, name):
            continue
        ready = [str(e) for e in p.service.endpoints if e.ready]
        proto = info.spn.protocol
        socket_key = "socket" if ready else "socket-none"
        sockets.items.append(
            Item(
                f"node {node}",
                f"0.0.0.0:{p.proxy_port}/{proto} ({info.spn})",
                say(
                    lang, T[socket_key], port=p.proxy_port, proto=proto, endpoints=", ".join(ready)
                ),
            )
        )
    exp.sections = [entry, mine, sockets]
    return exp
