"""The reachability evaluator: decides from EC2 API answers alone whether a packet (and its reply) gets through.

It reads nothing but boto3 EC2 answers (describe_vpcs, describe_subnets, describe_route_tables,
describe_vpc_peering_connections, describe_security_groups, describe_instances) and imports nothing from netgen's
model, so it judges what AWS would enforce rather than what netgen meant. `netgen verify` and the AWS judge of the
test suite (tests/judges/aws.py) are this one module.

What it models (and what it does not):
- Routing: a packet between two VPCs needs an active peering connecting exactly those two VPCs, a route for
  the destination address through it in the route table of the source address's subnet (longest prefix wins;
  the subnet's explicit association, else the VPC's main table), and a route back for the source address
  through the same peering in the destination subnet's table. Peering is not transitive: both addresses must
  lie inside the CIDRs of their own VPC. Inside one VPC the local route always delivers; when the packet's
  source address lies outside the VPC (a load balancer or a NodePort forwarding with the client's address
  preserved), the reply still needs a route back to it from the destination's subnet.
- Security groups: an ingress rule of some destination group must admit the source address (or one of the
  source groups, within a VPC or a same-region peering) on the protocol and port; an egress rule of some
  source group must admit the destination likewise. A group keeping the default egress rule (all traffic to
  0.0.0.0/0) admits everything. `None` for a side's groups means that side has no security group at all
  (e.g. a Network Load Balancer created without one): no filtering on that side.
- Transit gateways: a route to a transit gateway (TransitGatewayId) is followed through the gateway's route
  tables, and peered gateways', to the VPC attachment it delivers to (netgen/aws/reachability_tgw.py, which
  says what it models); that VPC must be the destination's, and the reply must come back the same way. Rules
  naming a group are not taken to match across a gateway (they can, inbound, in one region, when enabled).
- Not modelled: network ACLs (the defaults allow everything), prefix-list rules, IPv6, middlebox routes more
  specific than the local route, and the Kubernetes layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from netgen.aws.reachability_tgw import GatewayView, gateway_view, read_gateways, through_gateway

# ---------------------------------------------------------------------------------------------------------------
# 1. The evaluator: EC2 API answers only.
# ---------------------------------------------------------------------------------------------------------------

_PROTOCOL_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1"}


@lru_cache(maxsize=4096)
def _net(cidr: str) -> IPv4Network:
    return ip_network(cidr)  # type: ignore[return-value]


@dataclass(frozen=True)
class Verdict:
    """Whether a packet (and its reply) gets through, and why not when it does not."""

    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


@dataclass
class Ec2View:
    """EC2 API answers from every account and region of an estate, indexed for the evaluator.

    Each argument of `from_answers` is the concatenation, over all clients, of the list a describe call returns
    under its top-level key (Vpcs, Subnets, RouteTables, VpcPeeringConnections, SecurityGroups, and the
    Reservations of describe_instances). Ids are unique across accounts and regions, so one index serves all.
    """

    vpcs: dict[str, dict] = field(default_factory=dict)
    subnets: dict[str, dict] = field(default_factory=dict)
    route_tables: dict[str, dict] = field(default_factory=dict)
    peerings: dict[str, dict] = field(default_factory=dict)
    security_groups: dict[str, dict] = field(default_factory=dict)
    instances: dict[str, dict] = field(default_factory=dict)
    gateways: GatewayView = field(default_factory=GatewayView)  # transit gateways (reachability_tgw)

    @classmethod
    def from_answers(cls, *, vpcs: Iterable[dict], subnets: Iterable[dict], route_tables: Iterable[dict],
                     peerings: Iterable[dict], security_groups: Iterable[dict],
                     reservations: Iterable[dict] = ()) -> Ec2View:
        view = cls()
        view.vpcs = {v["VpcId"]: v for v in vpcs}
        view.subnets = {s["SubnetId"]: s for s in subnets}
        view.route_tables = {t["RouteTableId"]: t for t in route_tables}
        for p in peerings:
            # A cross-region peering is reported in both regions; the answers describe the same connection.
            view.peerings.setdefault(p["VpcPeeringConnectionId"], p)
        view.security_groups = {g["GroupId"]: g for g in security_groups}
        view.instances = {i["InstanceId"]: i for r in reservations for i in r.get("Instances", [])}
        return view

    # -- addresses ---------------------------------------------------------------------------------------------

    def vpc_cidrs(self, vpc_id: str) -> list[IPv4Network]:
        """The VPC's associated IPv4 CIDRs (primary and secondary)."""
        vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            return []
        blocks = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])
                  if a.get("CidrBlockState", {}).get("State", "associated") == "associated"]
        return [_net(b) for b in (blocks or [vpc["CidrBlock"]])]

    def in_vpc(self, vpc_id: str, ip: IPv4Address) -> bool:
        return any(ip in net for net in self.vpc_cidrs(vpc_id))

    def subnet_at(self, vpc_id: str, ip: IPv4Address) -> dict | None:
        for subnet in self.subnets.values():
            if subnet["VpcId"] == vpc_id and ip in _net(subnet["CidrBlock"]):
                return subnet
        return None

    def route_table_of(self, vpc_id: str, ip: IPv4Address) -> tuple[dict | None, str]:
        """The route table governing traffic that leaves `ip`: its subnet's table, else the VPC's main table."""
        subnet = self.subnet_at(vpc_id, ip)
        if subnet is None:
            return None, f"no subnet of {vpc_id} contains {ip}"
        main = None
        for table in self.route_tables.values():
            if table["VpcId"] != vpc_id:
                continue
            for assoc in table.get("Associations", []):
                if assoc.get("AssociationState", {}).get("State", "associated") != "associated":
                    continue
                if assoc.get("SubnetId") == subnet["SubnetId"]:
                    return table, ""
                if assoc.get("Main"):
                    main = table
        if main is None:
            return None, f"subnet {subnet['SubnetId']} of {vpc_id} has no route table"
        return main, ""

    # -- peerings ----------------------------------------------------------------------------------------------

    def peering_between(self, pcx_id: str | None, a: str, b: str) -> tuple[dict | None, str]:
        """The peering `pcx_id` when it is active and connects VPCs a and b."""
        if not pcx_id:
            return None, "no peering target"
        pcx = self.peerings.get(pcx_id)
        if pcx is None:
            return None, f"peering {pcx_id} is unknown"
        ends = {pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]}
        if ends != {a, b}:
            return None, f"peering {pcx_id} connects {sorted(ends)}, not {sorted({a, b})}"
        status = pcx.get("Status", {}).get("Code")
        if status != "active":
            return None, f"peering {pcx_id} is {status}, not active"
        return pcx, ""

    def vpc_of_address(self, ip: IPv4Address) -> str | None:
        for vpc_id in self.vpcs:
            if self.in_vpc(vpc_id, ip):
                return vpc_id
        return None


