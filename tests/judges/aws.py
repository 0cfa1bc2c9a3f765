"""An independent judge of netgen's AWS output: deploy it into moto, then decide reachability from EC2 answers.

Three parts, in the order a reader needs them:

1. The evaluator (`Ec2View`, `reachable`, `groups_at`). It reads nothing but boto3 EC2 API answers
   (describe_vpcs, describe_subnets, describe_route_tables, describe_vpc_peering_connections,
   describe_security_groups, describe_instances) and imports nothing from netgen, so it judges what AWS would
   enforce rather than what netgen meant. It is meant to become `netgen verify`.
2. `describe_estate`: collect those answers from any number of (account, region) EC2 clients.
3. The moto harness, used by the tests only: `MotoCloud` (one moto server, many accounts), `seed_estate`
   (create the inventory's VPCs, subnets, route tables, groups and hosts), `rewrite_spec_ids` (point a copy of
   the specs at moto's ids) and `deploy` (run the deploy plan through CloudFormation).

What the evaluator models (and what it does not):
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
- Not modelled: network ACLs (the defaults allow everything), prefix-list rules, IPv6, transit gateways,
  middlebox routes more specific than the local route, and the Kubernetes layer (NetworkPolicies are judged
  by tests/judges/nca.py).

moto gaps found while building the harness (moto 5.2; see `deploy` for how each is handled):
- CloudFormation's AWS::EC2::VPCPeeringConnection looks PeerVpcId up in the stack's own account and region and
  ignores PeerRegion and PeerOwnerId: CreateStack fails with InvalidVpcID.NotFound for every cross-region or
  cross-account peering. The EC2 API (CreateVpcPeeringConnection) does honour both.
- CloudFormation never auto-accepts a peering, even inside one account and region: it stays
  pending-acceptance. The deploy plan already says to accept pending peerings through the EC2 API.
- CloudFormation has no model for AWS::EC2::SecurityGroupEgress: the resource is skipped with a warning, the
  stack still reaches CREATE_COMPLETE and no egress rule exists.
- PeerRoleArn is ignored (moto has no cross-account authorisation); acceptance is done as the accepter account.
- Per the project's design notes (not re-checked here): moto drops descriptions of inline security-group rules
  (netgen emits standalone rules, whose descriptions moto keeps), and delete_stack leaves peerings and routes
  behind (the tests reset moto through /moto-api/reset instead of deleting stacks).
"""

from __future__ import annotations

import copy
import json
import shutil
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

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
    """Does traffic from `from_ip` (in vpc_id) to `to_ip` leave through an active peering to peer_vpc_id?

    peer_vpc_id None accepts any active peering whose other end contains to_ip.
    """
    table, why = view.route_table_of(vpc_id, from_ip)
    if table is None:
        return Verdict(False, why)
    route = longest_match(table, to_ip)
    where = f"{table['RouteTableId']} ({vpc_id}) for {to_ip}"
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
        pcx_id = longest_match(table, dst)["VpcPeeringConnectionId"]  # type: ignore[arg-type,index]
        pcx = view.peerings[pcx_id]
        same_region_peering = pcx["RequesterVpcInfo"].get("Region") == pcx["AccepterVpcInfo"].get("Region")
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


def _pages(client: Any, operation: str, key: str) -> list[dict]:
    items: list[dict] = []
    if client.can_paginate(operation):
        for page in client.get_paginator(operation).paginate():
            items.extend(page.get(key, []))
    else:
        items.extend(getattr(client, operation)().get(key, []))
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
    for client in ec2_clients:
        for name, (operation, key) in calls.items():
            answers[name].extend(_pages(client, operation, key))
    return Ec2View.from_answers(**answers)


# ---------------------------------------------------------------------------------------------------------------
# 3. The moto harness (tests only).
# ---------------------------------------------------------------------------------------------------------------


