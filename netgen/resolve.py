"""Resolve stage: the estate -> a flat, sorted list of flows. Every output target compiles from this list.

netgen.hops gives the hops each grant needs (the network's facts); this module merges the hops that grants
share, checks each distinct hop once (broad prefixes, SCTP, peerings of overlapping VPCs) and orders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter

from netgen.diagnostics import Reporter
from netgen.flows import Endpoint, Flow, GrantRef, NetworkPath, Pods  # noqa: F401  (re-exported: importers use resolve)
from netgen.hops import HEALTH_CHECK, clear_memos, grant_hops  # noqa: F401  (HEALTH_CHECK re-exported)
from netgen.model import Estate, ExistingPeering, Grant, Settings, Vpc
from netgen.transit import PathChooser

SCTP = ("NG121", ": SCTP cannot be limited to ports in a security group; netgen will not open every SCTP port")


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
    chooser = PathChooser.of(estate) if estate.transit_gateways else None
    with Resolution(estate.settings, estate.vpcs, reporter, estate.peerings, chooser) as resolution:
        resolution.add(estate.grants)
        return resolution.flows()


class Resolution:
    """Flows of grants added in any order, grant by grant (netgen.pipeline adds them as their files load):
    flows() gives what resolve() gives for an estate of those grants. Use it as a context manager: the memos
    of this module are keyed by the estate's objects, and keeping them would keep the estate alive in a process
    that goes on (netgen as a library, `netgen diff` resolving two revisions)."""

    def __init__(self, settings: Settings, vpcs: tuple[Vpc, ...], reporter: Reporter,
                 peerings: tuple[ExistingPeering, ...] = (), chooser: PathChooser | None = None):
        self.vpcs = {v.name: v for v in vpcs}
        # The existing peering of a pair of VPCs, by (source VPC, destination VPC) both ways: its paths name it.
        self.existing = {(a.name, b.name): p.connection_id for p in peerings
                         for a, b in ((p.requester, p.accepter), (p.accepter, p.requester))}
        # A path -> the path flows take (through transit gateways, over an existing peering): netgen.transit.
        self.choose = chooser if chooser is not None else PathChooser(settings, peerings) if peerings else None
        self.limit = settings.broadest_prefix
        self.reporter = reporter
        self.distinct: dict[tuple, _Hop] = {}
        self.memo: dict = {}  # see hops.grant_hops
        # One object per distinct endpoint, with its NG110 problem: what targets cache on an endpoint is then
        # computed once, and each endpoint is checked once.
        self.endpoints: dict[Endpoint, tuple[Endpoint, tuple[str, str] | None]] = {}
        self.clashes: dict[tuple[str, str], tuple[str, str] | None] = {}

    def __enter__(self) -> Resolution:
        return self

    def __exit__(self, *exc_info) -> None:
        clear_memos()

    def broad(self, end: Endpoint) -> tuple[str, str] | None:
        """The NG110 problem of an endpoint whose broadest prefix is broader than the settings allow."""
        net = min(end.addresses, key=lambda n: n.prefixlen, default=None)
        if net is not None and (net.prefixlen < self.limit or net.prefixlen == 0):
            return "NG110", f" reaches {end} through {net}, broader than /{self.limit} (Settings.broadestPrefix)"
        return None

    def clash(self, path: NetworkPath) -> tuple[str, str] | None:
        """The NG107 problem of a peering (or a path through transit gateways) between VPCs whose CIDRs overlap."""
        a, b = self.vpcs[path.source_vpc], self.vpcs[path.destination_vpc]
        overlaps = [f"{x} ~ {y}" for x in a.cidrs for y in b.cidrs if x.overlaps(y)]
        if not overlaps:
            return None
        if path.transit:
            return "NG107", (f" needs a route through transit gateway {' -> '.join(path.transit)} between VPC "
                             f"'{a.name}' and '{b.name}', whose CIDRs overlap ({', '.join(overlaps)}); a transit "
                             "gateway does not route between overlapping VPCs")
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
            via = path
            if self.choose is not None and path.peered:
                via = self.choose(path)
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
                        self.clashes[pair] = None if via.connection else self.clash(via)
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
            for needed in grant_hops(grant, vpcs, memo, hop):
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
