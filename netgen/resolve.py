"""Resolve stage: the estate -> a flat, sorted list of flows. Every output target compiles from this list.

A flow is one hop that packets take: from the addresses they carry at the source, to the addresses they are
sent to, on one protocol and port range. A grant's legacy side (a host or a host group) becomes one endpoint
per (VPC, security group) its hosts sit in; each endpoint gives one flow per port, or two when the service
sits behind a load balancer or a NodePort (client -> front, front -> pods). Addresses follow the
network's facts (see docs/spec.md, "How addresses are chosen"):

- pod-ip: the host dials the pod CIDRs on the target port; pods see the host's address.
- load-balancer (internal NLB, IP targets): the host dials the NLB subnets on the service port; pods see the
  NLB's addresses, or the host's when client IP preservation is on. The NLB sends the second hop, so that
  hop's source endpoint carries the NLB's VPC and security group with the client's addresses.
- node-port: the host dials the node subnets on the node port; pods see a node address
  (externalTrafficPolicy Cluster) or the host's (Local: the node hands the packet to its own pods, so that
  hop crosses no security group).
- workload -> host: pods dial the host; the host sees the node addresses when the CNI SNATs traffic to that
  destination (the default outside the cluster's VPC, unless excluded), else the pod CIDRs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from ipaddress import IPv4Network
from operator import attrgetter

from netgen.addresses import collapse, interval
from netgen.diagnostics import Reporter
from netgen.model import (
    Cluster,
    Estate,
    ExistingPeering,
    Grant,
    Host,
    PortRange,
    Service,
    ServicePort,
    Settings,
    Vpc,
    Workload,
)

HEALTH_CHECK = "nlb health check"  # the note of the hop that lets an NLB's health checks reach its targets
SCTP = ("NG121", ": SCTP cannot be limited to ports in a security group; netgen will not open every SCTP port")


@dataclass(frozen=True, order=True)
class Pods:
    """Pods a NetworkPolicy selects."""

    cluster: str
    namespace: str
    selector: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Endpoint:
    kind: str  # host | hostGroup | service | load-balancer | nodes | workload
    name: str
    vpc: str
    addresses: tuple[IPv4Network, ...]  # what packets carry (as a source) or are sent to (as a destination)
    security_group: str | None  # the group guarding it, by name
    pods: Pods | None = None  # set when a NetworkPolicy can select it

    @cached_property
    def sort_key(self) -> tuple:
        pods = (self.pods.cluster, self.pods.namespace, self.pods.selector) if self.pods else ()
        return self.kind, self.name, self.vpc, self.addresses, self.security_group or "", pods

    def __lt__(self, other: Endpoint) -> bool:
        return self.sort_key < other.sort_key

    def __hash__(self) -> int:
        """Cached: endpoints key the flow merge, and hashing their addresses each time is costly. The cache is
        not a field, so dataclasses.replace() builds a fresh endpoint without it."""
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = hash((self.kind, self.name, self.vpc, self.addresses, self.security_group, self.pods))
            object.__setattr__(self, "_hash", value)
            return value

    @cached_property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        """The addresses as inclusive integer ranges."""
        return tuple(map(interval, self.addresses))

    @cached_property
    def text(self) -> str:
        """The endpoint and its addresses as the flow report prints them; endpoints are shared by many flows."""
        return f"{self} {','.join(map(str, self.addresses))}"

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, order=True)
class NetworkPath:
    source_vpc: str
    destination_vpc: str
    cross_region: bool
    cross_account: bool
    connection: str = ""  # the id of the existing peering the path takes (VpcPeering); "" for netgen's own

    @property
    def peered(self) -> bool:
        return self.source_vpc != self.destination_vpc

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """str(self), computed once: paths are shared by many flows."""
        if not self.peered:
            return f"{self.source_vpc} (same VPC)"
        scope = "cross-region" if self.cross_region else "same-region"
        if self.cross_account:
            scope += ", cross-account"
        if self.connection:
            return f"{self.source_vpc} -> {self.destination_vpc} (peering {self.connection}, existing, {scope})"
        return f"{self.source_vpc} -> {self.destination_vpc} (peering, {scope})"


@dataclass(frozen=True, order=True)
class GrantRef:
    name: str
    owner: str
    location: str


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    ports: PortRange
    path: NetworkPath
    note: str
    grants: tuple[GrantRef, ...]

    def sort_key(self) -> tuple:
        return self.source.sort_key, self.destination.sort_key, self.ports, self.path, self.note, self.grants

    def __lt__(self, other: Flow) -> bool:
        return self.sort_key() < other.sort_key()

    def line(self) -> str:
        grants = " ".join([f"{g.name}@{g.location}" for g in self.grants])
        note = f" [{self.note}]" if self.note else ""
        return (f"{self.source.text} -> {self.destination.text} {self.ports.text} via {self.path.text}{note} "
                f"grant: {grants}")


@lru_cache(maxsize=4096)
def _path(a: Vpc, b: Vpc) -> NetworkPath:
    return NetworkPath(a.name, b.name, a.region != b.region, a.account.account_id != b.account.account_id)


def _legacy_endpoints(legacy_ref: str, hosts: tuple[Host, ...]) -> list[Endpoint]:
    """A grant's legacy side, one endpoint per (VPC, security group): hosts that share a path and a guard."""
    kind, name = legacy_ref.split(" ", 1)
    subsets: dict[tuple[str, str], list[IPv4Network]] = defaultdict(list)
    for host in hosts:
        subsets[(host.vpc.name, host.security_group.name)].append(host.network)
    return [Endpoint(kind, name, vpc, collapse(nets), group) for (vpc, group), nets in sorted(subsets.items())]


