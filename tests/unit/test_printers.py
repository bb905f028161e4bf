"""``netlab get``: kubectl's columns and cell formats (kubernetes/kubernetes
``pkg/printers/internalversion/printers.go``, v1.33), ages as ``duration.HumanDuration``, the
objects of ``-o json`` in the API's shape, and kubectl's alignment in a pipe."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from netlab.api.listing import listing
from netlab.checks.validate import load_and_validate
from netlab.cli.output import aligned
from netlab.cluster import manifests, printers
from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice, PodInfo
from netlab.errors import UsageError
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def state(name: str) -> ClusterState:
    return load_and_validate(SCENARIOS / f"{name}.yaml")[1]


# staging/src/k8s.io/apimachinery/pkg/util/duration/duration_test.go: TestHumanDuration and
# TestHumanDurationBoundaries (seconds; a millisecond less is written as .999).
HOUR, DAY, YEAR = 3600, 86400, 365 * 86400


@pytest.mark.parametrize(
    ("seconds", "want"),
    [
        (1, "1s"),
        (70, "70s"),
        (190, "3m10s"),
        (70 * 60, "70m"),
        (47 * HOUR, "47h"),
        (49 * HOUR, "2d1h"),
        ((8 * 24 + 2) * HOUR, "8d"),
        (367 * DAY, "367d"),
        ((365 * 2 * 24 + 25) * HOUR, "2y1d"),
        ((365 * 8 * 24 + 2) * HOUR, "8y"),
        (-2, "<invalid>"),
        (-1.999999999, "0s"),
        (0, "0s"),
        (0.999, "0s"),
        (119.999, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (599.999, "9m59s"),
        (600, "10m"),
        (601, "10m"),
        (3 * HOUR - 0.001, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 60, "3h1m"),
        (8 * HOUR - 0.001, "7h59m"),
        (8 * HOUR, "8h"),
        (8 * HOUR + 59 * 60, "8h"),
        (2 * DAY - 0.001, "47h"),
        (2 * DAY, "2d"),
        (2 * DAY + HOUR, "2d1h"),
        (8 * DAY - 0.001, "7d23h"),
        (8 * DAY, "8d"),
        (8 * DAY + 23 * HOUR, "8d"),
        (2 * YEAR - 0.001, "729d"),
        (2 * YEAR, "2y"),
        (2 * YEAR + 23 * HOUR + 59 * 60, "2y"),
        (2 * YEAR + DAY, "2y1d"),
        (7 * YEAR, "7y"),
        (8 * YEAR - 0.001, "7y364d"),
        (8 * YEAR, "8y"),
        (9 * YEAR, "9y"),
    ],
)
def test_human_duration_as_upstream(seconds: float, want: str) -> None:
    assert printers.human_duration(seconds) == want


def five_minutes(_: object) -> str:
    return "5m"


def test_services_columns_and_cells() -> None:
    st = state("nodeport")
    items = printers.objects(st, "svc", "default")
    table = printers.table("svc", items, five_minutes)
    assert table.header() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert table.header(wide=True)[-1] == "SELECTOR"
    rows = {row[0]: row for row in table.cells()}
    assert sorted(rows) == ["both", "kubernetes", "local", "web"]  # the API lists by name
    assert rows["kubernetes"] == ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP", "5m"]
    web = st.service("default", "web")
    assert rows["web"][1:] == ["NodePort", web.cluster_ip, "<none>", "80:30080/TCP", "5m"]
    wide = {row[0]: row for row in table.cells(wide=True)}
    assert wide["web"][-1] == "app=web"
    assert wide["kubernetes"][-1] == "<none>"


def test_headless_and_external_name_services() -> None:
    rows = {r[0]: r for r in printers.table("svc", state("headless").services, five_minutes).rows}
    assert rows["db"][2:5] == ["None", "<none>", "5432/TCP"]
    rows = {
        r[0]: r for r in printers.table("svc", state("externalname").services, five_minutes).rows
    }
    # getServiceExternalIP: an ExternalName Service shows its name; it has no cluster IP
    assert rows["database"][1:5] == ["ExternalName", "<none>", "db.example.com", "<none>"]


def test_load_balancer_external_ip_is_clipped_unless_wide() -> None:
    svc = Service(
        meta=ObjectMeta("lb"),
        ports=[ServicePort(80, node_port=30001), ServicePort(443, node_port=30002, name="s")],
        type="LoadBalancer",
        cluster_ip="10.96.0.50",
        load_balancer_ingress=["192.0.2.10", "192.0.2.9"],
    )
    assert printers.service_external_ip(svc, wide=False) == "192.0.2.10,19..."
    assert printers.service_external_ip(svc, wide=True) == "192.0.2.10,192.0.2.9"
    assert printers.port_string(svc) == "80:30001/TCP,443:30002/TCP"
    pending = replace(svc, load_balancer_ingress=[])
    assert printers.service_external_ip(pending, wide=False) == "<pending>"
    with_ips = replace(svc, load_balancer_ingress=["192.0.2.1"], external_ips=["203.0.113.5"])
    assert printers.service_external_ip(with_ips, wide=False) == "192.0.2.1,203.0.113.5"
    table = printers.table("svc", [svc], five_minutes, wide=True)
    assert table.rows[0][3] == "192.0.2.10,192.0.2.9"


def test_pods_ready_status_and_wide_columns() -> None:
    st = state("no-endpoints")
    pods = [p for p in printers.objects(st, "pods", "default") if isinstance(p, PodInfo)]
    table = printers.table("pods", pods, five_minutes)
    assert table.header() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table.header(wide=True) == [
        *table.header(),
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    by_name = {r[0]: r for r in table.cells(wide=True)}
    unready = [p for p in pods if not p.ready]
    assert unready, "no-endpoints.yaml has an unready pod"
    for p in pods:
        row = by_name[p.name]
        ready = "1/1" if p.ready else "0/1"
        assert row[1:5] == [ready, "Running", "0", "5m"]
        assert row[5:] == [p.ip, p.node, "<none>", "<none>"]


def test_endpoint_slices_show_three_then_how_many_more() -> None:
    es = EndpointSlice(
        namespace="default",
        name="web-abcde",
        service="default/web",
        ports=[EndpointPort(f"p{i}", 8080 + i, "TCP") for i in range(4)],
        endpoints=[Endpoint(f"10.244.1.{i}", "node-1", f"default/web-{i}") for i in range(2, 7)],
    )
    row = printers.endpoint_slice_row(es, "5m")
    assert row == [
        "web-abcde",
        "IPv4",
        "8080,8081,8082 + 1 more...",
        "10.244.1.2,10.244.1.3,10.244.1.4 + 2 more...",
        "5m",
    ]
    empty = replace(es, ports=[], endpoints=[])
    assert printers.endpoint_slice_row(empty, "5m")[2:4] == ["<unset>", "<unset>"]
    table = printers.table("endpointslices", [es], five_minutes)
    assert table.header() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]


def test_all_namespaces_puts_namespace_first_and_lists_by_namespace() -> None:
    st = state("dns")
    got = listing(st, 0.0, "svc", None)
    table = got.table()
    assert table.header()[0] == "NAMESPACE"
    namespaces = [row[0] for row in table.rows]
    assert namespaces == sorted(namespaces)
    assert table.rows[-1][:2] == ["kube-system", "kube-dns"]


def test_resource_names_as_kubectl_spells_them() -> None:
    st = state("clusterip")
    for name in ("po", "pod", "pods", "PODS"):
        assert listing(st, 0.0, name).resource == "pods"
    for name in ("svc", "service", "services"):
        assert listing(st, 0.0, name).resource == "services"
    assert listing(st, 0.0, "endpointslice").resource == "endpointslices"
    with pytest.raises(UsageError, match='doesn\'t have a resource type "deploy"'):
        listing(st, 0.0, "deploy")
    assert listing(st, 0.0, "pods", "nowhere").empty_message() == (
        "No resources found in nowhere namespace."
    )


def test_objects_come_back_in_the_apis_shape() -> None:
    st = state("loadbalancer")
    data = listing(st, 0.0, "svc").to_data()
    assert data["apiVersion"] == "v1" and data["kind"] == "List"
    web = next(i for i in data["items"] if i["metadata"]["name"] == "web")
    assert web["metadata"]["creationTimestamp"] == "1970-01-01T00:00:00Z"
    assert web["spec"]["type"] == "LoadBalancer"
    assert web["spec"]["clusterIPs"] == [web["spec"]["clusterIP"]]
    assert web["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.1"}]
    assert web["spec"]["ports"][0]["nodePort"] >= 30000
    slices = listing(st, 0.0, "endpointslices").manifests()
    web_slice = next(s for s in slices if s["metadata"]["name"].startswith("web-"))
    assert web_slice["apiVersion"] == "discovery.k8s.io/v1"
    assert web_slice["metadata"]["labels"] == {
        manifests.SERVICE_NAME_LABEL: "web",
        manifests.MANAGED_BY_LABEL: "endpointslice-controller.k8s.io",
    }
    ep = web_slice["endpoints"][0]
    assert ep["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert ep["targetRef"]["kind"] == "Pod"
    kube = next(s for s in slices if s["metadata"]["name"] == "kubernetes")
    assert manifests.MANAGED_BY_LABEL not in kube["metadata"]["labels"]
    pods = listing(st, 0.0, "pods").manifests()
    web_a = next(p for p in pods if p["metadata"]["name"] == "web-a")
    assert web_a["status"]["podIP"] == st.pod("default", "web-a").ip
    assert web_a["status"]["hostIP"] == st.node(st.pod("default", "web-a").node).ip
    assert {"type": "Ready", "status": "True"} in web_a["status"]["conditions"]
    assert web_a["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080


def test_a_pipe_gets_kubectls_alignment() -> None:
    """cli-runtime's tab writer: a column is as wide as its widest cell plus three spaces, at
    least six; the last column is not padded."""
    lines = aligned(["NAME", "TYPE", "AGE"], [["kubernetes", "ClusterIP", "5m"], ["a", "b", "c"]])
    assert lines == [
        "NAME         TYPE        AGE",
        "kubernetes   ClusterIP   5m",
        "a            b           c",
    ]
    assert aligned(["A", "B"], [["x", "y"]]) == ["A     B", "x     y"]
    assert aligned([], []) == []
