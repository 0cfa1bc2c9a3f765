"""`netgen drift`: the live security-group rules, routes and peerings netgen owns, compared with generated/.

- Rules: every rule of every inventory security group (describe_security_group_rules) against the rules of
  the templates. `missing`: in generated/, not in AWS. `extra`: in AWS, not in generated/: a rule someone
  added by hand in the console, or a netgen rule left behind; the AWS default egress rule (all traffic to
  0.0.0.0/0) of a group that does not restrict egress is expected, not extra. `changed`: the same group,
  direction, protocol and CIDR with other ports, or the same rule with another description.
- Routes: the inventory's route tables. Expected: the routes of the network templates. Live: the routes whose
  target is a peering netgen owns (tag managed-by=netgen), and any route at an expected (table, prefix).
  `changed`: the prefix goes elsewhere (another peering, a gateway, a blackhole).
- Peerings: those tagged managed-by=netgen in the inventory's accounts and regions, by the pair of VPCs they
  connect, against the peerings of the templates. `changed`: not active.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from netgen.aws.generated import (
    MANAGED_KEY,
    MANAGED_VALUE,
    RuleSpec,
    inventory_rules,
    is_managed,
    load_plan,
    route_peer_pairs,
    rules_of,
)
from netgen.aws.session import Clients
from netgen.pipeline import Resolved

_GONE = {"deleted", "deleting", "rejected", "failed", "expired"}


@dataclass(frozen=True, order=True)
class Drift:
    kind: str  # rule | route | peering
    change: str  # missing | extra | changed
    where: str
    detail: str


def _rule_text(rule: RuleSpec) -> str:
    described = f" '{rule.description}'" if rule.description else ""
    return f"{rule}{described}"


def drift(resolved: Resolved, out: Path, clients: Clients) -> list[Drift]:
    estate = resolved.estate
    stacks = load_plan(out)
    found: list[Drift] = []
    names = {gid: g.name for g in estate.security_groups for gid in g.group_ids}

    # -- rules -----------------------------------------------------------------------------------------------
    expected = {r.key: r for s in stacks for r in rules_of(s.template)}
    restricts = {gid: g.restricts_egress for g in estate.security_groups for gid in g.group_ids}
    live: dict[tuple, RuleSpec] = {}
    for rule in inventory_rules(estate, clients):
        default_egress = (rule.direction == "egress" and rule.protocol == "-1" and rule.cidr == "0.0.0.0/0"
                          and not restricts.get(rule.group_id, False))
        if not default_egress:
            live[rule.key] = rule
    missing = [r for k, r in expected.items() if k not in live]
    extra = [r for k, r in live.items() if k not in expected]
    for key in sorted(set(expected) & set(live)):
        if expected[key].description != live[key].description:
            found.append(Drift("rule", "changed", _where(names, key[0]),
                               f"{expected[key]}: description '{live[key].description}', generated "
                               f"'{expected[key].description}'"))

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
    wanted_pairs = {}
    for s in stacks:
        for logical, resource in s.template.get("Resources", {}).items():
            if resource.get("Type") == "AWS::EC2::VPCPeeringConnection":
                props = resource.get("Properties", {})
                wanted_pairs[(str(props.get("VpcId")), str(props.get("PeerVpcId")))] = logical
    places = sorted({(v.account.account_id, v.region) for v in estate.vpcs})
    peerings: dict[str, dict] = {}
    for account, region in places:
        answer = clients.ec2(account, region).describe_vpc_peering_connections(
            Filters=[{"Name": f"tag:{MANAGED_KEY}", "Values": [MANAGED_VALUE]}])["VpcPeeringConnections"]
        for pcx in answer:
            if is_managed(pcx) and pcx["Status"]["Code"] not in _GONE:
                peerings.setdefault(pcx["VpcPeeringConnectionId"], pcx)
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

    # -- routes ----------------------------------------------------------------------------------------------
    expected_routes = route_peer_pairs(stacks)
    pairs_of = {pid: (p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]) for pid, p in peerings.items()}
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
            for (table, cidr), pair in sorted(expected_routes.items()):
                if table != table_id:
                    continue
                where = f"{vpc.name} {table}"
                route = live_routes.get((table, cidr))
                peer = _vpc(vpc_names, pair[1] if pair[0] == vpc.vpc_id else pair[0])
                if route is None:
                    found.append(Drift("route", "missing", where, f"{cidr} -> peering with {peer}"))
                    continue
                pcx = route.get("VpcPeeringConnectionId")
                if pcx not in pairs_of or set(pairs_of[pcx]) != set(pair) or route.get("State") == "blackhole":
                    target = pcx or route.get("GatewayId") or route.get("NatGatewayId") or "?"
                    found.append(Drift("route", "changed", where, f"{cidr} -> {target} ({route.get('State', '?')}), "
                                                                  f"generated: peering with {peer}"))
            for (table, cidr), route in sorted(live_routes.items()):
                if table != table_id or (table, cidr) in expected_routes:
                    continue
                if route.get("VpcPeeringConnectionId") in pairs_of:
                    found.append(Drift("route", "extra", f"{vpc.name} {table}",
                                       f"{cidr} -> {route['VpcPeeringConnectionId']}"))
    return sorted(found)


def _where(names: dict[str, str], group_id: str) -> str:
    return f"{names.get(group_id, '?')} ({group_id})"


def _vpc(names: dict[str, str], vpc_id: str) -> str:
    return f"{names[vpc_id]} ({vpc_id})" if vpc_id in names else vpc_id


def render_drift(found: list[Drift], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"drift": [asdict(d) for d in found]}, indent=2, sort_keys=True) + "\n"
    lines = [f"{d.change} {d.kind}: {d.where}: {d.detail}" for d in found]
    lines.append(f"drift: {len(found)} difference(s)" if found else "drift: none (AWS matches generated/)")
    return "\n".join(lines) + "\n"