@lru_cache(maxsize=4096)
def _service_pods(service: Service) -> Endpoint:
    cluster = service.cluster
    return Endpoint("service", service.ref, cluster.vpc.name, cluster.pod_cidrs, cluster.security_group.name,
                    Pods(cluster.name, service.namespace, service.pod_selector))


@lru_cache(maxsize=4096)
def _front(service: Service) -> Endpoint:
    """The internal NLB of a load-balancer service."""
    exposure = service.exposure
    group = exposure.security_group.name if exposure.security_group else None
    return Endpoint("load-balancer", service.ref, service.cluster.vpc.name, exposure.subnet_cidrs, group)


@lru_cache(maxsize=4096)
def _nodes(cluster: Cluster) -> Endpoint:
    return Endpoint("nodes", cluster.name, cluster.vpc.name, cluster.node_cidrs, cluster.security_group.name)


@lru_cache(maxsize=65536)
def _relayed(sender: Endpoint, vpc: str, security_group: str | None) -> Endpoint:
    """sender's addresses as they arrive from a hop inside another VPC or behind another group."""
    return replace(sender, vpc=vpc, security_group=security_group)


def _service_flows(client: Endpoint, client_vpc: Vpc, service: Service,
                   port: ServicePort) -> list[tuple[Endpoint, Endpoint, int, NetworkPath, str]]:
    """(source, destination, port, path, note) hops from legacy hosts to a service's pods."""
    cluster = service.cluster
    exposure = service.exposure
    pods = _service_pods(service)
    to_cluster = _path(client_vpc, cluster.vpc)
    local = _path(cluster.vpc, cluster.vpc)
    if exposure.type == "pod-ip":
        return [(client, pods, port.target_port, to_cluster, "pod-ip")]
    if exposure.type == "load-balancer":
        front = _front(service)
        # UDP target groups of type ip always preserve the client IP (AWS offers no switch for them).
        if exposure.preserve_client_ip or port.protocol == "UDP":  # the NLB sends this hop, client address kept
            relayed = _relayed(client, cluster.vpc.name, front.security_group)
            return [(client, front, port.port, to_cluster, "nlb"),
                    (relayed, pods, port.target_port, local, "nlb target, client IP preserved"),
                    # health checks still come from the NLB's own addresses, to the target port
                    (front, pods, port.target_port, local, HEALTH_CHECK)]
        return [(client, front, port.port, to_cluster, "nlb"),
                (front, pods, port.target_port, local, "nlb target, source is the nlb")]
    nodes = _nodes(cluster)
    assert port.node_port is not None  # validation guarantees it
    if exposure.external_traffic_policy == "Local":
        # The node hands the packet, client address kept, to its own pods: no security group on the way.
        relayed = _relayed(client, cluster.vpc.name, None)
        return [(client, nodes, port.node_port, to_cluster, "node-port"),
                (relayed, _relayed(pods, pods.vpc, None), port.target_port, local,
                 "node-port target, externalTrafficPolicy Local: node to its own pods")]
    return [(client, nodes, port.node_port, to_cluster, "node-port"),
            (nodes, pods, port.target_port, local, "node-port target, externalTrafficPolicy Cluster")]


def _host_sides(cluster: Cluster, hosts: Endpoint) -> list[tuple[bool, Endpoint]]:
    """hosts as the pods of cluster reach them, split by whether SNAT applies (pods then show a node address)."""
    split: dict[bool, list[IPv4Network]] = defaultdict(list)
    for net in hosts.addresses:
        for part, snat in cluster.snat_split(net):
            split[snat].append(part)
    if len(split) == 1:
        [(snat, nets)] = split.items()
        if len(nets) == len(hosts.addresses):  # no address was cut: the hosts as they are
            return [(snat, hosts)]
    return [(snat, replace(hosts, addresses=collapse(nets))) for snat, nets in sorted(split.items())]


