"""kube-proxy's IPVS mode (``pkg/proxy/ipvs``): virtual servers, ipsets and a few iptables rules.

``render`` is pure (what a node should hold); ``proxier`` applies it through :mod:`netlab.kernel`.
"""