def longest_match(table: dict, ip: IPv4Address) -> dict | None:
    """The route a table uses for `ip` (longest matching IPv4 prefix), or None."""
    best, best_len = None, -1
    for route in table.get("Routes", []):
        cidr = route.get("DestinationCidrBlock")
        if not cidr:
            continue
        net = _net(cidr)
        if ip in net and net.prefixlen > best_len:
            best, best_len = route, net.prefixlen
    return best


def _route_text(route: dict | None) -> str:
    if route is None:
        return "no route"
    target = next((route[k] for k in ("VpcPeeringConnectionId", "GatewayId", "NatGatewayId", "TransitGatewayId",
                                      "NetworkInterfaceId", "InstanceId") if route.get(k)), "?")
    return f"route {route['DestinationCidrBlock']} -> {target} ({route.get('State', '?')})"


def route_via_peering(view: Ec2View, vpc_id: str, from_ip: IPv4Address, to_ip: IPv4Address,
                      peer_vpc_id: str | None) -> Verdict:
    """Does traffic from `from_ip` (in vpc_id) to `to_ip` leave through an active peering to peer_vpc_id, or
    through transit gateways that deliver it to peer_vpc_id?

    peer_vpc_id None accepts any active peering whose other end contains to_ip (any VPC holding it, through
    gateways).
    """
    table, why = view.route_table_of(vpc_id, from_ip)
    if table is None:
        return Verdict(False, why)
    route = longest_match(table, to_ip)
    where = f"{table['RouteTableId']} ({vpc_id}) for {to_ip}"
    if route is not None and route.get("TransitGatewayId") and route.get("State", "active") == "active":
        delivered, why = through_gateway(view.gateways, view.vpc_cidrs, vpc_id, route["TransitGatewayId"], to_ip,
                                         peer_vpc_id)
        return Verdict(True) if delivered else Verdict(False, f"{where}: {_route_text(route)}: {why}")
    if route is None or not route.get("VpcPeeringConnectionId"):
        return Verdict(False, f"{where}: {_route_text(route)}, not a peering")
    if route.get("State", "active") != "active":
        return Verdict(False, f"{where}: {_route_text(route)}")
    pcx_id = route["VpcPeeringConnectionId"]
    if peer_vpc_id is None:
        pcx = view.peerings.get(pcx_id)
        if pcx is None:
            return Verdict(False, f"{where}: peering {pcx_id} is unknown")
        ends = {pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]}
        peer_vpc_id = next(iter(ends - {vpc_id}), None)
        if peer_vpc_id is None or not view.in_vpc(peer_vpc_id, to_ip):
            return Verdict(False, f"{where}: peering {pcx_id} does not lead to a VPC containing {to_ip}")
    pcx, why = view.peering_between(pcx_id, vpc_id, peer_vpc_id)
    if pcx is None:
        return Verdict(False, f"{where}: {why}")
    return Verdict(True)


