"""Adoption and preflight, transit gateways: routes that already exist in the transit gateway route tables a
stack writes static routes to (AWS::EC2::TransitGatewayRoute, in the gateway owner's account and region).

What a generated static route finds in its route table at its destination (SearchTransitGatewayRoutes, exact
match, static and propagated routes, active or blackhole), and what deploy does about it:

- nothing: the stack creates it;
- a static route to the same attachment: adopted (adopt.py calls adopt_gateway_routes): left in place, taken out
  of the template the change set gets, reported `adopted`, and checked by settle like the stack's own. It is in no
  deployed template, so netgen never deletes it. (AWS refuses a second static route for a prefix: the stack
  would fail.)
- a static route to another attachment, or a blackhole: an error before any change (preflight.py calls
  gateway_route_conflicts; adopt.py fails the stack with the same words when preflight was skipped), naming the
  route table, the destination and both targets. netgen does not take a route over;
- a propagated route to the same attachment: the stack creates its static route beside it. For one prefix a
  static route takes precedence over a propagated one, so where the traffic goes does not change, and the path
  no longer depends on a propagation the inventory does not declare;
- a propagated route to another attachment: an error too. The static route would take precedence and silently
  take that prefix's traffic from the attachment that propagates it: the inventory (the attachments'
  propagatesTo, the VPCs' CIDRs) is not what AWS has. A propagated route for a wider or a narrower prefix is no
  conflict: the longest prefix decides, which is how a static route for exactly the flows' prefixes narrows what
  a wider route carries (`netgen verify` judges the result).

A route the stack already holds (its deployed template has it) is netgen's own: never adopted, never a
conflict (settle points it at the template's attachment). moto reports no propagated routes (netgen/transit.py),
so there the propagated cases never arise.
"""

from __future__ import annotations

from typing import Any

from netgen.aws.deploy.context import Context, StackFailed
from netgen.aws.generated import GatewayRouteSpec, StackPlan, gateway_routes_of
from netgen.aws.transit_routes import attachment_of, live_routes_at, route_text

CREATE, ADOPT, CONFLICT = "create", "adopt", "conflict"


def classify(route: GatewayRouteSpec, live: list[dict]) -> tuple[str, dict | None]:
    """What deploy does with a generated static route, given the live routes at its destination: (CREATE, None),
    (ADOPT, the identical static route) or (CONFLICT, the route in the way)."""
    for have in (r for r in live if r.get("Type", "static") == "static"):
        same = have.get("State") != "blackhole" and attachment_of(have) == route.attachment
        return (ADOPT if same else CONFLICT), have
    for have in (r for r in live if r.get("Type") == "propagated"):
        if attachment_of(have) != route.attachment:
            return CONFLICT, have
    return CREATE, None


def conflict_text(route: GatewayRouteSpec, have: dict) -> str:
    if have.get("Type") == "propagated":
        advice = ("a static route takes precedence and would take that prefix's traffic from it: check the "
                  "attachments' propagatesTo and the VPCs' CIDRs in the inventory against the gateway")
    else:
        advice = "remove or change that route (netgen adopts a static route identical to its own)"
    return (f"transit gateway route table {route.table} already routes {route.cidr} to {route_text(have)}, and "
            f"netgen would route it to {route.attachment} (static): {advice}")


def adopt_gateway_routes(ctx: Context, stack: StackPlan, resources: dict, previous: dict | None) -> None:
    """Take the static routes identical to live ones out of resources (the template's, changed in place) and
    report them adopted; StackFailed for one whose destination another route holds. Routes the deployed stack
    (previous: its template) holds are left as they are."""
    held = {(r.table, r.cidr) for r in gateway_routes_of(previous or {})}
    candidates = [r for r in gateway_routes_of({"Resources": resources}) if (r.table, r.cidr) not in held]
    if not candidates:
        return
    live = live_routes_at(ctx.clients.ec2(stack.account, stack.region), candidates, static_only=False)
    for route in candidates:
        verdict, have = classify(route, live.get((route.table, route.cidr), []))
        if verdict == ADOPT:
            del resources[route.logical]
            ctx.console.adopted(stack.name, f"transit gateway route {route.table} {route.cidr} -> {route.attachment}")
        elif verdict == CONFLICT and have is not None:
            raise StackFailed(stack.name, conflict_text(route, have))


def gateway_route_conflicts(ec2: Any, here: list[StackPlan]) -> list[tuple[StackPlan, tuple[str, str], str]]:
    """(stack, (route table, destination), problem) for each static route of these stacks (one account and
    region) whose destination another live route holds. The caller drops those the deployed stack holds."""
    wanted = [(stack, route) for stack in here for route in gateway_routes_of(stack.template)]
    if not wanted:
        return []
    live = live_routes_at(ec2, [route for _, route in wanted], static_only=False)
    found = []
    for stack, route in wanted:
        verdict, have = classify(route, live.get((route.table, route.cidr), []))
        if verdict == CONFLICT and have is not None:
            found.append((stack, (route.table, route.cidr), conflict_text(route, have)))
    return found
