"""Settle: a stack deployed in this run checked against EC2, never trusted on its status alone.

- each peering the stack requests must be active: one pending acceptance is accepted in the accepter's account
  and region through the EC2 API (CloudFormation accepts by itself only with PeerRoleArn or inside one
  account); the template's tags are put on it when missing;
- every route and security-group rule of the template must exist in EC2 (adopted ones included: adopt.py),
  and every rule with a netgen description in the stack's groups that the template no longer has, and every
  route to a peering or a transit gateway the previous template had and the new one does not, must be gone. A
  hand-made rule or route is never removed, and an adopted rule keeps its own description;
- likewise the static routes in transit gateway route tables (settle_transit.py).

Anything settle has to add or remove is done through the EC2 API and reported as a repair. On AWS this
normally finds nothing to do (it catches rules and routes changed by hand in between); on moto it does real
work (moto.py).
"""

from __future__ import annotations

import time
from typing import Any

from netgen.aws.deploy.context import Context, StackFailed
from netgen.aws.deploy.moto import LIVE_PEERING
from netgen.aws.deploy.settle_transit import remove_gateway_routes, settle_gateway_routes
from netgen.aws.generated import (
    MANAGED_KEY,
    MANAGED_VALUE,
    RouteSpec,
    RuleSpec,
    StackPlan,
    gateway_routes_of,
    is_managed,
    is_owned,
    live_rules,
    peerings_of,
    replace_refs,
    routes_of,
    rules_of,
)


def settle(ctx: Context, stack: StackPlan, cfn: Any, template: dict, previous: dict | None,
           ids: dict[str, str], adopted: set[tuple]) -> None:
    """template: the one generated (adopted rules and routes included); ids: values for its Refs that are not
    resources of the stack (parameters, --ec2-peering ids); adopted: keys of rules left in place."""
    physical = {}
    # A group's stack names literal ids only: no need to ask for its resources (a request saved per stack).
    if stack.peerings or refers_to_own_resources(template):
        physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                    for r in cfn.describe_stack_resources(StackName=stack.name).get("StackResources", [])
                    if r.get("LogicalResourceId")}  # moto lists the egress rules it skipped without one
    ids = {**physical, **ids}
    resolved = replace_refs(template, ids)
    settle_peerings(ctx, stack, ids)
    settle_rules(ctx, stack, rules_of(resolved), rules_of(previous or {}), adopted)
    old_routes = {(r.table, r.cidr) for r in routes_of(previous or {})}
    settle_routes(ctx, stack, routes_of(resolved), old_routes)
    settle_gateway_routes(ctx, stack, gateway_routes_of(resolved), gateway_routes_of(previous or {}))


def refers_to_own_resources(template: dict) -> bool:
    """Whether some value of the template is a Ref to one of its own resources (a route to its peering)."""
    own = set(template.get("Resources", {}))

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if set(node) == {"Ref"}:
                return node["Ref"] in own
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(template.get("Resources", {}))


def settle_peerings(ctx: Context, stack: StackPlan, ids: dict[str, str]) -> None:
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    declared = peerings_of(stack.template)
    for request in stack.peerings:
        logical = request["peering"]
        pcx_id = ids.get(logical)
        if not pcx_id or not pcx_id.startswith("pcx-"):
            raise StackFailed(stack.name, f"peering {logical}: the stack has no such resource")
        found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
        if not found:
            raise StackFailed(stack.name, f"peering {logical} ({pcx_id}) does not exist in EC2")
        pcx = found[0]
        wanted_tags = [t for t in declared.get(logical, {}).get("Tags", []) if isinstance(t, dict)]
        if wanted_tags and not is_managed(pcx):
            ec2.create_tags(Resources=[pcx_id], Tags=wanted_tags)
            ctx.repair(stack.name, f"tagged peering {pcx_id} ({logical}) {MANAGED_KEY}={MANAGED_VALUE}: the "
                                   "template's Tags were not on it")
        status = pcx["Status"]["Code"]
        if status == "active":
            continue
        if status in ("initiating-request", "provisioning", "pending-acceptance"):
            status = wait_peering(ctx, ec2, pcx_id, ("pending-acceptance", "active"))
        if status == "pending-acceptance":
            accepter = ctx.clients.ec2(request["accepterAccount"], request["accepterRegion"])
            accepter.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
            ctx.say(f"accepted peering {pcx_id} ({logical}) in {request['accepterAccount']} "
                    f"{request['accepterRegion']} through the EC2 API", stack.name)
            status = wait_peering(ctx, ec2, pcx_id, ("active",))
        if status != "active":
            raise StackFailed(stack.name, f"peering {logical} ({pcx_id}) is {status}, not active")


def wait_peering(ctx: Context, ec2: Any, pcx_id: str, until: tuple[str, ...]) -> str:
    deadline = time.time() + min(ctx.options.timeout_seconds, 300)
    while True:
        found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
        status = found[0]["Status"]["Code"] if found else "deleted"
        if status in until or status not in LIVE_PEERING or time.time() > deadline:
            return status
        time.sleep(ctx.options.poll_seconds)


