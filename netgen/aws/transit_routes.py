"""Routes of transit gateway route tables, read from EC2 (SearchTransitGatewayRoutes) for deploy (settle,
adoption, preflight, cleanup) and drift.

SearchTransitGatewayRoutes has no pagination: it answers at most 1,000 routes (MaxResults' default and
maximum) and says whether there are more (AdditionalRoutesAvailable). Routes at given destinations are asked
for in chunks (exact match), so that each answer stays far below that; every static route of a table is one
request, whose answer may be cut short (the caller is told). Only the gateway's owner account can read its
route tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netgen.aws.generated import GatewayRouteSpec

LIVE_STATES = ["active", "blackhole"]  # not "deleting", "deleted", "pending"
CHUNK = 100  # destinations per exact-match request


def attachment_of(route: dict) -> str | None:
    """The attachment a route goes to; None for a blackhole, or where EC2 does not say (moto's answer without
    netgen.bench.moto_transit's fix)."""
    attached = route.get("TransitGatewayAttachments") or []
    return attached[0].get("TransitGatewayAttachmentId") if attached else None


def route_text(route: dict) -> str:
    """A live route's target as messages name it: 'tgw-attach-... (static)', 'blackhole (static)'."""
    if route.get("State") == "blackhole":
        target = "blackhole"
    else:
        target = attachment_of(route) or "an attachment EC2 does not name"
    return f"{target} ({route.get('Type', 'static')})"


def routes_at(ec2: Any, table: str, cidrs: Iterable[str], *, static_only: bool = True) -> dict[str, list[dict]]:
    """{destination: live routes (active or blackhole)} of a gateway route table at exactly these destinations:
    its static routes, and with static_only=False its propagated ones too."""
    wanted = sorted(set(cidrs))
    found: dict[str, list[dict]] = {}
    kind = [{"Name": "type", "Values": ["static"]}] if static_only else []
    for start in range(0, len(wanted), CHUNK):
        answer = ec2.search_transit_gateway_routes(TransitGatewayRouteTableId=table, Filters=[
            *kind, {"Name": "state", "Values": LIVE_STATES},
            {"Name": "route-search.exact-match", "Values": wanted[start:start + CHUNK]}])
        for route in answer.get("Routes", []):
            if route.get("DestinationCidrBlock"):
                found.setdefault(route["DestinationCidrBlock"], []).append(route)
    return found


def live_routes_at(ec2: Any, routes: list[GatewayRouteSpec], *, static_only: bool = True
                   ) -> dict[tuple[str, str], list[dict]]:
    """{(route table, destination): live routes} at the destinations of these routes (routes_at per table)."""
    tables: dict[str, list[str]] = {}
    for route in routes:
        tables.setdefault(route.table, []).append(route.cidr)
    return {(table, cidr): found for table, cidrs in sorted(tables.items())
            for cidr, found in routes_at(ec2, table, cidrs, static_only=static_only).items()}


def is_route(live: dict, route: GatewayRouteSpec) -> bool:
    """Whether a live static route is `route`: the same attachment (or one EC2 does not name), not a blackhole."""
    return live.get("State") != "blackhole" and attachment_of(live) in (route.attachment, None)


def static_routes(ec2: Any, table: str) -> tuple[list[dict], bool]:
    """Every static route (active or blackhole) of a gateway route table, and whether EC2 had more than it
    answered (over 1,000)."""
    answer = ec2.search_transit_gateway_routes(TransitGatewayRouteTableId=table, Filters=[
        {"Name": "type", "Values": ["static"]}, {"Name": "state", "Values": LIVE_STATES}])
    routes = [r for r in answer.get("Routes", []) if r.get("DestinationCidrBlock")]
    return routes, bool(answer.get("AdditionalRoutesAvailable"))
