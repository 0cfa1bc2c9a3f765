"""One stack of the plan, start to end: its parameters, whether it changed, adoption, the change set, settle."""

from __future__ import annotations

import copy
import threading
import traceback

from netgen.aws.deploy import lifecycle
from netgen.aws.deploy.adopt import adopt
from netgen.aws.deploy.context import Context, StackFailed, botocore_errors
from netgen.aws.deploy.moto import PLACEHOLDER_PCX, ec2_peerings, output_from_template
from netgen.aws.deploy.moved_transit import remove_moved_routes
from netgen.aws.deploy.settle import settle
from netgen.aws.deploy.state import UNSETTLED, digest
from netgen.aws.generated import StackPlan, deployed_template, replace_refs
from netgen.aws.session import error_text

RECREATE = {"ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"}


class Outputs:
    """Stack outputs as later stacks' parameters need them: from the live stacks (one DescribeStacks per place),
    else from the deployed template (moto.output_from_template), cached per run."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._from_template: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def get(self, stack: StackPlan, output: str) -> str | None:
        live = self.ctx.live.get(stack.account, stack.region, stack.name)
        if live is None:
            return None
        if output in live.outputs:
            return live.outputs[output]
        key = (stack.name, output)
        with self._lock:
            known = key in self._from_template
        if not known:
            value = output_from_template(self.ctx, stack, output)
            with self._lock:
                self._from_template[key] = value
            if value:
                self.ctx.say(f"output {output}: {value}, read from the deployed template and resources "
                             "(DescribeStacks reports no such output)", stack.name)
        return self._from_template[key]

    def forget(self, stack: StackPlan) -> None:
        with self._lock:
            for key in [k for k in self._from_template if k[0] == stack.name]:
                del self._from_template[key]


def parameters(ctx: Context, outputs: Outputs, stack: StackPlan, by_name: dict[str, StackPlan]) -> dict[str, str]:
    values = {}
    for key, source in sorted(stack.parameters.items()):
        src = by_name.get(source["stack"])
        value = outputs.get(src, source["output"]) if src else None
        if value:
            values[key] = value
        elif ctx.options.dry_run:
            ctx.say(f"parameter {key}: {source['stack']} is not deployed yet; the change set uses {PLACEHOLDER_PCX} "
                    "in its place", stack.name)
            values[key] = PLACEHOLDER_PCX
        else:
            raise StackFailed(stack.name, f"parameter {key} needs output {source['output']} of stack "
                                          f"{source['stack']}, which has none: deploy that stack first")
    return values


def deploy_stack(ctx: Context, outputs: Outputs, stack: StackPlan, by_name: dict[str, StackPlan]) -> str:
    """Deploy one stack; its outcome (created, updated, unchanged, ...). Raises StackFailed."""
    name = stack.name
    cfn = ctx.clients.cloudformation(stack.account, stack.region)
    values = parameters(ctx, outputs, stack, by_name)
    wanted = digest(stack.template, values)
    live = ctx.live.get(stack.account, stack.region, name)
    if live is not None and live.is_current(wanted) and not ctx.options.full:
        return "unchanged"  # what is deployed was deployed from this template with these parameters
    ctx.say(f"{stack.account_name} {stack.account}, {stack.region}: {stack.template_path}", name)
    # A template that cannot be sent fails here, before any of the stack (or its EC2 peerings) is created.
    lifecycle.bucket_for(ctx, stack, len(lifecycle.template_bytes(stack.template)))
    template = copy.deepcopy(stack.template)
    direct: dict[str, str] = {}
    if ctx.options.ec2_peering:
        direct = ec2_peerings(ctx, stack, template)
        for logical in direct:
            del template["Resources"][logical]
        template = replace_refs(template, direct)
    status = live.status if live else None
    if status in RECREATE:
        if ctx.options.dry_run:
            ctx.say(f"{name} is {status} (a create that failed or never ran): deploy deletes it and creates it "
                    "again", name)
            return "would recreate"
        # Nothing is revoked here: on AWS the failed create has rolled its resources back already, so a live rule
        # identical to the template's is someone else's; what moto leaves behind is adopted below like it.
        ctx.say(f"{name} is {status} (a create that failed or never ran): deleting it before retrying", name)
        lifecycle.delete_stack(ctx, cfn, name)
        ctx.live.update(stack.account, stack.region, name, None)
        live, status = None, None
    elif status and (status.endswith("_IN_PROGRESS") or status.endswith("_FAILED")):
        raise StackFailed(name, f"stack is {status}: wait for it to settle, or repair it, then rerun",
                          lifecycle.failed_events(cfn, name))
    previous = deployed_template(cfn, name) if live else None
    if live is not None and previous is not None:
        previous = remove_moved_routes(ctx, cfn, stack, live, previous, template)
    ids = {**values, **direct}
    to_send, adopted = adopt(ctx, stack, template, previous, ids)
    change_type = "UPDATE" if live else "CREATE"
    tags = lifecycle.stack_tags(wanted, live.raw.get("Tags") if live else None)
    cs_name = lifecycle.change_set(ctx, cfn, stack, to_send, values, change_type, tags)
    if ctx.options.dry_run:
        return "planned" if cs_name else "no changes"
    if cs_name is None:
        outcome = "no changes"
    else:
        final = lifecycle.execute(ctx, cfn, stack, cs_name)
        ctx.say(final, name)
        outcome = "created" if change_type == "CREATE" else "updated"
    described = lifecycle.describe_stack(cfn, name)
    if described is not None:
        described = lifecycle.ensure_digest_tag(ctx, cfn, stack, described, wanted)
    ctx.live.update(stack.account, stack.region, name, described)
    outputs.forget(stack)
    try:
        settle(ctx, stack, cfn, template, previous, ids, adopted)
    except (StackFailed, *botocore_errors()):
        if described is not None:  # so that the next run deploys and settles it again rather than skip it
            try:
                lifecycle.ensure_digest_tag(ctx, cfn, stack, described, UNSETTLED)
            except (StackFailed, *botocore_errors()) as exc:
                ctx.say(f"could not mark the stack unsettled ({exc}): run 'netgen deploy --full'", name)
        raise
    return outcome


def run_stack(ctx: Context, outputs: Outputs, stack: StackPlan, by_name: dict[str, StackPlan]) -> bool:
    """deploy_stack with its outcome reported; False when the stack failed."""
    try:
        outcome = deploy_stack(ctx, outputs, stack, by_name)
    except StackFailed as failed:
        ctx.console.outcome(stack.name, "failed", failed.reason, failed.events)
        return False
    except botocore_errors() as exc:
        ctx.console.outcome(stack.name, "failed", error_text(exc))
        return False
    except Exception as exc:  # a bug, or an answer netgen does not expect: this stack fails, the run goes on
        ctx.console.outcome(stack.name, "failed", f"unexpected {type(exc).__name__}: {exc}",
                            traceback.format_exc().splitlines())
        return False
    ctx.console.outcome(stack.name, outcome)
    return True
