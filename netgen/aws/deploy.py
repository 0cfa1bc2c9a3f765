"""`netgen deploy`: apply generated/aws through CloudFormation change sets, in the deploy plan's order.

For each stack of the plan (optionally only one account and/or region):

1. Parameters are read from the outputs of the earlier stacks the plan names (describe_stacks).
2. A change set is created (CREATE for a new stack, UPDATE otherwise; the stack is tagged managed-by=netgen)
   and described: every Add, Modify and Remove with its logical id and type. An empty change set is "no
   changes". A stack left in ROLLBACK_COMPLETE (a failed create) or REVIEW_IN_PROGRESS (a create whose change set
   was never executed, or failed to execute) is deleted first and created again, so a rerun resumes.
   A template over CloudFormation's 51,200-byte inline limit is uploaded to the --template-bucket first, and
   the change set reads it from there.
3. Unless --dry-run, the change set is executed and the stack watched until it settles, its events printed as
   they come. On failure the deploy stops, prints the FAILED events with their reasons, and exits 1.
4. The stack is then checked against EC2, never trusted on its status alone ("settle"):
   - each peering the stack requests must be active: one pending acceptance is accepted in the accepter's
     account and region through the EC2 API (CloudFormation accepts by itself only with PeerRoleArn or inside
     one account); the template's tags are put on it when missing;
   - every route and security-group rule of the template must exist in EC2, and every rule with a netgen
     description in the stack's groups that the template no longer has, and every peering route the previous
     template had and the new one does not, must be gone.
   Anything settle has to add or remove is done through the EC2 API and printed as a repair. On AWS this
   normally finds nothing to do (it catches rules and routes changed by hand in between); on moto it does real
   work, see below.
5. After the plan's stacks: netgen stacks (name prefix netgen-, tag managed-by=netgen) in the plan's accounts
   and regions that the plan no longer has (a security group whose last rule went away) are deleted, and what
   their template declared is checked gone; then netgen peerings (tag managed-by=netgen) no template wants
   any more are deleted. Failures here are reported per stack; the others still run.

moto (5.2) gaps, and how deploy handles them (pinned by tests/test_aws_deploy.py and tests/test_judge_aws.py):
- CloudFormation cannot create a cross-region or cross-account AWS::EC2::VPCPeeringConnection (it ignores
  PeerRegion and PeerOwnerId and fails with InvalidVpcID.NotFound). AWS can. `--ec2-peering` creates exactly
  those peerings through CreateVpcPeeringConnection instead (found again by VPC pair on the next run, tagged
  like the template says), removes them from the template and passes their ids where the template referred to
  them, so routes and outputs are the same. Without the flag the stack fails on moto, as it should.
- CloudFormation ignores AWS::EC2::SecurityGroupEgress (the stack completes, no rule exists), and a stack
  update that removes or modifies a SecurityGroupIngress or a Route changes nothing in EC2, and delete_stack
  leaves rules, routes and peerings behind: settle adds and removes them through EC2 and says so.
- CloudFormation never accepts a peering, and drops the template's tags of a peering: settle accepts and tags.
- A stack created or updated through a change set reports no Outputs: the value of an output a later stack
  needs is read from the deployed template (a literal, or a Ref resolved with describe_stack_resource).
- A change set whose execution fails raises from ExecuteChangeSet and leaves the stack REVIEW_IN_PROGRESS with
  no FAILED event: the error of the call is reported as the reason, and the next run deletes and recreates.
Nothing is ever reported as existing without EC2 saying so.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netgen.aws.generated import (
    MANAGED_KEY,
    MANAGED_VALUE,
    STACK_PREFIX,
    RuleSpec,
    StackPlan,
    is_managed,
    is_owned,
    live_rules,
    load_plan,
    peerings_of,
    replace_refs,
    routes_of,
    rules_of,
)
from netgen.aws.session import Clients, error_text

OK_FINAL = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
RECREATE = {"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"}
LIVE_PEERING = {"initiating-request", "pending-acceptance", "provisioning", "active"}
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
PLACEHOLDER_PCX = "pcx-00000000"
_SYMBOL = {"Add": "+", "Modify": "~", "Remove": "-", "Dynamic": "?", "Import": "+"}
INLINE_TEMPLATE_BYTES = 51_200  # CloudFormation's limit on a template sent inline (TemplateBody)
S3_TEMPLATE_BYTES = 1_048_576  # and on one read from S3 (TemplateURL)
# No dots: a template is read over HTTPS from https://<bucket>.s3.<region>.amazonaws.com, whose certificate
# covers one label only.
_BUCKET_NAME = re.compile(r"^(?!xn--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def template_bucket_for(pattern: str, account: str, region: str) -> str:
    """The S3 bucket named by --template-bucket for a stack: {account} and {region} replaced by the stack's.
    Raises ValueError for a name S3 would refuse, or one with dots."""
    name = pattern.replace("{account}", account).replace("{region}", region)
    if not _BUCKET_NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not an S3 bucket name netgen can use (3-63 lowercase letters, digits and "
                         "hyphens, no dots; placeholders {account} and {region})")
    return name


def _template_bytes(template: dict) -> bytes:
    """A template as deploy sends it: compact JSON."""
    return json.dumps(template, sort_keys=True, separators=(",", ":")).encode()


def template_url(bucket: str, region: str, key: str) -> str:
    """The HTTPS address of an S3 object, in the partition of its bucket's region."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