def settle_rules(ctx: Context, stack: StackPlan, wanted: list[RuleSpec], previous: list[RuleSpec],
                 adopted: set[tuple]) -> None:
    groups = sorted({r.group_id for r in wanted} | {r.group_id for r in previous})
    if not groups:
        return
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    live = live_rules(ec2, groups)
    by_key = {r.key: r for r in live}
    wanted_keys = {r.key for r in wanted}
    previous_keys = {r.key for r in previous}
    for rule in live:
        if rule.key not in wanted_keys and (is_owned(rule) or rule.key in previous_keys):
            revoke(ec2, rule)
            ctx.repair(stack.name, f"revoked {rule} ('{rule.description}'): no longer in the template, but still "
                                   "in EC2")
    for rule in wanted:
        have = by_key.get(rule.key)
        if have is None:
            authorize = (ec2.authorize_security_group_ingress if rule.direction == "ingress"
                         else ec2.authorize_security_group_egress)
            authorize(GroupId=rule.group_id, IpPermissions=[rule.permission()])
            ctx.repair(stack.name, f"authorized {rule}: in the template, missing in EC2")
        elif have.description != rule.description and rule.key not in adopted:
            update = (ec2.update_security_group_rule_descriptions_ingress if rule.direction == "ingress"
                      else ec2.update_security_group_rule_descriptions_egress)
            update(GroupId=rule.group_id, IpPermissions=[rule.permission()])
            ctx.repair(stack.name, f"described {rule} as '{rule.description}' (was '{have.description}')")


def revoke(ec2: Any, rule: RuleSpec) -> None:
    revoke_call = ec2.revoke_security_group_ingress if rule.direction == "ingress" else ec2.revoke_security_group_egress
    if rule.rule_id:  # revoking by id removes exactly that rule
        revoke_call(GroupId=rule.group_id, SecurityGroupRuleIds=[rule.rule_id])
    else:
        revoke_call(GroupId=rule.group_id, IpPermissions=[rule.permission()])


def live_routes(ec2: Any, tables: list[str]) -> dict[tuple[str, str], dict]:
    """{(route table, destination CIDR): route} of these tables (IPv4 destinations)."""
    live: dict[tuple[str, str], dict] = {}
    if tables:
        for table in ec2.describe_route_tables(RouteTableIds=sorted(tables))["RouteTables"]:
            for route in table.get("Routes", []):
                if route.get("DestinationCidrBlock"):
                    live[(table["RouteTableId"], route["DestinationCidrBlock"])] = route
    return live


def route_target(route: dict) -> str:
    return (route.get("VpcPeeringConnectionId") or route.get("TransitGatewayId") or route.get("GatewayId")
            or route.get("NatGatewayId") or route.get("NetworkInterfaceId") or route.get("InstanceId")
            or ("blackhole" if route.get("State") == "blackhole" else "?"))


def settle_routes(ctx: Context, stack: StackPlan, wanted: list[RouteSpec], old_routes: set[tuple[str, str]]) -> None:
    tables = sorted({r.table for r in wanted} | {t for t, _ in old_routes})
    if not tables:
        return
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    live = live_routes(ec2, tables)
    wanted_keys = {(r.table, r.cidr) for r in wanted}
    for (table, cidr), route in sorted(live.items()):
        if (table, cidr) in old_routes and (table, cidr) not in wanted_keys and netgen_target(route):
            ec2.delete_route(RouteTableId=table, DestinationCidrBlock=cidr)
            ctx.repair(stack.name, f"deleted route {table} {cidr} -> {netgen_target(route)}: no longer "
                                   "in the template, but still in EC2")
    for route in wanted:
        have = live.get((route.table, route.cidr))
        target = str(route.target)
        if have is None:
            ec2.create_route(RouteTableId=route.table, DestinationCidrBlock=route.cidr, **{route.via: target})
            ctx.repair(stack.name, f"created route {route.table} {route.cidr} -> {target}: in the template, missing "
                                   "in EC2")
        elif have.get(route.via) != target:
            ec2.replace_route(RouteTableId=route.table, DestinationCidrBlock=route.cidr, **{route.via: target})
            ctx.repair(stack.name, f"pointed route {route.table} {route.cidr} at {target} (was {route_target(have)})")


def netgen_target(route: dict) -> str | None:
    """The target of a live route of a kind netgen writes (a peering or a transit gateway), else None."""
    return route.get("VpcPeeringConnectionId") or route.get("TransitGatewayId")


def settle_removed(ctx: Context, name: str, account: str, region: str, removed: dict,
                   wanted_rules: set[tuple], wanted_routes: set[tuple[str, str]],
                   wanted_gateway_routes: set[tuple[str, str]]) -> None:
    """After deleting a stack no plan wants (cleanup.py): what only its template declared must be gone from EC2
    (moto leaves it; on AWS this finds nothing). Only netgen's own rules (their description), routes to peerings
    and transit gateways, and static routes in transit gateway route tables (to the template's attachment) that
    no template of the plan wants are removed: never a hand-made rule or route, never one another stack
    adopted."""
    rules = [r for r in rules_of(removed) if r.key not in wanted_rules]
    ec2 = ctx.clients.ec2(account, region)
    if rules:
        keys = {r.key for r in rules}
        for rule in live_rules(ec2, sorted({r.group_id for r in rules})):
            if rule.key in keys and is_owned(rule):
                revoke(ec2, rule)
                ctx.repair(name, f"revoked {rule}: its stack is deleted, but the rule was still in EC2")
    routes = [r for r in routes_of(removed) if (r.table, r.cidr) not in wanted_routes]
    keys = {(r.table, r.cidr) for r in routes}
    for key, route in sorted(live_routes(ec2, sorted({r.table for r in routes})).items()):
        if key in keys and netgen_target(route):
            ec2.delete_route(RouteTableId=key[0], DestinationCidrBlock=key[1])
            ctx.repair(name, f"deleted route {key[0]} {key[1]}: its stack is deleted, but the route was still in EC2")
    remove_gateway_routes(ctx, name, ec2, gateway_routes_of(removed), wanted_gateway_routes)
