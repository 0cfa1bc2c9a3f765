"""The plan, run at the speed of its dependency graph: every stack starts as soon as the stacks it takes
parameters from are done, up to `concurrency` at once in each account and region (CloudFormation throttles per
account and region; botocore's adaptive retries absorb the rest). A stack that fails fails the stacks that
depend on it, reported as skipped with the reason, never the independent ones."""

from __future__ import annotations

from collections import defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from netgen.aws.deploy.context import Context
from netgen.aws.deploy.stack import Outputs, run_stack
from netgen.aws.generated import StackPlan

MAX_THREADS = 64


def schedule(ctx: Context, selected: list[StackPlan], stacks: list[StackPlan]) -> None:
    by_name = {s.name: s for s in stacks}
    chosen = {s.name for s in selected}
    # Only dependencies inside this run are waited for: a stack outside it (--account, --region) must be
    # deployed already, and its outputs are read as they are.
    waiting_on: dict[str, set[str] | None] = {s.name: {d for d in s.depends_on if d in chosen} for s in selected}
    dependents: dict[str, list[str]] = defaultdict(list)
    for name, deps in waiting_on.items():
        for dep in deps:
            dependents[dep].append(name)
    ready: dict[tuple[str, str], deque[str]] = defaultdict(deque)
    for stack in selected:  # plan order
        if not waiting_on[stack.name]:
            ready[stack.place].append(stack.name)
    running: dict[Future, StackPlan] = {}
    busy: dict[tuple[str, str], int] = defaultdict(int)
    left, finished, failed = len(selected), 0, 0
    outputs = Outputs(ctx)
    limit = max(1, ctx.options.concurrency)
    places = len({s.place for s in selected})
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, limit * places)) as pool:
        while left:
            for place, queue in ready.items():
                while queue and busy[place] < limit:
                    stack = by_name[queue.popleft()]
                    busy[place] += 1
                    running[pool.submit(run_stack, ctx, outputs, stack, by_name)] = stack
            ctx.console.progress(finished, len(running), failed, left - len(running))
            if not running:  # what is left waits on something that never finishes (a plan edited by hand)
                for name, deps in waiting_on.items():
                    if deps:
                        ctx.console.outcome(name, "skipped", f"waits on {', '.join(sorted(deps))}, which never "
                                                             "finished (a cycle in the plan?)")
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                stack = running.pop(future)
                busy[stack.place] -= 1
                left -= 1
                finished += 1
                if future.result():
                    for name in dependents[stack.name]:
                        if waiting_on[name] is None:  # skipped: another of its dependencies failed
                            continue
                        waiting_on[name].discard(stack.name)
                        if not waiting_on[name]:
                            ready[by_name[name].place].append(name)
                    continue
                failed += 1
                for name in _downstream(stack.name, dependents):
                    if waiting_on[name] is not None:
                        waiting_on[name] = None  # never ready
                        left -= 1
                        ctx.console.outcome(name, "skipped", f"depends on {stack.name}, which failed")
    ctx.console.progress(finished, 0, failed, 0)


def _downstream(name: str, dependents: dict[str, list[str]]) -> list[str]:
    """Every stack that depends on this one, directly or through others, in breadth-first order."""
    seen: dict[str, None] = {}
    queue = deque(dependents[name])
    while queue:
        current = queue.popleft()
        if current not in seen:
            seen[current] = None
            queue.extend(dependents[current])
    return list(seen)
