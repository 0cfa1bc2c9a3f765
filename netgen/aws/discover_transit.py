"""`netgen discover`, transit gateways: the gateways an account owns in a region, with their route tables, VPC
attachments (the table each is associated with, the tables it propagates to) and peering attachments.

- TransitGateway per gateway the account owns (DescribeTransitGateways, owner-id), name from its Name tag: its
  route tables (DescribeTransitGatewayRouteTables), its available VPC attachments (DescribeTransitGatewayAttachments)
  to VPCs of the inventory (this run's, or another file's under <out>) with their association and propagations
  (GetTransitGatewayRouteTableAssociations and ...Propagations, per table: moto answers these right where its
  DescribeTransitGatewayAttachments does not). An attachment to a VPC in no inventory file is listed in a
  comment;
- TransitGatewayPeering per available peering attachment between two gateways of the inventory, with the route
  table it is associated with on each side (read in each gateway's region: the association is per side);
- a comment for each VPC of this account attached to a gateway another account owns (shared through AWS RAM):
  only the owner can read its route tables, so discover that account too.

Only the gateway's owner can read its route tables, associations and propagations (see netgen.transit).
"""

from __future__ import annotations

from typing import Any

from netgen.aws.discover import Names, _doc, _named, _pages, _tags


def read_transit_gateways(ec2: Any, account_id: str, region: str) -> dict[str, Any]:
    """The raw answers of one region: gateways owned by account_id, their route tables, attachments (VPC and
    peering; this account's VPCs' attachments to others' gateways too), and per table its associations and
    propagations."""
    gateways = [g for g in _pages(ec2, "describe_transit_gateways", "TransitGateways")
                if g.get("OwnerId", account_id) == account_id and g.get("State") == "available"]
    tables = _pages(ec2, "describe_transit_gateway_route_tables", "TransitGatewayRouteTables")
    attachments = _pages(ec2, "describe_transit_gateway_attachments", "TransitGatewayAttachments")
    tables = [t for t in tables if t.get("State", "available") == "available"]
    propagations = {t["TransitGatewayRouteTableId"]: _pages(
        ec2, "get_transit_gateway_route_table_propagations", "TransitGatewayRouteTablePropagations",
        TransitGatewayRouteTableId=t["TransitGatewayRouteTableId"]) for t in tables}
    associations = {t["TransitGatewayRouteTableId"]: _pages(
        ec2, "get_transit_gateway_route_table_associations", "Associations",
        TransitGatewayRouteTableId=t["TransitGatewayRouteTableId"]) for t in tables}
    return {"region": region, "gateways": gateways, "tables": tables, "attachments": attachments,
            "propagations": propagations, "associations": associations}


