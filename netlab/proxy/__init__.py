"""kube-proxy: one package per mode over shared service/endpoint tracking."""
