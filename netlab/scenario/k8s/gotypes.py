"""Strict decoding's knowledge of the Go types: which JSON fields each Kubernetes struct has, and
the type of each, so an unknown field or a wrong type is reported as the API server's decoder
reports it (``Go struct field Service.spec.ports ... of type int32``).
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Strict decoding: which fields each Go struct has, and their types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _F:
    """One JSON field: the Go type decode errors name, and how to check the value."""

    go: str
    # string int32 int64 bool intstr map strings struct list object array any quantities
    shape: str
    struct: str = ""  # _STRUCTS entry for "struct" and "list"
    elem: str = "string"  # the Go type of a "strings" element or a "map" value


_S = _F("string", "string")
_I32 = _F("int32", "int32")
_I64 = _F("int64", "int64")
_B = _F("bool", "bool")
_MSS = _F("map[string]string", "map")
_LS = _F("[]string", "strings")
_ANY = _F("any", "any")


def _named(go: str) -> _F:
    """A string of a named Go type (``v1.Protocol``): decode errors name the type."""
    return _F(go, "string")


def _obj(go: str) -> _F:
    """An object netlab accepts whole without looking inside (probes, volumes, affinity...)."""
    return _F(go, "object")


def _arr(go: str) -> _F:
    return _F(go, "array")


def _st(go: str, struct: str) -> _F:
    return _F(go, "struct", struct)


def _ls(go: str, struct: str) -> _F:
    return _F(go, "list", struct)


_META = _st("v1.ObjectMeta", "ObjectMeta")

# name -> (Go struct name used in "Go struct field X.path" messages, its JSON fields)
_STRUCTS: dict[str, tuple[str, dict[str, _F]]] = {
    "ObjectMeta": (
        "ObjectMeta",
        {
            "name": _S,
            "generateName": _S,
            "namespace": _S,
            "selfLink": _S,
            "uid": _S,
            "resourceVersion": _S,
            "generation": _I64,
            "creationTimestamp": _ANY,
            "deletionTimestamp": _ANY,
            "deletionGracePeriodSeconds": _I64,
            "labels": _MSS,
            "annotations": _MSS,
            "ownerReferences": _arr("[]v1.OwnerReference"),
            "finalizers": _LS,
            "managedFields": _arr("[]v1.ManagedFieldsEntry"),
        },
    ),
    "Namespace": (
        "Namespace",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.NamespaceSpec", "NamespaceSpec"),
            "status": _obj("v1.NamespaceStatus"),
        },
    ),
    "NamespaceSpec": (
        "NamespaceSpec",
        {"finalizers": _F("[]v1.FinalizerName", "strings", elem="v1.FinalizerName")},
    ),
    "Pod": (
        "Pod",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.PodSpec", "PodSpec"),
            "status": _obj("v1.PodStatus"),
        },
    ),
    "PodSpec": (
        "PodSpec",
        {
            "volumes": _arr("[]v1.Volume"),
            "initContainers": _ls("[]v1.Container", "Container"),
            "containers": _ls("[]v1.Container", "Container"),
            "ephemeralContainers": _arr("[]v1.EphemeralContainer"),
            "restartPolicy": _named("v1.RestartPolicy"),
            "terminationGracePeriodSeconds": _I64,
            "activeDeadlineSeconds": _I64,
            "dnsPolicy": _named("v1.DNSPolicy"),
            "nodeSelector": _MSS,
            "serviceAccountName": _S,
            "serviceAccount": _S,
            "automountServiceAccountToken": _B,
            "nodeName": _S,
            "hostNetwork": _B,
            "hostPID": _B,
            "hostIPC": _B,
            "shareProcessNamespace": _B,
            "securityContext": _obj("v1.PodSecurityContext"),
            "imagePullSecrets": _arr("[]v1.LocalObjectReference"),
            "hostname": _S,
            "subdomain": _S,
            "affinity": _obj("v1.Affinity"),
            "schedulerName": _S,
            "tolerations": _arr("[]v1.Toleration"),
            "hostAliases": _arr("[]v1.HostAlias"),
            "priorityClassName": _S,
            "priority": _I32,
            "dnsConfig": _st("v1.PodDNSConfig", "PodDNSConfig"),
            "readinessGates": _arr("[]v1.PodReadinessGate"),
            "runtimeClassName": _S,
            "enableServiceLinks": _B,
            "preemptionPolicy": _named("v1.PreemptionPolicy"),
            "overhead": _obj("v1.ResourceList"),
            "topologySpreadConstraints": _arr("[]v1.TopologySpreadConstraint"),
            "setHostnameAsFQDN": _B,
            "os": _obj("v1.PodOS"),
            "hostUsers": _B,
            "schedulingGates": _arr("[]v1.PodSchedulingGate"),
            "resourceClaims": _arr("[]v1.PodResourceClaim"),
            "resources": _obj("v1.ResourceRequirements"),
        },
    ),
    "Container": (
        "Container",
        {
            "name": _S,
            "image": _S,
            "command": _LS,
            "args": _LS,
            "workingDir": _S,
            "ports": _ls("[]v1.ContainerPort", "ContainerPort"),
            "envFrom": _arr("[]v1.EnvFromSource"),
            "env": _ls("[]v1.EnvVar", "EnvVar"),
            "resources": _st("v1.ResourceRequirements", "ResourceRequirements"),
            "resizePolicy": _arr("[]v1.ContainerResizePolicy"),
            "restartPolicy": _named("v1.ContainerRestartPolicy"),
            "volumeMounts": _arr("[]v1.VolumeMount"),
            "volumeDevices": _arr("[]v1.VolumeDevice"),
            "livenessProbe": _st("v1.Probe", "Probe"),
            "readinessProbe": _st("v1.Probe", "Probe"),
            "startupProbe": _st("v1.Probe", "Probe"),
            "lifecycle": _obj("v1.Lifecycle"),
            "terminationMessagePath": _S,
            "terminationMessagePolicy": _named("v1.TerminationMessagePolicy"),
            "imagePullPolicy": _named("v1.PullPolicy"),
            "securityContext": _obj("v1.SecurityContext"),
            "stdin": _B,
            "stdinOnce": _B,
            "tty": _B,
        },
    ),
    "ContainerPort": (
        "ContainerPort",
        {
            "name": _S,
            "hostPort": _I32,
            "containerPort": _I32,
            "protocol": _named("v1.Protocol"),
            "hostIP": _S,
        },
    ),
    "Deployment": (
        "Deployment",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.DeploymentSpec", "DeploymentSpec"),
            "status": _obj("v1.DeploymentStatus"),
        },
    ),
    "DeploymentSpec": (
        "DeploymentSpec",
        {
            "replicas": _I32,
            "selector": _st("v1.LabelSelector", "LabelSelector"),
            "template": _st("v1.PodTemplateSpec", "PodTemplateSpec"),
            "strategy": _st("v1.DeploymentStrategy", "DeploymentStrategy"),
            "minReadySeconds": _I32,
            "revisionHistoryLimit": _I32,
            "paused": _B,
            "progressDeadlineSeconds": _I32,
        },
    ),
    "LabelSelector": (
        "LabelSelector",
        {
            "matchLabels": _MSS,
            "matchExpressions": _ls("[]v1.LabelSelectorRequirement", "LabelSelectorRequirement"),
        },
    ),
    "LabelSelectorRequirement": (
        "LabelSelectorRequirement",
        {"key": _S, "operator": _named("v1.LabelSelectorOperator"), "values": _LS},
    ),
    "PodTemplateSpec": (
        "PodTemplateSpec",
        {"metadata": _META, "spec": _st("v1.PodSpec", "PodSpec")},
    ),
    "Service": (
        "Service",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.ServiceSpec", "ServiceSpec"),
            "status": _obj("v1.ServiceStatus"),
        },
    ),
    "ServiceSpec": (
        "ServiceSpec",
        {
            "ports": _ls("[]v1.ServicePort", "ServicePort"),
            "selector": _MSS,
            "clusterIP": _S,
            "clusterIPs": _LS,
            "type": _named("v1.ServiceType"),
            "externalIPs": _LS,
            "sessionAffinity": _named("v1.ServiceAffinity"),
            "loadBalancerIP": _S,
            "loadBalancerSourceRanges": _LS,
            "externalName": _S,
            "externalTrafficPolicy": _named("v1.ServiceExternalTrafficPolicy"),
            "healthCheckNodePort": _I32,
            "publishNotReadyAddresses": _B,
            "sessionAffinityConfig": _st("v1.SessionAffinityConfig", "SessionAffinityConfig"),
            "ipFamilies": _F("[]v1.IPFamily", "strings", elem="v1.IPFamily"),
            "ipFamilyPolicy": _named("v1.IPFamilyPolicy"),
            "allocateLoadBalancerNodePorts": _B,
            "loadBalancerClass": _S,
            "internalTrafficPolicy": _named("v1.ServiceInternalTrafficPolicy"),
            "trafficDistribution": _S,
        },
    ),
    "ServicePort": (
        "ServicePort",
        {
            "name": _S,
            "protocol": _named("v1.Protocol"),
            "appProtocol": _S,
            "port": _I32,
            "targetPort": _F("intstr.IntOrString", "intstr"),
            "nodePort": _I32,
        },
    ),
    "SessionAffinityConfig": (
        "SessionAffinityConfig",
        {"clientIP": _st("v1.ClientIPConfig", "ClientIPConfig")},
    ),
    "ClientIPConfig": ("ClientIPConfig", {"timeoutSeconds": _I32}),
    "PodDNSConfig": (
        "PodDNSConfig",
        {"nameservers": _LS, "searches": _LS, "options": _ls("[]v1.PodDNSConfigOption", "Option")},
    ),
    "Option": ("PodDNSConfigOption", {"name": _S, "value": _S}),
    "EnvVar": ("EnvVar", {"name": _S, "value": _S, "valueFrom": _obj("v1.EnvVarSource")}),
    "ResourceRequirements": (
        "ResourceRequirements",
        {
            "limits": _F("v1.ResourceList", "quantities"),
            "requests": _F("v1.ResourceList", "quantities"),
            "claims": _arr("[]v1.ResourceClaim"),
        },
    ),
    "Probe": (
        "Probe",
        {
            "exec": _obj("v1.ExecAction"),
            "httpGet": _st("v1.HTTPGetAction", "HTTPGetAction"),
            "tcpSocket": _st("v1.TCPSocketAction", "TCPSocketAction"),
            "grpc": _st("v1.GRPCAction", "GRPCAction"),
            "initialDelaySeconds": _I32,
            "timeoutSeconds": _I32,
            "periodSeconds": _I32,
            "successThreshold": _I32,
            "failureThreshold": _I32,
            "terminationGracePeriodSeconds": _I64,
        },
    ),
    "HTTPGetAction": (
        "HTTPGetAction",
        {
            "path": _S,
            "port": _F("intstr.IntOrString", "intstr"),
            "host": _S,
            "scheme": _named("v1.URIScheme"),
            "httpHeaders": _arr("[]v1.HTTPHeader"),
        },
    ),
    "TCPSocketAction": (
        "TCPSocketAction",
        {"port": _F("intstr.IntOrString", "intstr"), "host": _S},
    ),
    "GRPCAction": ("GRPCAction", {"port": _I32, "service": _S}),
    "DeploymentStrategy": (
        "DeploymentStrategy",
        {
            "type": _named("v1.DeploymentStrategyType"),
            "rollingUpdate": _st("v1.RollingUpdateDeployment", "RollingUpdateDeployment"),
        },
    ),
    "RollingUpdateDeployment": (
        "RollingUpdateDeployment",
        {
            "maxUnavailable": _F("intstr.IntOrString", "intstr"),
            "maxSurge": _F("intstr.IntOrString", "intstr"),
        },
    ),
}

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_BAD = object()  # a value that failed to decode and was dropped
