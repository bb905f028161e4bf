"""A lab's lifecycle: up, sync, check, down; its state file; cleanup of whatever any lab left.

The state file (``/run/netlab/<lab>/state.json``) is written before anything is created and
records the desired state, every namespace planned and every process started, so ``status``,
``rules``, ``exec`` and ``down`` need no scenario file. ``/run`` is a tmpfs, like ``/run/netns``:
both vanish together at reboot. Independently of the file, every namespace carries its lab's tag
(``lo``'s alias) and every process the ``NETLAB_LAB`` variable, so ``cleanup`` finds leftovers of a
lab whose state file was lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from netlab import checks as checks_mod
from netlab import cloud, cni, doctor, topology
from netlab.cluster.build import build_cluster, recompute_slices
from netlab.cluster.state import ClusterState, Node, PodInfo
from netlab.errors import LabError, ScenarioError, UsageError
from netlab.kernel import build as kbuild
from netlab.kernel import conntrack, etcnetns, netns, process, rules, threads
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.registry import make_proxier
from netlab.scenario.labschema import LAB_NAME_HINT, lab_name_problem
from netlab.scenario.labspec import CheckSpec, Source
from netlab.scenario.model import Scenario
from netlab.serial import from_data, to_data
from netlab.traffic import dnsquery, probe
from netlab.traffic.capture import Capture
from netlab.traffic.results import CapturedPacket, Observation
from netlab.workloads.spec import RELOAD_REQUEST, RELOADED, build_spec

STATE_ROOT = "/run/netlab"
STATE_VERSION = 1
Progress = Callable[[str], None]


@dataclass
class LabRecord:
    """The state file."""

    name: str
    scenario: str
    created: float
    status: str  # "building" | "up"
    mode: str
    cluster: ClusterState
    netns: list[str] = field(default_factory=list)
    daemons: list[process.Daemon] = field(default_factory=list)
    backend: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    load_balancers: list[cloud.Backends] = field(default_factory=list)
    version: int = STATE_VERSION


def state_dir(name: str) -> str:
    """The lab's own directory; a name that is not a lab name never becomes a path."""
    problem = lab_name_problem(name)
    if problem:
        raise UsageError(problem, hint=LAB_NAME_HINT)
    return os.path.join(STATE_ROOT, name)


def _claim(name: str) -> None:
    """Take the lab's name: its state directory, made exclusively so two runs cannot share it."""
    os.makedirs(STATE_ROOT, exist_ok=True)
    try:
        os.mkdir(state_dir(name))
    except FileExistsError:
        raise LabError(f"lab {name} is already up", hint=f"run: netlab down {name}") from None


def _write_record(record: LabRecord) -> None:
    d = state_dir(record.name)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(to_data(record), f)
    os.replace(tmp, os.path.join(d, "state.json"))


def _read_record(name: str) -> LabRecord | None:
    try:
        with open(os.path.join(state_dir(name), "state.json")) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if data.get("version") != STATE_VERSION:
        return None
    return from_data(LabRecord, data)


def list_labs() -> list[LabRecord]:
    try:
        names = sorted(os.listdir(STATE_ROOT))
    except FileNotFoundError:
        return []
    return [r for n in names if not lab_name_problem(n) and (r := _read_record(n)) is not None]


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Hold off SIGINT/SIGTERM/SIGHUP while tearing down, so a second Ctrl-C (or a closed
    terminal) cannot leave half a lab."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for s in old:
            signal.signal(s, signal.SIG_IGN)
    except ValueError:  # not the main thread
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Lab:
    def __init__(self, record: LabRecord):
        self.record = record
        self._proxier: Proxier | None = None

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
        if _read_record(name) is not None or os.path.exists(state_dir(name)):
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
        _claim(name)
        _write_record(record)
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
            _write_record(record)
        except BaseException:
            with _shielded():
                # Only what this run made: a same-named namespace that appeared meanwhile is
                # someone else's.
                record.netns = [n for n in record.netns if n in made]
                lab.down()
            raise
        return lab

    @classmethod
    def open(cls, name: str) -> Lab:
        record = _read_record(name)
        if record is None:
            names = ", ".join(r.name for r in list_labs()) or "none"
            raise UsageError(f"no lab named {name} is up", hint=f"labs up: {names}")
        return cls(record)

    def down(self) -> float:
        """Remove everything this lab made: processes, namespaces, files. Returns seconds."""
        t0 = time.perf_counter()
        with _shielded():
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
            for name in names:
                etcnetns.remove(name)
                netns.remove(name)
            shutil.rmtree(state_dir(self.name), ignore_errors=True)
            _tidy_roots()
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
        _write_record(self.record)

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
        t0 = time.perf_counter()
        pod.ready = ready
        recompute_slices(self.state)
        self.sync()
        self.reload_agent()
        if any(s.type == "LoadBalancer" for s in self.state.services):
            self.record.load_balancers = cloud.program(self.state)
        _write_record(self.record)
        return time.perf_counter() - t0

    # use -------------------------------------------------------------------------------------

    def checks(self, specs: tuple[CheckSpec, ...] | None) -> list[CheckSpec]:
        return list(specs) if specs is not None else checks_mod.derive(self.state, self.record.mode)

    def run_checks(
        self,
        specs: list[CheckSpec],
        on_result: Callable[[checks_mod.CheckResult], None] | None = None,
    ) -> list[checks_mod.CheckResult]:
        """Run checks as they apply to this lab's proxy mode (its per-mode expectations)."""
        specs = [s.for_mode(self.record.mode) for s in specs]
        resolved, errors = checks_mod.resolve_all(self.state, specs, self.record.mode)
        if errors:
            raise ScenarioError(errors)
        results = []
        for check in resolved:
            result = self.run_check(check)
            results.append(result)
            if on_result:
                on_result(result)
        return results

    def run_check(self, check: checks_mod.ResolvedCheck) -> checks_mod.CheckResult:
        t0 = time.perf_counter()
        if check.dns is not None:
            answer = threads.call(_lookup, check, netns_name=check.source_netns)
            return checks_mod.evaluate_dns(check, answer, time.perf_counter() - t0)
        captures: dict[str, Capture] = {}
        captured: dict[str, list[CapturedPacket]] | None = None
        try:
            if check.spec.kind == "capture":
                for b in check.backends:
                    bpf = f"tcp and dst port {b.port} and tcp[tcpflags] & tcp-syn != 0"
                    captures[b.pod] = Capture(self.name, b.netns, "eth0", bpf)
            targets: list[str | Observation] = [check.dest_ip] * check.connections
            if check.dial_name:
                targets = threads.call(_resolve_each, check, netns_name=check.source_netns)
            observations = probe.probe_each(
                check.source_netns,
                targets,
                check.dest_port,
                check.protocol,
                check.spec.timeout,
                check.bind,
            )
            if captures:
                captured = {pod: c.stop() for pod, c in captures.items()}
        finally:
            for c in captures.values():
                c.close()  # reaps a stopped capture; kills one left running by an error
        tracked = None
        if check.conntrack_netns and any(o.outcome == "connected" for o in observations):
            tracked = {
                e.original[2]: e
                for e in conntrack.entries(check.conntrack_netns, check.protocol, check.source_ip)
            }
        return checks_mod.evaluate(
            check, observations, captured, time.perf_counter() - t0, tracked=tracked
        )

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


