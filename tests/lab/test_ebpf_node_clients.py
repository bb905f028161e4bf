"""Privileged: a node's own clients in ebpf mode through a changing cluster.

Cilium's socket load-balancing picks the backend once, at connect(): the node's socket is then
connected to the pod itself, and no packet carries the ClusterIP. So a connection a node holds
stays with its pod while the pod terminates (Cilium leaves it alone unless
``bpf-lb-sock-terminate-pod-connections`` is set), new connections skip the terminating pod,
and the held one closes only when the pod is gone. HTTP from the node goes the same way. The
shipped scenarios hold connections from pods only; this covers the node's side.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.lab.host import HostSnapshot, netlab, snapshot

SCENARIO = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: ebpf-node-held}
    spec:
      nodes: 2
      proxy: {mode: ebpf}
      checks:
      - name: node-http
        kind: http
        from: node/node-2
        to: service/web
        path: /hostname
        expect: {status: 200, body: web-a}
      - name: node-holds
        from: node/node-2
        to: service/web
        hold: node-conn
        expect: {endpoints: [web-a]}
      steps:
      - name: web-b-ready
        ready: {pod: web-b, value: true}
        checks:
        - {name: held-stays, connection: node-conn, expect: {endpoints: [web-a]}}
        - {name: node-reaches-both, from: node/node-1, to: service/web,
           expect: {endpoints: [web-a, web-b]}}
      - name: delete-web-a
        delete: {pod: web-a, gracePeriodSeconds: 6}
        checks:
        - {name: new-skip-terminating, from: node/node-2, to: service/web,
           expect: {endpoints: [web-b]}}
        - {name: held-while-terminating, connection: node-conn, expect: {endpoints: [web-a]}}
      - name: web-a-gone
        wait: 6s
        checks:
        - {name: held-closed, connection: node-conn, expect: {result: closed}}
        - {name: http-to-web-b, kind: http, from: node/node-1, to: service/web, path: /hostname,
           expect: {status: 200, body: web-b}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web-a, labels: {app: web}}
    spec:
      nodeName: node-1
      containers:
      - {name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
         args: [netexec, --http-port=8080], ports: [{name: http, containerPort: 8080}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: web-b
      labels: {app: web}
      annotations: {netlab.dev/ready: "false"}
    spec:
      nodeName: node-2
      containers:
      - {name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
         args: [netexec, --http-port=8080], ports: [{name: http, containerPort: 8080}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      ports: [{name: http, port: 80, targetPort: http}]
    """)


def _names(data: dict[str, Any]) -> list[str]:
    return [c["name"] for c in data["checks"]] + [
        c["name"] for step in data["steps"] for c in step["checks"]
    ]


def test_node_clients_hold_their_pod_through_a_change(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    path = tmp_path / "ebpf-node-held.yaml"
    path.write_text(SCENARIO)
    proc = netlab("run", str(path), "--json")
    data = json.loads(proc.stdout)
    failed = [
        (c["name"], c["failures"])
        for c in data["checks"] + [c for s in data["steps"] for c in s["checks"]]
        if not c["passed"]
    ]
    assert proc.returncode == 0, (failed, proc.stderr)
    assert _names(data) == [
        "node-http",
        "node-holds",
        "held-stays",
        "node-reaches-both",
        "new-skip-terminating",
        "held-while-terminating",
        "held-closed",
        "http-to-web-b",
    ]
    assert snapshot() == clean_host, clean_host.diff(snapshot())
