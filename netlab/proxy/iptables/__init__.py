"""kube-proxy's iptables mode (``pkg/proxy/iptables``)."""
