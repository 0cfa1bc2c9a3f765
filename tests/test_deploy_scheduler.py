"""The deploy scheduler and digest alone (no AWS): order, concurrency per account and region, failures, skips.

run_stack is replaced by a stand-in that records when each stack starts and ends; everything else is the real
scheduler (netgen/aws/deploy/scheduler.py) and console."""

from __future__ import annotations

import threading
import time

import pytest

from netgen.aws.deploy import scheduler
from netgen.aws.deploy.console import Console
from netgen.aws.deploy.context import Context, Options
from netgen.aws.deploy.state import LiveStacks, digest
from netgen.aws.generated import StackPlan


def plan(*specs: tuple[str, str, list[str]]) -> list[StackPlan]:
    """(name, place 'account/region', dependsOn) -> StackPlan records."""
    return [StackPlan(name, place.split("/")[0], place.split("/")[0], place.split("/")[1], f"{name}.json", {}, {},
                      [], deps) for name, place, deps in specs]


class Recorder:
    def __init__(self, failing: set[str] = frozenset(), seconds: float = 0.02):
        self.failing, self.seconds = failing, seconds
        self.lock = threading.Lock()
        self.running: dict[tuple[str, str], int] = {}
        self.most: dict[tuple[str, str], int] = {}
        self.events: list[tuple[str, str]] = []

    def __call__(self, ctx, outputs, stack, by_name) -> bool:
        with self.lock:
            self.events.append(("start", stack.name))
            self.running[stack.place] = self.running.get(stack.place, 0) + 1
            self.most[stack.place] = max(self.most.get(stack.place, 0), self.running[stack.place])
        time.sleep(self.seconds)
        with self.lock:
            self.running[stack.place] -= 1
            self.events.append(("end", stack.name))
        ok = stack.name not in self.failing
        ctx.console.outcome(stack.name, "created" if ok else "failed", "" if ok else "boom")
        return ok


def run(stacks: list[StackPlan], recorder: Recorder, monkeypatch: pytest.MonkeyPatch, concurrency: int = 2):
    monkeypatch.setattr(scheduler, "run_stack", recorder)
    lines: list[str] = []
    console = Console("text", lines.append)
    ctx = Context(None, console, Options(concurrency=concurrency), LiveStacks(None))
    scheduler.schedule(ctx, stacks, stacks)
    return console.report


def test_dependencies_finish_before_their_dependents_start(monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = plan(("a", "1/r", []), ("b", "1/r", ["a"]), ("c", "2/r", ["b"]), ("d", "2/r", []))
    recorder = Recorder()
    report = run(stacks, recorder, monkeypatch)
    position = {event: i for i, event in enumerate(recorder.events)}
    assert position[("end", "a")] < position[("start", "b")]
    assert position[("end", "b")] < position[("start", "c")]
    assert position[("start", "d")] < position[("end", "a")]  # independent: runs from the start
    assert report.outcomes == {"a": "created", "b": "created", "c": "created", "d": "created"}


def test_concurrency_is_bounded_per_account_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = plan(*[(f"s{i}", f"{i % 2}/r", []) for i in range(12)])
    recorder = Recorder()
    run(stacks, recorder, monkeypatch, concurrency=3)
    assert recorder.most == {("0", "r"): 3, ("1", "r"): 3}


def test_a_failure_skips_its_dependents_transitively_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = plan(("net", "1/r", []), ("mid", "1/r", ["net"]), ("leaf", "2/r", ["mid"]),
                  ("both", "2/r", ["net", "other"]), ("other", "2/r", []), ("sg", "1/r", []))
    report = run(stacks, Recorder(failing={"net"}), monkeypatch)
    assert report.outcomes == {"net": "failed", "mid": "skipped", "leaf": "skipped", "both": "skipped",
                               "other": "created", "sg": "created"}
    assert report.failures == {"net": "boom"}


def test_the_digest_follows_template_and_parameters() -> None:
    template = {"Resources": {"R": {"Type": "AWS::EC2::Route"}}}
    assert digest(template, {"P": "pcx-1"}) == digest({"Resources": {"R": {"Type": "AWS::EC2::Route"}}},
                                                     {"P": "pcx-1"})
    assert digest(template, {"P": "pcx-1"}) != digest(template, {"P": "pcx-2"})  # a new peering id redeploys
    assert digest(template, {}) != digest({"Resources": {}}, {})


def test_cli_default_concurrency_is_the_deploy_default() -> None:
    import inspect

    from netgen.aws.deploy import DEFAULT_CONCURRENCY
    from netgen.cli_aws import deploy

    assert inspect.signature(deploy).parameters["concurrency"].default == DEFAULT_CONCURRENCY
