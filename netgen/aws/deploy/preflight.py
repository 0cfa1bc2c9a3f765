"""Checks before any change, every problem reported at once (`--skip-preflight` leaves them out).

For each account of the plan: its credentials resolve (the account's profile, or the default chain) and
sts:GetCallerIdentity names the account the specs name. For each account and region, where AWS lets netgen
read them:
- CloudFormation's stack limit (DescribeAccountLimits) holds the live stacks plus the plan's new ones;
- Service Quotas: inbound or outbound rules per security group (L-0EA8095F) holds each group's rules in the
  templates plus its other live rules; routes per route table (L-93826ACB) holds each table's routes in the
  templates plus its other live routes; active VPC peering connections per VPC (L-7E9ECCDB) holds the peerings
  the plan gives each VPC of the account and region, requester or accepter;
- the --template-bucket exists where a template needs it (s3:ListBucket through HeadBucket);
- no pair of VPCs the plan peers is already peered by a connection netgen did not create (AWS refuses a second
  one: declare it as a VpcPeering instead);
- no route table the templates write to already routes one of their destinations to another target, and no
  transit gateway route table they write static routes to holds one of their destinations with a static route
  to another attachment, a blackhole, or a propagated route to another attachment (adopt_transit.py says why).
  A route the deployed stack holds (in its deployed template, read only for a route in question) is netgen's
  own, whatever it points at now: settle points it at the template's target;
- each peering declared as existing (VpcPeering, the plan's existingPeerings) that a stack of the run routes
  over is active and joins the VPCs it is declared for, and is no resource of a netgen stack (CloudFormation
  would delete it with that stack's next update);
- each transit gateway a stack of the run routes over is as declared: its attachments available, attaching the
  declared VPCs, associated with and propagating to the declared route tables (preflight_transit.py).
A quota that cannot be read (no permission, a partition without Service Quotas) is reported as a note, and
the deploy goes on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from netgen.aws.deploy import lifecycle
from netgen.aws.deploy.adopt import describe_target, literal_target, route_conflict
from netgen.aws.deploy.adopt_transit import gateway_route_conflicts
from netgen.aws.deploy.context import Context, StackFailed, botocore_errors
from netgen.aws.deploy.moto import LIVE_PEERING
from netgen.aws.deploy.preflight_transit import check_gateways
from netgen.aws.deploy.settle import live_routes, route_target
from netgen.aws.deploy.stack import RECREATE
from netgen.aws.generated import (
    STACK_PREFIX,
    StackPlan,
    deployed_template,
    gateway_routes_of,
    is_managed,
    live_rules,
    peerings_of,
    routes_of,
    rules_of,
    tag_value,
    target_key,
)
from netgen.aws.session import error_text

# (service code, quota code, what it limits) read from Service Quotas
RULES_QUOTA = ("vpc", "L-0EA8095F", "inbound or outbound rules per security group")
ROUTES_QUOTA = ("vpc", "L-93826ACB", "routes per route table")
PEERINGS_QUOTA = ("vpc", "L-7E9ECCDB", "active VPC peering connections per VPC")


@dataclass
class Findings:
    problems: list[tuple[str, str]] = field(default_factory=list)  # (where, what is wrong)
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why


def preflight(ctx: Context, selected: list[StackPlan], stacks: list[StackPlan], existing: list[dict],
              gateways: list[dict] = ()) -> Findings:
    found = Findings()
    places: dict[tuple[str, str], list[StackPlan]] = defaultdict(list)
    for stack in selected:
        places[stack.place].append(stack)
    good_accounts = check_credentials(ctx, selected, found)
    for (account, region), here in sorted(places.items()):
        if account not in good_accounts:
            continue
        where = f"{here[0].account_name} ({account}) {region}"
        try:
            check_stack_limit(ctx, account, region, here, where, found)
            check_quotas(ctx, account, region, here, stacks, where, found)
            check_buckets(ctx, here, where, found)
            check_existing_peerings(ctx, account, region, here, found)
            check_existing_routes(ctx, account, region, here, found)
        except botocore_errors() as exc:
            found.problems.append((where, f"cannot read what preflight needs: {error_text(exc)}"))
    names = {s.name for s in selected}
    for declared in existing:
        if declared["requesterAccount"] in good_accounts and names & set(declared.get("routedBy", [])):
            try:
                check_declared_peering(ctx, declared, found)
            except botocore_errors() as exc:
                found.problems.append((f"peering {declared['connectionId']}", f"cannot be read: {error_text(exc)}"))
    try:
        check_gateways(ctx, list(gateways), names, good_accounts, found.problems)
    except botocore_errors() as exc:
        found.problems.append(("transit gateways", f"cannot be read: {error_text(exc)}"))
    return found


def check_declared_peering(ctx: Context, declared: dict, found: Findings) -> None:
    pcx_id = declared["connectionId"]
    where = f"peering {pcx_id} (VpcPeering {declared.get('name', '')})"
    ec2 = ctx.clients.ec2(declared["requesterAccount"], declared["requesterRegion"])
    try:
        answer = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
    except botocore_errors() as exc:
        if "NotFound" not in str(exc):
            raise
        answer = []
    if not answer:
        found.problems.append((where, f"does not exist in {declared['requesterAccount']} "
                                      f"{declared['requesterRegion']}: the routes of {', '.join(declared['routedBy'])} "
                                      "would point nowhere"))
        return
    pcx = answer[0]
    joins = (pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"])
    if joins != (declared["requesterVpc"], declared["accepterVpc"]):
        found.problems.append((where, f"joins {joins[0]} (requester) to {joins[1]} (accepter), not "
                                      f"{declared['requesterVpc']} to {declared['accepterVpc']} as declared"))
    elif pcx["Status"]["Code"] != "active":
        found.problems.append((where, f"is {pcx['Status']['Code']}, not active"))
    owner = tag_value(pcx, "aws:cloudformation:stack-name")
    if owner and owner.startswith(STACK_PREFIX):
        found.problems.append((where, f"is a resource of netgen's stack {owner}: declared as existing, it leaves "
                                      "that stack's template and CloudFormation would delete it; keep it netgen's "
                                      "(remove the VpcPeering) or take it out of the stack first"))


def check_credentials(ctx: Context, selected: list[StackPlan], found: Findings) -> set[str]:
    good = set()
    for account, name, region in sorted({(s.account, s.account_name, s.region) for s in selected}):
        if account in good or any(w == f"account {name} ({account})" for w, _ in found.problems):
            continue
        problem = wrong_credentials(ctx, account, region)
        if problem:
            found.problems.append((f"account {name} ({account})", problem))
        else:
            good.add(account)
    return good


def wrong_credentials(ctx: Context, account: str, region: str) -> str | None:
    """What is wrong with the credentials for account (sts:GetCallerIdentity): None when they are its own."""
    try:
        identity = ctx.clients.client("sts", account, region).get_caller_identity()
    except botocore_errors() as exc:
        return f"credentials do not resolve: {error_text(exc)}"
    if identity.get("Account") != account:
        return (f"the credentials are for account {identity.get('Account')} ({identity.get('Arn')}), not "
                f"{account}: check the account's profile in the inventory, or the environment's credentials")
    return None


def check_stack_limit(ctx: Context, account: str, region: str, here: list[StackPlan], where: str,
                      found: Findings) -> None:
    live = ctx.live.place(account, region)  # the one DescribeStacks of this place, kept for the deploy
    try:
        limits = ctx.clients.cloudformation(account, region).describe_account_limits().get("AccountLimits", [])
    except botocore_errors() as exc:
        found.notes.append(f"{where}: CloudFormation's stack limit is not readable ({error_text(exc)})")
        return
    limit = next((int(x["Value"]) for x in limits if x.get("Name") == "StackLimit"), None)
    if limit is None:
        found.notes.append(f"{where}: DescribeAccountLimits reports no StackLimit")
        return
    new = [s for s in here if s.name not in live]
    if len(live) + len(new) > limit:
        found.problems.append((where, f"{len(live)} stacks exist and the plan adds {len(new)}: over CloudFormation's "
                                      f"limit of {limit} stacks (raise the quota, or split the estate)"))


def quota(ctx: Context, account: str, region: str, which: tuple[str, str, str], where: str,
          found: Findings) -> float | None:
    service, code, what = which
    client = ctx.clients.client("service-quotas", account, region)
    try:
        return float(client.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except botocore_errors() as exc:
        if "NoSuchResource" not in str(exc):
            found.notes.append(f"{where}: quota {code} ({what}) is not readable ({error_text(exc)})")
            return None
    try:  # never raised from its default: Service Quotas knows only the default
        return float(client.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except botocore_errors() as exc:
        found.notes.append(f"{where}: quota {code} ({what}) is not readable ({error_text(exc)})")
        return None


def check_quotas(ctx: Context, account: str, region: str, here: list[StackPlan], stacks: list[StackPlan],
                 where: str, found: Findings) -> None:
    """Each quota against the largest need of its kind in this account and region."""
    rules = {f"security group {group} would hold {{n}} {direction} rules": n
             for (group, direction), n in rule_needs(ctx, account, region, here).items()}
    routes = {f"route table {table} would hold {{n}} routes": n
              for table, n in route_needs(ctx, account, region, here).items()}
    peerings = {f"VPC {vpc} would have {{n}} peerings from netgen alone": n
                for vpc, n in peering_needs(account, region, stacks).items()}
    advice = {RULES_QUOTA: ": request an increase, or lower the group's ruleQuota so that netgen uses overflow "
                           "groups", ROUTES_QUOTA: "", PEERINGS_QUOTA: ""}
    for which, needs in ((RULES_QUOTA, rules), (ROUTES_QUOTA, routes), (PEERINGS_QUOTA, peerings)):
        if not needs:
            continue
        what, most = max(needs.items(), key=lambda kv: (kv[1], kv[0]))
        limit = quota(ctx, account, region, which, where, found)
        if limit is not None and most > limit:
            found.problems.append((where, f"{what.format(n=most)}, over the account's quota of {int(limit)} "
                                          f"({which[1]}){advice[which]}"))


def peering_needs(account: str, region: str, stacks: list[StackPlan]) -> dict[str, int]:
    """Peerings per VPC of this account and region, requester or accepter, from the whole plan."""
    joined = [(s, p) for s in stacks for p in peerings_of(s.template).values()]
    vpcs = {str(p.get("VpcId")) for s, p in joined if s.place == (account, region)} | {
        str(p.get("PeerVpcId")) for s, p in joined
        if (p.get("PeerOwnerId", s.account), p.get("PeerRegion", s.region)) == (account, region)}
    return dict(Counter(v for _, p in joined for v in (str(p.get("VpcId")), str(p.get("PeerVpcId"))) if v in vpcs))


def rule_needs(ctx: Context, account: str, region: str, here: list[StackPlan]) -> dict[tuple[str, str], int]:
    """Rules per (security group, direction): the templates' plus the group's other live rules."""
    wanted = {r.key for s in here for r in rules_of(s.template) if r.group_id.startswith("sg-")}
    if not wanted:
        return {}
    live = {r.key for r in live_rules(ctx.clients.ec2(account, region), sorted({k[0] for k in wanted}))}
    return dict(Counter((key[0], key[1]) for key in wanted | live))


def route_needs(ctx: Context, account: str, region: str, here: list[StackPlan]) -> dict[str, int]:
    """Routes per route table: the templates' plus the other live routes of that table."""
    wanted = {(r["Properties"]["RouteTableId"], r["Properties"]["DestinationCidrBlock"])
              for s in here for r in s.template.get("Resources", {}).values() if r.get("Type") == "AWS::EC2::Route"}
    if not wanted:
        return {}
    live = live_routes(ctx.clients.ec2(account, region), sorted({t for t, _ in wanted}))
    return dict(Counter(t for t, _ in wanted | set(live)))


