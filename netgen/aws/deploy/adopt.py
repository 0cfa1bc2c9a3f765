"""Adopting what already exists: a live security-group rule or route identical to one of a stack's template
is left in place rather than created a second time.

EC2 refuses a second identical rule (InvalidPermission.Duplicate) and a second route to the same destination
(RouteAlreadyExists), so a template holding one fails its stack. CloudFormation's resource import could bring
the live rule under the stack, but an IMPORT change set cannot change anything else, needs the rule's
identifier per resource (rule ids for AWS::EC2::SecurityGroupIngress/Egress; AWS::EC2::Route is imported by
table and destination) and a DeletionPolicy of Retain on each imported resource, and a failed import rolls
the stack back; moto does not implement it. The safer path, taken here: the identical live rule or route is
removed from the template this run sends (never revoked and re-created, so traffic never has a gap), reported
as `adopted`, and checked by settle like the stack's own. It keeps its own description, so `netgen drift`
still tells it from netgen's, and netgen never removes it: when no grant wants it any more, drift reports it
as hand-made and covered by no grant.

A resource the stack already holds (it is in the deployed template) is never adopted. A live route to the same
destination with another target is an error naming the route table, the destination and both targets: netgen
does not take a route over. Static routes in transit gateway route tables likewise (adopt_transit.py, which
says what a propagated route at the destination means).
"""

from __future__ import annotations

from typing import Any

from netgen.aws.deploy.adopt_transit import adopt_gateway_routes
from netgen.aws.deploy.context import Context, StackFailed
from netgen.aws.deploy.settle import live_routes, route_target
from netgen.aws.generated import StackPlan, live_rules, routes_of, rules_of, target_key

_RULE_TYPES = ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
# CloudFormation refuses a template without resources: a stack whose every rule is adopted keeps this one.
PLACEHOLDER = {"NetgenNothingToCreate": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}


def adopt(ctx: Context, stack: StackPlan, template: dict, previous: dict | None,
          ids: dict[str, str]) -> tuple[dict, set[tuple]]:
    """The template with identical live rules and routes (VPC and transit gateway routes) taken out, and the keys
    of the rules adopted.
    ids: values of the template's Refs that are known before the change set (parameters, --ec2-peering)."""
    resources = dict(template.get("Resources", {}))
    held_rules = {r.key for r in rules_of(previous or {})}
    held_routes = {(r.table, r.cidr) for r in routes_of(previous or {})}
    candidates = {logical: rules_of({"Resources": {logical: r}})[0] for logical, r in resources.items()
                  if r.get("Type") in _RULE_TYPES}
    candidates = {logical: rule for logical, rule in candidates.items()
                  if rule.key not in held_rules and rule.group_id.startswith("sg-")}
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    adopted: set[tuple] = set()
    if candidates:
        live = {r.key: r for r in live_rules(ec2, sorted({r.group_id for r in candidates.values()}))}
        for logical, rule in sorted(candidates.items()):
            have = live.get(rule.key)
            if have is not None:
                del resources[logical]
                adopted.add(rule.key)
                whose = "netgen's description" if have.description.startswith("netgen:") else "hand-made"
                ctx.console.adopted(stack.name, f"rule {rule} ({have.rule_id or 'no id'}, {whose}, "
                                                f"'{have.description}')")
    routes = [(logical, r) for logical, r in resources.items() if r.get("Type") == "AWS::EC2::Route"]
    routes = [(logical, r) for logical, r in routes
              if (r["Properties"]["RouteTableId"], r["Properties"]["DestinationCidrBlock"]) not in held_routes]
    if routes:
        live_route = live_routes(ec2, sorted({r["Properties"]["RouteTableId"] for _, r in routes}))
        for logical, resource in sorted(routes):
            props = resource["Properties"]
            have = live_route.get((props["RouteTableId"], props["DestinationCidrBlock"]))
            if have is None:
                continue
            key = target_key(props)  # a peering's id, or a transit gateway's
            target = literal_target(props.get(key), ids)
            if target is not None and have.get(key) == target:
                del resources[logical]
                ctx.console.adopted(stack.name, f"route {props['RouteTableId']} {props['DestinationCidrBlock']} -> "
                                                f"{target}")
                continue
            raise StackFailed(stack.name, route_conflict(props["RouteTableId"], props["DestinationCidrBlock"],
                                                         route_target(have), target or describe_target(props)))
    adopt_gateway_routes(ctx, stack, resources, previous)
    if len(resources) == len(template.get("Resources", {})):
        return template, adopted
    return {**template, "Resources": resources or dict(PLACEHOLDER)}, adopted


def literal_target(target: Any, ids: dict[str, str]) -> str | None:
    """A route's peering id when it is known before the change set runs; None for a peering the stack creates."""
    if isinstance(target, str):
        return target
    if isinstance(target, dict) and set(target) == {"Ref"}:
        return ids.get(target["Ref"])
    return None


def describe_target(props: dict) -> str:
    target = props.get(target_key(props))
    ref = target.get("Ref") if isinstance(target, dict) else target
    return f"the transit gateway {ref}" if target_key(props) == "TransitGatewayId" else f"the peering {ref}"


def route_conflict(table: str, cidr: str, existing: str, wanted: str) -> str:
    return (f"route table {table} already routes {cidr} to {existing}, and netgen would route it to {wanted}: "
            "remove or change that route, or declare the peering it uses (VpcPeering) if it connects the same "
            "VPCs")
