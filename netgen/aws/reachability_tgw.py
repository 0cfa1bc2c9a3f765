"""The reachability evaluator, transit gateways: where a packet a VPC route table sends to a transit gateway goes.

Like netgen/aws/reachability.py (which calls it), it reads nothing but boto3 EC2 answers and imports nothing from
netgen's model. What it models, as AWS documents it (sources in netgen/transit.py):

- the VPC attachment of the sending VPC to that gateway (available) is where the packet enters; the gateway
  route table that attachment is associated with decides the next hop: the longest matching prefix among its
  static routes (SearchTransitGatewayRoutes, type static) and its propagated ones; for the same prefix a static
  route wins;
- a propagated route is each IPv4 CIDR of the VPC of an attachment propagating to the table
  (GetTransitGatewayRouteTablePropagations, enabled), unless another attachment propagating there has an
  overlapping CIDR: AWS does not propagate it reliably, so neither counts. Propagated routes that
  SearchTransitGatewayRoutes reports (AWS does; moto does not) are read as well;
- the next hop is a VPC attachment (delivered to that VPC, which must hold the destination) or a peering
  attachment (available): on the peer gateway the packet is routed by the table that gateway associates the
  peering attachment with, and so on (at most 4 gateways: a loop is dropped). A blackhole route drops it.
- Associations are read per route table (GetTransitGatewayRouteTableAssociations), which both AWS and moto
  answer per side of a peering attachment. Gateways are read in the regions given; only the owner account
  sees a gateway's route tables.

Not modelled: appliance mode, Connect/VPN/Direct Connect attachments, prefix-list routes, the attachment's
subnets per Availability Zone (a VPC route to a gateway is taken to reach its attachment from any subnet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

MAX_GATEWAYS = 4  # gateways a packet may cross before the evaluator calls it a loop


@lru_cache(maxsize=4096)
def _net(cidr: str) -> IPv4Network:
    return ip_network(cidr)  # type: ignore[return-value]


@dataclass
class GatewayView:
    """Transit gateway answers of every account and region read, indexed."""

    gateways: dict[str, dict] = field(default_factory=dict)  # id -> DescribeTransitGateways entry
    tables: dict[str, dict] = field(default_factory=dict)  # route table id -> entry (TransitGatewayId)
    attachments: dict[tuple[str, str], dict] = field(default_factory=dict)  # (attachment id, gateway id) -> entry
    associated: dict[tuple[str, str], str] = field(default_factory=dict)  # (attachment, gateway) -> route table
    propagations: dict[str, list[str]] = field(default_factory=dict)  # route table -> attachment ids propagating
    routes: dict[str, list[dict]] = field(default_factory=dict)  # route table -> SearchTransitGatewayRoutes answer

    def add_region(self, answers: dict[str, Any]) -> None:
        for gateway in answers["gateways"]:
            self.gateways.setdefault(gateway["TransitGatewayId"], gateway)
        for table in answers["tables"]:
            self.tables.setdefault(table["TransitGatewayRouteTableId"], table)
        for attachment in answers["attachments"]:
            self.attachments.setdefault((attachment["TransitGatewayAttachmentId"], attachment["TransitGatewayId"]),
                                        attachment)
            if attachment.get("ResourceType") == "peering":  # seen from the peer gateway too
                self.attachments.setdefault((attachment["TransitGatewayAttachmentId"], attachment["ResourceId"]),
                                            attachment)
        for table_id, associations in answers["associations"].items():
            gateway = self.tables[table_id]["TransitGatewayId"]
            for association in associations:
                if association.get("State", "associated") == "associated":
                    self.associated[(association["TransitGatewayAttachmentId"], gateway)] = table_id
        for table_id, propagations in answers["propagations"].items():
            self.propagations[table_id] = [p["TransitGatewayAttachmentId"] for p in propagations
                                           if p.get("State", "enabled") == "enabled"]
        self.routes.update(answers["routes"])

    def vpc_attachment(self, gateway_id: str, vpc_id: str) -> dict | None:
        for (_, gateway), attachment in self.attachments.items():
            if (gateway == gateway_id and attachment.get("ResourceType") == "vpc"
                    and attachment.get("ResourceId") == vpc_id and attachment.get("State") == "available"):
                return attachment
        return None

    def table_routes(self, table_id: str, vpc_cidrs) -> list[tuple[IPv4Network, bool, str | None, str]]:
        """(prefix, static, attachment id or None for a blackhole, state) of a gateway route table."""
        found: list[tuple[IPv4Network, bool, str | None, str]] = []
        for route in self.routes.get(table_id, []):
            if not route.get("DestinationCidrBlock"):
                continue
            attached = route.get("TransitGatewayAttachments") or []
            target = attached[0]["TransitGatewayAttachmentId"] if attached else None
            found.append((_net(route["DestinationCidrBlock"]), route.get("Type") == "static", target,
                          route.get("State", "active")))
        reported = {target for _, static, target, _ in found if not static}
        gateway = self.tables.get(table_id, {}).get("TransitGatewayId", "")
        candidates = []
        for attachment_id in self.propagations.get(table_id, []):
            attachment = self.attachments.get((attachment_id, gateway))
            if attachment is None or attachment.get("ResourceType") != "vpc" or attachment_id in reported:
                continue
            candidates += [(cidr, attachment_id) for cidr in vpc_cidrs(attachment["ResourceId"])]
        for cidr, owner in candidates:  # overlapping CIDRs are not propagated
            if not any(other != owner and cidr.overlaps(net) for net, other in candidates):
                found.append((cidr, False, owner, "active"))
        return found


def read_gateways(client: Any, pages) -> dict[str, Any]:
    """One region's transit gateway answers (gateways, route tables, attachments, and per route table its
    associations, propagations and routes). pages(client, operation, key, **kwargs) lists a paginated call."""
    gateways = pages(client, "describe_transit_gateways", "TransitGateways")
    tables = [t for t in pages(client, "describe_transit_gateway_route_tables", "TransitGatewayRouteTables")
              if t.get("State", "available") == "available"]
    answers: dict[str, Any] = {"gateways": gateways, "tables": tables, "associations": {}, "propagations": {},
                               "routes": {},
                               "attachments": pages(client, "describe_transit_gateway_attachments",
                                                    "TransitGatewayAttachments")}
    for table in tables:
        table_id = table["TransitGatewayRouteTableId"]
        answers["associations"][table_id] = pages(client, "get_transit_gateway_route_table_associations",
                                                  "Associations", TransitGatewayRouteTableId=table_id)
        answers["propagations"][table_id] = pages(client, "get_transit_gateway_route_table_propagations",
                                                  "TransitGatewayRouteTablePropagations",
                                                  TransitGatewayRouteTableId=table_id)
        answers["routes"][table_id] = client.search_transit_gateway_routes(
            TransitGatewayRouteTableId=table_id,
            Filters=[{"Name": "state", "Values": ["active", "blackhole"]}]).get("Routes", [])
    return answers


def gateway_view(regions: Iterable[dict[str, Any]]) -> GatewayView:
    view = GatewayView()
    for answers in regions:
        view.add_region(answers)
    return view


def through_gateway(gateways: GatewayView, vpc_cidrs, vpc_id: str, gateway_id: str, to_ip: IPv4Address,
                    peer_vpc_id: str | None) -> tuple[str | None, str]:
    """Where a packet for to_ip that a route table of vpc_id sends to gateway_id is delivered: (VPC id, '') or
    (None, why not). peer_vpc_id None accepts any VPC that holds to_ip."""
    if gateway_id not in gateways.gateways:
        return None, f"transit gateway {gateway_id} is unknown (not read, or another account's)"
    attachment = gateways.vpc_attachment(gateway_id, vpc_id)
    if attachment is None:
        return None, f"{vpc_id} has no available attachment to {gateway_id}"
    gateway, via = gateway_id, attachment["TransitGatewayAttachmentId"]
    for _ in range(MAX_GATEWAYS):
        table = gateways.associated.get((via, gateway))
        if table is None:
            return None, f"attachment {via} is associated with no route table of {gateway}"
        matching = [r for r in gateways.table_routes(table, vpc_cidrs) if to_ip in r[0]]
        if not matching:
            return None, f"{gateway} route table {table} has no route for {to_ip}"
        prefix, _, target, state = max(matching, key=lambda r: (r[0].prefixlen, r[1]))  # longest; static first
        where = f"{gateway} route table {table}: {prefix}"
        if state != "active" or target is None:
            return None, f"{where} is a blackhole"
        found = gateways.attachments.get((target, gateway))
        if found is None or found.get("State") != "available":
            return None, f"{where} -> {target}, which is not an available attachment of {gateway}"
        if found.get("ResourceType") == "vpc":
            delivered = found["ResourceId"]
            if (peer_vpc_id is not None and delivered != peer_vpc_id) or not any(
                    to_ip in net for net in vpc_cidrs(delivered)):
                return None, f"{where} -> {target} delivers to {delivered}, not to the VPC holding {to_ip}"
            return delivered, ""
        if found.get("ResourceType") != "peering":
            return None, f"{where} -> {target}, a {found.get('ResourceType')} attachment"
        ends = {found["TransitGatewayId"], found["ResourceId"]}
        gateway, via = next(iter(ends - {gateway})), target
    return None, f"more than {MAX_GATEWAYS} transit gateways on the way: a loop"
