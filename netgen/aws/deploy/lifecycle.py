"""One stack's CloudFormation change-set lifecycle: where its template comes from (inline or S3), the change
set (created, described, printed, executed or deleted), waiting for the stack, and the events that explain a
failure."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from typing import Any

from netgen.aws.deploy.context import Context, StackFailed, botocore_errors
from netgen.aws.deploy.moto import retag
from netgen.aws.deploy.state import DIGEST_TAG, OK_FINAL
from netgen.aws.generated import MANAGED_KEY, MANAGED_VALUE, StackPlan, tag_value
from netgen.aws.session import error_text

NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_SYMBOL = {"Add": "+", "Modify": "~", "Remove": "-", "Dynamic": "?", "Import": "+"}
INLINE_TEMPLATE_BYTES = 51_200  # CloudFormation's limit on a template sent inline (TemplateBody)
S3_TEMPLATE_BYTES = 1_048_576  # and on one read from S3 (TemplateURL)
# No dots: a template is read over HTTPS from https://<bucket>.s3.<region>.amazonaws.com, whose certificate
# covers one label only.
_BUCKET_NAME = re.compile(r"^(?!xn--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_CHANGE_SETS = itertools.count(1)  # change-set names unique within a run, across threads


def template_bucket_for(pattern: str, account: str, region: str) -> str:
    """The S3 bucket named by --template-bucket for a stack: {account} and {region} replaced by the stack's.
    Raises ValueError for a name S3 would refuse, or one with dots."""
    name = pattern.replace("{account}", account).replace("{region}", region)
    if not _BUCKET_NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not an S3 bucket name netgen can use (3-63 lowercase letters, digits and "
                         "hyphens, no dots; placeholders {account} and {region})")
    return name


def template_bytes(template: dict) -> bytes:
    """A template as deploy sends it: compact JSON."""
    return json.dumps(template, sort_keys=True, separators=(",", ":")).encode()


def template_url(bucket: str, region: str, key: str) -> str:
    """The HTTPS address of an S3 object, in the partition of its bucket's region."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{suffix}/{key}"


def bucket_for(ctx: Context, stack: StackPlan, size: int) -> str | None:
    """The bucket a template of this size goes through (None: it is sent inline); StackFailed when it cannot be
    sent at all. Called before anything of the stack is created, and again with its final template."""
    if size <= INLINE_TEMPLATE_BYTES:
        return None
    if size > S3_TEMPLATE_BYTES:
        raise StackFailed(stack.name, f"template is {size} bytes, over CloudFormation's {S3_TEMPLATE_BYTES} even "
                                      "through S3")
    if not ctx.options.template_bucket:
        raise StackFailed(stack.name, f"template is {size} bytes, over CloudFormation's {INLINE_TEMPLATE_BYTES} "
                                      "for an inline template: name an S3 bucket to upload it to with "
                                      "--template-bucket")
    try:
        return template_bucket_for(ctx.options.template_bucket, stack.account, stack.region)
    except ValueError as exc:
        raise StackFailed(stack.name, f"--template-bucket: {exc}") from None


def template_source(ctx: Context, stack: StackPlan, body: bytes) -> dict[str, str]:
    """How a change set gets the template: inline (TemplateBody) when it fits, else uploaded to the
    --template-bucket under a name of its content's hash, and read from there (TemplateURL)."""
    bucket = bucket_for(ctx, stack, len(body))
    if bucket is None:
        return {"TemplateBody": body.decode()}
    key = f"netgen/{stack.name}/{hashlib.sha256(body).hexdigest()}.json"
    s3 = ctx.clients.client("s3", stack.account, stack.region)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except botocore_errors() as exc:
        raise StackFailed(stack.name, f"uploading its template to s3://{bucket}/{key}: {error_text(exc)}") from None
    url = template_url(bucket, bucket_region(s3, bucket, stack.region), key)
    ctx.say(f"template ({len(body)} bytes) uploaded to s3://{bucket}/{key}, read from {url}", stack.name)
    return {"TemplateURL": url}


def bucket_region(s3: Any, bucket: str, assumed: str) -> str:
    """The region of a bucket, which its HTTPS address names (S3 redirects an address with another region, and
    CloudFormation does not follow). Without s3:GetBucketLocation, assumed: the stack's own."""
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except botocore_errors():
        return assumed
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def stack_tags(digest: str, current: list[dict] | None = None) -> list[dict[str, str]]:
    """netgen's tags with the digest, beside the tags a team put on the stack (a stack's tags are replaced whole)."""
    others = [t for t in current or [] if t.get("Key") not in (MANAGED_KEY, DIGEST_TAG)]
    return others + [{"Key": MANAGED_KEY, "Value": MANAGED_VALUE}, {"Key": DIGEST_TAG, "Value": digest}]


