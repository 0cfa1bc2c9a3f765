"""Provenance: what the compile functions produce, as plain comparable facts, and which flows carry each one.

Security-group rules and NetworkPolicies name their grants in their descriptions and annotations. Peerings
and routes do not (CloudFormation routes have no description), so this module derives the mapping from the
flows instead of changing the templates: a route carries a flow when it is in the flow's source VPC, points
at the peering (or the transit gateway) to the flow's destination VPC and covers one of the flow's destination
addresses (or the mirror route back); a static route of a transit gateway route table carries it when it is
in a table the flow's packets are routed by, to the next attachment, and covers one of those addresses.
`netgen explain` and `netgen diff` both read it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network

import yaml

from netgen.diagnostics import Reporter
from netgen.flows import scope_text
from netgen.pipeline import Resolved
from netgen.resolve import Flow

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass(frozen=True, order=True)
class PeeringFact:
    requester: str
    accepter: str
    requester_vpc_id: str
    accepter_vpc_id: str
    logical_id: str  # "" for an existing peering
    cross_region: bool
    cross_account: bool
    connection: str = ""  # the id of a peering that exists outside netgen (VpcPeering); "" for netgen's own
    declared: str = field(default="", compare=False)  # where the VpcPeering is, file:line

    def __str__(self) -> str:
        scope = scope_text(self.cross_region, self.cross_account)
        return f"{self.requester} <-> {self.accepter} ({scope}; {self.what})"

    @property
    def what(self) -> str:
        """Which peering it is: netgen's own by logical id, or an existing one by connection id."""
        return f"existing {self.connection}" if self.connection else self.logical_id

    @property
    def pair(self) -> frozenset[str]:
        return frozenset((self.requester, self.accepter))

    def joins(self, a: str, b: str) -> bool:
        return {self.requester, self.accepter} == {a, b}


@dataclass(frozen=True, order=True)
class RouteFact:
    vpc: str
    route_table: str
    prefix: IPv4Network
    peer: str  # the VPC at the other end of the peering the route points at
    via: str = ""  # the id of the existing peering (VpcPeering) it points at; "" for netgen's own
    gateway: str = ""  # the id of the transit gateway it points at, when it does

    def __str__(self) -> str:
        if self.gateway:
            return f"{self.vpc} {self.route_table} {self.prefix} -> transit gateway {self.gateway} to {self.peer}"
        if self.via:
            return f"{self.vpc} {self.route_table} {self.prefix} -> existing peering {self.via} to {self.peer}"
        return f"{self.vpc} {self.route_table} {self.prefix} -> peering to {self.peer}"


@dataclass(frozen=True, order=True)
class GatewayRouteFact:
    """A static route in a transit gateway route table (AWS::EC2::TransitGatewayRoute)."""

    gateway: str  # by name
    route_table: str
    prefix: IPv4Network
    attachment: str
    leads_to: str  # the VPC the attachment delivers to, or "transit gateway <name>" for a peering attachment

    def __str__(self) -> str:
        return f"transit gateway {self.gateway} {self.route_table} {self.prefix} -> {self.attachment} ({self.leads_to})"


@dataclass(frozen=True)
class GatewayHop:
    """One gateway route table a flow's packets are routed by, and what carries them on from there."""

    gateway: str
    gateway_id: str
    route_table: str
    attachment: str
    leads_to: str
    propagated: tuple[IPv4Network, ...]  # the attachment's CIDRs propagated to the table (none across a peering)
    statics: tuple[GatewayRouteFact, ...] = ()  # netgen's static routes there that the flow uses


