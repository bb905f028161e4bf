"""Kubernetes objects as the API server would store them: typed, defaulted, validated.

:mod:`~netlab.scenario.k8s.objects` holds the types; :mod:`~netlab.scenario.k8s.parse` is the
entry point that decodes, defaults and validates one manifest, split the way upstream splits it
(object meta, Pod, Deployment, Service, defaults).
"""

from netlab.scenario.k8s.objects import (
    NODE_PORT_RANGE,
    READY_ANNOTATION,
    SUPPORTED_KINDS,
    Container,
    ContainerPort,
    Deployment,
    K8sObject,
    Namespace,
    ObjectMeta,
    ObjectRef,
    Pod,
    PodDNSConfig,
    PodDNSConfigOption,
    PodSpec,
    Service,
    ServicePort,
)

__all__ = [
    "NODE_PORT_RANGE",
    "READY_ANNOTATION",
    "SUPPORTED_KINDS",
    "Container",
    "ContainerPort",
    "Deployment",
    "K8sObject",
    "Namespace",
    "ObjectMeta",
    "ObjectRef",
    "Pod",
    "PodDNSConfig",
    "PodDNSConfigOption",
    "PodSpec",
    "Service",
    "ServicePort",
]
