"""A lab's objects as the API server would return them (``kubectl get -o json``'s items).

Only what netlab's desired state holds is filled in: metadata, the spec fields that matter to
Service networking, and the status a running pod, an allocated Service or a controller-written
EndpointSlice has. Field names and the EndpointSlice labels are upstream's (``k8s.io/api``
``core/v1`` and ``discovery/v1``, v1.33).
"""

from __future__ import annotations

import time
from typing import Any

from netlab.cluster.state import ClusterState, EndpointSlice, PodInfo
from netlab.scenario.k8s import Service

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # discovery.LabelServiceName
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"  # discovery.LabelManagedBy
CONTROLLER_NAME = "endpointslice-controller.k8s.io"  # the EndpointSlice controller's value


def timestamp(epoch: float) -> str:
    """RFC 3339 in UTC to the second, as ``metav1.Time`` serialises."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _meta(name: str, namespace: str, created: float, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    meta["creationTimestamp"] = timestamp(created)
    meta.update({k: v for k, v in extra.items() if v})
    return meta


def pod(state: ClusterState, p: PodInfo, created: float) -> dict[str, Any]:
    containers = [
        {
            "name": c.name,
            **({"image": c.image} if c.image else {}),
            **(
                {
                    "ports": [
                        {
                            **({"name": port.name} if port.name else {}),
                            "containerPort": port.container_port,
                            "protocol": port.protocol,
                        }
                        for port in c.ports
                    ]
                }
                if c.ports
                else {}
            ),
        }
        for c in p.containers
    ]
    spec: dict[str, Any] = {"containers": containers, "nodeName": p.node}
    if p.host_network:
        spec["hostNetwork"] = True
    if p.hostname:
        spec["hostname"] = p.hostname
    if p.subdomain:
        spec["subdomain"] = p.subdomain
    ready = "True" if p.ready else "False"
    status = {
        "phase": "Running",
        "hostIP": state.node(p.node).ip,
        "podIP": p.ip,
        "podIPs": [{"ip": p.ip}],
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": ready},
            {"type": "Ready", "status": ready},
        ],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(p.name, p.namespace, created, labels=dict(p.labels)),
        "spec": spec,
        "status": status,
    }


def service(s: Service, created: float) -> dict[str, Any]:
    ports = []
    for p in s.ports:
        port: dict[str, Any] = {"name": p.name} if p.name else {}
        port.update({"port": p.port, "protocol": p.protocol})
        if s.type != "ExternalName":
            port["targetPort"] = p.target_port or p.port
        if p.node_port:
            port["nodePort"] = p.node_port
        ports.append(port)
    spec: dict[str, Any] = {"type": s.type}
    if s.cluster_ip:
        spec["clusterIP"] = s.cluster_ip
        spec["clusterIPs"] = [s.cluster_ip]
    if ports:
        spec["ports"] = ports
    if s.selector:
        spec["selector"] = dict(s.selector)
    if s.external_ips:
        spec["externalIPs"] = list(s.external_ips)
    if s.external_name:
        spec["externalName"] = s.external_name
    spec["sessionAffinity"] = s.session_affinity
    if s.external_traffic_policy:
        spec["externalTrafficPolicy"] = s.external_traffic_policy
    if s.type != "ExternalName":
        spec["internalTrafficPolicy"] = s.internal_traffic_policy
    if s.health_check_node_port:
        spec["healthCheckNodePort"] = s.health_check_node_port
    if s.load_balancer_source_ranges:
        spec["loadBalancerSourceRanges"] = list(s.load_balancer_source_ranges)
    if s.publish_not_ready_addresses:
        spec["publishNotReadyAddresses"] = True
    status: dict[str, Any] = {"loadBalancer": {}}
    if s.load_balancer_ingress:
        status["loadBalancer"] = {"ingress": [{"ip": ip} for ip in s.load_balancer_ingress]}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(s.meta.name, s.meta.namespace, created, labels=dict(s.meta.labels)),
        "spec": spec,
        "status": status,
    }


def endpoint_slice(es: EndpointSlice, created: float) -> dict[str, Any]:
    service_name = es.service.partition("/")[2]
    labels = {SERVICE_NAME_LABEL: service_name}
    # The API server writes default/kubernetes's slice itself; the controller writes the rest.
    by_controller = es.service != "default/kubernetes"
    if by_controller:
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    endpoints = []
    for e in es.endpoints:
        ep: dict[str, Any] = {
            "addresses": [e.address],
            "conditions": {"ready": e.ready, "serving": e.serving, "terminating": e.terminating},
        }
        if e.hostname:
            ep["hostname"] = e.hostname
        if e.node_name:
            ep["nodeName"] = e.node_name
        ns, _, name = e.pod.partition("/")
        if by_controller:
            ep["targetRef"] = {"kind": "Pod", "namespace": ns, "name": name}
        endpoints.append(ep)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta(es.name, es.namespace, created, labels=labels),
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in es.ports],
    }


def manifest(state: ClusterState, obj: object, created: float) -> dict[str, Any]:
    if isinstance(obj, PodInfo):
        return pod(state, obj, created)
    if isinstance(obj, Service):
        return service(obj, created)
    assert isinstance(obj, EndpointSlice)
    return endpoint_slice(obj, created)


def object_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``kubectl get -o json`` prints for several objects: a ``v1`` List."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
