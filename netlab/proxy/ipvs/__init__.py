"""kube-proxy's IPVS mode (``pkg/proxy/ipvs``): virtual servers, ipsets and a few iptables rules.

``render`` is pure (what a node should hold), with its parts in ``ipset``, ``iptables_rules`` and
``servers``; ``proxier`` applies it through :mod:`netlab.kernel` (``wire``: the netlink messages).
"""
