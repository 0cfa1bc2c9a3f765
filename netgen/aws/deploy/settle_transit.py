"""Settle, transit gateways: the static routes a network stack writes in transit gateway route tables
(AWS::EC2::TransitGatewayRoute, in the gateway owner's account and region) checked against EC2 after the stack.

Every static route of the template must exist (SearchTransitGatewayRoutes, exact match) and point at the
template's attachment; one the previous template had and this one does not must be gone. Changes are made
through the EC2 API and reported as repairs: on AWS this normally finds nothing; on moto it does the work, as
moto's CloudFormation skips AWS::EC2::TransitGatewayRoute. A route whose attachment EC2 does not report (moto's
server without netgen.bench.moto_transit's fix) is taken as it is. Propagated routes are the gateway's and
never touched.
"""

from __future__ import annotations

from typing import Any

from netgen.aws.deploy.context import Context
from netgen.aws.generated import GatewayRouteSpec, StackPlan


def live_gateway_routes(ec2: Any, table: str, cidrs: list[str]) -> dict[str, dict]:
    """{destination: static route} of a gateway route table, for the given destinations."""
    answer = ec2.search_transit_gateway_routes(TransitGatewayRouteTableId=table, Filters=[
        {"Name": "type", "Values": ["static"]}, {"Name": "route-search.exact-match", "Values": cidrs}])
    return {r["DestinationCidrBlock"]: r for r in answer.get("Routes", []) if r.get("DestinationCidrBlock")}


def _attachment(route: dict) -> str | None:
    attached = route.get("TransitGatewayAttachments") or []
    return attached[0].get("TransitGatewayAttachmentId") if attached else None


def settle_gateway_routes(ctx: Context, stack: StackPlan, wanted: list[GatewayRouteSpec],
                          previous: list[GatewayRouteSpec]) -> None:
    if not wanted and not previous:
        return
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    wanted_keys = {(r.table, r.cidr) for r in wanted}
    tables: dict[str, list[str]] = {}
    for route in [*wanted, *previous]:
        tables.setdefault(route.table, []).append(route.cidr)
    live = {(table, cidr): route for table, cidrs in sorted(tables.items())
            for cidr, route in live_gateway_routes(ec2, table, sorted(set(cidrs))).items()}
    for route in previous:
        if (route.table, route.cidr) not in wanted_keys and (route.table, route.cidr) in live:
            ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr)
            ctx.repair(stack.name, f"deleted transit gateway route {route.table} {route.cidr}: no longer in the "
                                   "template, but still in EC2")
    for route in wanted:
        have = live.get((route.table, route.cidr))
        if have is not None and _attachment(have) in (route.attachment, None):
            continue
        if have is not None:  # (to another attachment: moto has no ReplaceTransitGatewayRoute)
            ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr)
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr,
                                         TransitGatewayAttachmentId=route.attachment)
        was = f" (was {_attachment(have)})" if have is not None else ": in the template, missing in EC2"
        ctx.repair(stack.name, f"created transit gateway route {route.table} {route.cidr} -> {route.attachment}"
                               f"{was}")
