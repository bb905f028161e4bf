"""kube-proxy's nftables mode (``pkg/proxy/nftables``)."""