@dataclass(frozen=True, order=True)
class RuleFact:
    group: str
    group_id: str
    direction: str  # ingress | egress
    protocol: str
    first: int
    last: int
    cidr: IPv4Network
    grants: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        """What the rule allows, without the grants named in its description."""
        return (self.group, self.group_id, self.direction, self.protocol, self.first, self.last, self.cidr)

    @property
    def ports(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"

    def __str__(self) -> str:
        way = "from" if self.direction == "ingress" else "to"
        return (f"{self.group} ({self.group_id}) {self.direction} {self.protocol.lower()}/{self.ports} "
                f"{way} {self.cidr}")


@dataclass(frozen=True, order=True)
class PolicyFact:
    path: str  # relative to generated/
    cluster: str
    namespace: str
    name: str
    direction: str  # ingress | egress
    selector: tuple[tuple[str, str], ...]
    grants: tuple[str, ...]
    allows: tuple[tuple[IPv4Network, str, int, int], ...]  # (peer cidr, protocol, first port, last port)

    @property
    def file(self) -> str:
        return f"generated/{self.path}"


@dataclass(frozen=True)
class Infrastructure:
    """Everything the AWS and Kubernetes targets would write for one estate, as sorted facts."""

    peerings: tuple[PeeringFact, ...]
    routes: tuple[RouteFact, ...]
    rules: tuple[RuleFact, ...]
    policies: tuple[PolicyFact, ...]
    open_namespaces: frozenset[tuple[str, str, str]]  # (cluster, namespace, direction) with no policy
    gateway_routes: tuple[GatewayRouteFact, ...] = ()
    # (source VPC, destination VPC) -> the gateway route tables its packets are routed by, in order
    gateway_hops: dict[tuple[str, str], tuple[GatewayHop, ...]] = field(default_factory=dict, compare=False)


def _policy(path: str, text: bytes) -> PolicyFact:
    doc = yaml.load(text, Loader=_Loader)
    meta, spec = doc["metadata"], doc["spec"]
    direction = spec["policyTypes"][0].lower()
    peer_key = "from" if direction == "ingress" else "to"
    allows = []
    for rule in spec.get(direction, []):
        for peer in rule.get(peer_key, []):
            for port in rule.get("ports", []):
                allows.append((IPv4Network(peer["ipBlock"]["cidr"]), port["protocol"], port["port"],
                               port.get("endPort", port["port"])))
    grants = tuple(g for g in meta.get("annotations", {}).get("netgen.dev/grants", "").split(",") if g)
    return PolicyFact(path, path.split("/")[1], meta["namespace"], meta["name"], direction,
                      tuple(sorted(spec["podSelector"].get("matchLabels", {}).items())), grants,
                      tuple(sorted(allows)))


def infrastructure(resolved: Resolved, reporter: Reporter) -> Infrastructure:
    """Run the real compile functions on the flows; build errors (quotas) go to reporter."""
    from netgen.targets.aws_network import plan_peerings_and_routes
    from netgen.targets.aws_rules import plan_rules
    from netgen.targets.aws_transit import plan_transit
    from netgen.targets.kubernetes import compile_kubernetes

    estate, flows = resolved.estate, list(resolved.flows)
    vpcs = {v.name: v for v in estate.vpcs}
    transit = plan_transit(estate, flows, reporter)
    peerings, routes = plan_peerings_and_routes(estate, flows, reporter, transit)
    rules = plan_rules(estate, flows, reporter)
    declared = {p.connection_id: f"{p.loc.file}:{p.loc.line}" for p in estate.peerings}
    peering_facts = tuple(sorted(
        PeeringFact(p.requester.name, p.accepter.name, p.requester.vpc_id, p.accepter.vpc_id,
                    "" if p.existing else p.logical_id, p.requester.region != p.accepter.region,
                    p.requester.account.account_id != p.accepter.account.account_id, p.connection_id,
                    declared.get(p.connection_id, ""))
        for p in peerings.values()))
    route_facts = tuple(sorted([RouteFact(vpc, table, net, peer, peerings[frozenset((vpc, peer))].connection_id)
                                for (vpc, peer), nets in routes.items()
                                for table in vpcs[vpc].route_tables for net in nets]
                               + [RouteFact(vpc, table, net, peer, gateway=gateway_id)
                                  for (vpc, peer), (gateway_id, nets) in transit.vpc_routes.items()
                                  for table in vpcs[vpc].route_tables for net in nets]))
    gateway_routes, gateway_hops = _gateway_facts(estate, transit)
    rule_facts = tuple(sorted(RuleFact(r.group.name, r.group_id, r.direction, r.protocol, r.first, r.last,
                                       r.cidr, r.grants) for r in rules))
    policy_facts = tuple(sorted(_policy(path, text) for path, text in compile_kubernetes(estate, flows).items()
                                if not path.endswith("/kustomization.yaml")))
    open_namespaces = frozenset((c.name, ns, direction) for c in estate.clusters
                                for ns, modes in c.namespaces.items() for direction in ("ingress", "egress")
                                if getattr(modes, direction) != "default-deny")
    return Infrastructure(peering_facts, route_facts, rule_facts, policy_facts, open_namespaces, gateway_routes,
                          gateway_hops)


def _gateway_facts(estate, transit) -> tuple[tuple[GatewayRouteFact, ...], dict]:
    """The static routes of the gateways' route tables, and each pair's gateway hops (netgen.transit)."""
    from netgen.targets.aws_transit import clean_propagation
    from netgen.transit import PathChooser

    if not transit.gateways:
        return (), {}
    chooser = PathChooser.of(estate)
    hops: dict[tuple[str, str], tuple[GatewayHop, ...]] = {}
    leads: dict[tuple[str, str, str], str] = {}  # (gateway, table, attachment) -> where it leads
    clean = {name: clean_propagation(g) for name, g in transit.gateways.items()}
    for vpc, peer in transit.vpc_routes:
        way = chooser.through_gateway(vpc, peer)
        if way is None:
            continue
        found = []
        for gateway, table, attachment, leads_to in way.hops():
            leads[(gateway.name, table, attachment)] = leads_to
            found.append(GatewayHop(gateway.name, gateway.gateway_id, table, attachment, leads_to,
                                    tuple(clean[gateway.name].get((table, attachment), ()))))
        hops[(vpc, peer)] = tuple(found)
    facts = tuple(sorted(GatewayRouteFact(name, table, net, attachment, leads.get((name, table, attachment), "?"))
                         for (name, table), routes in transit.gateway_routes.items()
                         for net, attachment in routes.items()))
    return facts, hops


def _overlaps(net: IPv4Network, nets: tuple[IPv4Network, ...]) -> bool:
    return any(net.overlaps(n) for n in nets)


@dataclass(frozen=True)
class Carriers:
    """What carries one flow (one hop) through the network."""

    peering: PeeringFact | None
    routes_there: tuple[RouteFact, ...]  # in the source VPC, toward the destination addresses
    routes_back: tuple[RouteFact, ...]  # in the destination VPC, toward the source addresses (replies)
    rules: tuple[RuleFact, ...]  # destination group ingress; source group egress when it restricts egress
    policies: tuple[PolicyFact, ...]
    notes: tuple[str, ...]  # e.g. "namespace search runs ingress open: no NetworkPolicy needed"
    gateway_there: tuple[GatewayHop, ...] = ()  # the transit gateway route tables on the way there
    gateway_back: tuple[GatewayHop, ...] = ()  # ... and back


def carriers(infra: Infrastructure, flow: Flow) -> Carriers:
    path, p = flow.path, flow.ports
    peering = None
    there: tuple[RouteFact, ...] = ()
    back: tuple[RouteFact, ...] = ()
    if path.peered:
        peering = next((f for f in infra.peerings if f.joins(path.source_vpc, path.destination_vpc)), None)
        there = tuple(r for r in infra.routes if r.vpc == path.source_vpc and r.peer == path.destination_vpc
                      and _overlaps(r.prefix, flow.destination.addresses))
        back = tuple(r for r in infra.routes if r.vpc == path.destination_vpc and r.peer == path.source_vpc
                     and _overlaps(r.prefix, flow.source.addresses))
    rules = []
    for rule in infra.rules:
        if rule.protocol != p.protocol or rule.last < p.first or p.last < rule.first:
            continue
        if (rule.direction == "ingress" and rule.group == flow.destination.security_group
                and _overlaps(rule.cidr, flow.source.addresses)):
            rules.append(rule)
        elif (rule.direction == "egress" and rule.group == flow.source.security_group
              and _overlaps(rule.cidr, flow.destination.addresses)):
            rules.append(rule)
    policies = []
    notes = []
    for direction, end, peers in (("ingress", flow.destination, flow.source.addresses),
                                  ("egress", flow.source, flow.destination.addresses)):
        if end.pods is None:
            continue
        pods = end.pods
        if (pods.cluster, pods.namespace, direction) in infra.open_namespaces:
            notes.append(f"namespace {pods.namespace} in {pods.cluster} runs {direction} open: "
                         "no NetworkPolicy needed")
            continue
        for policy in infra.policies:
            if (policy.cluster, policy.namespace, policy.direction, policy.selector) != (
                    pods.cluster, pods.namespace, direction, pods.selector):
                continue
            if any(proto == p.protocol and first <= p.last and p.first <= last and _overlaps(cidr, peers)
                   for cidr, proto, first, last in policy.allows):
                policies.append(policy)
    gateway_there = gateway_back = ()
    if path.transit:
        gateway_there = _gateway_hops(infra, path.source_vpc, path.destination_vpc, flow.destination.addresses)
        gateway_back = _gateway_hops(infra, path.destination_vpc, path.source_vpc, flow.source.addresses)
    return Carriers(peering, there, back, tuple(rules), tuple(policies), tuple(notes), gateway_there, gateway_back)


def _gateway_hops(infra: Infrastructure, a: str, b: str, addresses: tuple[IPv4Network, ...]
                  ) -> tuple[GatewayHop, ...]:
    """The gateway route tables packets from VPC a to addresses in VPC b are routed by, each with netgen's
    static routes there that carry them."""
    return tuple(replace(hop, statics=tuple(
        r for r in infra.gateway_routes if (r.gateway, r.route_table, r.attachment) == (
            hop.gateway, hop.route_table, hop.attachment) and _overlaps(r.prefix, addresses)))
        for hop in infra.gateway_hops.get((a, b), ()))


def grants_by_peering_and_route(infra: Infrastructure, flows: tuple[Flow, ...] | list[Flow]
                                ) -> tuple[dict[PeeringFact, set[str]], dict[RouteFact, set[str]]]:
    """The grants behind every peering and every route (they carry no description of their own)."""
    by_peering: dict[PeeringFact, set[str]] = defaultdict(set)
    by_route: dict[RouteFact, set[str]] = defaultdict(set)
    for flow in flows:
        if not flow.path.peered:
            continue
        found = carriers(infra, flow)
        names = {g.name for g in flow.grants}
        if found.peering:
            by_peering[found.peering] |= names
        for route in found.routes_there + found.routes_back:
            by_route[route] |= names
        for hop in found.gateway_there + found.gateway_back:
            for static in hop.statics:  # (keyed like the routes: diff looks both up by fact)
                by_route[static] |= names  # type: ignore[index]
    return dict(by_peering), dict(by_route)