@lru_cache(maxsize=65536)
def _workload_pods(workload: Workload, snat: bool) -> Endpoint:
    """A workload's pods as a source: their own addresses, or the node addresses SNAT gives them."""
    cluster = workload.cluster
    return Endpoint("workload", workload.ref, cluster.vpc.name, cluster.node_cidrs if snat else cluster.pod_cidrs,
                    cluster.security_group.name, Pods(cluster.name, workload.namespace, workload.pod_selector))


def _hops(grant: Grant, vpcs: dict[str, Vpc], memo: dict, hop) -> Iterator[_Hop]:
    """Every hop a grant needs, as the shared _Hop that hop((source, destination, ports, path, note)) gives.

    memo caches, for one estate, a grant's legacy endpoints by its legacy_ref (a name means one set of hosts,
    and thousands of grants name the same few hundred groups), each with the hops already computed for it by
    (service, port name) and by (workload, host ports): many grants share them."""
    sides = memo.get(grant.legacy_ref)
    if sides is None:
        sides = memo[grant.legacy_ref] = [(hosts, vpcs[hosts.vpc], {})
                                          for hosts in _legacy_endpoints(grant.legacy_ref, grant.hosts)]
    for hosts, vpc, known in sides:
        if grant.service is not None:
            for port in grant.service_ports:
                key = (grant.service, port.name)  # a Service hashes by identity, a name in C
                found = known.get(key)
                if found is None:
                    found = known[key] = [
                        hop((src, dst, _port_range(port.protocol, number), path, note))
                        for src, dst, number, path, note in _service_flows(hosts, vpc, grant.service, port)]
                yield from found
        else:
            assert grant.workload is not None
            key = (grant.workload, grant.host_ports)
            found = known.get(key)
            if found is None:
                cluster = grant.workload.cluster
                if cluster not in known:  # a Cluster hashes by identity
                    known[cluster] = _host_sides(cluster, hosts)
                path = _path(cluster.vpc, vpc)
                found = known[key] = [
                    hop((_workload_pods(grant.workload, snat), destination, ports, path,
                         "snat to node" if snat else "pod address"))
                    for snat, destination in known[cluster] for ports in grant.host_ports]
            yield from found


@lru_cache(maxsize=65536)
def _port_range(protocol: str, number: int) -> PortRange:
    return PortRange(protocol, number, number)


@dataclass
class _Hop:
    """One distinct hop, shared by every grant that needs it: checked once, merged by appending refs."""

    flow: tuple  # (source, destination, ports, path, note)
    problems: tuple[tuple[str, str], ...]  # (code, message after "grant '<name>'")
    blocked: bool  # a problem that stops the hop (SCTP, peering of overlapping VPCs)
    refs: list[GrantRef]


_REF_ORDER = attrgetter("name", "owner", "location")  # GrantRef order, compared in C


def resolve(estate: Estate, reporter: Reporter) -> list[Flow]:
    """All flows of the estate, merged across grants and sorted. Problems go to reporter."""
    with Resolution(estate.settings, estate.vpcs, reporter, estate.peerings) as resolution:
        resolution.add(estate.grants)
        return resolution.flows()


