"""What the plan no longer has, removed after its stacks: netgen stacks (name prefix netgen-, tag
managed-by=netgen) that the plan does not name (a security group whose last rule went away, the network stack
of a transit gateway's owner once no flow goes through the gateway), checked gone from EC2 afterwards; then
peerings tagged managed-by=netgen that no template wants. Peerings netgen did not create (no tag) or that the
specs declare as existing are never touched.

The places looked at are those of the run's stacks and those of the inventory (its VPCs' and its transit
gateways' accounts and regions, within --account and --region): a place whose last stack left the plan (a
network account that owns a gateway and no VPC) still has its stale stacks deleted."""

from __future__ import annotations

from netgen.aws.deploy import lifecycle
from netgen.aws.deploy.context import Context, StackFailed, botocore_errors
from netgen.aws.deploy.moto import LIVE_PEERING
from netgen.aws.deploy.preflight import wrong_credentials
from netgen.aws.deploy.settle import settle_removed
from netgen.aws.generated import (
    MANAGED_KEY,
    MANAGED_VALUE,
    StackPlan,
    deployed_template,
    gateway_routes_of,
    is_managed,
    peerings_of,
    routes_of,
    rules_of,
)
from netgen.aws.session import error_text


def remove_stale_stacks(ctx: Context, place: tuple[str, str], stacks: list[StackPlan]) -> None:
    account, region = place
    cfn = ctx.clients.cloudformation(account, region)
    names = {s.name for s in stacks}
    wanted_rules = {r.key for s in stacks for r in rules_of(s.template)}
    wanted_routes = {(r.table, r.cidr) for s in stacks for r in routes_of(s.template)}
    wanted_gateway_routes = {(r.table, r.cidr) for s in stacks for r in gateway_routes_of(s.template)}
    for name in ctx.live.netgen_names(account, region):
        live = ctx.live.get(account, region, name)
        if name in names or live is None or not is_managed(live.raw):
            continue
        if ctx.options.dry_run:
            ctx.say("no longer in the plan; deploy deletes it", name)
            ctx.console.outcome(name, "would delete")
            continue
        ctx.say("no longer in the plan, deleting it", name)
        try:
            previous = deployed_template(cfn, name) or {}
            retain_wanted(ctx, cfn, name, live.raw, previous, wanted_rules, wanted_routes | wanted_gateway_routes)
            lifecycle.delete_stack(ctx, cfn, name)
            ctx.live.update(account, region, name, None)
            settle_removed(ctx, name, account, region, previous, wanted_rules, wanted_routes, wanted_gateway_routes)
        except StackFailed as failed:
            ctx.console.outcome(name, "failed", failed.reason, failed.events)
            continue
        except botocore_errors() as exc:
            ctx.console.outcome(name, "failed", error_text(exc))
            continue
        ctx.console.outcome(name, "deleted")


def retain_wanted(ctx: Context, cfn, name: str, described: dict, template: dict, wanted_rules: set[tuple],
                  wanted_routes: set[tuple[str, str]]) -> None:
    """Before a stale stack is deleted, mark DeletionPolicy: Retain on its rules and routes that a stack of the
    plan still wants (a renamed group's new stack adopted them): deleting the stack then leaves them in EC2
    rather than cut the traffic they carry. wanted_routes: (route table, destination) of VPC and transit
    gateway route tables."""
    keep = [logical for logical, resource in template.get("Resources", {}).items()
            if any(r.key in wanted_rules for r in rules_of({"Resources": {logical: resource}}))
            or any((r.table, r.cidr) in wanted_routes for r in routes_of({"Resources": {logical: resource}}))
            or any((r.table, r.cidr) in wanted_routes
                   for r in gateway_routes_of({"Resources": {logical: resource}}))]
    keep = [logical for logical in keep if template["Resources"][logical].get("DeletionPolicy") != "Retain"]
    if not keep:
        return
    retained = {**template, "Resources": {logical: ({**resource, "DeletionPolicy": "Retain"} if logical in keep
                                                    else resource)
                                          for logical, resource in template["Resources"].items()}}
    ctx.say(f"retaining {len(keep)} resource(s) another stack of the plan wants before deleting it", name)
    cfn.update_stack(StackName=name, TemplateBody=lifecycle.template_bytes(retained).decode(),
                     Parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                                 for p in described.get("Parameters", []) or []],
                     Tags=described.get("Tags", []) or [])
    final = lifecycle.wait_stack(ctx, cfn, name)
    if final not in lifecycle.OK_FINAL:
        raise StackFailed(name, f"marking resources to retain ended {final}; the stack is not deleted",
                          lifecycle.failed_events(cfn, name))


def remove_stale_peerings(ctx: Context, places: list[tuple[str, str]], stacks: list[StackPlan],
                          existing: list[dict]) -> None:
    wanted = {(str(p.get("VpcId")), str(p.get("PeerVpcId"))) for s in stacks
              for p in peerings_of(s.template).values()}
    declared = {e["connectionId"] for e in existing}  # a netgen peering now declared as existing stays
    for account, region in places:
        ec2 = ctx.clients.ec2(account, region)
        answer = ec2.describe_vpc_peering_connections(
            Filters=[{"Name": f"tag:{MANAGED_KEY}", "Values": [MANAGED_VALUE]}])["VpcPeeringConnections"]
        for pcx in sorted(answer, key=lambda p: p["VpcPeeringConnectionId"]):
            req, acc = pcx["RequesterVpcInfo"], pcx["AccepterVpcInfo"]
            if (not is_managed(pcx) or pcx["Status"]["Code"] not in LIVE_PEERING
                    or req.get("OwnerId", account) != account or req.get("Region", region) != region
                    or (req["VpcId"], acc["VpcId"]) in wanted or pcx["VpcPeeringConnectionId"] in declared):
                continue
            pcx_id = pcx["VpcPeeringConnectionId"]
            where = f"peering {pcx_id} ({req['VpcId']} <-> {acc['VpcId']})"
            if ctx.options.dry_run:
                ctx.say(f"{where}: no template has it; deploy deletes it")
                ctx.console.outcome(pcx_id, "would delete")
                continue
            ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
            ctx.say(f"{where}: no template has it, deleted")
            ctx.console.outcome(pcx_id, "deleted")


def clean_up(ctx: Context, places: list[tuple[str, str]], stacks: list[StackPlan], existing: list[dict],
             inventory_only: frozenset[tuple[str, str]] = frozenset()) -> None:
    """Remove what the plan no longer has in places (account id, region). inventory_only: places of the inventory
    where the plan has no stack (a gateway owner's account whose last stack went): looked at only when their
    credentials are the account's (preflight checked only the plan's accounts), and a problem there is a note,
    not a failure of the run."""
    usable = []
    for place in places:
        reason = wrong_credentials(ctx, *place) if place in inventory_only else None
        if reason:
            ctx.say(f"{place[0]}/{place[1]}: stacks and peerings no longer in the plan not looked for: {reason}")
        else:
            usable.append(place)
    places = usable
    for place in places:
        try:
            remove_stale_stacks(ctx, place, stacks)
        except botocore_errors() as exc:
            if place in inventory_only:
                ctx.say(f"{place[0]}/{place[1]}: stacks no longer in the plan not removed: {error_text(exc)}")
                continue
            ctx.console.problem(f"{place[0]}/{place[1]}: removing stacks no longer in the plan", error_text(exc))
    try:
        remove_stale_peerings(ctx, places, stacks, existing)
    except botocore_errors() as exc:
        ctx.console.problem("peerings no longer in the plan", error_text(exc))

