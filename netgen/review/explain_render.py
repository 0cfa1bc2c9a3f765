"""`netgen explain`, the answer's lines for each hop: what carries a hop that is granted (grant, peering or
transit gateways, routes, security-group rules, NetworkPolicies, each in the generated file that holds it),
what is in place and what is missing for a hop that is not, who else the openings admit (netgen.blast), and the
existing grants closest to the question. explain.py finds the hops; explain_transit.py writes the lines of a
path through transit gateways.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netgen.blast import admissions, admits_lines
from netgen.model import Estate, Grant
from netgen.resolve import Flow
from netgen.review.explain_transit import gateway_lines
from netgen.review.provenance import Carriers, Infrastructure

if TYPE_CHECKING:
    from netgen.review.explain import Hop


def closest_lines(ranked: list[tuple[int, str, Grant]]) -> list[str]:
    """The existing grants of the best (lowest) rank, three at most, each with why it is close."""
    if not ranked:
        return ["closest existing grant: none between these kinds of endpoints"]
    best = min(rank for rank, _, _ in ranked)
    chosen = sorted((g.name, why, g) for rank, why, g in ranked if rank == best)[:3]
    lines = ["closest existing grant" + ("s:" if len(chosen) > 1 else ":")]
    for name, why, grant in chosen:
        lines.append(f"  {name} (owner {grant.owner}, {grant.loc.file}:{grant.loc.line}): {why}")
    return lines


class HopLines:
    """The lines of the hops of one estate, with the infrastructure compiled from it."""

    def __init__(self, estate: Estate, infra: Infrastructure):
        self.estate = estate
        self.infra = infra
        self.vpcs = {v.name: v for v in estate.vpcs}
        self.groups = {g.name: g for g in estate.security_groups}

    def _stack_file(self, vpc_name: str) -> str:
        """The network stack (peerings, routes) of a VPC."""
        from netgen.targets.aws_names import stack_of

        return f"generated/{stack_of(self.vpcs[vpc_name]).path}"

    def hop_lines(self, index: int, total: int, hop: Hop) -> list[str]:
        flow, found = hop.expected, hop.carried
        name = f"hop {index}/{total}" if total > 1 else "flow"
        lines = [f"  {name}: {flow.line().split(' grant: ')[0]}"]
        for g in flow.grants:
            lines.append(f"    grant: {g.name} (owner {g.owner}) {g.location}")
        lines += self._carrier_lines(flow, found)
        return lines

    def blast_lines(self, hops: list[Hop]) -> list[str]:
        """Who else the openings carrying these hops admit (netgen.blast), their grants' own hosts aside."""
        names = {g.name for hop in hops for g in hop.expected.grants}
        own = [host for grant in self.estate.grants if grant.name in names for host in grant.hosts]
        return admits_lines(admissions(self.estate, [hop.expected for hop in hops], own))

    def _carrier_lines(self, flow: Flow, found: Carriers) -> list[str]:
        lines = []
        if flow.path.transit:
            lines += gateway_lines(self.estate, self._stack_file, flow, found)
        elif flow.path.peered:
            if found.peering and found.peering.connection:
                lines.append(f"    peering: {found.peering}, declared at {found.peering.declared} (VpcPeering): "
                             "it exists outside netgen, which routes over it and never changes it")
            elif found.peering:
                lines.append(f"    peering: {found.peering} in {self._stack_file(found.peering.requester)}")
            for label, routes, vpc in (("routes there", found.routes_there, flow.path.source_vpc),
                                       ("routes back", found.routes_back, flow.path.destination_vpc)):
                if routes:
                    listed = ", ".join(f"{r.route_table} {r.prefix}" for r in routes)
                    lines.append(f"    {label} ({vpc}, {self._stack_file(vpc)}): {listed}")
        else:
            lines.append(f"    network: inside VPC {flow.path.source_vpc}, no peering or route needed")
        for rule in found.rules:
            from netgen.targets.aws_names import rules_stack_of

            group = self.groups[rule.group]
            group_file = f"generated/{rules_stack_of(group, group.group_ids.index(rule.group_id)).path}"
            lines.append(f"    security-group rule: {rule} in {group_file} "
                         f"(netgen: {', '.join(rule.grants)})")
        if flow.destination.security_group is None:
            lines.append(f"    security group: {flow.destination} names none, nothing to open there")
        for policy in found.policies:
            lines.append(f"    NetworkPolicy: {policy.file} ({policy.direction}, "
                         f"netgen.dev/grants: {','.join(policy.grants)})")
        lines += [f"    {note}" for note in found.notes]
        if flow.destination.pods is None and flow.source.pods is None:
            lines.append("    NetworkPolicy: none involved (no pods at either end of this hop)")
        return lines

    def missing_lines(self, hops: list[Hop], grant_text: str) -> list[str]:
        """The first missing piece (the grant, since everything else follows from grants), then the state of
        each piece of infrastructure the missing hops would need."""
        lines = [f"first missing piece: {grant_text}"]
        for i, hop in enumerate(hops, 1):
            flow, found = hop.expected, hop.carried
            label = f"hop {i}/{len(hops)}" if len(hops) > 1 else "flow"
            state = "granted" if hop.present else "NOT granted"
            lines.append(f"  {label} ({state}): {flow.line().split(' grant: ')[0]}")
            if hop.present:
                lines += [f"    grant: {g.name} (owner {g.owner}) {g.location}" for g in flow.grants]
                continue
            lines += self._in_place(flow, found)
        return lines

    def _in_place(self, flow: Flow, found: Carriers) -> list[str]:
        lines = []
        if flow.path.peered:
            if flow.path.transit:
                lines.append(f"    transit gateways: {' -> '.join(flow.path.transit)} (declared; netgen writes "
                             "routes through them)")
            elif found.peering and found.peering.connection:
                lines.append(f"    peering: in place ({found.peering}, declared at {found.peering.declared}; "
                             "it exists outside netgen)")
            elif found.peering:
                lines.append(f"    peering: in place for other grants ({found.peering})")
            else:
                lines.append(f"    peering: missing between {flow.path.source_vpc} and {flow.path.destination_vpc}")
            there = _covers(found.routes_there, flow.destination.addresses)
            back = _covers(found.routes_back, flow.source.addresses)
            lines.append(f"    routes there ({flow.path.source_vpc}): {'in place' if there else 'missing'}; "
                         f"routes back ({flow.path.destination_vpc}): {'in place' if back else 'missing'}")
        group = flow.destination.security_group
        if not group:
            lines.append(f"    security group: {flow.destination} names none, nothing to open there")
        else:
            ingress = [r for r in found.rules if r.direction == "ingress"]
            covered = _covers_rules(ingress, flow)
            lines.append(f"    security-group rule on {group} ({self.groups[group].group_id}): "
                         f"{'in place for other grants' if covered else 'missing'}")
        end = flow.destination.pods
        if end is not None:
            if (end.cluster, end.namespace, "ingress") in self.infra.open_namespaces:
                lines.append(f"    NetworkPolicy: none needed (namespace {end.namespace} runs ingress open)")
            else:
                existing = [p for p in self.infra.policies
                            if (p.cluster, p.namespace, p.direction, p.selector)
                            == (end.cluster, end.namespace, "ingress", end.selector)]
                if not existing:
                    lines.append("    NetworkPolicy: missing (namespace runs ingress default-deny)")
                elif _policy_covers(existing, flow):
                    lines.append(f"    NetworkPolicy: {existing[0].file} already allows it (other grants)")
                else:
                    lines.append(f"    NetworkPolicy: {existing[0].file} exists but does not allow this "
                                 "source and port")
        return lines


def _covers(routes, addresses) -> bool:
    return all(any(a.subnet_of(r.prefix) for r in routes) for a in addresses)


def _covers_rules(rules, flow: Flow) -> bool:
    p = flow.ports
    return all(any(a.subnet_of(r.cidr) and r.first <= p.first and p.last <= r.last for r in rules)
               for a in flow.source.addresses)


def _policy_covers(policies, flow: Flow) -> bool:
    p = flow.ports
    return all(any(a.subnet_of(cidr) and proto == p.protocol and first <= p.first and p.last <= last
                   for policy in policies for cidr, proto, first, last in policy.allows)
               for a in flow.source.addresses)
