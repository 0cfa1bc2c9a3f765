"""A static transit gateway route that moves, in two steps.

Every property of AWS::EC2::TransitGatewayRoute requires replacement, and CloudFormation replaces a resource by
creating the new one before it deletes the old; a resource under a new logical id is likewise created before
the one it replaces is deleted. For a static route at the same route table and destination (its attachment
changed, or its logical id: a renamed gateway), both orders ask EC2 for a second static route at one
destination, which it refuses (CreateTransitGatewayRoute: the route already exists), and the update rolls back.
So before such a stack's change set, deploy updates the stack once without those routes (the deployed template
minus them, with the deployed parameters and tags), then deploys the new template as usual: the destination is
free for the moment between the two updates. moto's CloudFormation has no AWS::EC2::TransitGatewayRoute
(moto.py): there, settle deletes the routes through EC2 after the first update, as it would after any.
"""

from __future__ import annotations

import copy
from typing import Any

from netgen.aws.deploy import lifecycle
from netgen.aws.deploy.context import Context
from netgen.aws.deploy.settle_transit import settle_gateway_routes
from netgen.aws.deploy.state import LiveStack
from netgen.aws.generated import GatewayRouteSpec, StackPlan, gateway_routes_of


def moved_routes(previous: dict, template: dict) -> list[GatewayRouteSpec]:
    """Static routes of the deployed template that the new one has at the same route table and destination under
    another logical id, or to another attachment."""
    new = {(r.table, r.cidr): r for r in gateway_routes_of(template)}
    return [r for r in gateway_routes_of(previous) if (r.table, r.cidr) in new
            and (new[(r.table, r.cidr)].logical, new[(r.table, r.cidr)].attachment) != (r.logical, r.attachment)]


def remove_moved_routes(ctx: Context, cfn: Any, stack: StackPlan, live: LiveStack, previous: dict,
                        template: dict) -> dict:
    """The first of the two steps, when some route moves (see the module's docstring); the template the stack is
    deployed from afterwards (previous when nothing moves)."""
    moved = moved_routes(previous, template)
    if not moved:
        return previous
    listed = ", ".join(f"{r.table} {r.cidr}" for r in moved)
    if ctx.options.dry_run:
        ctx.say(f"static transit gateway routes that move ({listed}): deploy first removes them in an update of "
                "their own", stack.name)
        return previous
    ctx.say(f"static transit gateway routes that move ({listed}): removed first, in an update of their own "
            "(AWS refuses a second static route at one destination, which CloudFormation's replacement would "
            "create)", stack.name)
    first = copy.deepcopy(previous)
    for route in moved:
        del first["Resources"][route.logical]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in live.raw.get("Parameters", [])}
    cs_name = lifecycle.change_set(ctx, cfn, stack, first, parameters, "UPDATE", live.raw.get("Tags") or [])
    if cs_name is not None:
        ctx.say(lifecycle.execute(ctx, cfn, stack, cs_name), stack.name)
    settle_gateway_routes(ctx, stack, [], moved)
    return first
