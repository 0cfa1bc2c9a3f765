"""`make bench-deploy`: `netgen deploy` against moto on synthetic estates; prints a table of medians.

python -m netgen.bench.deploy [--sizes 1000,10000] [--runs 3,1] [--specs DIR] [--work DIR] [--stack-seconds 30]
                              [--stack-latency 1 --latency-sizes 10000] [--deploy-arg=--full ...]

A moto server on 127.0.0.1 runs in a process of its own (netgen/bench/moto_server.py), so that netgen and moto do
not share a GIL. For each estate (the synthetic estate of each size, as `make bench` generates it, or the spec
folder given with --specs), each run and each concurrency (1, and deploy's default), in turn:

  moto is reset; the inventory is seeded (VPCs, route tables, subnets, security groups, in every account: moto
  takes a request's account from the x-moto-account-id header); a copy of the specs gets moto's ids; netgen build;
  then three deploys, each `netgen deploy --format json` in a process of its own (as a team runs it, interpreter
  start-up and loading the specs included):
  (a) from scratch, (b) again with nothing changed, (c) after one changed grant (the first `ports: [N]` in the
      sorted files that hold grants becomes N+1; rebuilt).

moto does a stack's work before it answers, so these deploys are bound by moto's CPU (one Python process) and
say little about the schedule. A second server therefore models the time CloudFormation takes: each request
that starts a stack's work (CreateChangeSet, ExecuteChangeSet, ...) waits --stack-latency seconds there, and the
deploy from scratch of the --latency-sizes estates is measured again at both concurrencies, whose ratio is the
schedule's gain.

Requests are counted by moto's request recorder (/moto-api/recorder/...), switched on only while a deploy runs:
each recorded request's service comes from its SigV4 credential scope, its action from the Action parameter,
its account from x-moto-account-id. "change sets" counts CreateChangeSet requests. Also the CPU time of the
deploy process and of the moto server meanwhile (when moto's CPU time is close to the wall time, moto is what
limits the deploy, not netgen's schedule). Wall time, counts, CPU times and the number of stacks whose template
changed are medians over the runs. The server's accounts have 500 rules per security group (RAISED_RULE_QUOTA in
netgen/bench/moto_server.py), as the synthetic estates' ruleQuota of 480 assumes.

From the plan (generated/aws/deploy-plan.json): stacks, the longest chain of dependsOn, and what a deploy from
scratch would take on AWS at --stack-seconds per stack (an assumption, not a measurement), serially and
scheduled at each concurrency per account and region.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from netgen.aws.deploy.context import DEFAULT_CONCURRENCY
from netgen.bench.moto import MotoCloud, request_facts, rewrite_spec_ids, seed_estate
from netgen.bench.moto_server import moto_environment, moto_process
from netgen.bench.run import AS_OF, synthetic_estate

NETGEN = Path(sys.executable).with_name("netgen")
SCENARIOS = ("from scratch", "nothing changed", "one grant changed")
STACK_SECONDS = 30.0  # assumed time of one stack on AWS: create a change set, wait, execute it, wait
STACK_LATENCY = 1.0  # seconds each request that starts a stack's work waits in the latency-modelling server
QUIET_ENV = {"NO_COLOR": "1", "TERM": "dumb"}


# (label, extra arguments of netgen deploy) of each concurrency measured
SETTINGS = [("1", ["--concurrency", "1"]), (f"{DEFAULT_CONCURRENCY} (default)", [])]


@dataclass
class Measurement:
    estate: str
    setting: str
    scenario: str
    run: int
    seconds: float
    requests: dict[str, Counter] = field(default_factory=dict)  # service -> action -> count
    places: int = 0  # (account, region) places that received CloudFormation requests
    stacks_changed: int = 0  # stacks whose template changed since the previous deploy (all, from scratch)
    summary: Any = None  # deploy's summary: its last JSON event, or its last line of text
    netgen_cpu: float = math.nan  # CPU seconds of the netgen deploy process (and any children it waited for)
    moto_cpu: float = math.nan  # CPU seconds of the moto server meanwhile
    stack_latency: float = 0.0  # seconds each request starting a stack's work waited in moto (0: none)

    @property
    def label(self) -> str:
        """The scenario, and the CloudFormation latency modelled if any."""
        if not self.stack_latency:
            return self.scenario
        return f"{self.scenario}, CloudFormation {self.stack_latency:g} s per request"

    def count(self, service: str, action: str | None = None) -> int:
        actions = self.requests.get(service, Counter())
        return actions[action] if action else sum(actions.values())

    @property
    def cloudformation(self) -> int:
        return self.count("cloudformation")

    @property
    def ec2(self) -> int:
        return self.count("ec2")

    @property
    def other(self) -> int:
        return sum(sum(a.values()) for s, a in self.requests.items() if s not in ("cloudformation", "ec2"))

    @property
    def change_sets(self) -> int:
        return self.count("cloudformation", "CreateChangeSet")

    def as_json(self) -> dict:
        return {"estate": self.estate, "concurrency": self.setting, "scenario": self.scenario,
                "stack_latency": self.stack_latency, "run": self.run,
                "seconds": round(self.seconds, 3), "cloudformation": self.cloudformation, "ec2": self.ec2,
                "other": self.other, "change_sets": self.change_sets, "places": self.places,
                "stacks_changed": self.stacks_changed, "netgen_cpu": round(self.netgen_cpu, 2),
                "moto_cpu": round(self.moto_cpu, 2), "summary": self.summary,
                "requests": {s: dict(sorted(a.items())) for s, a in sorted(self.requests.items())}}


@dataclass(frozen=True)
class PlanShape:
    stacks: int
    places: int
    most_per_place: int
    chain: int  # stacks on the longest dependsOn chain
    depends: dict[str, list[str]]
    place_of: dict[str, tuple[str, str]]
    order: list[str]

    @classmethod
    def read(cls, out: Path) -> PlanShape:
        plan = json.loads((out / "aws" / "deploy-plan.json").read_text("utf-8"))["stacks"]
        depends = {s["stack"]: list(s.get("dependsOn", [])) for s in plan}
        place_of = {s["stack"]: (s["account"], s["region"]) for s in plan}
        depth: dict[str, int] = {}
        for s in plan:  # the plan lists a stack after every stack it depends on
            depth[s["stack"]] = 1 + max((depth[d] for d in depends[s["stack"]]), default=0)
        per_place = Counter(place_of.values())
        return cls(len(plan), len(per_place), max(per_place.values(), default=0), max(depth.values(), default=0),
                   depends, place_of, [s["stack"] for s in plan])

    def rounds(self, concurrency: int) -> int:
        """How many stack-times a deploy takes when every stack takes the same time, each account and region runs
        up to `concurrency` stacks at once, and a stack starts once the stacks it depends on are done (greedy,
        in plan order)."""
        done: set[str] = set()
        rounds = 0
        while len(done) < len(self.order):
            started: Counter = Counter()
            now = []
            for stack in self.order:
                place = self.place_of[stack]
                if stack in done or started[place] >= concurrency or not all(d in done for d in self.depends[stack]):
                    continue
                started[place] += 1
                now.append(stack)
            if not now:
                raise ValueError("the deploy plan has a dependency cycle")
            done.update(now)
            rounds += 1
        return rounds


def _digests(out: Path) -> dict[str, str]:
    """sha256 of each template under out/aws (the plan aside), by path."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "aws").rglob("*.json")) if p.name != "deploy-plan.json"}


