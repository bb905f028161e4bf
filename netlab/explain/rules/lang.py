"""The languages an explanation is written in, and how one sentence is picked."""

from __future__ import annotations

LANGS = ("en", "zh")

Text = tuple[str, str]  # (English, Simplified Chinese), with {placeholders}


def say(lang: str, text: Text, **values: object) -> str:
    """The sentence in ``lang``, its placeholders filled from ``values``."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: {', '.join(LANGS)}")
    return text[LANGS.index(lang)].format(**values)


TITLES: dict[str, Text] = {
    "title": (
        "Service {service} on node {node}, {mode} mode: what kube-proxy wrote, and why",
        "节点 {node} 上的 Service {service}({mode} 模式):kube-proxy 写了什么,为什么",
    ),
    "entry": (
        "How packets reach kube-proxy's chains (jumps from the built-in chains)",
        "数据包如何进入 kube-proxy 的链(从内置链跳转)",
    ),
    "service": ("This Service's rules", "这个 Service 自己的规则"),
    "shared": (
        "Rules every Service relies on (written once per node)",
        "所有 Service 共用的规则(每个节点只写一次)",
    ),
    "dispatch": (
        "Dispatch: the maps and sets that lead to this Service",
        "分发:通向这个 Service 的映射表和集合",
    ),
    "virtual": ("IPVS virtual servers and their real servers", "IPVS 虚拟服务器及其真实服务器"),
    "addresses": ("Addresses bound to kube-ipvs0", "绑定在 kube-ipvs0 上的地址"),
    "ipsets": ("ipset entries for this Service", "这个 Service 的 ipset 条目"),
    "companion": (
        "The iptables rules IPVS mode still needs (shared by all Services)",
        "IPVS 模式仍然需要的 iptables 规则(所有 Service 共用)",
    ),
    "proxy": ("The proxy sockets", "代理套接字"),
    "none": (
        "kube-proxy writes nothing for this Service: {reason}",
        "kube-proxy 不为这个 Service 写任何规则:{reason}",
    ),
}

REASONS: dict[str, Text] = {
    "headless": (
        "it is headless (clusterIP: None); clients get the pods' addresses from DNS and dial them "
        "directly",
        "它是 headless Service(clusterIP: None);客户端从 DNS 拿到 Pod 地址后直接连接",
    ),
    "externalname": (
        "it is an ExternalName; cluster DNS answers its name with a CNAME and no packet is proxied",
        "它是 ExternalName 类型;集群 DNS 用 CNAME 回答它的名字,不代理任何数据包",
    ),
    "other-proxy": (
        "it carries the service.kubernetes.io/service-proxy-name label, so another proxy owns it",
        "它带有 service.kubernetes.io/service-proxy-name 标签,由别的代理负责",
    ),
}
