"""`netgen deploy`: apply generated/aws through CloudFormation change sets, at the speed of the deploy plan's
dependency graph.

A run, in order:

1. preflight.py: checks before any change (credentials of the right accounts, quotas, template buckets,
   peerings and routes that already exist and would collide); any problem stops the run before it changes
   anything. `--skip-preflight` leaves it out.
2. scheduler.py: every stack of the plan (optionally only one account and/or region) as soon as the stacks it
   takes parameters from are done, several at once per account and region; a failed stack skips its dependents
   and nothing else.
3. stack.py, for each stack: parameters from the outputs of the stacks the plan names; a stack whose digest
   (state.py: template and parameters, a tag on the stack) is what is deployed is `unchanged`, with no change
   set (`--full` makes one anyway); moved_transit.py first removes, in an update of its own, static transit
   gateway routes that move (same destination, another attachment or logical id); adopt.py (and
   adopt_transit.py) leaves identical live rules and routes in place; lifecycle.py
   creates, prints and executes the change set (CREATE, or UPDATE; a stack left ROLLBACK_COMPLETE or
   REVIEW_IN_PROGRESS by a failed create is deleted first, so a rerun resumes); settle.py then checks the
   stack against EC2 and repairs what differs, in the open (settle_transit.py: static gateway routes).
4. cleanup.py, when nothing failed: netgen stacks the plan no longer has (in the places of the run's stacks,
   and of the inventory where the credentials are the account's), and netgen peerings no template wants, are
   deleted.

moto.py holds the workarounds for the AWS endpoint of the tests. console.py prints it all (text or JSON
lines) and keeps the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from netgen.aws.deploy.cleanup import clean_up
from netgen.aws.deploy.console import Console, DeployReport
from netgen.aws.deploy.context import DEFAULT_CONCURRENCY, Context, Options, StackFailed
from netgen.aws.deploy.lifecycle import template_bucket_for
from netgen.aws.deploy.preflight import preflight
from netgen.aws.deploy.scheduler import schedule
from netgen.aws.deploy.state import LiveStacks
from netgen.aws.generated import existing_peerings, load_plan, plan_gateways

__all__ = ["DEFAULT_CONCURRENCY", "Console", "DeployReport", "Options", "StackFailed", "deploy",
           "template_bucket_for"]


def deploy(out: Path, clients, console: Console, options: Options, *, account: str | None = None,
           region: str | None = None, places: Iterable[tuple[str, str, str]] = ()) -> DeployReport:
    """places: (account id, account name, region) of the inventory (generated.inventory_places), where cleanup
    looks for stacks the plan no longer has besides the places of the plan's stacks."""
    stacks, existing, gateways = load_plan(out), existing_peerings(out), plan_gateways(out)

    def chosen(account_id: str, account_name: str, where: str) -> bool:
        return account in (None, account_id, account_name) and region in (None, where)

    selected = [s for s in stacks if chosen(s.account, s.account_name, s.region)]
    planned = {s.place for s in selected}
    inventory_only = frozenset({(a, r) for a, name, r in places if chosen(a, name, r)} - planned)
    where = sorted(planned | inventory_only)
    ctx = Context(clients, console, options, LiveStacks(clients))
    if not where:
        console.say("nothing to deploy: no stack of the plan (and no place of the inventory) matches "
                    "--account/--region" if account or region else "nothing to deploy: the plan has no stack")
        return console.report
    if selected:
        mode = "dry run: change sets only" if options.dry_run else "deploying"
        console.say(f"{mode}: {len(selected)} of {len(stacks)} stacks, up to {options.concurrency} at once per "
                    "account and region")
        if not options.skip_preflight and not _preflight(ctx, selected, stacks, existing, gateways):
            return console.report
        schedule(ctx, selected, stacks)
    else:
        console.say("no stack of the plan matches --account/--region: only stacks and peerings no longer in the plan "
                    "are removed")
    if console.report.failures:
        console.say("stacks and peerings no longer in the plan are left for a run without failures")
    else:
        clean_up(ctx, where, stacks, existing, inventory_only)
    return console.report


def _preflight(ctx: Context, selected, stacks, existing, gateways) -> bool:
    say: Callable[[str], None] = ctx.console.say
    found = preflight(ctx, selected, stacks, existing, gateways)
    for note in found.notes:
        say(f"preflight: note: {note}")
    for where, problem in found.problems:
        ctx.console.problem(f"preflight: {where}", problem)
    if found.problems:
        say(f"preflight found {len(found.problems)} problem(s); nothing was changed")
        return False
    say("preflight: ok")
    return True