def edit_one_grant(specs: Path) -> str:
    """Change the port of the first grant with `ports: [N]` (files holding grants, sorted; then file order) to N+1;
    returns what changed."""
    pattern = re.compile(r"ports: \[(\d+)\]")
    files = sorted(p for p in specs.rglob("*.y*ml") if "kind: Grant" in p.read_text("utf-8"))
    for path in files:
        text = path.read_text("utf-8")
        found = pattern.search(text)
        if found:
            port = int(found.group(1))
            path.write_text(text[:found.start()] + f"ports: [{port + 1}]" + text[found.end():], "utf-8")
            return f"{path.relative_to(specs)}: ports [{port}] -> [{port + 1}]"
    raise SystemExit(f"bench-deploy: no grant with `ports: [N]` under {specs} to change")


def _aws_config(estate: Any, path: Path) -> Path:
    """An AWS config file with a profile (dummy keys) for every profile the inventory's accounts name."""
    profiles = sorted({a.profile for a in estate.accounts if a.profile})
    path.write_text("".join(f"[profile {name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
                            "region = us-east-1\n\n" for name in profiles))
    return path


class Bench:
    """One moto server, the installed netgen, and a work folder; `estate` measures one spec folder."""

    def __init__(self, cloud: MotoCloud, work: Path, as_of: str = AS_OF, deploy_args: Iterable[str] = (),
                 log: Callable[[str], None] = lambda line: None, settings: list[tuple[str, list[str]]] = SETTINGS,
                 server_cpu: Callable[[], float] = lambda: math.nan, stack_latency: float = 0.0):
        self.cloud, self.work, self.as_of = cloud, work, as_of
        self.stack_latency = stack_latency  # what the server models (moto_process), recorded with each measurement
        self.server_cpu = server_cpu
        self.deploy_args = list(deploy_args)
        self.log = log
        self.settings = settings

    def _netgen(self, args: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
        start = time.perf_counter()
        with open(log, "w") as sink:
            done = subprocess.run([str(NETGEN), *args], stdout=sink, stderr=subprocess.STDOUT, env=env)
        seconds = time.perf_counter() - start
        text = log.read_text("utf-8", "replace")
        if done.returncode:
            raise SystemExit(f"bench-deploy: netgen {args[0]} failed (exit {done.returncode}), see {log}:\n"
                             f"{text[-3000:]}")
        return seconds, text

    def _deploy(self, specs: Path, out: Path, env: dict[str, str], extra: list[str], log: Path) -> Measurement:
        args = ["deploy", "--specs", str(specs), "--out", str(out), "--as-of", self.as_of, "--endpoint-url",
                self.cloud.endpoint_url, "--ec2-peering", "--format", "json", *extra, *self.deploy_args]
        self.cloud.reset_recording()
        self.cloud.start_recording()
        server_cpu, children = self.server_cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            seconds, text = self._netgen(args, env, log)
        finally:
            self.cloud.stop_recording()
        server_cpu = self.server_cpu() - server_cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        netgen_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        requests: dict[str, Counter] = {}
        places = set()
        for entry in self.cloud.recording():
            service, action, account, region = request_facts(entry)
            requests.setdefault(service or "unsigned", Counter())[action] += 1
            if service == "cloudformation":
                places.add((account, region))
        lines = [line for line in text.splitlines() if line.strip()]
        summary: Any = lines[-1] if lines else ""
        try:
            summary = json.loads(summary)
        except ValueError:
            pass
        return Measurement("", "", "", 0, seconds, requests, len(places), summary=summary, netgen_cpu=netgen_cpu,
                           moto_cpu=server_cpu)

    def estate(self, label: str, specs: Path, runs: int,
               scenarios: tuple[str, ...] = SCENARIOS) -> tuple[list[Measurement], PlanShape]:
        """The scenarios (SCENARIOS or its first ones) at every concurrency, `runs` times, for the estate in
        `specs`."""
        from netgen.diagnostics import Reporter
        from netgen.pipeline import resolve_specs

        estate = resolve_specs(specs, date.fromisoformat(self.as_of), Reporter()).estate
        work = self.work / re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-")
        work.mkdir(parents=True, exist_ok=True)
        env = {**moto_environment(str(_aws_config(estate, work / "aws-config"))),
               "NETGEN_AWS_ACCOUNT_HEADER": "x-moto-account-id", **QUIET_ENV}
        results: list[Measurement] = []
        shape = None
        for run in range(1, runs + 1):
            for setting, extra in self.settings:
                self.cloud.reset()
                seeded = seed_estate(self.cloud, estate, hosts=False)  # deploy never looks at instances
                run_specs, out = work / "specs", work / "generated"
                shutil.rmtree(run_specs, ignore_errors=True)
                rewrite_spec_ids(specs, run_specs, seeded.substitutions)
                build = ["build", "--specs", str(run_specs), "--out", str(out), "--as-of", self.as_of]
                self._netgen(build, env, work / "build.log")
                shape = shape or PlanShape.read(out)
                before: dict[str, str] = {}
                for scenario in scenarios:
                    if scenario == "one grant changed":
                        what = edit_one_grant(run_specs)
                        before = _digests(out)
                        self._netgen(build, env, work / "build.log")
                    after = _digests(out)
                    name = f"{scenario.replace(' ', '-')}-{setting.split()[0]}-run{run}"
                    measured = self._deploy(run_specs, out, env, extra, work / f"deploy-{name}.log")
                    measured.estate, measured.setting, measured.scenario, measured.run = label, setting, scenario, run
                    measured.stack_latency = self.stack_latency
                    measured.stacks_changed = sum(after[p] != before.get(p) for p in after)
                    results.append(measured)
                    before = after
                    changed = what if scenario == "one grant changed" else None
                    self.log(json.dumps({**measured.as_json(), "requests": None, "changed": changed}))
        assert shape is not None
        return results, shape


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def report(results: list[Measurement], shapes: dict[str, PlanShape], stack_seconds: float,
           runs: dict[str, int]) -> str:
    """The Markdown table of medians, the gain of deploy's default concurrency over 1 from scratch, then per
    estate the plan's shape and the estimate for AWS."""
    columns = ["grants", "concurrency", "deploy", "s", "CloudFormation requests", "EC2 requests", "other requests",
               "change sets", "stacks changed", "netgen CPU s", "moto CPU s"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    groups: dict[tuple[str, str, str], list[Measurement]] = {}
    for m in results:
        groups.setdefault((m.estate, m.setting, m.label), []).append(m)
    for (estate, setting, label), ms in groups.items():
        lines.append(f"| {estate} | {setting} | {label} | {_median(m.seconds for m in ms):.1f} | "
                     f"{_median(m.cloudformation for m in ms):,.0f} | {_median(m.ec2 for m in ms):,.0f} | "
                     f"{_median(m.other for m in ms):,.0f} | {_median(m.change_sets for m in ms):,.0f} | "
                     f"{_median(m.stacks_changed for m in ms):,.0f} | {_median(m.netgen_cpu for m in ms):.1f} | "
                     f"{_median(m.moto_cpu for m in ms):.1f} |")
    lines.append("")
    lines.append("Medians of " + ", ".join(f"{n} run{'s' * (n != 1)} at {e}" for e, n in runs.items()) + ". "
                 "Every run (s): " + "; ".join(
                     f"{e} {s} {label}: " + " ".join(f"{m.seconds:.1f}" for m in ms)
                     for (e, s, label), ms in groups.items()))
    lines.append("")
    (serial, _), (default, _) = SETTINGS
    for (estate, setting, label), ms in groups.items():
        if setting == default and label.startswith(SCENARIOS[0]) and (estate, serial, label) in groups:
            ratio = _median(m.seconds for m in groups[estate, serial, label]) / _median(m.seconds for m in ms)
            lines.append(f"- {estate}, {label}: concurrency {default} is {ratio:.1f}x as fast as concurrency 1.")
    concurrencies = [1, DEFAULT_CONCURRENCY]
    for estate, shape in shapes.items():
        serial_time = shape.stacks * stack_seconds
        scheduled = ", ".join(f"at concurrency {c} per account and region {shape.rounds(c)} deep = "
                              f"{_duration(shape.rounds(c) * stack_seconds)}" for c in concurrencies)
        lines.append(f"- {estate}: {shape.stacks:,} stacks in {shape.places} accounts and regions (at most "
                     f"{shape.most_per_place:,} in one), longest dependsOn chain {shape.chain}. From scratch on AWS "
                     f"at {stack_seconds:.0f} s per stack (assumed): one after the other {shape.stacks:,} x "
                     f"{stack_seconds:.0f} s = {_duration(serial_time)}; {scheduled}; the chain alone "
                     f"{shape.chain} x {stack_seconds:.0f} s = {_duration(shape.chain * stack_seconds)}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="netgen deploy benchmark against moto")
    parser.add_argument("--sizes", default="1000,10000", help="grants of each synthetic estate")
    parser.add_argument("--runs", default="3", help="runs per estate: one number, or one per size (3,1)")
    parser.add_argument("--specs", type=Path, action="append", default=[],
                        help="measure this spec folder too (repeatable); --sizes '' for only these")
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    parser.add_argument("--stack-seconds", type=float, default=STACK_SECONDS,
                        help="assumed seconds per stack on AWS, for the estimate")
    parser.add_argument("--stack-latency", type=float, default=STACK_LATENCY, metavar="SECONDS",
                        help="seconds each request that starts a stack's work waits, in the latency-modelling "
                             "server (0: no such server)")
    parser.add_argument("--latency-sizes", default="10000",
                        help="sizes (of --sizes) deployed from scratch with the latency modelled")
    parser.add_argument("--deploy-arg", action="append", default=[], help="pass to every netgen deploy")
    parser.add_argument("--as-of", default=AS_OF)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    estates: list[tuple[str, Path]] = []
    for grants in sizes:  # the estates `make bench` measures
        estates.append((f"{grants:,}", synthetic_estate(args.work, grants)[3]))
    estates += [(str(specs), specs) for specs in args.specs]
    if not estates:
        parser.error("nothing to measure")
    counts = [int(r) for r in args.runs.split(",")]
    runs = {label: counts[min(i, len(counts) - 1)] for i, (label, _) in enumerate(estates)}
    slowed = {f"{int(s):,}" for s in args.latency_sizes.split(",") if s.strip()} if args.stack_latency > 0 else set()
    work = args.work / "deploy"
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: list[Measurement] = []
    shapes: dict[str, PlanShape] = {}
    for latency in [0.0] + [args.stack_latency] * bool(slowed & set(runs)):
        with moto_process(recording=work / "moto-recording.jsonl", log=work / "moto.log",
                          stack_latency=latency) as server:
            bench = Bench(MotoCloud(server.url), work, args.as_of, args.deploy_arg,
                          log=lambda line: print(line, file=sys.stderr, flush=True), server_cpu=server.cpu_seconds,
                          stack_latency=latency)
            for label, specs in estates:
                if latency and label not in slowed:
                    continue
                measured, shapes[label] = bench.estate(label, specs.resolve(), runs[label],
                                                       SCENARIOS[:1] if latency else SCENARIOS)
                results += measured
    (work / "results.json").write_text(json.dumps([m.as_json() for m in results], indent=1))
    print(f"netgen bench-deploy: netgen deploy against moto on 127.0.0.1, python {sys.version.split()[0]}, "
          f"--concurrency: {', '.join(s for s, _ in SETTINGS)}\n")
    print(report(results, shapes, args.stack_seconds, runs))
    print(f"\nbench-deploy took {_duration(time.perf_counter() - started)}; every request of every deploy: "
          f"{work / 'results.json'}")


if __name__ == "__main__":
    main()