def change_set(ctx: Context, cfn: Any, stack: StackPlan, template: dict, parameters: dict[str, str],
               change_type: str, tags: list[dict[str, str]]) -> str | None:
    """Create and describe a change set; print its changes. Returns its name, or None for "no changes" (the
    empty change set is deleted). In a dry run the change set (and a stack it created) is deleted."""
    cs_name = f"netgen-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{next(_CHANGE_SETS)}"
    source = template_source(ctx, stack, template_bytes(template))
    try:
        cfn.create_change_set(StackName=stack.name, ChangeSetName=cs_name, ChangeSetType=change_type, **source,
                              Description="netgen deploy",
                              Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                              Tags=tags)
    except botocore_errors() as exc:
        if any(text in str(exc) for text in NO_CHANGES):  # moto says so here; AWS in a FAILED change set
            return None
        raise StackFailed(stack.name, f"creating change set {cs_name}: {error_text(exc)}") from None
    described, changes = wait_change_set(ctx, cfn, stack.name, cs_name)
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        cfn.delete_change_set(StackName=stack.name, ChangeSetName=cs_name)
        if any(text in reason for text in NO_CHANGES):
            return None
        raise StackFailed(stack.name, f"change set {cs_name} failed: {reason}")
    counts: dict[str, int] = {}
    for change in changes:
        rc = change.get("ResourceChange", {})
        action = rc.get("Action", "?")
        counts[action] = counts.get(action, 0) + 1
        replacement = " (replacement)" if rc.get("Replacement") == "True" else ""
        ctx.say(f"  {_SYMBOL.get(action, '?')} {action:<6} {rc.get('LogicalResourceId')} "
                f"({rc.get('ResourceType')}){replacement}", stack.name)
    summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items())) or "no resource changes"
    ctx.say(f"change set {cs_name} ({change_type}): {summary}", stack.name)
    if ctx.options.dry_run:
        cfn.delete_change_set(StackName=stack.name, ChangeSetName=cs_name)
        if change_type == "CREATE":  # the change set made an empty stack in REVIEW_IN_PROGRESS
            cfn.delete_stack(StackName=stack.name)
    return cs_name


def wait_change_set(ctx: Context, cfn: Any, stack: str, cs_name: str) -> tuple[dict, list[dict]]:
    deadline = time.time() + ctx.options.timeout_seconds
    while True:
        described = cfn.describe_change_set(StackName=stack, ChangeSetName=cs_name)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            break
        if time.time() > deadline:
            raise StackFailed(stack, f"change set {cs_name} is still {described['Status']} after "
                                     f"{int(ctx.options.timeout_seconds)}s")
        time.sleep(ctx.options.poll_seconds)
    changes = list(described.get("Changes", []))
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(StackName=stack, ChangeSetName=cs_name, NextToken=token)
        changes.extend(page.get("Changes", []))
        token = page.get("NextToken")
    return described, changes


def execute(ctx: Context, cfn: Any, stack: StackPlan, cs_name: str) -> str:
    """Execute a change set and wait for the stack; StackFailed with the FAILED events unless it settles well."""
    since = time.time()
    try:
        cfn.execute_change_set(StackName=stack.name, ChangeSetName=cs_name)
    except botocore_errors() as exc:
        raise StackFailed(stack.name, f"executing change set {cs_name}: {error_text(exc)}",
                          failed_events(cfn, stack.name)) from None
    final = wait_stack(ctx, cfn, stack.name)
    if final not in OK_FINAL:
        raise StackFailed(stack.name, f"stack is {final}", failed_events(cfn, stack.name, since))
    return final


def describe_stack(cfn: Any, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


def wait_stack(ctx: Context, cfn: Any, name: str) -> str:
    """Poll until the stack settles, printing its new events. Returns the final status."""
    seen: set[str] = set()
    first = True
    start = time.time()
    while True:
        described = describe_stack(cfn, name)
        if described is None:  # deleted: a deleted stack is not found by name any more
            return "DELETE_COMPLETE"
        status = described["StackStatus"]
        events: list[dict] = []
        # A stack already settled at the first look (moto) has no progress to show: a request per stack saved.
        if not first or status.endswith("_IN_PROGRESS"):
            try:
                events = cfn.describe_stack_events(StackName=described["StackId"]).get("StackEvents", [])
            except botocore_errors():
                pass
        for event in reversed(events):
            if event["EventId"] in seen:
                continue
            seen.add(event["EventId"])
            if first and event is not events[0]:
                continue  # older operations: show only the newest event of the history
            reason = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            ctx.say(f"  {event['LogicalResourceId']} {event['ResourceStatus']}{reason}", name)
        first = False
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.time() - start > ctx.options.timeout_seconds:
            return f"{status} (gave up waiting after {int(ctx.options.timeout_seconds)}s)"
        ctx.say(f"waiting: {status} ({int(time.time() - start)}s)", name)
        time.sleep(ctx.options.poll_seconds)


def delete_stack(ctx: Context, cfn: Any, name: str) -> None:
    cfn.delete_stack(StackName=name)
    status = wait_stack(ctx, cfn, name)
    if status != "DELETE_COMPLETE":
        raise StackFailed(name, f"deleting the stack ended {status}", failed_events(cfn, name))


def failed_events(cfn: Any, name: str, since: float | None = None) -> list[str]:
    """The stack events that explain a failure: FAILED events with their reasons, oldest first."""
    try:
        events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
    except botocore_errors():
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


def ensure_digest_tag(ctx: Context, cfn: Any, stack: StackPlan, described: dict, digest: str) -> dict:
    """Put this digest on a stack whose tags say otherwise: a stack deployed before netgen kept digests whose
    change set was empty, one whose UPDATE change set left its tags as they were (moto), or one whose settle
    failed (UNSETTLED, so that the next run deploys and settles it again). UpdateStack with the previous template
    changes the tags only. Returns the stack as described afterwards."""
    if tag_value(described, DIGEST_TAG) == digest:
        return described
    parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                  for p in described.get("Parameters", []) or []]
    tags = stack_tags(digest, described.get("Tags"))
    try:
        cfn.update_stack(StackName=stack.name, UsePreviousTemplate=True, Parameters=parameters, Tags=tags)
    except botocore_errors() as exc:
        if not any(text in str(exc) for text in NO_CHANGES):
            raise
        retag(ctx, cfn, stack, parameters, tags)
    final = wait_stack(ctx, cfn, stack.name)
    if final not in OK_FINAL:
        raise StackFailed(stack.name, f"updating the stack's tags ended {final}", failed_events(cfn, stack.name))
    return describe_stack(cfn, stack.name) or described
