"""Cluster DNS: the server behind ``kube-system/kube-dns``, and the outside world's DNS server.

``ClusterDNS`` answers the way CoreDNS does with the Corefile kubeadm installs::

    .:53 {
        kubernetes cluster.local in-addr.arpa ip6.arpa {
           pods insecure
           fallthrough in-addr.arpa ip6.arpa
           ttl 30
        }
        forward . /etc/resolv.conf
        cache 30
        loadbalance
    }

so a learner's ``dig`` inside a lab pod sees what it would see in a real cluster: the same records,
TTLs, SOA, flags, NXDOMAIN/NODATA choices and quirks (see the README and ``kubernetes.go``,
``parse.go``, ``ns.go``, ``reverse.go`` of ``coredns/coredns`` ``plugin/kubernetes`` and
``plugin/backend_lookup.go``). ``cache`` and ``loadbalance`` are left out on purpose: answers are
computed fresh from the lab's state and in a stable order, so checks are deterministic.

``ClusterDNS.answer`` is pure (no I/O): it returns a complete reply, or says "forward this query",
or returns a reply that still needs one upstream lookup (an ExternalName's target). The I/O lives
in ``ClusterDNSHandler`` and in the ``serve_udp``/``serve_tcp`` helpers the lab agent calls with
sockets it opened inside the DNS pod's namespace.

``UpstreamDNS`` is the DNS server of the lab's external world: it knows the external servers a
scenario declares and answers NXDOMAIN for everything else, which is where forwarded queries end.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dnslib

from netlab.cluster.state import ClusterState, EndpointPort
from netlab.scenario.k8s import Service
from netlab.workloads.dns.wire import QTYPE, RCODE, Labels, _reply

# CoreDNS's DNSSchemaVersion (plugin/kubernetes/kubernetes.go); the spec document says 1.0.1,
# CoreDNS has published 1.1.0 since it added the endpoint-hostname rules.
SCHEMA_VERSION = "1.1.0"
SCHEMA_TTL = 28800  # hard-coded for dns-version.<zone> TXT in kubernetes.go
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400  # plugin.SOA in backend_lookup.go
MAX_CHAIN = 8  # backend_lookup.go stops chasing CNAMEs after 8 ("len(previousRecords) > 7")
# Namespaces every cluster has, even when a lab puts nothing in them.
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBE_DNS = ("kube-system", "kube-dns")
KUBE_DNS_HOST = 10  # kubeadm's clusterDNS: the service CIDR's tenth address


class _NameError(Exception):
    """The name does not exist (CoreDNS's errNoItems/errNsNotExposed/errInvalidRequest)."""


@dataclass(frozen=True)
class Lookup:
    """A name the reply still needs resolved outside the cluster zone: an ExternalName target."""

    name: str  # absolute, e.g. "db.example.com."
    qtype: int  # dnslib.QTYPE value


@dataclass(frozen=True, eq=False)
class Answer:
    """What ``ClusterDNS.answer`` decided.

    ``reply is None``: not ours, forward the query unchanged. Otherwise ``reply`` is the answer;
    when ``lookup`` is set the reply ends in a CNAME whose target must be resolved upstream and
    its answer records appended (``ClusterDNS.complete``), as CoreDNS's ``Upstream.Lookup`` does.
    """

    reply: dnslib.DNSRecord | None = None
    lookup: Lookup | None = None

    @property
    def forward(self) -> bool:
        return self.reply is None


@dataclass(frozen=True)
class _Item:
    """CoreDNS's msg.Service: one thing a name points at, before it becomes records."""

    host: str  # an IP address, or a name (an ExternalName's target)
    owner: str  # absolute name the item lives at: the SRV target / NS name
    port: int = -1  # -1: no port (an EndpointSlice without ports)

    @property
    def kind(self) -> int:
        """msg.Service.HostType: A, AAAA, or CNAME when ``host`` is not an IP address."""
        ip = _ip(self.host)
        if ip is None:
            return int(QTYPE.CNAME)
        if ip.version == 4 or _mapped(ip) is not None:
            return int(QTYPE.A)
        return int(QTYPE.AAAA)


@dataclass(frozen=True)
class _Request:
    """parse.go's recordRequest: ``[_port._proto.|endpoint.]service.namespace.svc|pod.<zone>``."""

    kind: str  # "svc" | "pod"
    namespace: str
    service: str = ""  # the pod's dashed IP for kind "pod"
    endpoint: str = ""
    port: str = ""
    protocol: str = ""


@dataclass(frozen=True)
class _Endpoint:
    address: str
    hostname: str  # the endpoint's hostname, else its dashed IP (endpointHostname)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _mapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Go's ``ip.To4()`` treats ::ffff:a.b.c.d as IPv4."""
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None


def _labels(name: dnslib.DNSLabel | str) -> Labels:
    """Lower-cased labels: every comparison with cluster data is case-insensitive (spec 2.1)."""
    label = name if isinstance(name, dnslib.DNSLabel) else dnslib.DNSLabel(name)
    return tuple(part.decode("ascii", "backslashreplace").lower() for part in label.label)


def _under(labels: Labels, zone: Labels) -> bool:
    """Whether ``labels`` is ``zone`` or a name inside it."""
    return len(labels) >= len(zone) and labels[len(labels) - len(zone) :] == zone


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _dashed(address: str) -> str:
    """endpointHostname without a hostname: 10.244.1.5 -> 10-244-1-5 (and : -> - for IPv6)."""
    return address.replace(".", "-") if "." in address else address.replace(":", "-")


def _match(query: str, value: str) -> bool:
    """matchPortAndProtocol: an empty query part matches anything."""
    return not query or query == value.lower()


def reverse_zones(cidr: str) -> list[str]:
    """The reverse zones CoreDNS serves for a CIDR: rounded out to whole octets (/12 -> 16 /16s)."""
    net = ipaddress.ip_network(cidr, strict=False)
    step = 8 if net.version == 4 else 4
    prefix = -(-net.prefixlen // step) * step
    zones = []
    for sub in net.subnets(new_prefix=prefix) if prefix > net.prefixlen else [net]:
        parts = sub.network_address.reverse_pointer.split(".")
        keep = prefix // step
        head = parts[len(parts) - 2 - keep : len(parts) - 2]
        zones.append(".".join([*head, *parts[-2:]]))
    return zones


def _address_from_reverse(labels: Labels) -> str:
    """dnsutil.ExtractAddressFromReverse: the IP a full in-addr.arpa/ip6.arpa name stands for."""
    if labels[-2:] == ("in-addr", "arpa") and len(labels) == 6:
        ip = _ip(".".join(reversed(labels[:4])))
    elif labels[-2:] == ("ip6", "arpa") and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        ip = _ip(":".join(nibbles[i : i + 4] for i in range(0, 32, 4)))
    else:
        return ""
    return str(ip) if ip is not None else ""


class ClusterDNS:
    """The cluster's DNS answers, computed from a ``ClusterState`` snapshot (pure).

    ``reverse_fallthrough=True`` is kubeadm's ``fallthrough in-addr.arpa ip6.arpa``: the whole of
    in-addr.arpa is searched, and a PTR the cluster does not know is forwarded upstream. With
    ``False`` the server is authoritative (NXDOMAIN + SOA) for the reverse zones of the service
    and pod CIDRs only, as ``kubernetes cluster.local 10.96.0.0/12 10.244.0.0/16`` would be.
    ``namespaces`` adds namespaces that exist besides those the state declares or uses;
    ``serial`` is the SOA serial (CoreDNS: the time of the last change).
    """

    def __init__(
        self,
        state: ClusterState,
        zone: str = "cluster.local",
        ttl: int = 30,
        *,
        serial: int | None = None,
        reverse_fallthrough: bool = True,
        namespaces: Iterable[str] = (),
    ) -> None:
        self.state = state
        self.zone = zone.strip(".").lower()
        self.ttl = ttl
        self.serial = int(time.time()) & 0xFFFFFFFF if serial is None else serial
        zone_labels = tuple(self.zone.split("."))
        # (labels, fallthrough): the zones this server is authoritative for, longest match wins.
        zones: list[tuple[Labels, bool]] = [(zone_labels, False)]
        if reverse_fallthrough:
            zones += [(("in-addr", "arpa"), True), (("ip6", "arpa"), True)]
        else:
            net = state.lab.network
            for cidr in (net.service_cidr, net.pod_cidr):
                zones += [(tuple(z.split(".")), False) for z in reverse_zones(cidr)]
        self._zones = sorted(zones, key=lambda z: -len(z[0]))

        self._namespaces = {*BUILTIN_NAMESPACES, *namespaces, *state.namespaces}
        self._namespaces |= {s.meta.namespace for s in state.services}
        self._namespaces |= {p.namespace for p in state.pods}
        self._namespaces |= {s.namespace for s in state.slices}
        self._by_name: dict[tuple[str, str], Service] = {
            (s.meta.namespace, s.meta.name): s for s in state.services
        }
        # Per Service: (ports, ready endpoints) per EndpointSlice. CoreDNS publishes an endpoint
        # only when its ready condition is true; the EndpointSlice controller already sets ready
        # for unready pods of a Service with publishNotReadyAddresses.
        self._slices: dict[tuple[str, str], list[tuple[list[EndpointPort], list[_Endpoint]]]] = {}
        self._ptr_cluster_ip: dict[str, str] = {}
        self._ptr_endpoint: dict[str, list[str]] = {}
        for sl in state.slices:
            ns, _, name = sl.service.partition("/")
            ready = [
                _Endpoint(e.address, e.hostname or _dashed(e.address))
                for e in sl.endpoints
                if e.ready
            ]
            self._slices.setdefault((ns, name), []).append((list(sl.ports), ready))
            for e in ready:
                target = f"{e.hostname}.{name}.{ns}.svc.{self.zone}."
                names = self._ptr_endpoint.setdefault(e.address, [])
                if target not in names:
                    names.append(target)
        for s in state.services:
            if s.type != "ExternalName" and s.cluster_ip and not s.headless:
                fqdn = f"{s.meta.name}.{s.meta.namespace}.svc.{self.zone}."
                self._ptr_cluster_ip.setdefault(s.cluster_ip, fqdn)

    # The entry points -------------------------------------------------------------------------

    def answer(self, request: dnslib.DNSRecord) -> Answer:
        """Answer ``request`` from the cluster's state, or say it must be forwarded."""
        if request.header.opcode != dnslib.OPCODE.QUERY:
            return Answer(self._error(request, RCODE.NOTIMP))
        if len(request.questions) != 1:
            return Answer(self._error(request, RCODE.FORMERR))
        labels = _labels(request.q.qname)
        zone = next((z for z in self._zones if _under(labels, z[0])), None)
        if zone is None:
            return Answer()
        zone_labels, fallthrough = zone
        try:
            return self._answer_in_zone(request, labels, zone_labels)
        except _NameError:
            if fallthrough:
                return Answer()
            return Answer(self._negative(request, RCODE.NXDOMAIN, zone_labels))

    def complete(self, answer: Answer, upstream: dnslib.DNSRecord | None) -> dnslib.DNSRecord:
        """Finish an ExternalName reply with the upstream answer for its target.

        As backend_lookup.go: the CNAME is followed by whatever the upstream answered, and the
        reply stays NOERROR even when the target does not exist; the upstream's TC bit carries
        over. ``upstream is None`` (no answer) leaves the CNAME alone.
        """
        if answer.reply is None:
            raise ValueError("a forwarded query has no reply to complete")
        reply = dnslib.DNSRecord.parse(answer.reply.pack())
        if upstream is not None and answer.lookup is not None:
            reply.rr.extend(upstream.rr)
            if upstream.header.tc:
                reply.header.tc = 1
        return reply

    # Dispatch by type: handler.go's ServeDNS ---------------------------------------------------

    def _answer_in_zone(self, request: dnslib.DNSRecord, labels: Labels, zone: Labels) -> Answer:
        qname, qtype = request.q.qname, request.q.qtype
        base = labels[: len(labels) - len(zone)]
        records: list[dnslib.RR] = []
        extra: list[dnslib.RR] = []
        lookup: Lookup | None = None
        if qtype in (QTYPE.A, QTYPE.AAAA):
            records, lookup = self._addresses(qname, base, zone, qtype, ())
        elif qtype == QTYPE.TXT:
            records = self._txt(qname, base, zone)
        elif qtype == QTYPE.CNAME:
            records = self._cname(qname, base, zone)
        elif qtype == QTYPE.PTR:
            records = self._ptr(qname, labels, base, zone)
        elif qtype == QTYPE.SRV:
            records, extra = self._srv(qname, base, zone)
        elif qtype == QTYPE.MX:
            self._services(base, zone, qtype)  # no mail records, but the name may not exist
        elif qtype == QTYPE.SOA:
            records = [self._soa(zone)] if not base else []  # SOA only at the apex, else NODATA
        elif qtype in (QTYPE.AXFR, QTYPE.IXFR):
            return Answer(self._error(request, RCODE.REFUSED))  # no transfer plugin configured
        elif qtype == QTYPE.NS and not base:
            records, extra = self._ns(qname, zone)
        else:
            # "Do a fake A lookup, so we can distinguish between NODATA and NXDOMAIN"
            self._addresses(qname, base, zone, QTYPE.A, ())
        if not records and lookup is None:
            return Answer(self._negative(request, RCODE.NOERROR, zone))
        return Answer(self._reply(request, records, additional=extra), lookup)

    # Record kinds: backend_lookup.go ------------------------------------------------------------

    def _addresses(
        self,
        qname: dnslib.DNSLabel,
        base: Labels,
        zone: Labels,
        qtype: int,
        chain: tuple[tuple[str, str], ...],
    ) -> tuple[list[dnslib.RR], Lookup | None]:
        """plugin.A / plugin.AAAA: addresses, and CNAMEs chased inside the zone."""
        records: list[dnslib.RR] = []
        lookup: Lookup | None = None
        seen: set[str] = set()
        owner = ".".join(_labels(qname)) + "."
        for item in self._services(base, zone, qtype):
            kind = item.kind
            if kind == QTYPE.CNAME:
                target = _fqdn(item.host)
                link = (owner, target.lower())
                # x CNAME x is a loop; so is a CNAME already in the chain; 8 links is enough.
                if target.lower() == owner or len(chain) >= MAX_CHAIN or link in chain:
                    continue
                cname = dnslib.RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=dnslib.CNAME(target))
                target_labels = _labels(target)
                if _under(target_labels, zone):
                    try:
                        more, deeper = self._addresses(
                            dnslib.DNSLabel(target),
                            target_labels[: len(target_labels) - len(zone)],
                            zone,
                            qtype,
                            (*chain, link),
                        )
                    except _NameError:
                        continue  # an in-zone target that does not exist: no CNAME at all
                    if more:
                        records += [cname, *more]
                        lookup = lookup or deeper
                    continue
                records.append(cname)
                lookup = Lookup(target, qtype)
            elif kind == qtype and item.host not in seen:
                seen.add(item.host)
                records.append(self._address_rr(qname, item.host))
        return records, lookup

    def _txt(self, qname: dnslib.DNSLabel, base: Labels, zone: Labels) -> list[dnslib.RR]:
        """Kubernetes.Services for TXT: only ``dns-version.<zone>`` has a TXT record. Another
        name is NODATA if it has records of another type, else NXDOMAIN (so are the apex and
        ``<ns>.svc``, whose Records are empty)."""
        if base == ("dns-version",):
            txt = dnslib.TXT(SCHEMA_VERSION)
            return [dnslib.RR(qname, QTYPE.TXT, ttl=SCHEMA_TTL, rdata=txt)]
        if not self._records(base, zone):
            raise _NameError("no records of another type")
        return []

    def _cname(self, qname: dnslib.DNSLabel, base: Labels, zone: Labels) -> list[dnslib.RR]:
        items = self._services(base, zone, QTYPE.CNAME)
        if items and items[0].kind == QTYPE.CNAME:
            target = dnslib.CNAME(_fqdn(items[0].host))
            return [dnslib.RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=target)]
        return []

    def _srv(
        self, qname: dnslib.DNSLabel, base: Labels, zone: Labels
    ) -> tuple[list[dnslib.RR], list[dnslib.RR]]:
        """plugin.SRV: priority 0, weights splitting 100 evenly, target A records as extra."""
        items = self._services(base, zone, QTYPE.SRV)
        # Every item has priority 0 and weight 100, so each gets floor(100 / n) (at least 1).
        weight = max(1, math.floor(100.0 / float(100 * len(items)) * 100)) if items else 0
        records: list[dnslib.RR] = []
        extra: list[dnslib.RR] = []
        seen_srv: set[tuple[str, int]] = set()
        seen_addr: set[tuple[str, str]] = set()
        for item in items:
            if item.port == -1:
                continue  # an EndpointSlice without ports
            if (item.owner, item.port) not in seen_srv:
                seen_srv.add((item.owner, item.port))
                srv = dnslib.SRV(priority=0, weight=weight, port=item.port, target=item.owner)
                records.append(dnslib.RR(qname, QTYPE.SRV, ttl=self.ttl, rdata=srv))
            if (item.owner, item.host) not in seen_addr:
                seen_addr.add((item.owner, item.host))
                extra.append(self._address_rr(item.owner, item.host))
        return records, extra

    def _ptr(
        self, qname: dnslib.DNSLabel, labels: Labels, base: Labels, zone: Labels
    ) -> list[dnslib.RR]:
        """reverse.go: a ClusterIP names its Service, else every endpoint with that address."""
        ip = _address_from_reverse(labels)
        if not ip:
            self._records(base, zone)  # NODATA for a name that exists, else NXDOMAIN
            return []
        if ip in self._ptr_cluster_ip:
            targets = [self._ptr_cluster_ip[ip]]
        else:
            targets = self._ptr_endpoint.get(ip, [])
        if not targets:
            raise _NameError(ip)
        return [dnslib.RR(qname, QTYPE.PTR, ttl=self.ttl, rdata=dnslib.PTR(t)) for t in targets]

    def _ns(self, qname: dnslib.DNSLabel, zone: Labels) -> tuple[list[dnslib.RR], list[dnslib.RR]]:
        """plugin.NS: the zone's name servers are the DNS Service's names (ns.go's nsAddrs)."""
        records: list[dnslib.RR] = []
        extra: list[dnslib.RR] = []
        for name, ip in self._ns_addresses(zone):
            extra.append(self._address_rr(name, ip))
            if all(str(r.rdata.label).lower() != name for r in records):
                ns = dnslib.NS(name)
                records.append(dnslib.RR(qname, QTYPE.NS, ttl=self.ttl, rdata=ns))
        return records, extra

    def _address_rr(self, name: str | dnslib.DNSLabel, ip: str) -> dnslib.RR:
        addr = _ip(ip)
        v4 = _mapped(addr) if addr is not None else None
        if v4 is not None or (addr is not None and addr.version == 4):
            return dnslib.RR(name, QTYPE.A, ttl=self.ttl, rdata=dnslib.A(str(v4 or addr)))
        return dnslib.RR(name, QTYPE.AAAA, ttl=self.ttl, rdata=dnslib.AAAA(ip))

    def _soa(self, zone: Labels) -> dnslib.RR:
        """plugin.SOA: ns.dns.<zone>, hostmaster.<zone>, TTL min(ttl, 300), minimum = ttl."""
        origin = ".".join(zone) + "."
        soa = dnslib.SOA(
            f"ns.dns.{origin}",
            f"hostmaster.{origin}",
            (self.serial, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, self.ttl),
        )
        return dnslib.RR(origin, QTYPE.SOA, ttl=min(self.ttl, 300), rdata=soa)

    # Lookups: kubernetes.go ---------------------------------------------------------------------

    def _services(self, base: Labels, zone: Labels, qtype: int) -> list[_Item]:
        """Kubernetes.Services: ns.dns.<zone> is the DNS Service itself; SRV drops CNAMEs."""
        if base == ("ns", "dns"):
            if qtype not in (QTYPE.A, QTYPE.AAAA):
                return []
            items = [_Item(ip, name) for name, ip in self._ns_addresses(zone)]
            return [i for i in items if i.kind == qtype]
        items = self._records(base, zone)
        if qtype == QTYPE.SRV:
            items = [i for i in items if i.kind != QTYPE.CNAME]
        return items

    def _records(self, base: Labels, zone: Labels) -> list[_Item]:
        """Kubernetes.Records: parse the name, then find pods or Services; [] means NODATA."""
        request = self._parse(base)
        if request is None:
            return []
        if zone[-1] == "arpa" or request.namespace not in self._namespaces:
            raise _NameError(request.namespace)
        if not request.service:
            return []  # <ns>.svc.<zone> or <ns>.pod.<zone>: the namespace exists, NODATA
        if request.kind == "pod":
            return self._find_pod(request, zone)
        return self._find_services(request)

    @staticmethod
    def _parse(base: Labels) -> _Request | None:
        """parse.go's parseRequest; ``None`` for names that exist but hold nothing (NODATA)."""
        if not base or base in (("svc",), ("pod",)):
            return None
        kind = base[-1]
        if kind not in ("svc", "pod"):
            raise _NameError(kind)
        rest = base[:-2]
        if len(rest) > 3:
            raise _NameError("too long")
        request = _Request(kind=kind, namespace=base[-2], service=rest[-1] if rest else "")
        if len(rest) == 2:
            return dataclasses.replace(request, endpoint=rest[0])
        if len(rest) == 3:
            port, protocol = rest[0].removeprefix("_"), rest[1].removeprefix("_")
            return dataclasses.replace(request, port=port, protocol=protocol)
        return request

    def _find_pod(self, request: _Request, zone: Labels) -> list[_Item]:
        """findPods in ``pods insecure`` mode: any well-formed a-b-c-d name is its own address."""
        name = request.service
        if name.count("-") == 3 and "--" not in name:
            ip = _ip(name.replace("-", "."))
        else:
            ip = _ip(name.replace("-", ":"))
        if ip is None:
            raise _NameError(name)
        owner = f"{name}.{request.namespace}.pod.{'.'.join(zone)}."
        return [_Item(str(ip), owner)]

    def _find_services(self, request: _Request) -> list[_Item]:
        """findServices: ExternalName, endpoint/headless, or ClusterIP records."""
        svc = self._by_name.get((request.namespace, request.service))
        if svc is None:
            raise _NameError(request.service)
        fqdn = f"{svc.meta.name}.{svc.meta.namespace}.svc.{self.zone}."
        items: list[_Item] = []
        if svc.type == "ExternalName":
            item = _Item(svc.external_name, fqdn)
            # No endpoints, ports or protocols below an ExternalName (a.b.<svc> is NXDOMAIN);
            # one that parses as an IP address is not a CNAME: the Service is skipped and the
            # name does not exist (coredns/coredns#2324, "works as intended").
            below = request.endpoint or request.port or request.protocol
            if below or item.kind != QTYPE.CNAME:
                raise _NameError(request.service)
            return [item]
        if svc.headless or request.endpoint:
            for ports, endpoints in self._slices.get((svc.meta.namespace, svc.meta.name), []):
                for ep in endpoints:
                    if request.endpoint and request.endpoint != ep.hostname.lower():
                        continue
                    for p in ports or [EndpointPort("", -1, "")]:
                        if _match(request.port, p.name) and _match(request.protocol, p.protocol):
                            items.append(_Item(ep.address, f"{ep.hostname}.{fqdn}", p.port))
        elif svc.cluster_ip:
            for sp in svc.ports:
                if _match(request.port, sp.name) and _match(request.protocol, sp.protocol):
                    items.append(_Item(svc.cluster_ip, fqdn, sp.port))
        if not items:
            raise _NameError(request.service)
        return items

    def _ns_addresses(self, zone: Labels) -> list[tuple[str, str]]:
        """nsAddrs: the DNS Service's names and addresses (kube-dns), named in ``zone``.

        CoreDNS finds the Services whose endpoints hold its own pod IP. netlab's DNS Service is
        always kube-system/kube-dns; before it exists, kubeadm's clusterDNS address stands in.
        """
        origin = ".".join(zone)
        svc = self._by_name.get(KUBE_DNS)
        if svc is not None and svc.headless:
            name = f"{svc.meta.name}.{svc.meta.namespace}.svc.{origin}."
            slices = self._slices.get(KUBE_DNS, [])
            return [(f"{e.hostname}.{name}", e.address) for _, eps in slices for e in eps]
        if svc is not None and svc.cluster_ip:
            return [(f"{svc.meta.name}.{svc.meta.namespace}.svc.{origin}.", svc.cluster_ip)]
        net = ipaddress.ip_network(self.state.lab.network.service_cidr, strict=False)
        return [(f"ns.dns.{origin}.", str(net.network_address + KUBE_DNS_HOST))]

    # Messages ------------------------------------------------------------------------------------

    def _reply(
        self,
        request: dnslib.DNSRecord,
        answers: Sequence[dnslib.RR] = (),
        authority: Sequence[dnslib.RR] = (),
        additional: Sequence[dnslib.RR] = (),
        rcode: int = 0,
    ) -> dnslib.DNSRecord:
        """An authoritative reply: qr aa, rd copied, no ra (CoreDNS's "qr aa rd")."""
        return _reply(request, answers, authority, additional, rcode=rcode, aa=True)

    def _negative(self, request: dnslib.DNSRecord, rcode: int, zone: Labels) -> dnslib.DNSRecord:
        """plugin.BackendError: NXDOMAIN or NODATA, authoritative, the zone's SOA in authority."""
        return self._reply(request, authority=[self._soa(zone)], rcode=rcode)

    @staticmethod
    def _error(request: dnslib.DNSRecord, rcode: int) -> dnslib.DNSRecord:
        return _reply(request, rcode=rcode, aa=False)
