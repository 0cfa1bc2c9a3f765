"""Peerings and peering routes of the AWS target: one peering per pair of VPCs that exchange traffic (or the
one that exists outside netgen, a VpcPeering), routes to the minimal prefixes the flows need, and the route,
overlap and peering quotas (NG202, NG204, NG203), and the advice of a transit gateway when peerings near the quota
or the mesh grows (NG215, netgen.targets.aws_advice)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from ipaddress import IPv4Network

from netgen.addresses import collapse_intervals, interval
from netgen.diagnostics import Reporter
from netgen.model import Estate, Vpc
from netgen.resolve import Flow
from netgen.targets.aws_advice import advise_transit
from netgen.targets.aws_names import logical_id, stack_of
from netgen.targets.aws_transit import TransitPlan


@dataclass(frozen=True)
class Peering:
    requester: Vpc
    accepter: Vpc
    connection_id: str = ""  # set for a peering that exists outside netgen (VpcPeering): never in a template

    @property
    def existing(self) -> bool:
        return bool(self.connection_id)

    @property
    def logical_id(self) -> str:
        return logical_id("Peering", f"{self.requester.name}-{self.accepter.name}", self.requester.vpc_id,
                          self.accepter.vpc_id)

    @property
    def parameter(self) -> str:
        return f"{self.logical_id}Id"

    @property
    def crosses_stacks(self) -> bool:
        return stack_of(self.requester) != stack_of(self.accepter)


def _peering(a: Vpc, b: Vpc) -> Peering:
    ka = (a.account.account_id, a.region, a.name)
    kb = (b.account.account_id, b.region, b.name)
    return Peering(a, b) if ka < kb else Peering(b, a)


def plan_peerings_and_routes(estate: Estate, flows: list[Flow], reporter: Reporter,
                             transit: TransitPlan | None = None):
    """Peerings by VPC pair, and {(vpc, peering): minimal destination prefixes}. A pair with a peering that
    exists outside netgen (VpcPeering) gets that one, as AWS has it; every other pair one netgen requests.
    Pairs joined through transit gateways get none: their routes (transit) count in the route-table checks."""
    vpcs = {v.name: v for v in estate.vpcs}
    existing = {p.pair: p for p in estate.peerings}
    wanted: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)  # address intervals
    peerings: dict[frozenset, Peering] = {}
    for flow in flows:
        if not flow.path.peered or flow.path.transit:
            continue
        a, b = flow.path.source_vpc, flow.path.destination_vpc
        wanted[(a, b)].update(flow.destination.intervals)  # there ...
        wanted[(b, a)].update(flow.source.intervals)  # ... and back
    for a, b in wanted:
        pair = frozenset((a, b))
        if pair not in peerings:
            known = existing.get(pair)
            peerings[pair] = (Peering(known.requester, known.accepter, known.connection_id) if known
                              else _peering(vpcs[a], vpcs[b]))
    routes = {}
    for (vpc, peer), intervals in sorted(wanted.items()):
        exact = collapse_intervals(intervals)
        if vpcs[vpc].route_scope == "vpc-cidrs":
            exact = tuple(c for c in vpcs[peer].cidrs if any(n.overlaps(c) for n in exact))
        routes[(vpc, peer)] = exact
    per_vpc: dict[str, list[tuple[IPv4Network, str]]] = defaultdict(list)
    peers_of: dict[str, set[str]] = defaultdict(set)  # existing peerings count whether flows use them or not
    for (vpc, peer), nets in routes.items():
        peers_of[vpc].add(peer)
        per_vpc[vpc].extend((net, peer) for net in nets)
    for known in estate.peerings:
        peers_of[known.requester.name].add(known.accepter.name)
        peers_of[known.accepter.name].add(known.requester.name)
    gateway_routes: dict[str, int] = defaultdict(int)
    for name, entries in (transit.vpc_entries() if transit else {}).items():
        per_vpc[name].extend(entries)
        gateway_routes[name] = len(entries)
    for name, entries in sorted(per_vpc.items()):
        vpc = vpcs[name]
        if len(entries) > vpc.route_quota:
            what = (f"{len(entries)} routes ({gateway_routes[name]} to transit gateways)" if gateway_routes[name]
                    else f"{len(entries)} peering routes")
            reporter.add(vpc.loc, "NG202", f"route tables of VPC '{name}' would need {what}, over the quota of "
                                           f"{vpc.route_quota} (raise Vpc.routeQuota, or set Vpc.routeScope: "
                                           "vpc-cidrs)")
        reach: tuple[int, IPv4Network, str] | None = None  # the entry reaching furthest so far
        for net, peer in sorted(entries):
            first, last = interval(net)
            if reach and first <= reach[0] and reach[2] != peer:
                reporter.add(vpc.loc, "NG204", f"VPC '{name}' would route {reach[1]} to '{reach[2]}' and {net} "
                                               f"to '{peer}': peer addresses overlap")
            if reach is None or last > reach[0]:
                reach = (last, net, peer)
    for name, peers in sorted(peers_of.items()):
        vpc = vpcs[name]
        if len(peers) > vpc.peering_quota:
            held = sum(1 for known in estate.peerings if name in known.pair)
            of_which = f" ({held} of them existing)" if held else ""
            reporter.add(vpc.loc, "NG203", f"VPC '{name}' would need {len(peers)} peerings{of_which}, over its "
                                           f"quota of {vpc.peering_quota}")
    advise_transit(estate, peers_of, routes, reporter)
    return peerings, routes
