"""`netgen drift`: the live rules, routes and peerings of the inventory, named, and compared with generated/.

Every live rule of the inventory's security groups, every peering route in its route tables, and every static
route in the transit gateway route tables netgen writes to (drift_transit.py), falls in one category
(netgen/aws/coverage.py decides coverage):

- `managed`: netgen's own. A rule with a `netgen:` description; a route that a deployed netgen stack holds
  (its deployed template has it).
- `adopted`: made by hand (or by another tool) and identical to what netgen generates: a rule with the same
  group, direction, protocol, ports and CIDR as a generated rule but not netgen's description; a route at a
  generated (table, destination) through the same peering (one netgen requests between the same two VPCs, or
  the existing peering the template names) that no netgen stack holds. Deploy leaves such a rule or route in
  place rather than create a duplicate, so it is not drift.
- `covered`: made by hand, and every (address, port) pair it allows is allowed by the flows of the specs for
  that group and direction (a rule narrower than a generated one lands here); for a route, its destination lies
  within the generated routes of that table to the same VPC.
- `uncovered`: made by hand, and it allows something no flow does. What a team must grant or remove: its
  count measures how far the migration to netgen has gone.

Drift is about netgen's own things, as before: rules (`missing`: in generated/, not in AWS, and not adopted;
`extra`: a rule with a `netgen:` description that generated/ does not have; `changed`: the same group,
direction, protocol and CIDR with other ports, or a netgen rule with another description), routes (`missing`;
`changed`: the destination goes through another target, a gateway or a blackhole; `extra`: a route through a
netgen peering that generated/ does not have; routes to transit gateways likewise, and the static routes in
their route tables: drift_transit.py) and peerings (netgen's, tagged managed-by=netgen, by the pair of
VPCs they connect, and the existing ones the deploy plan names by id: `missing`, `changed` when not active,
`extra`). The AWS default egress rule (all traffic to 0.0.0.0/0) of a group that does not restrict egress is
expected and in no category.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

from netgen.aws.coverage import ADOPTED, COVERED, MANAGED, UNCOVERED, classify_rules, ipv4, within
from netgen.aws.drift_transit import gateway_route_drift
from netgen.aws.generated import (
    RuleSpec,
    StackPlan,
    deployed_template,
    existing_peerings,
    gateway_routes_of,
    inventory_rules,
    is_managed,
    load_plan,
    peering_pairs,
    route_peer_pairs,
    routes_of,
    rules_of,
)
from netgen.aws.session import Clients
from netgen.pipeline import Resolved

_GONE = {"deleted", "deleting", "rejected", "failed", "expired"}
DRIFT = ("missing", "extra", "changed")  # the changes that are drift; "adopted" and "hand" are not
CATEGORIES = (MANAGED, ADOPTED, COVERED, UNCOVERED)


@dataclass(frozen=True, order=True)
class Drift:
    kind: str  # rule | route | peering
    change: str  # missing | extra | changed (drift) | adopted | hand (not drift)
    where: str
    detail: str
    category: str = MANAGED  # managed | adopted | covered | uncovered

    @property
    def is_drift(self) -> bool:
        return self.change in DRIFT


@dataclass
class DriftReport:
    entries: list[Drift] = field(default_factory=list)
    # {"rules" | "routes": {category: live count}}: managed ones matching generated/ are counted, not listed
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {
        "rules": dict.fromkeys(CATEGORIES, 0), "routes": dict.fromkeys(CATEGORIES, 0)})
    notes: list[str] = field(default_factory=list)  # what could not be read whole

    @property
    def drift(self) -> list[Drift]:
        return [e for e in self.entries if e.is_drift]

    @property
    def uncovered(self) -> list[Drift]:
        return [e for e in self.entries if e.category == UNCOVERED]


def _rule_text(rule: RuleSpec) -> str:
    described = f" '{rule.description}'" if rule.description else ""
    return f"{rule}{described}"


def drift(resolved: Resolved, out: Path, clients: Clients) -> DriftReport:
    estate = resolved.estate
    stacks = load_plan(out)
    report = DriftReport()
    found = report.entries
    names = {gid: g.name for g in estate.security_groups for gid in g.group_ids}

    # -- rules -----------------------------------------------------------------------------------------------
    generated = [r for s in stacks for r in rules_of(s.template)]
    expected = {r.key: r for r in generated}
    classified = classify_rules(estate, resolved.flows, inventory_rules(estate, clients), generated)
    live = {c.rule.key: c.rule for c in classified}
    extra: list[RuleSpec] = []
    for c in classified:
        rule, where = c.rule, _where(names, c.rule.group_id)
        report.counts["rules"][c.category] += 1
        if c.category == MANAGED:
            want = expected.get(rule.key)
            if want is None:
                extra.append(rule)
            elif want.description != rule.description:
                found.append(Drift("rule", "changed", where, f"{want}: description '{rule.description}', "
                                                              f"generated '{want.description}'"))
        elif c.category == ADOPTED:
            found.append(Drift("rule", "adopted", where, f"{_rule_text(rule)}: identical to a generated rule "
                                                          f"('{expected[rule.key].description}')", ADOPTED))
        elif c.category == COVERED:
            found.append(Drift("rule", "hand", where, _rule_text(rule), COVERED))
        else:
            found.append(Drift("rule", "hand", where, f"{_rule_text(rule)}: {c.why}", UNCOVERED))
    missing = [r for k, r in expected.items() if k not in live]

    def loose(rule: RuleSpec) -> tuple:
        return rule.group_id, rule.direction, rule.protocol, rule.cidr

    extra_by_loose: dict[tuple, list[RuleSpec]] = defaultdict(list)
    for rule in extra:
        extra_by_loose[loose(rule)].append(rule)
    for rule in sorted(missing):
        candidates = extra_by_loose.get(loose(rule))
        if candidates and len(candidates) == 1 and len([m for m in missing if loose(m) == loose(rule)]) == 1:
            other = candidates.pop()
            extra.remove(other)
            found.append(Drift("rule", "changed", _where(names, rule.group_id),
                               f"{rule.direction} {rule.protocol} {rule.cidr}: ports {other.first}-{other.last} in "
                               f"AWS, {rule.first}-{rule.last} generated ('{rule.description}')"))
        else:
            found.append(Drift("rule", "missing", _where(names, rule.group_id), _rule_text(rule)))
    for rule in sorted(extra):
        found.append(Drift("rule", "extra", _where(names, rule.group_id), _rule_text(rule)))

    # -- peerings --------------------------------------------------------------------------------------------
    wanted_pairs = {pair: logical for pair, (_, logical) in peering_pairs(stacks).items()}
    existing = {e["connectionId"]: e for e in existing_peerings(out) if e.get("connectionId")}
    places = sorted({(v.account.account_id, v.region) for v in estate.vpcs})
    every: dict[str, dict] = {}  # every live peering of the inventory's places, netgen's or not
    for account, region in places:
        pages = clients.ec2(account, region).get_paginator("describe_vpc_peering_connections").paginate()
        for page in pages:
            for pcx in page.get("VpcPeeringConnections", []):
                if pcx["Status"]["Code"] not in _GONE:
                    every.setdefault(pcx["VpcPeeringConnectionId"], pcx)
    peerings = {pid: pcx for pid, pcx in every.items() if is_managed(pcx)}  # netgen's
    vpc_names = {v.vpc_id: v.name for v in estate.vpcs}
    live_pairs: dict[tuple[str, str], dict] = {}
    for pcx in peerings.values():
        live_pairs[(pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"])] = pcx
    for pair, logical in sorted(wanted_pairs.items()):
        text = f"{_vpc(vpc_names, pair[0])} <-> {_vpc(vpc_names, pair[1])}"
        pcx = live_pairs.get(pair)
        if pcx is None:
            found.append(Drift("peering", "missing", text, logical))
        elif pcx["Status"]["Code"] != "active":
            found.append(Drift("peering", "changed", text, f"{pcx['VpcPeeringConnectionId']} is "
                                                           f"{pcx['Status']['Code']}, not active"))
    for pair, pcx in sorted(live_pairs.items()):
        if pair not in wanted_pairs:
            found.append(Drift("peering", "extra", f"{_vpc(vpc_names, pair[0])} <-> {_vpc(vpc_names, pair[1])}",
                               f"{pcx['VpcPeeringConnectionId']} ({pcx['Status']['Code']})"))
    for pid, entry in sorted(existing.items()):
        text = (f"{_vpc(vpc_names, entry.get('requesterVpc', '?'))} <-> "
                f"{_vpc(vpc_names, entry.get('accepterVpc', '?'))}")
        pcx = every.get(pid)
        if pcx is None:
            found.append(Drift("peering", "missing", text, f"{pid} (existing peering '{entry.get('name', '?')}': "
                                                           "not found)", ADOPTED))
        elif pcx["Status"]["Code"] != "active":
            found.append(Drift("peering", "changed", text, f"{pid} (existing peering) is {pcx['Status']['Code']}, "
                                                           "not active", ADOPTED))

    # -- routes ----------------------------------------------------------------------------------------------
    pairs_of = {pid: frozenset((p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]))
                for pid, p in every.items()}
    for pid, entry in existing.items():
        pairs_of.setdefault(pid, frozenset((entry.get("requesterVpc"), entry.get("accepterVpc"))))
    targets = _expected_routes(stacks, pairs_of)
    deployed = _deployed_templates(stacks, clients)
    held = {name: {r.logical for r in routes_of(template)} for name, template in deployed.items()}
    for vpc in estate.vpcs:
        if not vpc.route_tables:
            continue
        ec2 = clients.ec2(vpc.account.account_id, vpc.region)
        tables = ec2.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": list(vpc.route_tables)}])
        live_routes: dict[tuple[str, str], dict] = {}
        for table in tables["RouteTables"]:
            for route in table.get("Routes", []):
                if route.get("DestinationCidrBlock"):
                    live_routes[(table["RouteTableId"], route["DestinationCidrBlock"])] = route
        for table_id in vpc.route_tables:
            where = f"{vpc.name} {table_id}"
            mine = {cidr: target for (table, cidr), target in targets.items() if table == table_id}
            for cidr, target in sorted(mine.items()):
                pair, literal, logical, stack = target
                route = live_routes.get((table_id, cidr))
                peer = _vpc(vpc_names, next((v for v in pair if v != vpc.vpc_id), "?"))
                gateway = literal.startswith("tgw-")  # a route to a transit gateway, by id
                via = (f"transit gateway {literal}" if gateway else f"peering {literal}" if literal
                       else f"peering with {peer}")
                if route is None:
                    found.append(Drift("route", "missing", where, f"{cidr} -> {via}"))
                    continue
                pcx = route.get("TransitGatewayId" if gateway else "VpcPeeringConnectionId")
                same = pcx == literal if literal else pairs_of.get(pcx or "") == pair
                if not same or route.get("State") == "blackhole":
                    target_id = (pcx or route.get("GatewayId") or route.get("NatGatewayId")
                                 or route.get("TransitGatewayId") or route.get("NetworkInterfaceId") or "?")
                    found.append(Drift("route", "changed", where, f"{cidr} -> {target_id} "
                                                                  f"({route.get('State', '?')}), generated: {via}"))
                elif logical in held.get(stack, set()):
                    report.counts["routes"][MANAGED] += 1
                else:
                    report.counts["routes"][ADOPTED] += 1
                    found.append(Drift("route", "adopted", where, f"{cidr} -> {pcx}: identical to a generated "
                                                                  "route, held by no netgen stack", ADOPTED))
            by_pair: dict[frozenset, list[IPv4Network]] = defaultdict(list)
            for cidr, (pair, *_) in mine.items():
                by_pair[pair].append(IPv4Network(cidr))
            for (table, cidr), route in sorted(live_routes.items()):
                pcx = route.get("VpcPeeringConnectionId")
                if table != table_id or cidr in mine or not pcx:
                    continue
                if pcx in peerings:
                    report.counts["routes"][MANAGED] += 1
                    found.append(Drift("route", "extra", where, f"{cidr} -> {pcx}"))
                    continue
                net = ipv4(cidr)
                covered = net is not None and within(net, by_pair.get(pairs_of.get(pcx, frozenset()), []))
                category = COVERED if covered else UNCOVERED
                report.counts["routes"][category] += 1
                detail = ("within the generated routes to that VPC" if covered
                          else "no generated route of this table goes there through that peering")
                found.append(Drift("route", "hand", where, f"{cidr} -> {pcx}: {detail}", category))
    found += gateway_route_drift(stacks, deployed, clients, report.counts["routes"], Drift, report.notes)
    found.sort(key=lambda d: (CATEGORIES.index(d.category) if not d.is_drift else -1, d))
    return report


def _expected_routes(stacks: list[StackPlan], pairs_of: dict[str, frozenset]
                     ) -> dict[tuple[str, str], tuple[frozenset, str, str, str]]:
    """{(route table, destination): (the pair of VPC ids it connects, the existing peering's id when the template
    names one, the route's logical id, its stack)}."""
    through = route_peer_pairs(stacks)
    found = {}
    for stack in stacks:
        for route in routes_of(stack.template):
            key = (route.table, route.cidr)
            if isinstance(route.target, str):  # an existing peering, or a transit gateway, by id
                found[key] = (pairs_of.get(route.target, frozenset()), route.target, route.logical, stack.name)
            elif key in through:
                found[key] = (frozenset(through[key]), "", route.logical, stack.name)
    return found


def _deployed_templates(stacks: list[StackPlan], clients: Clients) -> dict[str, dict]:
    """{stack name: the template it was deployed from} of the stacks that write routes (VPC or transit gateway
    routes): what each holds. A stack that does not exist, or cannot be read, holds nothing. (Read from the
    template rather than the stack's resources: moto lists the resources it skipped, and routes an update
    changed, without their logical ids.)"""
    from botocore.exceptions import BotoCoreError, ClientError

    found: dict[str, dict] = {}
    for stack in stacks:
        if not routes_of(stack.template) and not gateway_routes_of(stack.template):
            continue
        try:
            found[stack.name] = deployed_template(clients.cloudformation(*stack.place), stack.name) or {}
        except (ClientError, BotoCoreError):
            found[stack.name] = {}
    return found


def _where(names: dict[str, str], group_id: str) -> str:
    return f"{names.get(group_id, '?')} ({group_id})"


def _vpc(names: dict[str, str], vpc_id: str) -> str:
    return f"{names[vpc_id]} ({vpc_id})" if vpc_id in names else vpc_id


_LABELS = {ADOPTED: "adopted {}", COVERED: "hand {} (covered by the grants)",
           UNCOVERED: "hand {} (covered by no grant)"}


def migration_line(report: DriftReport) -> str:
    rules, routes = report.counts["rules"], report.counts["routes"]
    line = (f"migration: {rules[UNCOVERED]} hand rule(s) covered by no grant, {rules[COVERED]} covered, "
            f"{rules[ADOPTED]} adopted, {rules[MANAGED]} managed")
    if any(routes.values()):
        line += (f"; routes: {routes[UNCOVERED]} hand route(s) to no generated destination, {routes[COVERED]} "
                 f"covered, {routes[ADOPTED]} adopted, {routes[MANAGED]} managed")
    return line


def render_drift(report: DriftReport, fmt: str) -> str:
    if fmt == "json":
        document: dict = {"drift": [asdict(d) for d in report.entries], "migration": report.counts}
        if report.notes:
            document["notes"] = report.notes
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    lines = []
    for d in report.entries:
        label = f"{d.change} {d.kind}" if d.is_drift else _LABELS[d.category].format(d.kind)
        lines.append(f"{label}: {d.where}: {d.detail}")
    lines += [f"note: {note}" for note in report.notes]
    drifted = report.drift
    lines.append(f"drift: {len(drifted)} difference(s)" if drifted else "drift: none (AWS matches generated/)")
    lines.append(migration_line(report))
    return "\n".join(lines) + "\n"