class MotoCloud:
    """boto3 clients for one moto server, in any account.

    Multi-account in server mode: moto takes the account of a request from the `x-moto-account-id` header (when
    the MOTO_ACCOUNT_ID environment variable is unset), so each client sends its account's id. The accounts are
    therefore really separate: a VPC of one account is invisible to describe calls of the other.
    """

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str, str], Any] = {}

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200, answer.status
        self._clients.clear()

    def client(self, service: str, account: str, region: str) -> Any:
        key = (service, account, region)
        if key not in self._clients:
            import boto3

            client = boto3.session.Session().client(
                service, region_name=region, endpoint_url=self.endpoint_url, aws_access_key_id="testing",
                aws_secret_access_key="testing", aws_session_token="testing")

            def as_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account

            client.meta.events.register("before-sign.*.*", as_account)
            self._clients[key] = client
        return self._clients[key]

    def ec2(self, account: str, region: str) -> Any:
        return self.client("ec2", account, region)

    def view(self, places: Iterable[tuple[str, str]]) -> Ec2View:
        """An Ec2View of the given (account, region) places."""
        return describe_estate(self.ec2(a, r) for a, r in sorted(set(places)))


@dataclass
class SeededVpc:
    name: str
    account: str
    region: str
    vpc_id: str
    route_tables: dict[str, str]  # inventory id -> moto id, in the inventory's order
    subnets: dict[IPv4Network, tuple[str, str]]  # CIDR -> (subnet id, moto route table id)


@dataclass
class Seeded:
    """What seed_estate created, by inventory name, and the inventory-id -> moto-id substitutions."""

    vpcs: dict[str, SeededVpc]
    groups: dict[str, str]  # group name -> moto id
    hosts: dict[str, str]  # host name -> instance id
    substitutions: dict[str, str]  # inventory id -> moto id (VPCs, groups, route tables)

    @property
    def places(self) -> list[tuple[str, str]]:
        return sorted({(v.account, v.region) for v in self.vpcs.values()})

    def route_table_for(self, vpc_name: str, ip: IPv4Address) -> str:
        """The moto route table the seeded subnet holding ip is associated with."""
        for cidr, (_, table) in self.vpcs[vpc_name].subnets.items():
            if ip in cidr:
                return table
        raise KeyError(f"{ip} is in no seeded subnet of {vpc_name}")


def subnet_cidrs(estate: Any, vpc: Any) -> list[IPv4Network]:
    """Subnets the estate implies for a VPC: node, pod and load-balancer subnets, and a /24 around each host."""
    explicit: set[IPv4Network] = set()
    for cluster in estate.clusters:
        if cluster.vpc.name == vpc.name:
            explicit.update(cluster.node_cidrs)
            explicit.update(cluster.pod_cidrs)
    for service in estate.services:
        if service.cluster.vpc.name == vpc.name:
            explicit.update(service.exposure.subnet_cidrs)
    chosen = sorted(explicit)
    for host in sorted(estate.hosts, key=lambda h: h.address):
        if host.vpc.name != vpc.name or any(host.address in net for net in chosen):
            continue
        around = IPv4Network(f"{host.address}/24", strict=False)
        if any(around.overlaps(net) for net in chosen):
            around = IPv4Network(f"{host.address}/28", strict=False)
        chosen.append(around)
    return sorted(chosen)


