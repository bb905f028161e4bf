"""Service defaulting before validation: ``SetDefaults_Service``
(kubernetes/kubernetes ``pkg/apis/core/v1/defaults.go``) and the registry strategy's
ClusterIP/ClusterIPs normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netlab.scenario.yamlpos import Path

_DEFAULTED = "\x00targetPortDefaulted"  # marks a port whose targetPort came from its port


@dataclass
class _Svc:
    """A Service spec after defaulting and ClusterIP/ClusterIPs normalisation."""

    spec: dict[str, Any]
    type: str
    ports: list[dict[str, Any]]
    cluster_ip: str
    cluster_ips: list[str]
    ips_loc: Path  # where the user wrote the cluster IP(s)
    affinity: str = "None"
    timeout: int = 10800  # DefaultClientIPServiceAffinitySeconds
    etp: str = ""
    itp: str = ""

    @property
    def headless(self) -> bool:
        return self.cluster_ips == ["None"]

    @property
    def externally_accessible(self) -> bool:
        """``apiservice.ExternallyAccessible``."""
        return self.type in ("LoadBalancer", "NodePort") or (
            self.type == "ClusterIP" and bool(self.spec.get("externalIPs"))
        )

    def ip_loc(self, i: int) -> Path:
        """Where clusterIPs[i] was written (clusterIP stands for clusterIPs[0])."""
        return (*self.ips_loc, i) if self.ips_loc[-1] == "clusterIPs" else self.ips_loc


def _service_defaults(spec: dict[str, Any]) -> _Svc:
    """``SetDefaults_Service`` and the strategy's ClusterIP/ClusterIPs normalisation."""
    ports = []
    for p in spec.get("ports", []):
        p = dict(p)
        p["protocol"] = p.get("protocol") or "TCP"
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port", 0)
            p[_DEFAULTED] = True
        ports.append(p)
    cluster_ip: str = spec.get("clusterIP", "")
    cluster_ips: list[str] = list(spec.get("clusterIPs", []))
    ips_loc: Path = ("spec", "clusterIPs")
    if cluster_ip and not cluster_ips:
        cluster_ips, ips_loc = [cluster_ip], ("spec", "clusterIP")
    elif not cluster_ip and cluster_ips:
        cluster_ip = cluster_ips[0]
    svc = _Svc(spec, spec.get("type") or "ClusterIP", ports, cluster_ip, cluster_ips, ips_loc)
    svc.affinity = spec.get("sessionAffinity") or "None"
    if svc.affinity == "ClientIP":
        config = spec.get("sessionAffinityConfig", {}).get("clientIP", {})
        svc.timeout = config.get("timeoutSeconds", 10800)
    svc.etp = spec.get("externalTrafficPolicy", "")
    if svc.externally_accessible and not svc.etp:
        svc.etp = "Cluster"
    svc.itp = spec.get("internalTrafficPolicy", "")
    if not svc.itp and svc.type in ("ClusterIP", "NodePort", "LoadBalancer"):
        svc.itp = "Cluster"
    return svc