def _protocol_matches(rule_protocol: str, protocol: str) -> bool:
    rule_protocol = str(rule_protocol).lower()
    return rule_protocol in ("-1", "all", protocol, _PROTOCOL_NUMBERS.get(protocol, "?"))


def permission_admits(permission: dict, protocol: str, port: int, peer_ip: IPv4Address,
                      peer_groups: Sequence[str] | None, groups_usable: bool) -> bool:
    """Does one IpPermissions entry admit (protocol, port) from/to peer_ip or a peer group?

    groups_usable: whether a rule naming a group can match across this path (same VPC or same-region peering).
    """
    if not _protocol_matches(permission.get("IpProtocol", ""), protocol):
        return False
    if str(permission.get("IpProtocol")) not in ("-1", "all"):
        first, last = permission.get("FromPort"), permission.get("ToPort")
        if first is not None and first != -1 and not (first <= port <= last):
            return False
    if any(peer_ip in _net(r["CidrIp"]) for r in permission.get("IpRanges", [])):
        return True
    if groups_usable and peer_groups:
        return any(pair.get("GroupId") in peer_groups for pair in permission.get("UserIdGroupPairs", []))
    return False


def groups_admit(view: Ec2View, groups: Sequence[str], direction: str, protocol: str, port: int,
                 peer_ip: IPv4Address, peer_groups: Sequence[str] | None, groups_usable: bool) -> Verdict:
    """Does any of `groups` admit the traffic in `direction` ('ingress' or 'egress')?"""
    key = "IpPermissions" if direction == "ingress" else "IpPermissionsEgress"
    if not groups:
        return Verdict(False, f"no security group to admit {direction}")
    for group_id in groups:
        group = view.security_groups.get(group_id)
        if group is None:
            return Verdict(False, f"security group {group_id} is unknown")
        if any(permission_admits(p, protocol, port, peer_ip, peer_groups, groups_usable) for p in group.get(key, [])):
            return Verdict(True)
    side = "from" if direction == "ingress" else "to"
    return Verdict(False, f"no {direction} rule of {', '.join(groups)} admits {protocol}/{port} {side} {peer_ip}")