def seed_estate(cloud: MotoCloud, estate: Any) -> Seeded:
    """Create the estate's inventory in moto: VPCs with all their CIDRs, the listed route tables, subnets (each
    explicitly associated with one listed table, round-robin, so that every table governs some subnet),
    security groups (restrictsEgress ones lose the default allow-all egress rule) and one instance per legacy
    host at its address, in its group. `estate` is netgen's validated Estate (inventory facts only)."""
    seeded = Seeded({}, {}, {}, {})
    for vpc in estate.vpcs:
        ec2 = cloud.ec2(vpc.account.account_id, vpc.region)
        cidrs = [str(c) for c in vpc.cidrs]
        vpc_id = ec2.create_vpc(CidrBlock=cidrs[0])["Vpc"]["VpcId"]
        for extra in cidrs[1:]:
            ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=extra)
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": vpc.name}])
        tables = {old: ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
                  for old in vpc.route_tables}
        subnets: dict[IPv4Network, tuple[str, str]] = {}
        table_ids = list(tables.values())
        for i, cidr in enumerate(subnet_cidrs(estate, vpc)):
            subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=str(cidr))["Subnet"]["SubnetId"]
            table = table_ids[i % len(table_ids)]
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
            subnets[cidr] = (subnet_id, table)
        seeded.vpcs[vpc.name] = SeededVpc(vpc.name, vpc.account.account_id, vpc.region, vpc_id, tables, subnets)
        seeded.substitutions[vpc.vpc_id] = vpc_id
        seeded.substitutions.update(tables)
    for group in estate.security_groups:
        vpc = seeded.vpcs[group.vpc.name]
        ec2 = cloud.ec2(vpc.account, vpc.region)
        group_id = ec2.create_security_group(GroupName=group.name, Description=f"inventory group {group.name}",
                                             VpcId=vpc.vpc_id)["GroupId"]
        if group.restricts_egress:
            ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        seeded.groups[group.name] = group_id
        seeded.substitutions[group.group_id] = group_id
    for host in estate.hosts:
        vpc = seeded.vpcs[host.vpc.name]
        subnet_id = next(s for cidr, (s, _) in vpc.subnets.items() if host.address in cidr)
        answer = cloud.ec2(vpc.account, vpc.region).run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet_id,
            PrivateIpAddress=str(host.address), SecurityGroupIds=[seeded.groups[host.security_group.name]],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": host.name}]}])
        seeded.hosts[host.name] = answer["Instances"][0]["InstanceId"]
    return seeded


def rewrite_spec_ids(source: Path, target: Path, substitutions: Mapping[str, str]) -> Path:
    """Copy a spec folder, replacing every inventory id (vpcId, groupId, routeTables) by moto's id."""
    shutil.copytree(source, target)
    for path in sorted(target.rglob("*.y*ml")):
        text = path.read_text("utf-8")
        for old, new in substitutions.items():
            text = text.replace(old, new)
        path.write_text(text, "utf-8")
    return target


