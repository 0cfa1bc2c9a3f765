"""`netgen drift`, transit gateways: the static routes generated/ writes in transit gateway route tables
(AWS::EC2::TransitGatewayRoute) compared with the live ones, in the gateway owner's account and region.

A generated static route that is not live is `missing`; one that goes to another attachment, or is a blackhole,
is `changed`; one that matches is counted as managed. Static routes netgen did not generate, and propagated
routes, are the gateway owner's: not listed. (Routes in VPC route tables to a gateway are drift.py's, like
peering routes.)
"""

from __future__ import annotations

from typing import Any

from netgen.aws.coverage import MANAGED
from netgen.aws.generated import StackPlan, gateway_routes_of
from netgen.aws.session import Clients


def gateway_route_drift(stacks: list[StackPlan], clients: Clients, counts: dict[str, int], drift: Any) -> list:
    """Drift entries (drift: the Drift class) for the stacks' static gateway routes; counts (the report's
    route counts) gets the managed ones."""
    found = []
    for stack in stacks:
        wanted = gateway_routes_of(stack.template)
        if not wanted:
            continue
        ec2 = clients.ec2(stack.account, stack.region)
        for table in sorted({r.table for r in wanted}):
            cidrs = sorted(r.cidr for r in wanted if r.table == table)
            live = {r["DestinationCidrBlock"]: r for r in ec2.search_transit_gateway_routes(
                TransitGatewayRouteTableId=table, Filters=[{"Name": "type", "Values": ["static"]},
                                                           {"Name": "route-search.exact-match", "Values": cidrs}]
            ).get("Routes", []) if r.get("DestinationCidrBlock")}
            for route in (r for r in wanted if r.table == table):
                have = live.get(route.cidr)
                where = f"transit gateway route table {table}"
                if have is None:
                    found.append(drift("route", "missing", where, f"{route.cidr} -> {route.attachment}"))
                    continue
                attached = [a.get("TransitGatewayAttachmentId") for a in have.get("TransitGatewayAttachments") or []]
                if have.get("State") == "blackhole" or (attached and attached != [route.attachment]):
                    found.append(drift("route", "changed", where, f"{route.cidr} -> {', '.join(attached) or '?'} "
                                                                  f"({have.get('State', '?')}), generated: "
                                                                  f"{route.attachment}"))
                else:
                    counts[MANAGED] += 1
    return found
