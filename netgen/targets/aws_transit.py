"""AWS target, transit gateways: the routes that flows through transit gateways need (see netgen.transit for the
AWS facts, and their sources, that this module relies on).

For each flow whose path goes through transit gateways (NetworkPath.transit), both ways:

- the source VPC's route tables (every listed one) route the destination's addresses to the source's gateway:
  AWS::EC2::Route with TransitGatewayId, to the minimal prefixes covering the addresses flows use (or, with
  Vpc.routeScope vpc-cidrs, to the peer VPC's CIDR blocks that hold them), in the VPC's network stack. These
  count against the VPC's route quota with its peering routes (NG202), and overlap checks span both (NG204);
- each gateway route table the packet is routed by (the one the source attachment is associated with, and on
  the far gateway the one the peering attachment is associated with) gets a static route
  (AWS::EC2::TransitGatewayRoute) for the same prefixes to the next attachment, unless the next attachment is a
  VPC attachment that propagates to that table a CIDR holding the prefix, and no other attachment propagating
  there has a CIDR overlapping it (overlapping CIDRs are not propagated). A peering attachment always needs
  static routes. Static routes go in the network stack of the gateway's owner account and region; with
  TransitGateway.routeScope vpc-cidrs, they go to the destination VPC's CIDR blocks that hold the prefixes.

Quotas checked here: routes across a gateway's route tables, netgen's static ones plus the CIDRs its declared
attachments propagate, within TransitGateway.spec.routeQuota (NG213; AWS: 10,000); no gateway route table
routing overlapping prefixes to two attachments (NG214).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from troposphere.ec2 import Route, TransitGatewayRoute

from netgen.addresses import collapse_intervals, interval
from netgen.diagnostics import Reporter
from netgen.flows import Flow
from netgen.model import Estate, TransitGateway
from netgen.transit import PathChooser


@dataclass
class TransitPlan:
    """What flows through transit gateways need."""

    # (vpc, peer VPC) -> (gateway id, prefixes): routes in every listed route table of vpc
    vpc_routes: dict[tuple[str, str], tuple[str, tuple[IPv4Network, ...]]] = field(default_factory=dict)
    # (gateway name, route table) -> {prefix: attachment id}: static routes
    gateway_routes: dict[tuple[str, str], dict[IPv4Network, str]] = field(default_factory=dict)
    gateways: dict[str, TransitGateway] = field(default_factory=dict)  # by name, every declared one

    def vpc_entries(self) -> dict[str, list[tuple[IPv4Network, str]]]:
        """(prefix, peer VPC) per VPC: what the route-table checks of the peerings count too."""
        entries: dict[str, list[tuple[IPv4Network, str]]] = defaultdict(list)
        for (vpc, peer), (_, nets) in self.vpc_routes.items():
            entries[vpc].extend((net, peer) for net in nets)
        return entries


def clean_propagation(gateway: TransitGateway) -> dict[tuple[str, str], list[IPv4Network]]:
    """{(route table, attachment id): the CIDRs the attachment propagates there that no other attachment
    propagating to the same table overlaps}: AWS propagates neither of two overlapping CIDRs reliably."""
    into: dict[str, list[tuple[str, IPv4Network]]] = defaultdict(list)
    for attachment in gateway.attachments:
        for table in attachment.propagates_to:
            into[table].extend((attachment.attachment_id, cidr) for cidr in attachment.vpc.cidrs)
    clean: dict[tuple[str, str], list[IPv4Network]] = defaultdict(list)
    for table, cidrs in into.items():
        for owner, cidr in cidrs:
            if not any(other != owner and cidr.overlaps(net) for other, net in cidrs):
                clean[(table, owner)].append(cidr)
    return clean


def plan_transit(estate: Estate, flows: list[Flow] | tuple[Flow, ...], reporter: Reporter) -> TransitPlan:
    """The routes of the flows through transit gateways, checked against the gateways' quotas (NG213) and for
    overlapping static routes (NG214)."""
    plan = TransitPlan(gateways={g.name: g for g in estate.transit_gateways})
    if not estate.transit_gateways:
        return plan
    chooser = PathChooser.of(estate)
    vpcs = {v.name: v for v in estate.vpcs}
    to_vpc: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)  # (vpc, peer): addresses in peer
    gateway_of: dict[tuple[str, str], str] = {}
    static: dict[tuple[str, str, str], set[tuple[int, int]]] = defaultdict(set)  # (gateway, table, attachment)
    static_to: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # the VPCs those addresses are in
    for flow in flows:
        if not flow.path.transit:
            continue
        a, b = flow.path.source_vpc, flow.path.destination_vpc
        there = chooser.through_gateway(a, b)
        assert there is not None and there.gateway_ids == flow.path.transit, flow.path
        for way, sent_to in ((there, flow.destination.intervals), (there.reversed(), flow.source.intervals)):
            vpc, peer = way.source.vpc.name, way.destination.vpc.name
            to_vpc[(vpc, peer)].update(sent_to)
            gateway_of[(vpc, peer)] = way.source_gateway.gateway_id
            for gateway, table, attachment, _ in way.hops():
                static[(gateway.name, table, attachment)].update(sent_to)
                static_to[(gateway.name, table, attachment)].add(peer)
    for (vpc, peer), intervals in sorted(to_vpc.items()):
        exact = collapse_intervals(intervals)
        if vpcs[vpc].route_scope == "vpc-cidrs":
            exact = tuple(c for c in vpcs[peer].cidrs if any(n.overlaps(c) for n in exact))
        plan.vpc_routes[(vpc, peer)] = (gateway_of[(vpc, peer)], exact)
    clean = {name: clean_propagation(g) for name, g in plan.gateways.items()}
    for (name, table, attachment), intervals in sorted(static.items()):
        propagated = clean[name].get((table, attachment), [])
        routes = plan.gateway_routes.setdefault((name, table), {})
        nets = collapse_intervals(intervals)
        if plan.gateways[name].route_scope == "vpc-cidrs":
            nets = tuple(sorted({c for vpc in static_to[(name, table, attachment)] for c in vpcs[vpc].cidrs
                                 if any(n.overlaps(c) for n in nets)}))
        for net in nets:
            if not any(net.subnet_of(cidr) for cidr in propagated):
                routes[net] = attachment
    _check(plan, reporter)
    return plan


def _check(plan: TransitPlan, reporter: Reporter) -> None:
    counts: dict[str, int] = defaultdict(int)
    for (name, table), routes in sorted(plan.gateway_routes.items()):
        counts[name] += len(routes)
        gateway = plan.gateways[name]
        reach: tuple[int, IPv4Network, str] | None = None  # the route reaching furthest so far
        for net, attachment in sorted(routes.items()):
            first, last = interval(net)
            if reach and first <= reach[0] and reach[2] != attachment:
                reporter.add(gateway.loc, "NG214", f"transit gateway '{name}' route table {table} would route "
                                                   f"{reach[1]} to {reach[2]} and {net} to {attachment}: the "
                                                   "destinations overlap")
            if reach is None or last > reach[0]:
                reach = (last, net, attachment)
    for name, gateway in sorted(plan.gateways.items()):
        propagated = sum(len(a.vpc.cidrs) * len(a.propagates_to) for a in gateway.attachments)
        if counts[name] + propagated > gateway.route_quota:
            reporter.add(gateway.loc, "NG213", f"transit gateway '{name}' would hold {counts[name]} static routes "
                                               f"of netgen and {propagated} propagated ones across its route tables, "
                                               f"over its routeQuota of {gateway.route_quota} (AWS: 10,000 per "
                                               "gateway, raisable through Service Quotas)")


def transit_resources(plan: TransitPlan, estate: Estate, logical_id, stack_of, gateway_stack
                      ) -> Iterator[tuple[object, object, object]]:
    """(stack key, owner, resource) of every route of the plan: VPC routes to gateways in the VPC's network
    stack, static routes in the gateway owner's (gateway_stack(gateway)). logical_id and stack_of are
    netgen.targets.aws's."""
    vpcs = {v.name: v for v in estate.vpcs}
    for (vpc_name, _), (gateway_id, nets) in plan.vpc_routes.items():
        vpc = vpcs[vpc_name]
        for table in vpc.route_tables:
            for net in nets:
                yield stack_of(vpc), vpc, Route(logical_id("Route", vpc_name, table, net), RouteTableId=table,
                                                DestinationCidrBlock=str(net), TransitGatewayId=gateway_id)
    for (name, table), routes in sorted(plan.gateway_routes.items()):
        gateway = plan.gateways[name]
        for net, attachment in sorted(routes.items()):
            yield gateway_stack(gateway), gateway, TransitGatewayRoute(
                logical_id("TgwRoute", name, table, net), TransitGatewayRouteTableId=table,
                DestinationCidrBlock=str(net), TransitGatewayAttachmentId=attachment)