class StackFailed(Exception):
    def __init__(self, stack: str, reason: str, events: list[str] | None = None):
        super().__init__(reason)
        self.stack, self.reason, self.events = stack, reason, events or []


@dataclass
class DeployReport:
    outcomes: dict[str, str] = field(default_factory=dict)  # stack -> created | updated | no changes | ...
    failures: dict[str, str] = field(default_factory=dict)  # stack -> reason
    repairs: list[str] = field(default_factory=list)  # what settle did through the EC2 API

    @property
    def ok(self) -> bool:
        return not self.failures


def _botocore_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


class Deployer:
    def __init__(self, out: Path, clients: Clients, say: Callable[[str], None], *, dry_run: bool = False,
                 ec2_peering: bool = False, template_bucket: str | None = None, poll_seconds: float = 2.0,
                 timeout_seconds: float = 3600.0):
        self.out, self.clients, self.say = out, clients, say
        self.dry_run, self.ec2_peering = dry_run, ec2_peering
        self.template_bucket = template_bucket  # a pattern, see template_bucket_for
        self.poll, self.timeout = poll_seconds, timeout_seconds
        self.report = DeployReport()
        self._outputs: dict[str, dict[str, str]] = {}
        self._counter = 0

    # -- the run -------------------------------------------------------------------------------------------------

    def run(self, account: str | None = None, region: str | None = None) -> DeployReport:
        errors = _botocore_errors()
        stacks = load_plan(self.out)
        selected = [s for s in stacks if account in (None, s.account, s.account_name) and region in (None, s.region)]
        if not selected:
            self.say("nothing to deploy: no stack of the plan matches --account/--region")
            return self.report
        mode = "dry run: change sets only" if self.dry_run else "deploying"
        self.say(f"{mode}: {len(selected)} of {len(stacks)} stacks")
        for stack in selected:
            try:
                self.deploy_stack(stack, stacks)
            except StackFailed as failed:
                self._fail(failed)
                self.say(f"stopped: {failed.stack} failed; fix it and run 'netgen deploy' again (it resumes)")
                return self.report
            except errors as exc:
                self._fail(StackFailed(stack.name, error_text(exc)))
                self.say(f"stopped: {stack.name} failed; fix it and run 'netgen deploy' again (it resumes)")
                return self.report
        places = sorted({s.place for s in selected})
        wanted = {s.name for s in stacks}
        for place in places:
            try:
                self.remove_stale_stacks(place, wanted)
            except errors as exc:
                self._fail(StackFailed(f"{STACK_PREFIX}* in {place[0]}/{place[1]}", error_text(exc)))
        try:
            self.remove_stale_peerings(places, stacks)
        except errors as exc:
            self._fail(StackFailed("peerings", error_text(exc)))
        return self.report

    def _fail(self, failed: StackFailed) -> None:
        self.report.failures[failed.stack] = failed.reason
        self.report.outcomes[failed.stack] = "failed"
        self.say(f"error: stack {failed.stack} failed: {failed.reason}")
        for event in failed.events:
            self.say(f"  {event}")

    def _repair(self, text: str) -> None:
        self.report.repairs.append(text)
        self.say(f"  {'would repair' if self.dry_run else 'repaired'}: {text}")

    # -- one stack -----------------------------------------------------------------------------------------------

    def deploy_stack(self, stack: StackPlan, stacks: list[StackPlan]) -> None:
        name = stack.name
        self.say(f"== {name} ({stack.account_name} {stack.account}, {stack.region}): {stack.template_path}")
        cfn = self.clients.cloudformation(stack.account, stack.region)
        parameters = self.parameters(stack, stacks)
        # A template that cannot be sent fails here, before any of the stack (or its EC2 peerings) is created.
        self.bucket_for(stack, len(_template_bytes(stack.template)))
        template = copy.deepcopy(stack.template)
        direct: dict[str, str] = {}
        if self.ec2_peering:
            direct = self.ec2_peerings(stack, template)
            for logical in direct:
                del template["Resources"][logical]
            template = replace_refs(template, direct)
        current = self.describe_stack(cfn, name)
        status = current["StackStatus"] if current else None
        if status in RECREATE:
            if self.dry_run:
                self.say(f"  {name} is {status} (a create that failed or never ran): deploy deletes it and "
                         "creates it again")
                self.report.outcomes[name] = "would recreate"
                return
            self.say(f"  {name} is {status} (a create that failed or never ran): deleting it before retrying")
            failed_template = self.deployed_template(cfn, name) or {}
            cfn.delete_stack(StackName=name)
            self.wait_deleted(cfn, name)
            self.settle_removed(stack.account, stack.region, failed_template)
            current, status = None, None
        elif status and (status.endswith("_IN_PROGRESS") or status.endswith("_FAILED")):
            raise StackFailed(name, f"stack is {status}: wait for it to settle, or repair it, then rerun",
                              self.failed_events(cfn, name))
        previous = self.deployed_template(cfn, name) if current else None
        change_type = "UPDATE" if current else "CREATE"
        changes = self.change_set(cfn, stack, template, parameters, change_type)
        if changes is None:
            self.report.outcomes[name] = "no changes"
        elif self.dry_run:
            self.report.outcomes[name] = "planned"
        else:
            cs_name, since = changes, time.time()
            try:
                cfn.execute_change_set(StackName=name, ChangeSetName=cs_name)
            except _botocore_errors() as exc:
                raise StackFailed(name, f"executing change set {cs_name}: {error_text(exc)}",
                                  self.failed_events(cfn, name)) from None
            final = self.wait_stack(cfn, name)
            if final not in OK_FINAL:
                raise StackFailed(name, f"stack is {final}", self.failed_events(cfn, name, since))
            self.report.outcomes[name] = "created" if change_type == "CREATE" else "updated"
            self.say(f"  {name}: {final}")
        if self.dry_run:
            return
        self._outputs.pop(name, None)
        self.settle(stack, cfn, template, previous, parameters, direct)

    def parameters(self, stack: StackPlan, stacks: list[StackPlan]) -> dict[str, str]:
        by_name = {s.name: s for s in stacks}
        values = {}
        for key, source in sorted(stack.parameters.items()):
            src = by_name.get(source["stack"])
            outputs = self.outputs(src) if src else {}
            if source["output"] in outputs:
                values[key] = outputs[source["output"]]
            elif src and (value := self.output_from_template(src, source["output"])):
                values[key] = value
            elif self.dry_run:
                self.say(f"  parameter {key}: {source['stack']} is not deployed yet; the change set uses "
                         f"{PLACEHOLDER_PCX} in its place")
                values[key] = PLACEHOLDER_PCX
            else:
                raise StackFailed(stack.name, f"parameter {key} needs output {source['output']} of stack "
                                              f"{source['stack']}, which has none: deploy that stack first")
        return values

    def outputs(self, stack: StackPlan) -> dict[str, str]:
        if stack.name not in self._outputs:
            described = self.describe_stack(self.clients.cloudformation(stack.account, stack.region), stack.name)
            self._outputs[stack.name] = {o["OutputKey"]: o["OutputValue"]
                                         for o in (described or {}).get("Outputs", [])}
        return self._outputs[stack.name]

    def output_from_template(self, stack: StackPlan, output: str) -> str | None:
        """An output that describe_stacks does not report, read from the deployed template and the stack's
        resources. moto never fills Outputs for a stack created or updated through a change set; on AWS
        describe_stacks has them and this is not reached."""
        cfn = self.clients.cloudformation(stack.account, stack.region)
        if self.describe_stack(cfn, stack.name) is None:
            return None
        value = ((self.deployed_template(cfn, stack.name) or {}).get("Outputs", {}).get(output) or {}).get("Value")
        if isinstance(value, dict) and set(value) == {"Ref"}:
            try:
                value = cfn.describe_stack_resource(StackName=stack.name, LogicalResourceId=value["Ref"])[
                    "StackResourceDetail"].get("PhysicalResourceId")
            except _botocore_errors():
                return None
        if not isinstance(value, str) or not value:
            return None
        self.say(f"  output {output} of {stack.name}: {value}, read from its deployed template and resources "
                 "(describe_stacks reports no such output)")
        return value

    def bucket_for(self, stack: StackPlan, size: int) -> str | None:
        """The bucket a template of this size goes through (None: it is sent inline); StackFailed when it cannot
        be sent at all. Called before anything of the stack is created, and again with its final template."""
        if size <= INLINE_TEMPLATE_BYTES:
            return None
        if size > S3_TEMPLATE_BYTES:
            raise StackFailed(stack.name, f"template is {size} bytes, over CloudFormation's {S3_TEMPLATE_BYTES} "
                                          "even through S3")
        if not self.template_bucket:
            raise StackFailed(stack.name, f"template is {size} bytes, over CloudFormation's "
                                          f"{INLINE_TEMPLATE_BYTES} for an inline template: name an S3 bucket to "
                                          "upload it to with --template-bucket")
        try:
            return template_bucket_for(self.template_bucket, stack.account, stack.region)
        except ValueError as exc:
            raise StackFailed(stack.name, f"--template-bucket: {exc}") from None

    def template_source(self, stack: StackPlan, body: bytes) -> dict[str, str]:
        """How a change set gets the template: inline (TemplateBody) when it fits, else uploaded to the
        --template-bucket under a name of its content's hash, and read from there (TemplateURL)."""
        bucket = self.bucket_for(stack, len(body))
        if bucket is None:
            return {"TemplateBody": body.decode()}
        key = f"netgen/{stack.name}/{hashlib.sha256(body).hexdigest()}.json"
        s3 = self.clients.client("s3", stack.account, stack.region)
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except _botocore_errors() as exc:
            raise StackFailed(stack.name, f"uploading its template to s3://{bucket}/{key}: {error_text(exc)}") from None
        url = template_url(bucket, self.bucket_region(s3, bucket, stack.region), key)
        self.say(f"  template ({len(body)} bytes) uploaded to s3://{bucket}/{key}, read from {url}")
        return {"TemplateURL": url}

    def bucket_region(self, s3: Any, bucket: str, assumed: str) -> str:
        """The region of a bucket, which its HTTPS address names (S3 redirects an address with another region,
        and CloudFormation does not follow). Without s3:GetBucketLocation, assumed: the stack's own."""
        try:
            location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        except _botocore_errors():
            return assumed
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)

    def change_set(self, cfn: Any, stack: StackPlan, template: dict, parameters: dict[str, str],
                   change_type: str) -> str | None:
        """Create and describe a change set; print its changes. Returns its name, or None for "no changes"
        (the empty change set is deleted). In a dry run the change set (and a stack it created) is deleted."""
        self._counter += 1
        cs_name = f"netgen-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{self._counter}"
        source = self.template_source(stack, _template_bytes(template))
        try:
            cfn.create_change_set(StackName=stack.name, ChangeSetName=cs_name, ChangeSetType=change_type,
                                  **source, Description="netgen deploy",
                                  Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                              for k, v in parameters.items()],
                                  Tags=[{"Key": MANAGED_KEY, "Value": MANAGED_VALUE}])
        except _botocore_errors() as exc:
            if any(text in str(exc) for text in NO_CHANGES):  # moto says so here; AWS in a FAILED change set
                self.say("  no changes")
                return None
            raise StackFailed(stack.name, f"creating change set {cs_name}: {error_text(exc)}") from None
        described, changes = self.wait_change_set(cfn, stack.name, cs_name)
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            cfn.delete_change_set(StackName=stack.name, ChangeSetName=cs_name)
            if any(text in reason for text in NO_CHANGES):
                self.say("  no changes")
                return None
            raise StackFailed(stack.name, f"change set {cs_name} failed: {reason}")
        counts: dict[str, int] = {}
        for change in changes:
            rc = change.get("ResourceChange", {})
            action = rc.get("Action", "?")
            counts[action] = counts.get(action, 0) + 1
            replacement = " (replacement)" if rc.get("Replacement") == "True" else ""
            self.say(f"    {_SYMBOL.get(action, '?')} {action:<6} {rc.get('LogicalResourceId')} "
                     f"({rc.get('ResourceType')}){replacement}")
        summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items())) or "no resource changes"
        self.say(f"  change set {cs_name} ({change_type}): {summary}")
        if self.dry_run:
            cfn.delete_change_set(StackName=stack.name, ChangeSetName=cs_name)
            if change_type == "CREATE":  # the change set made an empty stack in REVIEW_IN_PROGRESS
                cfn.delete_stack(StackName=stack.name)
            return cs_name
        return cs_name

    def wait_change_set(self, cfn: Any, stack: str, cs_name: str) -> tuple[dict, list[dict]]:
        deadline = time.time() + self.timeout
        while True:
            described = cfn.describe_change_set(StackName=stack, ChangeSetName=cs_name)
            if described["Status"] in ("CREATE_COMPLETE", "FAILED") or time.time() > deadline:
                break
            time.sleep(self.poll)
        changes = list(described.get("Changes", []))
        token = described.get("NextToken")
        while token:
            page = cfn.describe_change_set(StackName=stack, ChangeSetName=cs_name, NextToken=token)
            changes.extend(page.get("Changes", []))
            token = page.get("NextToken")
        return described, changes

    def describe_stack(self, cfn: Any, name: str) -> dict | None:
        from botocore.exceptions import ClientError

        try:
            stacks = cfn.describe_stacks(StackName=name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return stacks[0] if stacks else None

    def deployed_template(self, cfn: Any, name: str) -> dict | None:
        body = cfn.get_template(StackName=name).get("TemplateBody")
        if isinstance(body, str):
            try:
                return json.loads(body)
            except ValueError:
                return None
        return body

    def wait_stack(self, cfn: Any, name: str) -> str:
        """Poll until the stack settles, printing its new events. Returns the final status."""
        seen: set[str] = set()
        first = True
        start = time.time()
        while True:
            described = self.describe_stack(cfn, name)
            if described is None:  # deleted: a deleted stack is not found by name any more
                return "DELETE_COMPLETE"
            status = described["StackStatus"]
            try:
                events = cfn.describe_stack_events(StackName=described["StackId"]).get("StackEvents", [])
            except _botocore_errors():
                events = []
            for event in reversed(events):
                if event["EventId"] in seen:
                    continue
                seen.add(event["EventId"])
                if first and event is not events[0]:
                    continue  # older operations: show only the newest event of the history
                reason = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                self.say(f"    {event['LogicalResourceId']} {event['ResourceStatus']}{reason}")
            first = False
            if not status.endswith("_IN_PROGRESS"):
                return status
            if time.time() - start > self.timeout:
                return f"{status} (gave up waiting after {int(self.timeout)}s)"
            self.say(f"  waiting for {name}: {status} ({int(time.time() - start)}s)")
            time.sleep(self.poll)

    def wait_deleted(self, cfn: Any, name: str) -> None:
        status = self.wait_stack(cfn, name)
        if status not in ("DELETE_COMPLETE",):
            raise StackFailed(name, f"deleting the stack ended {status}", self.failed_events(cfn, name))

    def failed_events(self, cfn: Any, name: str, since: float | None = None) -> list[str]:
        """The stack events that explain a failure: FAILED events with their reasons, oldest first."""
        try:
            events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
        except _botocore_errors():
            return []
        lines = []
        for event in reversed(events):
            if not str(event.get("ResourceStatus", "")).endswith("FAILED"):
                continue
            if since is not None and event.get("Timestamp") and event["Timestamp"].timestamp() < since - 5:
                continue
            lines.append(f"{event['LogicalResourceId']} ({event.get('ResourceType')}): {event['ResourceStatus']}: "
                         f"{event.get('ResourceStatusReason', 'no reason given')}")
        return lines

    # -- peerings through EC2 (--ec2-peering) --------------------------------------------------------------------

    def ec2_peerings(self, stack: StackPlan, template: dict) -> dict[str, str]:
        """Create (or find) the stack's cross-region and cross-account peerings through the EC2 API."""
        ec2 = self.clients.ec2(stack.account, stack.region)
        ids = {}
        for logical, props in sorted(peerings_of(template).items()):
            peer_region = props.get("PeerRegion", stack.region)
            peer_owner = props.get("PeerOwnerId", stack.account)
            if peer_region == stack.region and peer_owner == stack.account:
                continue
            existing = self.find_peering(ec2, props["VpcId"], props["PeerVpcId"])
            if existing:
                ids[logical] = existing["VpcPeeringConnectionId"]
                continue
            if self.dry_run:
                self.say(f"  peering {logical}: would be created through the EC2 API (--ec2-peering)")
                ids[logical] = PLACEHOLDER_PCX
                continue
            tags = [t for t in props.get("Tags", []) if isinstance(t, dict)] + [
                {"Key": "netgen:logical-id", "Value": logical}]
            pcx = ec2.create_vpc_peering_connection(
                VpcId=props["VpcId"], PeerVpcId=props["PeerVpcId"], PeerRegion=peer_region, PeerOwnerId=peer_owner,
                TagSpecifications=[{"ResourceType": "vpc-peering-connection", "Tags": tags}])["VpcPeeringConnection"]
            ids[logical] = pcx["VpcPeeringConnectionId"]
            self.say(f"  peering {logical}: created {ids[logical]} through the EC2 API (--ec2-peering)")
        return ids

    @staticmethod
    def find_peering(ec2: Any, vpc_id: str, peer_vpc_id: str) -> dict | None:
        answer = ec2.describe_vpc_peering_connections(Filters=[
            {"Name": "requester-vpc-info.vpc-id", "Values": [vpc_id]},
            {"Name": "accepter-vpc-info.vpc-id", "Values": [peer_vpc_id]}])["VpcPeeringConnections"]
        live = [p for p in answer if p["RequesterVpcInfo"]["VpcId"] == vpc_id
                and p["AccepterVpcInfo"]["VpcId"] == peer_vpc_id and p["Status"]["Code"] in LIVE_PEERING]
        return sorted(live, key=lambda p: p["VpcPeeringConnectionId"])[0] if live else None

    # -- settle: the stack against EC2 ---------------------------------------------------------------------------

    def settle(self, stack: StackPlan, cfn: Any, template: dict, previous: dict | None, parameters: dict[str, str],
               direct: dict[str, str]) -> None:
        physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                    for r in cfn.describe_stack_resources(StackName=stack.name).get("StackResources", [])
                    if r.get("LogicalResourceId")}  # moto lists the egress rules it skipped without one
        ids = {**parameters, **physical, **direct}
        resolved = replace_refs(template, ids)
        self.settle_peerings(stack, ids)
        self.settle_rules(stack, rules_of(resolved), rules_of(previous or {}))
        old_routes = {(r.table, r.cidr) for r in routes_of(previous or {})}
        self.settle_routes(stack, routes_of(resolved), old_routes)

    def settle_peerings(self, stack: StackPlan, ids: dict[str, str]) -> None:
        ec2 = self.clients.ec2(stack.account, stack.region)
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
                self._repair(f"tagged peering {pcx_id} ({logical}) {MANAGED_KEY}={MANAGED_VALUE}: the template's "
                             "Tags were not on it")
            status = pcx["Status"]["Code"]
            if status == "active":
                continue
            if status in ("initiating-request", "provisioning", "pending-acceptance"):
                status = self.wait_peering(ec2, pcx_id, ("pending-acceptance", "active"))
            if status == "pending-acceptance":
                accepter = self.clients.ec2(request["accepterAccount"], request["accepterRegion"])
                accepter.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
                self.say(f"  accepted peering {pcx_id} ({logical}) in {request['accepterAccount']} "
                         f"{request['accepterRegion']} through the EC2 API")
                status = self.wait_peering(ec2, pcx_id, ("active",))
            if status != "active":
                raise StackFailed(stack.name, f"peering {logical} ({pcx_id}) is {status}, not active")

    def wait_peering(self, ec2: Any, pcx_id: str, until: tuple[str, ...]) -> str:
        deadline = time.time() + min(self.timeout, 300)
        while True:
            found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
            status = found[0]["Status"]["Code"] if found else "deleted"
            if status in until or status not in LIVE_PEERING or time.time() > deadline:
                return status
            time.sleep(self.poll)

    def settle_rules(self, stack: StackPlan, wanted: list[RuleSpec], previous: list[RuleSpec]) -> None:
        groups = sorted({r.group_id for r in wanted} | {r.group_id for r in previous})
        if not groups:
            return
        ec2 = self.clients.ec2(stack.account, stack.region)
        live = live_rules(ec2, groups)
        by_key = {r.key: r for r in live}
        wanted_keys = {r.key for r in wanted}
        previous_keys = {r.key for r in previous}
        for rule in live:
            if rule.key not in wanted_keys and (is_owned(rule) or rule.key in previous_keys):
                self.revoke(ec2, rule)
                self._repair(f"revoked {rule} ('{rule.description}'): no longer in the template, but still in EC2")
        for rule in wanted:
            have = by_key.get(rule.key)
            if have is None:
                authorize = (ec2.authorize_security_group_ingress if rule.direction == "ingress"
                             else ec2.authorize_security_group_egress)
                authorize(GroupId=rule.group_id, IpPermissions=[rule.permission()])
                self._repair(f"authorized {rule}: in the template, missing in EC2")
            elif have.description != rule.description:
                update = (ec2.update_security_group_rule_descriptions_ingress if rule.direction == "ingress"
                          else ec2.update_security_group_rule_descriptions_egress)
                update(GroupId=rule.group_id, IpPermissions=[rule.permission()])
                self._repair(f"described {rule} as '{rule.description}' (was '{have.description}')")

    @staticmethod
    def revoke(ec2: Any, rule: RuleSpec) -> None:
        rule_id = rule.rule_id  # revoking by id removes exactly that rule
        revoke = ec2.revoke_security_group_ingress if rule.direction == "ingress" else ec2.revoke_security_group_egress
        if rule_id:
            revoke(GroupId=rule.group_id, SecurityGroupRuleIds=[rule_id])
        else:
            revoke(GroupId=rule.group_id, IpPermissions=[rule.permission()])

    def settle_routes(self, stack: StackPlan, wanted: list, old_routes: set[tuple[str, str]]) -> None:
        tables = sorted({r.table for r in wanted} | {t for t, _ in old_routes})
        if not tables:
            return
        ec2 = self.clients.ec2(stack.account, stack.region)
        live: dict[tuple[str, str], dict] = {}
        for table in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
            for route in table.get("Routes", []):
                if route.get("DestinationCidrBlock"):
                    live[(table["RouteTableId"], route["DestinationCidrBlock"])] = route
        wanted_keys = {(r.table, r.cidr) for r in wanted}
        for (table, cidr), route in sorted(live.items()):
            if (table, cidr) in old_routes and (table, cidr) not in wanted_keys and route.get("VpcPeeringConnectionId"):
                ec2.delete_route(RouteTableId=table, DestinationCidrBlock=cidr)
                self._repair(f"deleted route {table} {cidr} -> {route['VpcPeeringConnectionId']}: no longer in the "
                             "template, but still in EC2")
        for route in wanted:
            have = live.get((route.table, route.cidr))
            target = str(route.target)
            if have is None:
                ec2.create_route(RouteTableId=route.table, DestinationCidrBlock=route.cidr,
                                 VpcPeeringConnectionId=target)
                self._repair(f"created route {route.table} {route.cidr} -> {target}: in the template, missing in EC2")
            elif have.get("VpcPeeringConnectionId") != target:
                ec2.replace_route(RouteTableId=route.table, DestinationCidrBlock=route.cidr,
                                  VpcPeeringConnectionId=target)
                was = have.get("VpcPeeringConnectionId") or have.get("GatewayId") or "?"
                self._repair(f"pointed route {route.table} {route.cidr} at {target} (was {was})")

    # -- what the plan no longer has -----------------------------------------------------------------------------

    def remove_stale_stacks(self, place: tuple[str, str], wanted: set[str]) -> None:
        account, region = place
        cfn = self.clients.cloudformation(account, region)
        names = []
        for page in cfn.get_paginator("list_stacks").paginate():
            for summary in page.get("StackSummaries", []):
                name = summary["StackName"]
                if (summary["StackStatus"] != "DELETE_COMPLETE" and name.startswith(STACK_PREFIX)
                        and name not in wanted):
                    names.append(name)
        for name in sorted(set(names)):
            described = self.describe_stack(cfn, name)
            if not described or not is_managed(described):
                continue
            if self.dry_run:
                self.say(f"== {name}: no longer in the plan; deploy deletes it")
                self.report.outcomes[name] = "would delete"
                continue
            self.say(f"== {name}: no longer in the plan, deleting it")
            try:
                previous = self.deployed_template(cfn, name) or {}
                cfn.delete_stack(StackName=name)
                self.wait_deleted(cfn, name)
                self.report.outcomes[name] = "deleted"
                self.settle_removed(account, region, previous)
            except StackFailed as failed:
                self._fail(failed)
            except _botocore_errors() as exc:
                self._fail(StackFailed(name, error_text(exc)))

    def settle_removed(self, account: str, region: str, previous: dict) -> None:
        """After deleting a stack: what its template declared must be gone from EC2."""
        rules = rules_of(previous)
        ec2 = self.clients.ec2(account, region)
        if rules:
            keys = {r.key for r in rules}
            for rule in live_rules(ec2, sorted({r.group_id for r in rules})):
                if rule.key in keys:
                    self.revoke(ec2, rule)
                    self._repair(f"revoked {rule}: its stack is deleted, but the rule was still in EC2")
        routes = routes_of(previous)
        if routes:
            tables = sorted({r.table for r in routes})
            keys = {(r.table, r.cidr) for r in routes}
            for table in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]:
                for route in table.get("Routes", []):
                    key = (table["RouteTableId"], route.get("DestinationCidrBlock"))
                    if key in keys and route.get("VpcPeeringConnectionId"):
                        ec2.delete_route(RouteTableId=key[0], DestinationCidrBlock=key[1])
                        self._repair(f"deleted route {key[0]} {key[1]}: its stack is deleted, but the route was "
                                     "still in EC2")

    def remove_stale_peerings(self, places: list[tuple[str, str]], stacks: list[StackPlan]) -> None:
        wanted = {(str(p.get("VpcId")), str(p.get("PeerVpcId"))) for s in stacks
                  for p in peerings_of(s.template).values()}
        for account, region in places:
            ec2 = self.clients.ec2(account, region)
            answer = ec2.describe_vpc_peering_connections(
                Filters=[{"Name": f"tag:{MANAGED_KEY}", "Values": [MANAGED_VALUE]}])["VpcPeeringConnections"]
            for pcx in sorted(answer, key=lambda p: p["VpcPeeringConnectionId"]):
                req, acc = pcx["RequesterVpcInfo"], pcx["AccepterVpcInfo"]
                if (not is_managed(pcx) or pcx["Status"]["Code"] not in LIVE_PEERING
                        or req.get("OwnerId", account) != account or req.get("Region", region) != region
                        or (req["VpcId"], acc["VpcId"]) in wanted):
                    continue
                pcx_id = pcx["VpcPeeringConnectionId"]
                if self.dry_run:
                    self.say(f"== peering {pcx_id} ({req['VpcId']} <-> {acc['VpcId']}): no template has it; deploy "
                             "deletes it")
                    continue
                ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
                self.say(f"== peering {pcx_id} ({req['VpcId']} <-> {acc['VpcId']}): no template has it, deleted")
                self.report.outcomes[pcx_id] = "deleted"


def deploy(out: Path, clients: Clients, say: Callable[[str], None], *, account: str | None = None,
           region: str | None = None, dry_run: bool = False, ec2_peering: bool = False,
           template_bucket: str | None = None, poll_seconds: float = 2.0) -> DeployReport:
    return Deployer(out, clients, say, dry_run=dry_run, ec2_peering=ec2_peering, template_bucket=template_bucket,
                    poll_seconds=poll_seconds).run(account, region)