def find_lab_namespaces(lab: str | None, *, prefix_only: bool = False) -> list[str]:
    """Namespaces whose tag names ``lab`` (any netlab lab if None). With ``prefix_only``, only
    names starting with ``<lab>-`` are inspected (fast path for ``down``)."""
    out = []
    for name in netns.list_all():
        if prefix_only and lab is not None and not name.startswith(f"{lab}-"):
            continue
        tag = kbuild.read_tag(name)
        parsed = topology.parse_tag(tag) if tag else None
        if parsed and (lab is None or parsed[0] == lab):
            out.append(name)
    return out


@dataclass
class CleanupReport:
    labs: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)


def cleanup(lab: str | None = None) -> CleanupReport:
    """Remove whatever netlab labs left (one lab, or all), found by state files and tags."""
    report = CleanupReport()
    with _shielded():
        records = [r for r in list_labs() if lab is None or r.name == lab]
        report.labs = [r.name for r in records]
        # Namespaces a record lists are removed even untagged: a run killed between creating
        # /run/netns/NAME and tagging it leaves exactly such a one.
        names = [n for r in records for n in r.netns if netns.exists(n)]
        for name in netns.list_all():
            parsed = topology.parse_tag(kbuild.read_tag(name) or "")
            if parsed is None or (lab is not None and parsed[0] != lab):
                continue
            names.append(name)
            if parsed[0] not in report.labs:
                report.labs.append(parsed[0])
        names = list(dict.fromkeys(names))
        inodes = {i for n in names if (i := netns.inode(n)) is not None}
        for record in records:
            for d in record.daemons:
                if process.stop(d, record.name):
                    report.processes.append(d.pid)
        for pid in process.find_tagged(lab, inodes):
            process.kill_pid(pid)
            report.processes.append(pid)
        for name in names:
            etcnetns.remove(name)
            if netns.remove(name):
                report.namespaces.append(name)
        # The state directory is netlab's own: every entry in it belongs to some lab.
        for name in report.labs if lab is None else [lab]:
            shutil.rmtree(state_dir(name), ignore_errors=True)
        if lab is None:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.listdir(STATE_ROOT):
                    if not lab_name_problem(entry) and os.path.isdir(state_dir(entry)):
                        shutil.rmtree(state_dir(entry), ignore_errors=True)
        _tidy_roots()
    return report


def _tidy_roots() -> None:
    """Once no lab remains, remove /etc/netns (if a lab made it) and /run/netlab (if empty)."""
    # Entries that are not lab names (etcnetns.MARKER) are netlab's own bookkeeping, not labs.
    labs = [e for e in _listdir(STATE_ROOT) if not lab_name_problem(e)]
    if any(os.path.isdir(state_dir(e)) for e in labs):
        return
    etcnetns.remove_dir_if_ours_and_empty()
    with contextlib.suppress(OSError):
        os.rmdir(STATE_ROOT)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _lookup(check: checks_mod.ResolvedCheck) -> dnsquery.DNSResult:
    """A dns check's question, asked from inside the source (on a worker thread there)."""
    assert check.dns is not None and check.resolv is not None
    plan = check.dns
    if plan.search:
        return dnsquery.resolve(check.resolv, plan.name, plan.qtype, timeout=check.spec.timeout)
    return dnsquery.query(
        check.resolv.nameservers[0], plan.name, plan.qtype, timeout=check.spec.timeout
    )


def _resolve_each(check: checks_mod.ResolvedCheck) -> list[str | Observation]:
    """Resolve the name once per connection, as a client resolving before each connect does
    (the cluster DNS shuffles addresses, as CoreDNS's loadbalance plugin does)."""
    assert check.resolv is not None
    out: list[str | Observation] = []
    for _ in range(check.connections):
        result = dnsquery.resolve(check.resolv, check.dial_name, "A", timeout=check.spec.timeout)
        addresses = result.data("A") if result.ok else []
        if addresses:
            out.append(addresses[0])
        else:
            why = result.herrno or result.error or result.rcode
            out.append(Observation("unresolved", error=f"{check.dial_name}: {why}"))
    return out