def check_buckets(ctx: Context, here: list[StackPlan], where: str, found: Findings) -> None:
    checked = set()
    for stack in here:
        try:
            bucket = lifecycle.bucket_for(ctx, stack, len(lifecycle.template_bytes(stack.template)))
        except StackFailed as failed:
            found.problems.append((stack.name, failed.reason))
            continue
        if bucket is None or bucket in checked:
            continue
        checked.add(bucket)
        try:
            ctx.clients.client("s3", stack.account, stack.region).head_bucket(Bucket=bucket)
        except botocore_errors() as exc:
            found.problems.append((where, f"template bucket {bucket} (--template-bucket) cannot be used: "
                                          f"{error_text(exc)}"))


def check_existing_peerings(ctx: Context, account: str, region: str, here: list[StackPlan], found: Findings) -> None:
    """Peerings that exist already and would collide with the templates'."""
    ec2 = ctx.clients.ec2(account, region)
    pairs = {frozenset((str(p.get("VpcId")), str(p.get("PeerVpcId")))): (s.name, logical)
             for s in here for logical, p in peerings_of(s.template).items()}
    vpcs = sorted({v for pair in pairs for v in pair})
    peerings: dict[str, dict] = {}
    for side in ("requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id") if vpcs else ():
        for pcx in ec2.describe_vpc_peering_connections(
                Filters=[{"Name": side, "Values": vpcs}])["VpcPeeringConnections"]:
            peerings[pcx["VpcPeeringConnectionId"]] = pcx
    for pcx_id, pcx in sorted(peerings.items()):
        pair = frozenset((pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]))
        if pair in pairs and pcx["Status"]["Code"] in LIVE_PEERING and not is_managed(pcx):
            stack, logical = pairs[pair]
            a, b = sorted(pair)
            found.problems.append((stack, f"VPCs {a} and {b} are already peered by {pcx_id} (not created by "
                                          f"netgen), and the template would request another ({logical}): declare "
                                          "the existing one as a VpcPeering (netgen discover writes it)"))


