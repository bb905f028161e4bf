"""A lab from Python: bring it up, use it, take it down.

::

    import netlab

    with netlab.up("scenario.yaml", mode="nftables") as lab:
        results = lab.check()
        assert results.passed, results.report()
        web = lab.connect("pod/client-node-1", "service/web:http")
        print(web.reached)                     # {'web-6d4c-abcde': 16, ...}

The ``with`` block removes the lab whatever happens in it: an exception, Ctrl-C, or a SIGTERM
or SIGHUP (turned into ``KeyboardInterrupt`` while the block runs, unless the program handles
those signals itself). Everything the command line does goes through this module, so a script
can do all of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from netlab.api.listing import Listing, listing
from netlab.api.results import CheckResults
from netlab.api.scenarios import load
from netlab.api.status import LabStatus, LabSummary
from netlab.checks.adhoc import connect_data, parse_adhoc, relocate
from netlab.checks.model import CheckResult
from netlab.cluster.state import ClusterState, Node, PodInfo
from netlab.errors import PrerequisiteError, ScenarioError, UsageError
from netlab.explain.conntrack import FlowTable
from netlab.explain.rules.model import Explanation
from netlab.explain.trace.report import TraceReport
from netlab.kernel import cgroup
from netlab.lab import doctor as doctor_mod
from netlab.lab.changes import ChangeReport, OnPhase
from netlab.lab.cleanup import CleanupReport
from netlab.lab.lifecycle import Lab as LiveLab
from netlab.lab.timeline import StepResult, run_steps
from netlab.scenario.changespec import (
    DELETABLE,
    ApplyChange,
    Change,
    DeleteChange,
    NodeChange,
    ScaleChange,
    parse_ref,
)
from netlab.scenario.checkspec import CheckSpec
from netlab.scenario.labschema import PROXY_MODES
from netlab.scenario.manifests import load_manifests
from netlab.scenario.model import Scenario
from netlab.scenario.stepspec import StepSpec

Progress = Callable[[str], None]
PathLike = str | os.PathLike[str]


class Lab:
    """A lab that is up. Get one from :func:`up` (and use it in a ``with`` block) or from
    :func:`attach` (a lab brought up elsewhere, by name)."""

    def __init__(self, live: LiveLab):
        self._live = live
        self._down = False
        self._signals: _Terminations | None = None

    def __repr__(self) -> str:
        state = "removed" if self._down else self._live.record.status
        return f"<netlab.Lab {self.name} ({self.mode}, {state})>"

    # what it is ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._live.name

    @property
    def mode(self) -> str:
        """The proxy mode: iptables, nftables, ipvs or userspace."""
        return self._live.record.mode

    @property
    def proxy(self) -> str:
        """The proxy as netlab describes it, e.g. ``iptables (nft back end)``."""
        return self._live.proxier.describe()

    @property
    def scenario(self) -> str:
        """The scenario file the lab was built from."""
        return self._live.record.scenario

    @property
    def state(self) -> ClusterState:
        """The desired state: nodes, pods (with IPs), Services, EndpointSlices."""
        return self._live.state

    @property
    def timings(self) -> dict[str, float]:
        return dict(self._live.record.timings)

    @property
    def removed(self) -> bool:
        return self._down

    # reading it ------------------------------------------------------------------------------

    def status(self) -> LabStatus:
        return LabStatus.of(self._live)

    def get(self, resource: str, namespace: str | None = "default") -> Listing:
        """``kubectl get RESOURCE [-n NAMESPACE]``: pods, services (svc) or endpointslices;
        ``namespace=None`` lists every namespace."""
        return listing(self.state, self._live.record.created, resource, namespace)

    def rules(
        self,
        node: str,
        *,
        service: str | None = None,
        counters: bool = False,
        raw: bool = False,
    ) -> str:
        """The node's live proxy state as the mode's own tool prints it (``iptables-save``,
        ``nft list table``, ``ipvsadm -Ln``, ``cilium-dbg``'s views...). ``node`` is
        ``node/NODE`` or ``NODE``; ``service`` (``NAMESPACE/NAME`` or ``NAME``) keeps only that
        Service's part; ``raw`` (ebpf): ``bpftool``'s dumps of the pinned maps and the tc and
        cgroup attachments."""
        doctor_mod.require_root("read a node's rules")
        target = self.node(node)
        if raw:
            if service or counters:
                raise UsageError(
                    "--raw shows every map and attachment as bpftool dumps them",
                    hint="leave out --service and --counters",
                )
            return self._live.proxier.live_raw(target)
        svc = None
        if service:
            ns, _, name = service.rpartition("/")
            try:
                self.state.service(ns or "default", name)
            except KeyError:
                raise UsageError(
                    f"no service {service} in lab {self.name}",
                    hint="services: "
                    + ", ".join(f"{s.meta.namespace}/{s.meta.name}" for s in self.state.services),
                ) from None
            svc = (ns or "default", name)
        return self._live.proxier.live_rules(target, svc, counters=counters)

    def node(self, ref: str) -> Node:
        """A node by ``node/NAME`` or ``NAME``."""
        kind, sep, name = ref.partition("/")
        if not sep:
            kind, name = "node", ref
        if kind != "node" or not name:
            raise UsageError(f"expected node/NODE, got {ref!r}")
        return self._live.node(name)

    def pod(self, ref: str) -> PodInfo:
        """A pod by ``pod/NAME``, ``pod/NAMESPACE/NAME``, ``NAME`` or ``NAMESPACE/NAME``."""
        kind, sep, rest = ref.partition("/")
        if kind == "pod" and sep:
            ref = rest
        if not ref or kind in ("node", "external", "fabric", "service"):
            raise UsageError(f"expected pod/NAME or pod/NAMESPACE/NAME, got {ref!r}")
        return self._live.pod(ref)

    def netns(self, target: str) -> str:
        """The namespace of ``pod/NAME``, ``pod/NAMESPACE/NAME``, ``node/NODE``, ``external``
        or ``fabric``: what ``ip netns exec`` takes."""
        return self._live.target_netns(target)

    # using it --------------------------------------------------------------------------------

    def checks(self, scenario: PathLike | Scenario | None = None) -> list[CheckSpec]:
        """The checks :meth:`check` runs: those of the lab's scenario file (or of ``scenario``,
        a file or a loaded scenario), or the checks derived from its manifests if it has none."""
        if not isinstance(scenario, Scenario):
            scenario = load(scenario if scenario is not None else self.scenario, name=self.name)
        return self._live.checks(scenario.lab.checks)

    def check(
        self,
        scenario: PathLike | Scenario | None = None,
        *,
        on_result: Callable[[CheckResult], None] | None = None,
    ) -> CheckResults:
        """Run the checks of the lab's scenario (or of ``scenario``, against this lab) as they
        apply to its proxy mode; a scenario without checks gets the derived ones. ``on_result``
        is called with each result as it comes."""
        doctor_mod.require_root("run checks in a lab")
        specs = self.checks(scenario)
        self._live.catch_up()  # what time brought since the last change
        return self.run_checks(specs, on_result=on_result)

    def run_checks(
        self,
        specs: list[CheckSpec],
        *,
        on_result: Callable[[CheckResult], None] | None = None,
        pcap_dir: PathLike | None = None,
    ) -> CheckResults:
        """Run checks already parsed (a scenario's ``lab.checks``, or :func:`parse_check`'s).
        With ``pcap_dir``, every connect check is recorded at both ends (client and backends)
        and the pcaps of the checks that fail are kept there, one folder per check."""
        doctor_mod.require_root("run checks in a lab")
        where = os.fspath(pcap_dir) if pcap_dir is not None else None
        return CheckResults(self._live.run_checks(specs, on_result=on_result, pcap_dir=where))

    # seeing how it works ---------------------------------------------------------------------

    def trace(
        self,
        source: str,
        destination: str,
        *,
        protocol: str | None = None,
        timeout: float = 2.0,
        endpoint: str = "",
    ) -> TraceReport:
        """One real connection (``source`` and ``destination`` written as a check's ``from``
        and ``to``) and the path the kernel recorded for it: every rule met, in order, in
        every node; where it was DNATed or masqueraded; conntrack; the backend reached. With
        ``endpoint`` (a pod), connect again until the kernel picks it."""
        doctor_mod.require_root("trace a connection in a lab")
        return self._live.trace(
            source, destination, protocol=protocol, timeout=timeout, endpoint=endpoint
        )

    def explain(self, service: str, *, node: str | None = None, lang: str = "en") -> Explanation:
        """The Service's rules (or map entries, virtual servers...) on ``node`` (default: the
        first), each with one line on what it does and why; ``lang`` is ``en`` or ``zh``."""
        return self._live.explain(service, node=node, lang=lang)

    def conntrack(self, node: str, *, service: str | None = None) -> FlowTable:
        """The node's NATed flows with names beside the addresses (only those dialled at
        ``service`` if given)."""
        doctor_mod.require_root("read a node's connection tracking")
        return self._live.conntrack(self.node(node).name, service=service)

    def capture(
        self,
        target: str,
        *,
        iface: str | None = None,
        path: PathLike | None = None,
        bpf: str = "",
        count: int | None = None,
        seconds: float | None = None,
        on_ready: Callable[[], None] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> int:
        """tcpdump in ``target`` (``pod/NAME``, ``node/NODE``, ``external``, ``fabric``): into
        the pcap ``path``, or each decoded packet to ``on_line``; until ``count`` packets,
        ``seconds`` or Ctrl-C. Returns how many packets were captured."""
        doctor_mod.require_root("capture in a lab's namespaces")
        return self._live.capture(
            target,
            iface=iface,
            path=os.fspath(path) if path is not None else None,
            bpf=bpf,
            count=count,
            seconds=seconds,
            on_ready=on_ready,
            on_line=on_line,
        )

    def graph(self, fmt: str = "mermaid") -> str:
        """The lab as it is, drawn in ``mermaid`` or ``dot``."""
        return self._live.graph(fmt)

    def connect(
        self,
        source: str,
        destination: str | dict[str, Any],
        *,
        expect: dict[str, Any] | None = None,
        protocol: str | None = None,
        connections: int | None = None,
        timeout: float | None = None,
        name: str = "connect",
    ) -> CheckResult:
        """One connect check, written as a scenario writes one: ``source`` as ``from:``
        (``pod/NAME``, ``node/NODE``, ``external``...), ``destination`` as ``to:``
        (``service/NAME:PORT``, ``IP:PORT``, ``node/NODE:PORT`` or the mapping form) and
        ``expect`` as ``expect:`` (default: every endpoint answers). The result's ``reached``
        says which endpoints answered, and how often."""
        data = connect_data(
            source,
            destination,
            expect=expect,
            protocol=protocol,
            connections=connections,
            timeout=timeout,
            name=name,
        )
        spec = parse_check(data)
        try:
            return self.run_checks([spec])[0]
        except ScenarioError as exc:
            raise relocate(exc, "connect") from None

    def exec(
        self,
        target: str,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float | None = None,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``target`` (``pod/NAME``, ``node/NODE``, ``external``, ``fabric``)
        as ``netlab exec`` does, and return the completed process with its output as text."""
        command, env = self.exec_command(target, argv)
        try:
            return subprocess.run(
                command,
                env=env,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=check,
            )
        except FileNotFoundError:
            raise _no_ip() from None

    def exec_command(self, target: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that run ``argv`` in ``target``: ``ip netns exec``
        (which also binds the pod's ``/etc/netns`` files, its resolv.conf, over ``/etc``), with
        the lab's tag in the environment so that ``down`` ends the process too."""
        doctor_mod.require_root("enter a lab's namespaces")
        if not argv:
            raise UsageError("no command to run", hint="e.g. ['ip', 'addr']")
        netns = self.netns(target)
        env = {**os.environ, "NETLAB_LAB": self.name, "NETLAB_TARGET": target}
        command = ["ip", "netns", "exec", netns, *argv]
        if target.startswith("node/"):
            # A node's own processes run in the cgroup the mode acts on (ebpf: socket LB).
            path = self._live.proxier.node_cgroup(self.node(target))
            if path is not None:
                command = cgroup.wrap(path, command)
        return command, env

    # changing it -----------------------------------------------------------------------------
    #
    # Each change goes the Kubernetes way: the desired state (refused as the API server would
    # refuse it, with nothing changed), the controllers, then every reachable node's proxy,
    # the pods' sandboxes and servers, cluster DNS, stale UDP conntrack and the load balancer.
    # With ``wait`` (the default) the call also lives through what the change set in motion
    # (grace periods, a node's grace period, evictions); ``on_phase`` gets each realized phase.

    def ready(self, pod: str, ready: bool = True) -> float:
        """Mark a pod ready or not, and let the cluster react (EndpointSlices, every node's
        rules, DNS, the load balancer's health checks). Returns the seconds it took."""
        doctor_mod.require_root("change a lab")
        return self._live.set_ready(self.pod(pod), ready)

    def change(
        self, what: Change, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """Make a change (a :mod:`netlab.scenario.changespec` object, as a scenario's step
        holds one) and report what the cluster did and how long every node took."""
        doctor_mod.require_root("change a lab")
        return self._live.change(what, wait=wait, on_phase=on_phase)

    def apply(
        self,
        manifests: PathLike | ApplyChange,
        *,
        prune: bool = False,
        wait: bool = True,
        on_phase: OnPhase | None = None,
    ) -> ChangeReport:
        """``kubectl apply``: a file of Kubernetes manifests (or an :class:`ApplyChange`)
        created or updated; a Deployment's new pod template rolls out. ``prune`` also deletes
        the lab's Services, Deployments and bare Pods the file does not list."""
        if not isinstance(manifests, ApplyChange):
            manifests = load_manifests(manifests, prune=prune)
        return self.change(manifests, wait=wait, on_phase=on_phase)

    def scale(
        self, deployment: str, replicas: int, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """``kubectl scale``: ``deployment/NAME``, ``NAME`` or ``NAMESPACE/NAME``."""
        kind, sep, rest = deployment.partition("/")
        ref = rest if kind == "deployment" and sep else deployment
        if replicas < 0:
            raise UsageError(f"replicas must be 0 or more, not {replicas}")
        ns, name = parse_ref(ref)
        change = ScaleChange(namespace=ns, name=name, replicas=replicas)
        return self.change(change, wait=wait, on_phase=on_phase)

    def delete(
        self,
        target: str,
        *,
        grace: int | None = None,
        wait: bool = True,
        on_phase: OnPhase | None = None,
    ) -> ChangeReport:
        """``kubectl delete pod/NAME`` (or ``service/NAME``, ``deployment/NAME``; NAME may be
        NAMESPACE/NAME). A pod terminates for ``grace`` seconds (default: its own
        terminationGracePeriodSeconds; 0: removed at once) as a serving, terminating endpoint."""
        kind, _, ref = target.partition("/")
        if kind not in DELETABLE or not ref:
            raise UsageError(f"expected pod/NAME, service/NAME or deployment/NAME, got {target!r}")
        if grace is not None and kind != "pod":
            raise UsageError("a grace period applies to deleting a pod")
        if grace is not None and grace < 0:
            raise UsageError(f"a grace period is 0 or more seconds, not {grace}")
        ns, name = parse_ref(ref)
        change = DeleteChange(resource=kind, namespace=ns, name=name, grace=grace)
        return self.change(change, wait=wait, on_phase=on_phase)

    def node_down(
        self, node: str, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """The node goes away: cut off from the node network, its kubelet and kube-proxy
        silent. Its pods are marked not ready after nodeMonitorGracePeriod, then evicted."""
        return self.change(
            NodeChange(node=self.node(node).name, up=False), wait=wait, on_phase=on_phase
        )

    def node_up(
        self, node: str, *, wait: bool = True, on_phase: OnPhase | None = None
    ) -> ChangeReport:
        """The node comes back: Ready again, its pods with it; evicted ones finish."""
        return self.change(
            NodeChange(node=self.node(node).name, up=True), wait=wait, on_phase=on_phase
        )

    def catch_up(self, *, on_phase: OnPhase | None = None) -> ChangeReport:
        """Realize what time brought since the lab last changed (a grace period that ended,
        a silent node's grace period); the change commands and :meth:`check` do it first."""
        doctor_mod.require_root("change a lab")
        return self._live.catch_up(on_phase=on_phase)

    def run_steps(
        self,
        scenario: PathLike | Scenario | None = None,
        *,
        on_step: Callable[[StepSpec], None] | None = None,
        on_result: Callable[[CheckResult], None] | None = None,
        on_phase: OnPhase | None = None,
        pcap_dir: PathLike | None = None,
    ) -> list[StepResult]:
        """Play the timeline (``spec.steps``) of the lab's scenario, or of ``scenario``: each
        step's change, then its checks. ``on_step`` is called as a step starts, ``on_phase``
        with each moment its change realized, ``on_result`` with each check's result;
        ``pcap_dir`` as in :meth:`run_checks`."""
        doctor_mod.require_root("change a lab")
        if not isinstance(scenario, Scenario):
            scenario = load(scenario if scenario is not None else self.scenario, name=self.name)
        return run_steps(
            self._live,
            scenario.lab.steps,
            on_step=on_step,
            on_result=on_result,
            on_phase=on_phase,
            pcap_dir=os.fspath(pcap_dir) if pcap_dir is not None else None,
        )

    def down(self) -> float:
        """Remove everything the lab made. Returns the seconds it took; a second call does
        nothing."""
        if self._down:
            return 0.0
        seconds = self._live.down()
        self._down = True
        return seconds

    def __enter__(self) -> Lab:
        self._signals = _Terminations()
        self._signals.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.down()
        finally:
            if self._signals is not None:
                self._signals.__exit__(kind, value, tb)
                self._signals = None


def parse_check(data: dict[str, Any]) -> CheckSpec:
    """One check entry, written as in a scenario's ``spec.checks`` (a dict with ``from``,
    ``to``, ``kind``, ``expect``...), parsed as the scenario parser parses it."""
    return parse_adhoc(data)


def up(
    scenario: PathLike | Scenario,
    *,
    mode: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
) -> Lab:
    """Build the lab of ``scenario`` (a file, or a scenario from :func:`load`) and return it,
    up. ``mode`` overrides the scenario's proxy mode and ``name`` its lab name. If building
    fails or is interrupted, whatever was made is removed before the error is raised."""
    if mode is not None and mode not in PROXY_MODES:
        raise UsageError(f"unknown proxy mode {mode!r}", hint=f"one of {', '.join(PROXY_MODES)}")
    if isinstance(scenario, Scenario):
        if name is not None and name != scenario.lab.name:
            raise UsageError(
                "name= applies to a scenario file", hint="pass name= to netlab.load() instead"
            )
        loaded = scenario
    else:
        loaded = load(scenario, name=name)
    with _Terminations():
        return Lab(LiveLab.up(loaded, mode=mode, progress=progress))


def attach(name: str) -> Lab:
    """A lab that is already up (``netlab up``, or kept by ``--keep``), by name."""
    return Lab(LiveLab.open(name))


def labs() -> list[LabSummary]:
    """Every lab that is up on this host."""
    from netlab.lab.record import list_labs

    return [LabSummary.of(r) for r in list_labs()]


@dataclass
class DownReport:
    """What :func:`down` removed: a lab by its state file, or leftovers found by their tags."""

    lab: str
    seconds: float = 0.0
    leftovers: bool = False  # there was no state file; tagged leftovers were removed instead
    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)


def down(name: str) -> DownReport:
    """Remove lab ``name``. Without its state file, whatever carries its tags is removed
    instead; a name that matches nothing is a :class:`UsageError`."""
    doctor_mod.require_root("remove a lab")
    from netlab.lab.cleanup import cleanup as clean

    try:
        lab = attach(name)
    except UsageError:
        found = clean(name)
        if found.namespaces or found.processes:
            return DownReport(name, 0.0, True, found.namespaces, found.processes)
        raise
    return DownReport(name, lab.down())


def cleanup(name: str | None = None) -> CleanupReport:
    """Remove whatever netlab labs (or lab ``name``) left, found by state files and tags."""
    doctor_mod.require_root("clean up labs")
    from netlab.lab.cleanup import cleanup as clean

    return clean(name)


def doctor() -> doctor_mod.Diagnosis:
    """What this host has and which proxy modes can run here (and what to do about the rest)."""
    return doctor_mod.diagnose()


def _no_ip() -> PrerequisiteError:
    return PrerequisiteError("ip (iproute2) is not installed", hint="apt-get install -y iproute2")


class _Terminations:
    """While a lab is being built or its ``with`` block runs, SIGTERM and SIGHUP raise
    ``KeyboardInterrupt``, so the lab is removed as on Ctrl-C. Only signals left at their
    default are taken, only in the main thread, and they are given back on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._old: dict[int, Any] = {}

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def __enter__(self) -> _Terminations:
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                self._old[sig] = signal.signal(sig, self._raise)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            with contextlib.suppress(ValueError):
                signal.signal(sig, handler)
        self._old = {}