def _replace_refs(node: Any, ids: Mapping[str, str]) -> Any:
    """Replace {"Ref": logical} by the physical id for the logical ids in `ids`."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in ids:
            return ids[node["Ref"]]
        return {k: _replace_refs(v, ids) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, ids) for v in node]
    return node


@dataclass
class Deployment:
    stacks: list[str] = field(default_factory=list)  # stack names, in the order they were created
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> output -> value
    peerings: dict[str, str] = field(default_factory=dict)  # peering logical id -> pcx id
    peerings_created_outside_cloudformation: list[str] = field(default_factory=list)
    egress_rules_applied_outside_cloudformation: int = 0
    workarounds: dict[str, list[str]] = field(default_factory=dict)  # stack -> logical ids moved out of its template


def deploy(cloud: MotoCloud, out_dir: Path, mutate_template: Callable[[str, dict], None] | None = None,
           mutate_plan: Callable[[dict], None] | None = None) -> Deployment:
    """Deploy `netgen build` output (out_dir/aws) into moto the way a deploy command would: the stacks in the
    plan's order, each with the parameters the plan takes from earlier stacks' outputs, then every peering the
    stack requests made active (pending ones accepted in the accepter account and region through EC2).

    mutate_template(stack name, template) and mutate_plan(plan) may alter the compiled output first (mutation
    tests). Two moto workarounds, both applied to the already-mutated template and both visible in the result:

    - A peering whose accepter is in another region or account cannot be created by moto's CloudFormation
      (PeerRegion and PeerOwnerId are ignored). It is created through CreateVpcPeeringConnection in the
      stack's account and region with the template's own properties (VpcId, PeerVpcId, PeerRegion,
      PeerOwnerId), removed from the template, and every Ref to it (routes, outputs) replaced by its id. Real
      CloudFormation creates it from the template; only the creation step moves, the id flows the same way.
    - AWS::EC2::SecurityGroupEgress resources, which moto's CloudFormation silently skips, are removed from the
      template and applied with AuthorizeSecurityGroupEgress (same group, protocol, ports, CIDR, description)
      once the stack is CREATE_COMPLETE.

    The plan is read generically: any number of stacks, in its order. netgen emits a network stack (peerings,
    routes) and one stack per security group (its rules) per account and region, so the peering workaround
    applies to network stacks and the egress one to group stacks; `Deployment.workarounds` records which stack
    each moved resource came from. A template left with no resource (a group stack holding only egress rules)
    is deployed with a placeholder resource, as CloudFormation needs at least one.
    """
    aws = out_dir / "aws"
    plan = json.loads((aws / "deploy-plan.json").read_text("utf-8"))
    if mutate_plan:
        mutate_plan(plan)
    result = Deployment()
    for stack in plan["stacks"]:
        name, account, region = stack["stack"], stack["account"], stack["region"]
        template = json.loads((out_dir / stack["template"]).read_text("utf-8"))
        if mutate_template:
            mutate_template(name, template)
        template = copy.deepcopy(template)
        ec2 = cloud.ec2(account, region)
        parameters = {key: result.outputs[src["stack"]][src["output"]] for key, src in stack["parameters"].items()}
        resources = template["Resources"]
        direct: dict[str, str] = {}
        for logical, resource in list(resources.items()):
            if resource["Type"] != "AWS::EC2::VPCPeeringConnection":
                continue
            props = resource["Properties"]
            peer_region, peer_owner = props.get("PeerRegion", region), props.get("PeerOwnerId", account)
            if peer_region == region and peer_owner == account:
                continue
            request = {"VpcId": props["VpcId"], "PeerVpcId": props["PeerVpcId"], "PeerRegion": peer_region,
                       "PeerOwnerId": peer_owner}
            pcx = ec2.create_vpc_peering_connection(**request)["VpcPeeringConnection"]
            direct[logical] = pcx["VpcPeeringConnectionId"]
            result.peerings_created_outside_cloudformation.append(logical)
            result.workarounds.setdefault(name, []).append(logical)
            del resources[logical]
        template = _replace_refs(template, direct)
        egress = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroupEgress"}
        for logical in egress:
            del template["Resources"][logical]
            result.workarounds.setdefault(name, []).append(logical)
        if not template["Resources"]:
            template["Resources"] = {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
        cfn = cloud.client("cloudformation", account, region)
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())])
        described = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE", (name, described["StackStatus"])
        result.stacks.append(name)
        result.outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        for resource in egress.values():
            props = _replace_refs(resource["Properties"], parameters)
            ec2.authorize_security_group_egress(GroupId=props["GroupId"], IpPermissions=[{
                "IpProtocol": props["IpProtocol"], "FromPort": props["FromPort"], "ToPort": props["ToPort"],
                "IpRanges": [{"CidrIp": props["CidrIp"], "Description": props.get("Description", "")}]}])
            result.egress_rules_applied_outside_cloudformation += 1
        for request in stack["peerings"]:
            logical = request["peering"]
            pcx_id = direct.get(logical) or cfn.describe_stack_resource(
                StackName=name, LogicalResourceId=logical)["StackResourceDetail"]["PhysicalResourceId"]
            result.peerings[logical] = pcx_id
            accepter = cloud.ec2(request["accepterAccount"], request["accepterRegion"])
            status = accepter.describe_vpc_peering_connections(
                VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"][0]["Status"]["Code"]
            if status == "pending-acceptance":
                accepter.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    return result
