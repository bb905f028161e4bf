"""kube-proxy's original userspace mode (``pkg/proxy/userspace``, removed in Kubernetes 1.26)."""
