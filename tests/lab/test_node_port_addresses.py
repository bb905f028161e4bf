"""nodePortAddresses for real: iptables mode told ``primary`` serves NodePorts on the node IP
only, with no localhost NodePorts and no route_localnet; the ebpf mode, told CIDRs that hold no
device address, writes no routable NodePort frontend and keeps the surrogate the node's own
sockets reach (the shipped nodeport scenario covers the defaults of every mode)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.lab.host import HostSnapshot, netlab, snapshot

LAB = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: npa}
    spec:
      nodes: 2
      proxy: {mode: iptables, nodePortAddresses: primary}
      checks:
      - {name: node-ip, from: pod/client-node-1, to: node/node-1:30080, expect: {endpoints: [web]}}
      - {name: gateway, from: pod/client-node-1, to: 10.244.1.1:30080, expect: {result: refused}}
      - {name: localhost, from: node/node-1, to: 127.0.0.1:30080, expect: {result: refused}}
    """)
EBPF_LAB = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: npa-ebpf}
    spec:
      nodes: 2
      proxy: {mode: ebpf, nodePortAddresses: [10.244.0.0/16]}
      checks:
      - {name: node-ip, from: pod/client-node-1, to: node/node-1:30080, expect: {result: refused}}
      - {name: other-node, from: node/node-2, to: node/node-1:30080, expect: {result: refused}}
      - {name: own-sockets, from: node/node-1, to: node/node-1:30080, expect: {endpoints: [web]}}
      - {name: localhost, from: node/node-1, to: 127.0.0.1:30080, expect: {endpoints: [web]}}
      - {name: clusterip, from: pod/client-node-1, to: service/web, expect: {endpoints: [web]}}
    """)
MANIFESTS = textwrap.dedent("""\
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web, labels: {app: web}}
    spec:
      nodeName: node-2
      containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      type: NodePort
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
    """)
SCENARIO = LAB + MANIFESTS


def test_iptables_with_primary_node_port_addresses(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    path = tmp_path / "npa.yaml"
    path.write_text(SCENARIO)
    proc = netlab("run", str(path), "--json", "--keep")
    try:
        data = json.loads(proc.stdout)
        failed = [(c["name"], c["failures"]) for c in data["checks"] if not c["passed"]]
        assert proc.returncode == 0, (failed, proc.stderr)
        localnet = netlab(
            "exec", "npa", "node/node-1", "--", "cat", "/proc/sys/net/ipv4/conf/all/route_localnet"
        )
        assert localnet.stdout.strip() == "0"
        rules = netlab("rules", "npa", "node/node-1").stdout
        assert (
            '-A KUBE-SERVICES -d 192.168.56.11/32 -m comment --comment "kubernetes service '
            'nodeports; NOTE: this must be the last rule in this chain" -j KUBE-NODEPORTS'
        ) in rules
        assert "--dst-type LOCAL -j KUBE-NODEPORTS" not in rules
    finally:
        down = netlab("down", "npa")
        assert down.returncode == 0, down.stderr
    assert snapshot() == clean_host, clean_host.diff(snapshot())


def test_ebpf_reads_node_port_addresses_as_cilium_does(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    path = tmp_path / "npa-ebpf.yaml"
    path.write_text(EBPF_LAB + MANIFESTS)
    proc = netlab("run", str(path), "--json", "--keep")
    try:
        data = json.loads(proc.stdout)
        failed = [(c["name"], c["failures"]) for c in data["checks"] if not c["passed"]]
        assert proc.returncode == 0, (failed, proc.stderr)
        assert len(data["checks"]) == 5
        rules = netlab("rules", "npa-ebpf", "node/node-1").stdout
        assert "0.0.0.0:30080/TCP" in rules, rules
        assert "192.168.56.11:30080" not in rules, rules
    finally:
        down = netlab("down", "npa-ebpf")
        assert down.returncode == 0, down.stderr
    assert snapshot() == clean_host, clean_host.diff(snapshot())
