"""`make bench-deploy`: `netgen deploy` against moto on synthetic estates; prints a table of medians.

python -m netgen.bench.deploy [--sizes 1000,10000] [--runs 3,1] [--specs DIR] [--work DIR] [--stack-seconds 30]
                              [--deploy-arg=--full ...]

One moto server on 127.0.0.1 runs in a process of its own (netgen.bench.moto), so that netgen and moto do not
share a GIL. For each estate (the synthetic estate of each size, as `make bench` generates it, or the spec folder
given with --specs), each run and each concurrency (1, and deploy's default), in turn:

  moto is reset; the inventory is seeded (VPCs, route tables, subnets, security groups, in every account: moto
  takes a request's account from the x-moto-account-id header); a copy of the specs gets moto's ids; netgen build;
  then three deploys, each `netgen deploy` in a process of its own (as a team runs it, interpreter start-up and
  loading the specs included):
  (a) from scratch, (b) again with nothing changed, (c) after one changed grant (the first `ports: [N]` in the
      sorted files that hold grants becomes N+1; rebuilt).

Requests are counted by moto's request recorder (/moto-api/recorder/...), switched on only while a deploy runs:
each recorded request's service comes from its SigV4 credential scope, its action from the Action parameter,
its account from x-moto-account-id. "change sets" counts CreateChangeSet requests. Also the CPU time of the
deploy process and of the moto server meanwhile (moto is one process: when its CPU time is close to the wall
time, moto is what limits the deploy, not netgen's schedule). Wall time, counts, CPU times and the number of
stacks whose template changed are medians over the runs. The server's accounts have 500 rules per security
group (RAISED_RULE_QUOTA in netgen/bench/moto.py), as the synthetic estates' ruleQuota of 480 assumes.

Until `netgen deploy` has `--concurrency` (it is read from `netgen deploy --help`), only the serial deploy is
measured. From the plan (generated/aws/deploy-plan.json): stacks, the longest chain of dependsOn, and what a
deploy from scratch would take on AWS at --stack-seconds per stack (an assumption, not a measurement), serially
and scheduled at each concurrency per account and region.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
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

from netgen.bench.moto import MotoCloud, moto_environment, moto_process, request_facts, rewrite_spec_ids, seed_estate
from netgen.bench.run import AS_OF, SHAPES

NETGEN = Path(sys.executable).with_name("netgen")
SCENARIOS = ("from scratch", "nothing changed", "one grant changed")
STACK_SECONDS = 30.0  # assumed time of one stack on AWS: create a change set, wait, execute it, wait
ASSUMED_CONCURRENCY = 4  # for the estimate, while netgen deploy has no --concurrency to read a default from
HELP_ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


@dataclass(frozen=True)
class DeployCli:
    """What the installed `netgen deploy` accepts (read from its --help)."""

    concurrency: bool
    default_concurrency: int | None
    json_events: bool

    @classmethod
    def probe(cls, netgen: Path = NETGEN) -> DeployCli:
        text = subprocess.run([str(netgen), "deploy", "--help"], capture_output=True, text=True, check=True,
                              env={**os.environ, **HELP_ENV}).stdout
        concurrency = "--concurrency" in text
        default = None
        if concurrency:
            found = re.search(r"--concurrency.{0,600}?\[default: (\d+)", text, re.S)
            default = int(found.group(1)) if found else None
        return cls(concurrency, default, "--format" in text)

    def settings(self) -> list[tuple[str, list[str]]]:
        """(label, extra arguments) of each concurrency measured: 1 and the default, or the serial deploy only."""
        if not self.concurrency:
            return [("1 (serial)", [])]
        default = f"{self.default_concurrency} (default)" if self.default_concurrency else "default"
        return [("1", ["--concurrency", "1"]), (default, [])]


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
        return {"estate": self.estate, "concurrency": self.setting, "scenario": self.scenario, "run": self.run,
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

    def __init__(self, cloud: MotoCloud, work: Path, cli: DeployCli, as_of: str = AS_OF,
                 deploy_args: Iterable[str] = (), log: Callable[[str], None] = lambda line: None,
                 settings: list[tuple[str, list[str]]] | None = None,
                 server_cpu: Callable[[], float] = lambda: math.nan):
        self.cloud, self.work, self.cli, self.as_of = cloud, work, cli, as_of
        self.server_cpu = server_cpu
        self.deploy_args = list(deploy_args)
        self.log = log
        self.settings = settings if settings is not None else cli.settings()

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
                self.cloud.endpoint_url, "--ec2-peering", *extra, *self.deploy_args]
        if self.cli.json_events:
            args += ["--format", "json"]
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
        if self.cli.json_events:
            try:
                summary = json.loads(summary)
            except ValueError:
                pass
        return Measurement("", "", "", 0, seconds, requests, len(places), summary=summary, netgen_cpu=netgen_cpu,
                           moto_cpu=server_cpu)

    def estate(self, label: str, specs: Path, runs: int) -> tuple[list[Measurement], PlanShape]:
        """Every scenario at every concurrency, `runs` times, for the estate in `specs`."""
        from netgen.diagnostics import Reporter
        from netgen.pipeline import resolve_specs

        estate = resolve_specs(specs, date.fromisoformat(self.as_of), Reporter()).estate
        work = self.work / re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-")
        work.mkdir(parents=True, exist_ok=True)
        env = {**moto_environment(str(_aws_config(estate, work / "aws-config"))),
               "NETGEN_AWS_ACCOUNT_HEADER": "x-moto-account-id", **HELP_ENV}
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
                for scenario in SCENARIOS:
                    if scenario == "one grant changed":
                        what = edit_one_grant(run_specs)
                        before = _digests(out)
                        self._netgen(build, env, work / "build.log")
                    after = _digests(out)
                    name = f"{scenario.replace(' ', '-')}-{setting.split()[0]}-run{run}"
                    measured = self._deploy(run_specs, out, env, extra, work / f"deploy-{name}.log")
                    measured.estate, measured.setting, measured.scenario, measured.run = label, setting, scenario, run
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


def report(results: list[Measurement], shapes: dict[str, PlanShape], cli: DeployCli, stack_seconds: float,
           runs: dict[str, int]) -> str:
    """The Markdown table of medians, then per estate the plan's shape and the estimate for AWS."""
    columns = ["grants", "concurrency", "deploy", "s", "CloudFormation requests", "EC2 requests", "other requests",
               "change sets", "stacks changed", "netgen CPU s", "moto CPU s"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    groups: dict[tuple[str, str, str], list[Measurement]] = {}
    for m in results:
        groups.setdefault((m.estate, m.setting, m.scenario), []).append(m)
    for (estate, setting, scenario), ms in groups.items():
        lines.append(f"| {estate} | {setting} | {scenario} | {_median(m.seconds for m in ms):.1f} | "
                     f"{_median(m.cloudformation for m in ms):,.0f} | {_median(m.ec2 for m in ms):,.0f} | "
                     f"{_median(m.other for m in ms):,.0f} | {_median(m.change_sets for m in ms):,.0f} | "
                     f"{_median(m.stacks_changed for m in ms):,.0f} | {_median(m.netgen_cpu for m in ms):.1f} | "
                     f"{_median(m.moto_cpu for m in ms):.1f} |")
    lines.append("")
    lines.append("Medians of " + ", ".join(f"{n} run{'s' * (n != 1)} at {e}" for e, n in runs.items()) + ". "
                 "Every run (s): " + "; ".join(
                     f"{e} {s} {sc}: " + " ".join(f"{m.seconds:.1f}" for m in ms)
                     for (e, s, sc), ms in groups.items()))
    if not cli.concurrency:
        lines.append("netgen deploy has no --concurrency yet: only the serial deploy was measured.")
    lines.append("")
    concurrencies = [1, cli.default_concurrency or ASSUMED_CONCURRENCY]
    for estate, shape in shapes.items():
        serial = shape.stacks * stack_seconds
        scheduled = ", ".join(f"at concurrency {c} per account and region {shape.rounds(c)} deep = "
                              f"{_duration(shape.rounds(c) * stack_seconds)}" for c in concurrencies)
        lines.append(f"- {estate}: {shape.stacks:,} stacks in {shape.places} accounts and regions (at most "
                     f"{shape.most_per_place:,} in one), longest dependsOn chain {shape.chain}. From scratch on AWS "
                     f"at {stack_seconds:.0f} s per stack (assumed): one after the other {shape.stacks:,} x "
                     f"{stack_seconds:.0f} s = {_duration(serial)}; {scheduled}; the chain alone "
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
    parser.add_argument("--deploy-arg", action="append", default=[], help="pass to every netgen deploy")
    parser.add_argument("--as-of", default=AS_OF)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    estates: list[tuple[str, Path]] = []
    for grants in sizes:
        hosts, services, regions = SHAPES.get(grants, (grants // 5, grants // 25, 4))
        specs = args.work / f"estate-{grants}" / "specs"
        if not specs.exists():  # the estates `make bench` measures
            subprocess.run([sys.executable, "-m", "netgen.bench.synth", "--hosts", str(hosts), "--services",
                            str(services), "--grants", str(grants), "--regions", str(regions), "--out", str(specs)],
                           check=True)
        estates.append((f"{grants:,}", specs))
    estates += [(str(specs), specs) for specs in args.specs]
    if not estates:
        parser.error("nothing to measure")
    counts = [int(r) for r in args.runs.split(",")]
    runs = {label: counts[min(i, len(counts) - 1)] for i, (label, _) in enumerate(estates)}
    cli = DeployCli.probe()
    work = args.work / "deploy"
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: list[Measurement] = []
    shapes: dict[str, PlanShape] = {}
    with moto_process(recording=work / "moto-recording.jsonl", log=work / "moto.log") as server:
        bench = Bench(MotoCloud(server.url), work, cli, args.as_of, args.deploy_arg,
                      log=lambda line: print(line, file=sys.stderr, flush=True), server_cpu=server.cpu_seconds)
        for label, specs in estates:
            measured, shapes[label] = bench.estate(label, specs.resolve(), runs[label])
            results += measured
    (work / "results.json").write_text(json.dumps([m.as_json() for m in results], indent=1))
    print(f"netgen bench-deploy: netgen deploy against moto on 127.0.0.1, python {sys.version.split()[0]}, "
          f"{'--concurrency: ' + ', '.join(s for s, _ in cli.settings()) if cli.concurrency else 'serial only'}\n")
    print(report(results, shapes, cli, args.stack_seconds, runs))
    print(f"\nbench-deploy took {_duration(time.perf_counter() - started)}; every request of every deploy: "
          f"{work / 'results.json'}")


if __name__ == "__main__":
    main()
