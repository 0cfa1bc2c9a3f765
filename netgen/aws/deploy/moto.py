"""Where moto (5.2), the AWS endpoint of the tests, differs from AWS, and what deploy does about it. Everything
here is harmless on AWS: each workaround runs only when AWS's own answer is missing.

- CloudFormation cannot create a cross-region or cross-account AWS::EC2::VPCPeeringConnection (it ignores
  PeerRegion and PeerOwnerId and fails with InvalidVpcID.NotFound). AWS can. `--ec2-peering` creates exactly
  those peerings through CreateVpcPeeringConnection instead (found again by VPC pair on the next run, tagged
  like the template says), removes them from the template and passes their ids where the template referred to
  them, so routes and outputs are the same. Without the flag the stack fails on moto, as it should.
- A stack created or updated through a change set reports no Outputs: the value of an output a later stack
  needs is read from the deployed template (a literal, or a Ref resolved with DescribeStackResource).
- An UPDATE change set does not change the stack's tags: lifecycle.ensure_digest_tag puts the digest on, with
  UpdateStack and the previous template. moto refuses that update for a stack that takes parameters ("No updates
  are to be performed": it compares the template and the parameters, not the tags): `retag` then sends the
  deployed template again, written out another way, which moto takes as new and AWS as the same template.
- Gaps that settle.py repairs in the open, as it would on AWS after a change by hand: CloudFormation ignores
  AWS::EC2::SecurityGroupEgress; a stack update that removes or modifies a SecurityGroupIngress or a Route
  changes nothing in EC2; DeleteStack leaves rules, routes and peerings behind; peerings are never accepted and
  lose the template's tags.
- CloudFormation has no AWS::EC2::TransitGatewayRoute (it skips the resource with a warning): it never creates,
  replaces or deletes a static route in a transit gateway route table, with the stack or without. settle_transit.py
  creates the template's routes and deletes those the template dropped; after a stack is deleted (cleanup.py),
  settle.settle_removed deletes its static routes that no template wants. The same code finds nothing to do on
  AWS, where CloudFormation does all of it.
- The stack's resources (DescribeStackResources) list the resources CloudFormation skipped, and the routes an
  update changed, without their logical ids: what a stack holds is read from its deployed template (GetTemplate)
  wherever it matters (preflight, netgen drift).
- An update that leaves a stack with no parameters, where it had some (a stack that routed over another stack's
  peering and no longer does), fails: moto keeps the old values and looks them up in the new template (HTTP 500
  from ExecuteChangeSet). Nothing is done about it; AWS updates such a stack.
- A change set whose execution fails raises from ExecuteChangeSet and leaves the stack REVIEW_IN_PROGRESS with
  no FAILED event (lifecycle.execute reports the error of the call; the next run deletes and recreates it).
"""

from __future__ import annotations

import json
from typing import Any

from netgen.aws.deploy.context import Context, StackFailed, botocore_errors
from netgen.aws.generated import StackPlan, deployed_template, peerings_of

LIVE_PEERING = {"initiating-request", "pending-acceptance", "provisioning", "active"}
PLACEHOLDER_PCX = "pcx-00000000"


def ec2_peerings(ctx: Context, stack: StackPlan, template: dict) -> dict[str, str]:
    """Create (or find) the stack's cross-region and cross-account peerings through the EC2 API:
    {logical id: peering id}."""
    ec2 = ctx.clients.ec2(stack.account, stack.region)
    ids = {}
    for logical, props in sorted(peerings_of(template).items()):
        peer_region = props.get("PeerRegion", stack.region)
        peer_owner = props.get("PeerOwnerId", stack.account)
        if peer_region == stack.region and peer_owner == stack.account:
            continue
        existing = find_peering(ec2, props["VpcId"], props["PeerVpcId"])
        if existing:
            ids[logical] = existing["VpcPeeringConnectionId"]
            continue
        if ctx.options.dry_run:
            ctx.say(f"peering {logical}: would be created through the EC2 API (--ec2-peering)", stack.name)
            ids[logical] = PLACEHOLDER_PCX
            continue
        tags = [t for t in props.get("Tags", []) if isinstance(t, dict)] + [
            {"Key": "netgen:logical-id", "Value": logical}]
        pcx = ec2.create_vpc_peering_connection(
            VpcId=props["VpcId"], PeerVpcId=props["PeerVpcId"], PeerRegion=peer_region, PeerOwnerId=peer_owner,
            TagSpecifications=[{"ResourceType": "vpc-peering-connection", "Tags": tags}])["VpcPeeringConnection"]
        ids[logical] = pcx["VpcPeeringConnectionId"]
        ctx.say(f"peering {logical}: created {ids[logical]} through the EC2 API (--ec2-peering)", stack.name)
    return ids


def find_peering(ec2: Any, vpc_id: str, peer_vpc_id: str) -> dict | None:
    answer = ec2.describe_vpc_peering_connections(Filters=[
        {"Name": "requester-vpc-info.vpc-id", "Values": [vpc_id]},
        {"Name": "accepter-vpc-info.vpc-id", "Values": [peer_vpc_id]}])["VpcPeeringConnections"]
    live = [p for p in answer if p["RequesterVpcInfo"]["VpcId"] == vpc_id
            and p["AccepterVpcInfo"]["VpcId"] == peer_vpc_id and p["Status"]["Code"] in LIVE_PEERING]
    return sorted(live, key=lambda p: p["VpcPeeringConnectionId"])[0] if live else None


def retag(ctx: Context, cfn: Any, stack: StackPlan, parameters: list[dict], tags: list[dict]) -> None:
    """Put tags on a stack whose UpdateStack with UsePreviousTemplate moto refused as "No updates are to be
    performed" (AWS updates the tags): the deployed template as a new body (indented), the same parameters."""
    from netgen.aws.deploy.lifecycle import template_source  # (lifecycle imports this module)

    template = deployed_template(cfn, stack.name)
    if not template:  # (an empty body would update the stack to no resources)
        raise StackFailed(stack.name, "the deployed template is not readable: its tags cannot be updated")
    body = json.dumps(template, indent=1, sort_keys=True).encode()
    cfn.update_stack(StackName=stack.name, **template_source(ctx, stack, body), Parameters=parameters, Tags=tags)


def output_from_template(ctx: Context, stack: StackPlan, output: str) -> str | None:
    """An output that DescribeStacks does not report, read from the deployed template and the stack's resources.
    On AWS DescribeStacks has them and this is not reached."""
    cfn = ctx.clients.cloudformation(stack.account, stack.region)  # (the caller knows the stack exists)
    value = ((deployed_template(cfn, stack.name) or {}).get("Outputs", {}).get(output) or {}).get("Value")
    if isinstance(value, dict) and set(value) == {"Ref"}:
        try:
            value = cfn.describe_stack_resource(StackName=stack.name, LogicalResourceId=value["Ref"])[
                "StackResourceDetail"].get("PhysicalResourceId")
        except botocore_errors():
            return None
    if not isinstance(value, str) or not value:
        return None
    return value