def check_existing_routes(ctx: Context, account: str, region: str, here: list[StackPlan], found: Findings) -> None:
    """Routes that exist already at the templates' destinations, to another target: in VPC route tables, and
    static or propagated ones in transit gateway route tables. Those the deployed stack holds are netgen's."""
    ec2 = ctx.clients.ec2(account, region)
    candidates: list[tuple[StackPlan, tuple[str, str], str]] = []
    routes = [(s, r["Properties"]) for s in here for r in s.template.get("Resources", {}).values()
              if r.get("Type") == "AWS::EC2::Route"]
    live = live_routes(ec2, sorted({p["RouteTableId"] for _, p in routes}))
    targets = {p["VpcPeeringConnectionId"] for p in live.values() if p.get("VpcPeeringConnectionId")}
    peerings = {pcx["VpcPeeringConnectionId"]: pcx for pcx in ec2.describe_vpc_peering_connections(
        VpcPeeringConnectionIds=sorted(targets))["VpcPeeringConnections"]} if targets else {}
    for stack, props in routes:
        where = (props["RouteTableId"], props["DestinationCidrBlock"])
        have = live.get(where)
        if have is None:
            continue
        key = target_key(props)  # a peering's id, or a transit gateway's
        target = literal_target(props.get(key), {})
        existing = have.get(key)
        if existing and (existing == target or (target is None and is_managed(peerings.get(existing, {})))):
            continue  # the same target (adopted), or netgen's own peering (the stack already holds the route)
        candidates.append((stack, where, route_conflict(*where, route_target(have), target or describe_target(props))))
    candidates += gateway_route_conflicts(ec2, here)
    held = held_routes(ctx, account, region, [stack for stack, _, _ in candidates])
    found.problems += [(stack.name, text) for stack, where, text in candidates if where not in held.get(stack.name, ())]


def held_routes(ctx: Context, account: str, region: str, stacks: list[StackPlan]) -> dict[str, set[tuple[str, str]]]:
    """{stack: (route table, destination) of every VPC and transit gateway route its deployed template holds},
    for the stacks that exist (not a failed create): netgen's own routes, whatever they point at now."""
    live = ctx.live.place(account, region)
    held: dict[str, set[tuple[str, str]]] = {}
    for stack in {s.name: s for s in stacks}.values():
        if stack.name in live and live[stack.name].status not in RECREATE:
            template = deployed_template(ctx.clients.cloudformation(account, region), stack.name) or {}
            held[stack.name] = ({(r.table, r.cidr) for r in routes_of(template)}
                                | {(r.table, r.cidr) for r in gateway_routes_of(template)})
    return held