def reachable(view: Ec2View, src_ip: str, src_vpc_id: str, dst_ip: str, dst_vpc_id: str, protocol: str,
              port: int, src_groups: Sequence[str] | None, dst_groups: Sequence[str] | None) -> Verdict:
    """Can a connection open from src_ip (sent inside src_vpc_id) to dst_ip:port in dst_vpc_id, and be answered?

    src_groups / dst_groups: the security groups of the sending and the receiving network interface; None when
    that side has no security group (no filtering there). Security groups are stateful, so replies need no rule;
    they do need a route back.
    """
    src, dst = ip_address(src_ip), ip_address(dst_ip)
    protocol = protocol.lower()
    for vpc_id in (src_vpc_id, dst_vpc_id):
        if vpc_id not in view.vpcs:
            return Verdict(False, f"VPC {vpc_id} is unknown")
    if not view.in_vpc(dst_vpc_id, dst):
        return Verdict(False, f"{dst} is outside the CIDRs of {dst_vpc_id}")
    if view.subnet_at(dst_vpc_id, dst) is None:
        return Verdict(False, f"no subnet of {dst_vpc_id} contains {dst}")
    same_region_peering = False
    if src_vpc_id != dst_vpc_id:
        if not view.in_vpc(src_vpc_id, src):
            return Verdict(False, f"{src} is outside the CIDRs of {src_vpc_id}; peering is not transitive")
        there = route_via_peering(view, src_vpc_id, src, dst, dst_vpc_id)
        if not there:
            return Verdict(False, f"no route there: {there.reason}")
        back = route_via_peering(view, dst_vpc_id, dst, src, src_vpc_id)
        if not back:
            return Verdict(False, f"no route back: {back.reason}")
        table, _ = view.route_table_of(src_vpc_id, src)
        pcx = view.peerings.get(longest_match(table, dst).get("VpcPeeringConnectionId") or "")  # type: ignore
        same_region_peering = bool(pcx) and pcx["RequesterVpcInfo"].get("Region") == pcx["AccepterVpcInfo"].get(
            "Region")  # (never through a transit gateway: see above)
    elif not view.in_vpc(dst_vpc_id, src):
        # Forwarded inside the VPC with a foreign source address: the local route delivers, the reply needs a
        # peering route back to the source's own VPC.
        back = route_via_peering(view, dst_vpc_id, dst, src, None)
        if not back:
            return Verdict(False, f"no route back to the preserved source address: {back.reason}")
    groups_usable = src_vpc_id == dst_vpc_id or same_region_peering
    if dst_groups is not None:
        ingress = groups_admit(view, dst_groups, "ingress", protocol, port, src, src_groups, groups_usable)
        if not ingress:
            return ingress
    if src_groups is not None:
        egress = groups_admit(view, src_groups, "egress", protocol, port, dst, dst_groups, groups_usable)
        if not egress:
            return egress
    return Verdict(True)


def groups_at(view: Ec2View, ip: str, vpc_id: str | None = None) -> tuple[str, ...] | None:
    """The security groups of the instance network interface holding private address `ip`, or None."""
    for instance in view.instances.values():
        if instance.get("State", {}).get("Name") in ("terminated", "shutting-down"):
            continue
        for eni in instance.get("NetworkInterfaces", []):
            if vpc_id and eni.get("VpcId", instance.get("VpcId")) != vpc_id:
                continue
            addresses = {a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", [])}
            addresses.add(eni.get("PrivateIpAddress", ""))
            if ip in addresses:
                return tuple(sorted(g["GroupId"] for g in eni.get("Groups", [])))
        if not instance.get("NetworkInterfaces") and instance.get("PrivateIpAddress") == ip:
            return tuple(sorted(g["GroupId"] for g in instance.get("SecurityGroups", [])))
    return None


# ---------------------------------------------------------------------------------------------------------------
# 2. Collecting the answers.
# ---------------------------------------------------------------------------------------------------------------


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(key, []))
    else:
        items.extend(getattr(client, operation)(**kwargs).get(key, []))
    return items


def describe_estate(ec2_clients: Iterable[Any]) -> Ec2View:
    """One Ec2View from EC2 clients covering every (account, region) of the estate."""
    answers: dict[str, list[dict]] = {k: [] for k in ("vpcs", "subnets", "route_tables", "peerings",
                                                      "security_groups", "reservations")}
    calls = {"vpcs": ("describe_vpcs", "Vpcs"), "subnets": ("describe_subnets", "Subnets"),
             "route_tables": ("describe_route_tables", "RouteTables"),
             "peerings": ("describe_vpc_peering_connections", "VpcPeeringConnections"),
             "security_groups": ("describe_security_groups", "SecurityGroups"),
             "reservations": ("describe_instances", "Reservations")}
    regions = []
    for client in ec2_clients:
        for name, (operation, key) in calls.items():
            answers[name].extend(_pages(client, operation, key))
        regions.append(read_gateways(client, _pages))
    view = Ec2View.from_answers(**answers)
    view.gateways = gateway_view(regions)
    return view
