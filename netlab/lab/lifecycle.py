"""A lab's lifecycle: up, sync, check, change, down.

:class:`Lab` orchestrates the rooms: the cluster model is built (pure), the topology plan is built
in the kernel, every node's proxy is synced, the agent serves the pods, the cloud load balancer
health-checks nodes. Its state lives in the state file (:mod:`netlab.lab.record`); removal of
whatever a lab left is :mod:`netlab.lab.cleanup`; running one check is :mod:`netlab.lab.probing`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator

from netlab import checks as checks_mod
from netlab.cluster import cni, topology
from netlab.cluster.build import build_cluster
from netlab.cluster.changes import ChangeRefused
from netlab.cluster.state import ClusterState, Node, PodInfo
from netlab.errors import Diagnostic, LabError, ScenarioError, UsageError
from netlab.explain.conntrack import FlowTable
from netlab.explain.rules.model import Explanation
from netlab.explain.trace.report import TraceReport
from netlab.kernel import build as kbuild
from netlab.kernel import etcnetns, netns, process, rules
from netlab.lab import changes, cloud, doctor, probing
from netlab.lab.changes import ChangeReport, OnPhase
from netlab.lab.cleanup import find_lab_namespaces, remove_bpf_objects, tidy_roots
from netlab.lab.record import (
    LabRecord,
    claim,
    list_labs,
    locked,
    read_record,
    shielded,
    state_dir,
    write_record,
)
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.registry import make_proxier
from netlab.scenario.changespec import (
    DELETABLE,
    ApplyChange,
    Change,
    DeleteChange,
    NodeChange,
    ReadyChange,
    ScaleChange,
    parse_ref,
)
from netlab.scenario.checkspec import CheckSpec, Source
from netlab.scenario.model import Scenario
from netlab.serial import to_data
from netlab.traffic.held import HeldConnection
from netlab.workloads.spec import RELOAD_REQUEST, RELOADED, build_spec

Progress = Callable[[str], None]


class Lab:
    def __init__(self, record: LabRecord):
        self.record = record
        self._proxier: Proxier | None = None
        # Connections checks keep open between steps (hold: NAME), in this process only.
        self.held: dict[str, HeldConnection] = {}
        self._locks = 0  # depth of exclusive()

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def state(self) -> ClusterState:
        return self.record.cluster

    @property
    def proxier(self) -> Proxier:
        if self._proxier is None:
            self._proxier = make_proxier(self.record.mode, self.state, self.record.backend or None)
        return self._proxier

    # lifecycle -----------------------------------------------------------------------------

    @classmethod
    def up(
        cls, scenario: Scenario, *, mode: str | None = None, progress: Progress | None = None
    ) -> Lab:
        """Build the whole lab; on any failure or interrupt, remove what was made and re-raise."""
        say = progress or (lambda _msg: None)
        lab_spec = scenario.lab
        mode = mode or lab_spec.proxy.mode
        doctor.require(mode)
        name = lab_spec.name
        if read_record(name) is not None or os.path.exists(state_dir(name)):
            raise LabError(f"lab {name} is already up", hint=f"run: netlab down {name}")
        state = build_cluster(scenario)
        proxier = make_proxier(mode, state)
        plan = topology.plan(state, proxier.node_sysctls())
        clashes = [n.name for n in plan.namespaces if netns.exists(n.name)]
        if clashes:
            raise LabError(
                f"namespace {clashes[0]} already exists",
                hint="another lab or tool uses these names; pick another lab name "
                "(metadata.name or --name)",
            )
        record = LabRecord(
            name=name,
            scenario=os.path.abspath(scenario.file),
            created=time.time(),
            status="building",
            mode=mode,
            cluster=state,
            netns=[n.name for n in plan.namespaces],
            backend=getattr(proxier, "backend", ""),
        )
        lab = cls(record)
        lab._proxier = proxier
        claim(name)
        write_record(record)
        made: list[str] = []
        try:
            t0 = time.perf_counter()
            pods = len(plan.pods())
            say(
                f"building {len(plan.namespaces)} namespaces ({len(state.nodes)} nodes, "
                f"{pods} pods)"
            )
            kbuild.build(plan, created=made)
            record.timings["topology"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            backend = getattr(proxier, "backend", "") or "nft"
            for node in state.nodes:
                rules.iptables_restore(node.netns, cni.render(state.lab.network.pod_cidr), backend)
            say(f"programming {proxier.describe()} rules on {len(state.nodes)} nodes")
            lab.sync(first=True)
            record.timings["sync"] = time.perf_counter() - t1
            t2 = time.perf_counter()
            say("starting pod servers")
            lab._start_agent()
            record.timings["agent"] = time.perf_counter() - t2
            if any(s.type == "LoadBalancer" for s in state.services):
                say("health-checking nodes for the load balancer")
                record.load_balancers = cloud.program(state)
            record.timings["up"] = time.perf_counter() - t0
            record.status = "up"
            write_record(record)
        except BaseException:
            with shielded():
                # Only what this run made: a same-named namespace that appeared meanwhile is
                # someone else's.
                record.netns = [n for n in record.netns if n in made]
                lab.down()
            raise
        return lab

    @classmethod
    def open(cls, name: str) -> Lab:
        record = read_record(name)
        if record is None:
            names = ", ".join(r.name for r in list_labs()) or "none"
            raise UsageError(f"no lab named {name} is up", hint=f"labs up: {names}")
        return cls(record)

    def down(self) -> float:
        """Remove everything this lab made: processes, namespaces, files. Returns seconds."""
        t0 = time.perf_counter()
        self.close_held()
        with shielded():
            names = list(
                dict.fromkeys(
                    [*self.record.netns, *find_lab_namespaces(self.name, prefix_only=True)]
                )
            )
            inodes = {i for n in names if (i := netns.inode(n)) is not None}
            for d in self.record.daemons:
                process.stop(d, self.name)
            for pid in process.find_tagged(self.name, inodes):
                process.kill_pid(pid)
            remove_bpf_objects(self.name, before_namespaces=True)
            for name in names:
                etcnetns.remove(name)
                netns.remove(name)
            remove_bpf_objects(self.name, before_namespaces=False)
            shutil.rmtree(state_dir(self.name), ignore_errors=True)
            tidy_roots()
        return time.perf_counter() - t0

    def sync(self, *, first: bool = False) -> list[SyncResult]:
        return [self.proxier.sync(node, first=first) for node in self.state.nodes]

    def _write_agent_files(self) -> None:
        """cluster.json (the state the agent answers from) and agent.json (what it serves)."""
        d = state_dir(self.name)
        for name, data in (
            ("cluster.json", to_data(self.state)),
            ("agent.json", to_data(build_spec(self.state, self.record.mode))),
        ):
            tmp = os.path.join(d, name + ".tmp")
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, os.path.join(d, name))

    def _start_agent(self) -> None:
        self._write_agent_files()
        daemon = process.spawn(
            self.name,
            "agent",
            process.python_module("netlab.workloads.agent", state_dir(self.name)),
            os.path.join(state_dir(self.name), "agent.log"),
        )
        self.record.daemons.append(daemon)
        write_record(self.record)

    def reload_agent(self, timeout: float = 30) -> None:
        """Hand the agent the new state (SIGHUP) and wait until it says it has reconciled."""
        self._write_agent_files()
        agent = next((d for d in self.record.daemons if d.name == "agent"), None)
        if (
            agent is None
            or process.start_time(agent.pid) != agent.start_time
            or process.lab_of(agent.pid) != self.name
        ):
            raise LabError(
                f"the agent of lab {self.name} is not running",
                hint=f"see {state_dir(self.name)}/agent.log; rebuild with netlab down and up",
            )
        nonce = os.urandom(8).hex()
        request = os.path.join(state_dir(self.name), RELOAD_REQUEST)
        with open(request + ".tmp", "w") as f:
            f.write(nonce)
        os.replace(request + ".tmp", request)
        os.kill(agent.pid, signal.SIGHUP)
        answer = os.path.join(state_dir(self.name), RELOADED)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(answer) as f:
                    reply = json.load(f)
            except (OSError, ValueError):
                reply = {}
            if reply.get("nonce") == nonce:
                if not reply.get("ok"):
                    raise LabError("the agent could not reload", detail=reply.get("error", ""))
                return
            time.sleep(0.01)
        raise LabError("the agent did not reload", hint=f"see {state_dir(self.name)}/agent.log")

    def set_ready(self, pod: PodInfo, ready: bool) -> float:
        """Flip a pod's readiness and let the cluster react as it would: the EndpointSlice
        controller, kube-proxy on every node, cluster DNS and the load balancer's health checks.
        Returns seconds taken."""
        change = ReadyChange(namespace=pod.namespace, name=pod.name, ready=ready)
        return self.change(change, wait=False).seconds

    # changes -------------------------------------------------------------------------------

    def change(
        self, what: Change, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """Change the live cluster as Kubernetes would (see :mod:`netlab.lab.changes`): the
        desired state, the controllers, every node's proxy, the agent, conntrack, the load
        balancer. Refused changes raise :class:`UsageError` (or :class:`ScenarioError` for a
        change written in a file) with nothing changed."""
        try:
            return changes.change(self, what, wait=wait, on_phase=on_phase)
        except ChangeRefused as exc:
            o = exc.origin
            if o is None:
                raise UsageError(str(exc), hint=exc.hint) from None
            raise ScenarioError(
                [
                    Diagnostic(
                        message=str(exc),
                        file=o.file,
                        line=o.line,
                        col=o.col,
                        path=o.path,
                        hint=exc.hint,
                        category=what.describe(),
                    )
                ]
            ) from None

    def apply(
        self, manifests: ApplyChange, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """``kubectl apply``: the manifests' objects created or updated (pruned with prune)."""
        return self.change(manifests, wait=wait, on_phase=on_phase)

    def scale(
        self,
        deployment: str,
        replicas: int,
        *,
        wait: bool = True,
        on_phase: OnPhase | None = None,
    ) -> ChangeReport:
        """``kubectl scale deployment/NAME --replicas=N`` (NAME or NAMESPACE/NAME)."""
        ns, name = parse_ref(deployment)
        change = ScaleChange(namespace=ns, name=name, replicas=replicas)
        return self.change(change, wait=wait, on_phase=on_phase)

    def delete(
        self,
        resource: str,
        ref: str,
        *,
        grace: int | None = None,
        wait: bool = True,
        on_phase: OnPhase | None = None,
    ) -> ChangeReport:
        """``kubectl delete pod|service|deployment/NAME``; a pod terminates for ``grace``
        seconds (default: its own terminationGracePeriodSeconds; 0: at once)."""
        if resource not in DELETABLE:
            raise UsageError(
                f"cannot delete {resource!r}", hint=f"delete one of: {', '.join(DELETABLE)}"
            )
        ns, name = parse_ref(ref)
        change = DeleteChange(resource=resource, namespace=ns, name=name, grace=grace)
        return self.change(change, wait=wait, on_phase=on_phase)

    def set_node(
        self, node: str, up: bool, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """A node goes down (cut off, its kubelet silent) or comes back up."""
        return self.change(NodeChange(node=node, up=up), wait=wait, on_phase=on_phase)

    def catch_up(self, on_phase: OnPhase | None = None) -> ChangeReport:
        """Realize whatever time has brought since the lab last changed (a grace period that
        ended, a node's grace period that ran out)."""
        return changes.catch_up(self, on_phase=on_phase)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Change the lab alone: hold its change lock, and first take up what another netlab
        process wrote meanwhile (then this process's proxier starts afresh, with a full sync,
        as its idea of the nodes' rules may be stale). Re-entrant."""
        if self._locks:
            self._locks += 1
            try:
                yield
            finally:
                self._locks -= 1
            return
        with locked(self.name):
            self._locks = 1
            try:
                disk = read_record(self.name)
                if disk is None:
                    raise LabError(f"lab {self.name} was removed meanwhile")
                if disk.generation != self.record.generation:
                    self.record = disk
                    self._proxier = None
                yield
            finally:
                self._locks = 0

    def restart_proxy(self) -> None:
        """kube-proxy restarts (with the state's proxy settings): a fresh proxier, whose first
        sync reads what the node holds and syncs in full."""
        backend = self.record.backend or None
        self._proxier = make_proxier(self.record.mode, self.state, backend)

    def close_held(self) -> None:
        for conn in self.held.values():
            conn.close()
        self.held.clear()

    # use -------------------------------------------------------------------------------------

    def checks(self, specs: tuple[CheckSpec, ...] | None) -> list[CheckSpec]:
        return list(specs) if specs is not None else checks_mod.derive(self.state, self.record.mode)

    def run_checks(
        self,
        specs: list[CheckSpec],
        on_result: Callable[[checks_mod.CheckResult], None] | None = None,
        pcap_dir: str | None = None,
    ) -> list[checks_mod.CheckResult]:
        """Run checks as they apply to this lab's proxy mode (its per-mode expectations); with
        ``pcap_dir``, keep a pcap of both ends of every failed connect check there."""
        specs = [s.for_mode(self.record.mode) for s in specs]
        resolved, errors = checks_mod.resolve_all(self.state, specs, self.record.mode)
        if errors:
            raise ScenarioError(errors)
        results = []
        for check in resolved:
            result = self.run_check(check, pcap_dir)
            results.append(result)
            if on_result:
                on_result(result)
        return results

    def run_check(
        self, check: checks_mod.ResolvedCheck, pcap_dir: str | None = None
    ) -> checks_mod.CheckResult:
        source = check.spec.source
        cgroup = None
        if source.kind == "node":
            cgroup = self.proxier.node_cgroup(self.node(source.name))
        return probing.run_check(
            self.name, check, self.held, pcap_dir, proxier=self.proxier, cgroup=cgroup
        )

    # seeing how a Service works ----------------------------------------------------------------

    def trace(
        self,
        source: str,
        destination: str,
        *,
        protocol: str | None = None,
        timeout: float = 2.0,
        endpoint: str = "",
    ) -> TraceReport:
        """One real connection from ``source`` to ``destination`` (as a check's ``from`` and
        ``to``), and the path the kernel recorded for it (:mod:`netlab.lab.trace`); with
        ``endpoint``, connections until the kernel picks that pod."""
        from netlab.lab.trace import trace

        return trace(self, source, destination, protocol, timeout, endpoint)

    def explain(self, service: str, *, node: str | None = None, lang: str = "en") -> Explanation:
        """A Service's rules on ``node``, each with what it does and why (any mode)."""
        from netlab.lab.learn import explain

        return explain(self, service, node, lang)

    def conntrack(self, node: str, *, service: str | None = None) -> FlowTable:
        """The node's NATed flows, named (only those dialled at ``service`` if given)."""
        from netlab.lab.learn import conntrack_view

        return conntrack_view(self, node, service)

    def capture(
        self,
        target: str,
        *,
        iface: str | None = None,
        path: str | None = None,
        bpf: str = "",
        count: int | None = None,
        seconds: float | None = None,
        on_ready: Callable[[], None] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> int:
        """tcpdump in ``target`` (pod/NAME, node/NODE, external, fabric) into the pcap ``path``
        or as lines to ``on_line``; returns how many packets were captured."""
        from netlab.lab.learn import capture, default_interface

        return capture(
            self,
            self.target_netns(target),
            iface or default_interface(target),
            path=path,
            bpf=bpf,
            count=count,
            seconds=seconds,
            on_ready=on_ready,
            on_line=on_line,
        )

    def graph(self, fmt: str = "mermaid") -> str:
        """The lab drawn as mermaid or dot, as it is now."""
        from netlab.explain.graph import render

        return render(self.state, fmt)

    # targets for exec and rules ------------------------------------------------------------------

    def target_netns(self, target: str) -> str:
        """``pod/NAME``, ``pod/NS/NAME``, ``node/NODE``, ``external``, ``fabric``."""
        kind, _, rest = target.partition("/")
        if kind == "external" and not rest:
            return self.state.external.netns
        if kind == "fabric" and not rest:
            return self.state.fabric_netns
        if kind == "node":
            return self.node(rest).netns
        if kind == "pod":
            return self.pod(rest).netns
        raise UsageError(
            f"unknown target {target!r}",
            hint="use pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or fabric",
        )

    def node(self, name: str) -> Node:
        try:
            return self.state.node(name)
        except KeyError:
            names = ", ".join(n.name for n in self.state.nodes)
            raise UsageError(f"no node {name} in lab {self.name}", hint=f"nodes: {names}") from None

    def pod(self, ref: str) -> PodInfo:
        ns, _, name = ref.rpartition("/")
        try:
            return checks_mod.find_pod(self.state, Source("pod", name, ns))
        except checks_mod.ResolveError as exc:
            raise UsageError(str(exc), hint=exc.hint) from None