def plan_entries(plan: TransitPlan, estate: Estate, stack_of, gateway_stack) -> list[dict]:
    """The deploy plan's entries of the transit gateways flows route through: ids, attachments and the stacks
    that route over them (routedBy), so that deploy and verify know what must exist before those stacks."""
    used: dict[str, set[str]] = defaultdict(set)
    vpcs = {v.name: v for v in estate.vpcs}
    by_id = {g.gateway_id: g for g in plan.gateways.values()}
    for (vpc_name, _), (gateway_id, _) in plan.vpc_routes.items():
        used[by_id[gateway_id].name].add(stack_of(vpcs[vpc_name]).name)
    for name, _ in plan.gateway_routes:
        used[name].add(gateway_stack(plan.gateways[name]).name)
    peerings = defaultdict(list)
    for p in estate.gateway_peerings:
        for gateway in (p.requester, p.accepter):
            peerings[gateway.name].append({"attachmentId": p.attachment_id, "routeTable": p.table_on(gateway),
                                           "peer": (p.accepter if gateway is p.requester else p.requester).gateway_id})
    return [{"transitGatewayId": g.gateway_id, "name": g.name, "account": g.account.account_id, "region": g.region,
             "attachments": [{"attachmentId": a.attachment_id, "vpc": a.vpc.vpc_id, "routeTable": a.route_table,
                              "propagatesTo": list(a.propagates_to)} for a in g.attachments],
             "peerings": sorted(peerings[g.name], key=lambda p: p["attachmentId"]),
             "routedBy": sorted(used[g.name])}
            for g in sorted(plan.gateways.values(), key=lambda g: g.gateway_id) if used[g.name]]
