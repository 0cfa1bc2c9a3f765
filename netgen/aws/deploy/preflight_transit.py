"""Preflight, transit gateways: what the inventory declares of each gateway the run's stacks route over (the
plan's transitGateways) is what its owner's account reads in EC2, before any change.

netgen never changes a gateway, but it relies on it: routes in VPC route tables name the gateway, static routes
name its route tables and attachments, and they are written only where the declared propagations do not carry
the traffic already (netgen/transit.py). So, read where only the owner can read them (discover_transit's reader:
DescribeTransitGatewayAttachments, and per route table GetTransitGatewayRouteTableAssociations and
...Propagations), for each declared attachment:
- it exists, is available, and attaches the declared VPC (a VPC of another account, shared through AWS RAM,
  included: the owner sees every attachment to its gateway);
- it is associated with the declared route table (static routes for its traffic go there);
- it propagates to every declared table (where it does not, traffic netgen leaves to propagation has no
  route);
and each declared peering attachment exists, is available and is associated with the declared table on this
side. Each difference is a problem; `netgen discover` writes the declarations from what exists.
"""

from __future__ import annotations

from netgen.aws.deploy.context import Context
from netgen.aws.discover_transit import read_transit_gateways

AVAILABLE = "available"


def check_gateways(ctx: Context, gateways: list[dict], names: set[str], good_accounts: set[str],
                   problems: list[tuple[str, str]]) -> None:
    """Problems (where, what) of the declared gateways that stacks named in names route over."""
    read: dict[tuple[str, str], dict] = {}
    for gateway in gateways:
        place = (gateway["account"], gateway["region"])
        if not names & set(gateway.get("routedBy", [])) or place[0] not in good_accounts:
            continue
        if place not in read:
            read[place] = read_transit_gateways(ctx.clients.ec2(*place), *place)
        problems.extend((f"transit gateway {gateway['name']} ({gateway['transitGatewayId']})", problem)
                        for problem in differences(gateway, read[place]))


def differences(gateway: dict, live: dict) -> list[str]:
    """What differs between a declared gateway (a plan entry) and the raw answers of its owner's region."""
    # (a peering attachment is one id on both sides; which gateway id each side's answer names varies)
    attachments = {a["TransitGatewayAttachmentId"]: a for a in live["attachments"]
                   if a.get("TransitGatewayId") == gateway["transitGatewayId"] or a.get("ResourceType") == "peering"}
    associated = {a.get("TransitGatewayAttachmentId"): table for table, found in live["associations"].items()
                  for a in found if a.get("State", "associated") == "associated"}
    propagating = {(a.get("TransitGatewayAttachmentId"), table) for table, found in live["propagations"].items()
                   for a in found if a.get("State", "enabled") == "enabled"}
    found = []
    declared = [(a["attachmentId"], a["routeTable"], a.get("propagatesTo", []), a["vpc"])
                for a in gateway["attachments"]]
    declared += [(p["attachmentId"], p["routeTable"], [], None) for p in gateway.get("peerings", [])]
    for attachment_id, table, propagates_to, vpc in declared:
        kind = f"attachment {attachment_id}" + (f" (VPC {vpc})" if vpc else " (gateway peering)")
        live_one = attachments.get(attachment_id)
        if live_one is None and vpc is None and attachment_id in associated:  # (moto lists it on one side; an
            # association on this side shows it exists either way)
            live_one = {"State": AVAILABLE}
        if live_one is None or live_one.get("State") != AVAILABLE:
            state = "does not exist" if live_one is None else f"is {live_one.get('State')}, not available"
            found.append(f"{kind} {state}: declare what exists (netgen discover writes it)")
            continue
        if vpc and live_one.get("ResourceId") != vpc:
            found.append(f"{kind} attaches {live_one.get('ResourceId')}, not the declared VPC")
        if associated.get(attachment_id) != table:
            found.append(f"{kind} is associated with {associated.get(attachment_id) or 'no route table'}, not the "
                         f"declared {table}: static routes for its traffic would go to the wrong table")
        for missing in sorted(t for t in propagates_to if (attachment_id, t) not in propagating):
            found.append(f"{kind} does not propagate to {missing} as declared: traffic netgen leaves to that "
                         "propagation would have no route")
    return found