def transit_docs(raw: list[dict[str, Any]], account: str, account_id: str, discovered: dict[str, str],
                 others: list[dict]) -> tuple[dict[str, list[dict]], list[dict], list[str]]:
    """({region: TransitGateway documents}, TransitGatewayPeering documents, comment lines) from the answers of
    read_transit_gateways in each region read. discovered: VPC id -> name of this run; others: the documents of
    the other files under <out>."""
    known_vpcs = {str(spec.get("vpcId")): name for name, spec in _named(others, "Vpc")}
    known_vpcs.update(discovered)
    known_gateways = {str(spec.get("transitGatewayId")): name for name, spec in _named(others, "TransitGateway")}
    declared_peerings = {str(spec.get("attachmentId")) for _, spec in _named(others, "TransitGatewayPeering")}
    names = Names(known_gateways.values())
    per_region: dict[str, list[dict]] = {}
    notes: list[str] = []
    association: dict[tuple[str, str], str] = {}  # (attachment id, gateway id) -> route table it is associated with
    peerings: dict[str, dict] = {}
    for answers in raw:
        gateway_of = {t["TransitGatewayRouteTableId"]: t["TransitGatewayId"] for t in answers["tables"]}
        for table, found in answers["associations"].items():
            for entry in found:
                if entry.get("State", "associated") == "associated":
                    association[(entry["TransitGatewayAttachmentId"], gateway_of[table])] = table
        for attachment in answers["attachments"]:
            if attachment.get("ResourceType") == "peering" and attachment.get("State") == "available":
                peerings.setdefault(attachment["TransitGatewayAttachmentId"], attachment)
            owner = attachment.get("TransitGatewayOwnerId", account_id)
            if (attachment.get("ResourceType") == "vpc" and owner != account_id
                    and attachment.get("ResourceId") in discovered):
                notes.append(f"# {discovered[attachment['ResourceId']]} is attached "
                             f"({attachment['TransitGatewayAttachmentId']}) to {attachment['TransitGatewayId']} of "
                             f"account {owner}: discover that account to declare the gateway.\n")
    ours: dict[str, str] = {}  # gateway id -> name, this run
    for answers in raw:
        region = answers["region"]
        docs = per_region.setdefault(region, [])
        for gateway in sorted(answers["gateways"], key=lambda g: g["TransitGatewayId"]):
            gateway_id = gateway["TransitGatewayId"]
            if gateway_id in known_gateways:
                continue
            name = names.take(_tags(gateway).get("Name", gateway_id), gateway_id)
            ours[gateway_id] = name
            tables = sorted(t["TransitGatewayRouteTableId"] for t in answers["tables"]
                            if t["TransitGatewayId"] == gateway_id and t.get("State", "available") == "available")
            entries = []
            for attachment in sorted(answers["attachments"], key=lambda a: a["TransitGatewayAttachmentId"]):
                attachment_id = attachment["TransitGatewayAttachmentId"]
                if (attachment["TransitGatewayId"] != gateway_id or attachment.get("ResourceType") != "vpc"
                        or attachment.get("State") != "available"):
                    continue
                vpc_id = attachment["ResourceId"]
                if vpc_id not in known_vpcs:
                    notes.append(f"# {attachment_id} attaches {vpc_id} (account "
                                 f"{attachment.get('ResourceOwnerId', '?')}) to {name}, but that VPC is in no "
                                 "inventory file here: declare the attachment once it is.\n")
                    continue
                if (attachment_id, gateway_id) not in association:
                    notes.append(f"# {attachment_id} attaches {known_vpcs[vpc_id]} to {name} but is associated with "
                                 "no route table: nothing is routed from it, so it is left out.\n")
                    continue
                entry: dict[str, Any] = {"vpc": known_vpcs[vpc_id], "attachmentId": attachment_id,
                                         "routeTable": association[(attachment_id, gateway_id)]}
                propagates = sorted(table for table in tables for p in answers["propagations"].get(table, [])
                                    if p.get("TransitGatewayAttachmentId") == attachment_id
                                    and p.get("State", "enabled") == "enabled")
                if propagates:
                    entry["propagatesTo"] = propagates
                entries.append(entry)
            if tables:
                docs.append(_doc("TransitGateway", name, {"account": account, "region": region,
                                                          "transitGatewayId": gateway_id, "routeTables": tables,
                                                          "attachments": entries}))
    all_gateways = {**known_gateways, **ours}
    peering_names = Names(name for name, _ in _named(others, "TransitGatewayPeering"))
    peering_docs = []
    for attachment_id, attachment in sorted(peerings.items()):
        if attachment_id in declared_peerings:
            continue
        ends = (attachment["TransitGatewayId"], attachment["ResourceId"])  # this side's gateway, then the peer's
        if not all(end in all_gateways for end in ends) or not any(end in ours for end in ends):
            continue
        sides = [{"transitGateway": all_gateways[end],
                  "routeTable": association.get((attachment_id, end), "")} for end in ends]
        if not all(side["routeTable"] for side in sides):
            notes.append(f"# {attachment_id} peers {ends[0]} and {ends[1]}, but its route table on one side was "
                         "not read: discover the other region (or account) too.\n")
            continue
        name = peering_names.take(_tags(attachment).get("Name") or f"{sides[0]['transitGateway']}-"
                                                                   f"{sides[1]['transitGateway']}", attachment_id)
        peering_docs.append(_doc("TransitGatewayPeering", name, {"attachmentId": attachment_id,
                                                                 "requester": sides[0], "accepter": sides[1]}))
    return per_region, peering_docs, notes