class Resolution:
    """Flows of grants added in any order, grant by grant (netgen.pipeline adds them as their files load):
    flows() gives what resolve() gives for an estate of those grants. Use it as a context manager: the memos
    of this module are keyed by the estate's objects, and keeping them would keep the estate alive in a process
    that goes on (netgen as a library, `netgen diff` resolving two revisions)."""

    def __init__(self, settings: Settings, vpcs: tuple[Vpc, ...], reporter: Reporter,
                 peerings: tuple[ExistingPeering, ...] = ()):
        self.vpcs = {v.name: v for v in vpcs}
        # The existing peering of a pair of VPCs, by (source VPC, destination VPC) both ways: its paths name it.
        self.existing = {(a.name, b.name): p.connection_id for p in peerings
                         for a, b in ((p.requester, p.accepter), (p.accepter, p.requester))}
        self.via: dict[NetworkPath, NetworkPath] = {}  # a path -> the same path over its existing peering
        self.limit = settings.broadest_prefix
        self.reporter = reporter
        self.distinct: dict[tuple, _Hop] = {}
        self.memo: dict = {}  # see _hops
        # One object per distinct endpoint, with its NG110 problem: what targets cache on an endpoint is then
        # computed once, and each endpoint is checked once.
        self.endpoints: dict[Endpoint, tuple[Endpoint, tuple[str, str] | None]] = {}
        self.clashes: dict[tuple[str, str], tuple[str, str] | None] = {}

    def __enter__(self) -> Resolution:
        return self

    def __exit__(self, *exc_info) -> None:
        for memo in (_path, _service_pods, _front, _nodes, _relayed, _workload_pods):
            memo.cache_clear()

    def broad(self, end: Endpoint) -> tuple[str, str] | None:
        """The NG110 problem of an endpoint whose broadest prefix is broader than the settings allow."""
        net = min(end.addresses, key=lambda n: n.prefixlen, default=None)
        if net is not None and (net.prefixlen < self.limit or net.prefixlen == 0):
            return "NG110", f" reaches {end} through {net}, broader than /{self.limit} (Settings.broadestPrefix)"
        return None

    def clash(self, path: NetworkPath) -> tuple[str, str] | None:
        """The NG107 problem of a peering between VPCs whose CIDRs overlap."""
        a, b = self.vpcs[path.source_vpc], self.vpcs[path.destination_vpc]
        overlaps = [f"{x} ~ {y}" for x in a.cidrs for y in b.cidrs if x.overlaps(y)]
        if not overlaps:
            return None
        return "NG107", (f" needs a peering between VPC '{a.name}' and '{b.name}', whose CIDRs overlap "
                         f"({', '.join(overlaps)}); peering would fail")

    def hop(self, flow: tuple) -> _Hop:
        found = self.distinct.get(flow)
        if found is None:
            src, dst, ports, path = flow[:4]
            endpoints = self.endpoints
            src, src_broad = endpoints.get(src) or endpoints.setdefault(src, (src, self.broad(src)))
            dst, dst_broad = endpoints.get(dst) or endpoints.setdefault(dst, (dst, self.broad(dst)))
            key = flow = (src, dst, *flow[2:])
            if self.existing and path.peered:
                via = self.via.get(path)
                if via is None:
                    connection = self.existing.get((path.source_vpc, path.destination_vpc), "")
                    via = self.via[path] = replace(path, connection=connection) if connection else path
                flow = (src, dst, ports, via, flow[4])
            if ports.protocol == "SCTP":
                problems, blocked = (SCTP,), True
            else:
                problems, blocked = (), False
                if src_broad:
                    problems += (src_broad,)
                if dst_broad:
                    problems += (dst_broad,)
                if path.peered:
                    pair = (path.source_vpc, path.destination_vpc)
                    if pair not in self.clashes:
                        # (an existing peering's VPCs were checked when it was validated)
                        self.clashes[pair] = None if pair in self.existing else self.clash(path)
                    clashing = self.clashes[pair]
                    if clashing:
                        problems += (clashing,)
                        blocked = True
            found = self.distinct[key] = _Hop(flow, problems, blocked, [])
        return found

    def add(self, grants: Iterable[Grant]) -> None:
        vpcs, memo, hop, report = self.vpcs, self.memo, self.hop, self.reporter.add
        for grant in grants:
            ref = GrantRef(grant.name, grant.owner, f"{grant.loc.file}:{grant.loc.line}")
            problems: dict[str, str] = {}  # message -> code; each problem is reported once per grant
            for needed in _hops(grant, vpcs, memo, hop):
                if needed.problems:
                    for code, text in needed.problems:
                        problems.setdefault(f"grant '{grant.name}'{text}", code)
                    if needed.blocked:
                        continue
                refs = needed.refs
                if not refs or refs[-1] is not ref:  # a grant can need one hop twice (two ports, one target)
                    refs.append(ref)
            for message, code in problems.items():
                report(grant.loc, code, message)

    def flows(self) -> list[Flow]:
        """The flows of the grants added so far, sorted, each with its grants in GrantRef order."""
        hops = [h for h in self.distinct.values() if h.refs]
        for h in hops:
            if len(h.refs) > 1:
                h.refs.sort(key=_REF_ORDER)
        return _in_order(hops, [end for end, _ in self.endpoints.values()])


def _in_order(hops: list[_Hop], endpoints: list[Endpoint]) -> list[Flow]:
    """The hops' flows, sorted by Flow.sort_key. Each endpoint (one object per distinct endpoint) is ranked once,
    so the sort compares integers and strings rather than calling Python-level comparisons per pair of flows."""
    rank: dict[int, int] = {}
    previous, number = None, 0
    for end in sorted(endpoints):
        if end.sort_key != previous:  # endpoints with equal sort keys share a rank, as in Flow.sort_key
            previous, number = end.sort_key, number + 1
        rank[id(end)] = number

    def key(hop: _Hop) -> tuple:
        src, dst, ports, path, note = hop.flow
        return (rank[id(src)], rank[id(dst)], ports.protocol, ports.first, ports.last, path.source_vpc,
                path.destination_vpc, path.cross_region, path.cross_account, note, hop.refs)

    return [Flow(*h.flow, tuple(h.refs)) for h in sorted(hops, key=key)]
