"""Settle, transit gateways: the static routes a network stack writes in transit gateway route tables
(AWS::EC2::TransitGatewayRoute, in the gateway owner's account and region) checked against EC2.

- After a stack (settle.py): every static route of the template must exist (SearchTransitGatewayRoutes, exact
  match) and point at the template's attachment; one the previous template had and this one does not must be
  gone.
- After a stack no plan wants is deleted (cleanup.py, through settle.settle_removed): its static routes that
  no template of the plan wants must be gone.

Changes are made through the EC2 API and reported as repairs: on AWS this normally finds nothing (CloudFormation
creates, replaces and deletes the routes with the stack); on moto it does the work, as moto's CloudFormation has
no AWS::EC2::TransitGatewayRoute and neither creates nor deletes one (moto.py). A route whose attachment EC2 does
not report (moto's server without netgen.bench.moto_transit's fix) is taken as it is. Only netgen's routes are
removed: a live route at the destination that goes to another attachment, or is a blackhole, is someone
else's, and so is one adopted (adopt_transit.py: it is in no deployed template). Propagated routes are the
gateway's and never touched.
"""

from __future__ import annotations

from typing import Any

from netgen.aws.deploy.context import Context
from netgen.aws.generated import GatewayRouteSpec, StackPlan
from netgen.aws.transit_routes import attachment_of, is_route, live_routes_at


def live_static_routes(ec2: Any, routes: list[GatewayRouteSpec]) -> dict[tuple[str, str], dict]:
    """{(route table, destination): live static route} at the destinations of these routes."""
    return {key: found[0] for key, found in live_routes_at(ec2, routes).items()}


def delete(ctx: Context, stack: str, ec2: Any, route: GatewayRouteSpec, why: str) -> None:
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr)
    ctx.repair(stack, f"deleted transit gateway route {route.table} {route.cidr} -> {route.attachment}: {why}")


def settle_gateway_routes(ctx: Context, stack: StackPlan, wanted: list[GatewayRouteSpec],
                          previous: list[GatewayRouteSpec]) -> None:
    if not wanted and not previous:
        return
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    wanted_keys = {(r.table, r.cidr) for r in wanted}
    live = live_static_routes(ec2, [*wanted, *previous])
    for route in previous:
        have = live.get((route.table, route.cidr))
        if (route.table, route.cidr) not in wanted_keys and have is not None and is_route(have, route):
            delete(ctx, stack.name, ec2, route, "no longer in the template, but still in EC2")
    for route in wanted:
        have = live.get((route.table, route.cidr))
        if have is not None and is_route(have, route):
            continue
        if have is not None:  # (to another attachment: moto has no ReplaceTransitGatewayRoute)
            ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr)
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=route.table, DestinationCidrBlock=route.cidr,
                                         TransitGatewayAttachmentId=route.attachment)
        was = (f" (was {'a blackhole' if have.get('State') == 'blackhole' else attachment_of(have)})"
               if have is not None else ": in the template, missing in EC2")
        ctx.repair(stack.name, f"created transit gateway route {route.table} {route.cidr} -> {route.attachment}"
                               f"{was}")


def remove_gateway_routes(ctx: Context, name: str, ec2: Any, removed: list[GatewayRouteSpec],
                          wanted: set[tuple[str, str]]) -> None:
    """After deleting a stack (name): its static routes (removed: what its deployed template declared) that no
    template of the plan wants (wanted: (route table, destination)) must be gone from EC2."""
    routes = [r for r in removed if (r.table, r.cidr) not in wanted]
    if not routes:
        return
    live = live_static_routes(ec2, routes)
    for route in routes:
        have = live.get((route.table, route.cidr))
        if have is not None and is_route(have, route):
            delete(ctx, name, ec2, route, "its stack is deleted, but the route was still in EC2")
