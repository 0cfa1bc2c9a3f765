"""One benchmark measurement, in a fresh interpreter so that peak memory is this run's alone.

python -m netgen.bench.measure MODE SPECS OUT AS_OF [SINK]

MODE: validate (load, validate, resolve), build (the same, then compile every target as `netgen build` does,
and write OUT from scratch), or floor (parse the same YAML with pyyaml's C loader, and re-serialize the output
found in OUT into SINK). Both write into an empty folder: the previous run's output is removed, and the
disk synced, before anything is timed (see _empty). As in netgen itself, the load stage includes the
per-document schema check.
Prints one JSON line: seconds per stage, "total", "max_rss_mb" and counts under "stats". Stage times leave out
module imports, on both sides (`make bench` reports start-up and imports in its `netgen build --check` figure).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from datetime import date
from pathlib import Path


class _Clock:
    def __init__(self) -> None:
        self.stages: dict = {}

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.stages[name] = now - since
        return now


def _empty(folder: Path) -> None:
    """Remove the previous run's output, untimed, and let the disk settle: on a file system mounted with
    `discard`, freeing 100 MB of files slows the file creations that follow for seconds, which would be measured
    as the write stage (or the floor's serialize) instead of what netgen does. Both sides therefore empty their
    folder first, before parsing, and write last."""
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def floor(specs: Path, out: Path, sink: Path, clock: _Clock) -> None:
    import yaml

    from netgen.loader import spec_files

    _empty(sink)  # as the build empties its output: first, well before writing
    t = time.perf_counter()
    for path in spec_files(specs):
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    clock.lap("parse", t)
    outputs = {}
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".json":
                outputs[path] = json.loads(data)
            elif path.suffix == ".yaml":
                outputs[path] = yaml.load(data, Loader=yaml.CSafeLoader)
            else:
                outputs[path] = data.decode()
    t = time.perf_counter()
    for path, data in outputs.items():
        target = sink / path.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            text = json.dumps(data, indent=2, sort_keys=True)
        elif path.suffix == ".yaml":
            text = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=True, default_flow_style=False)
        else:
            text = data
        target.write_text(text)
    clock.lap("serialize", t)


def _errors(exc) -> str:
    """The first ten errors of a failed run (its warnings left out), one a line."""
    from netgen.diagnostics import Severity

    return "\n".join(d.text() for d in [d for d in exc.diagnostics if d.severity is Severity.ERROR][:10])


def pipeline(mode: str, specs: Path, out: Path, as_of: date, clock: _Clock) -> None:
    from netgen.diagnostics import Reporter, SpecError
    from netgen.pipeline import resolve_specs, tune_gc

    if mode == "build":  # imported before the clock starts, like the modules above (and yaml for the floor)
        import netgen.render
        import netgen.targets.aws
        import netgen.targets.kubernetes
        import netgen.targets.report  # noqa: F401
    tune_gc()  # as the netgen command does
    if mode == "build":
        _empty(out)
    reporter = Reporter()
    t = [time.perf_counter()]

    def lap(stage: str) -> None:
        t[0] = clock.lap(stage, t[0])

    try:
        resolved = resolve_specs(specs, as_of, reporter, lap)  # load, validate, resolve, as netgen does
    except SpecError as exc:
        raise SystemExit(_errors(exc)) from None
    t = t[0]
    estate, flows = resolved.estate, list(resolved.flows)
    stats = {"flows": len(flows)}
    if mode == "build":
        from netgen.render import write_tree
        from netgen.targets import compile_outputs
        from netgen.targets.aws_rules import plan_rules

        try:
            files = compile_outputs(resolved, reporter)  # AWS beside Kubernetes + report
        except SpecError as exc:
            raise SystemExit(_errors(exc)) from None
        t = clock.lap("compile", t)
        write_tree(out, files)
        clock.lap("write", t)
        # Rule counts: netgen's minimal exact cover, against one rule per source address and port range.
        naive = sum(sum(n.num_addresses if n.prefixlen >= 24 else 1 for n in flow.source.addresses)
                    for flow in flows if flow.destination.security_group)
        stats.update(rules=len(plan_rules(estate, flows, reporter)), naive_rules=naive, files=len(files))
        stats.update(rule_bounds(estate, flows))
        stats.update(network_output(files))
    clock.stages["stats"] = stats


def network_output(files: dict) -> dict:
    """What the build wrote for the network, counted in its output, untimed: stacks, the longest dependsOn chain
    and the stacks that request VPC peerings (aws/deploy-plan.json); in the network stacks, VPC peerings, routes
    in VPC route tables over a peering and to a transit gateway, and static routes in transit gateway route
    tables."""
    stacks = json.loads(files["aws/deploy-plan.json"])["stacks"]
    depth: dict[str, int] = {}
    for stack in stacks:  # the plan lists a stack after every stack it depends on
        depth[stack["stack"]] = 1 + max((depth[d] for d in stack.get("dependsOn", ())), default=0)
    found = {"stacks": len(stacks), "chain": max(depth.values(), default=0),
             "peering_stacks": sum(1 for stack in stacks if stack.get("peerings")),
             "peerings": 0, "peering_routes": 0, "gateway_routes": 0, "gateway_static_routes": 0}
    for path, text in files.items():
        if not path.endswith("/network.json"):
            continue
        for item in json.loads(text)["Resources"].values():
            kind = item["Type"]
            if kind == "AWS::EC2::VPCPeeringConnection":
                found["peerings"] += 1
            elif kind == "AWS::EC2::Route":
                found["gateway_routes" if "TransitGatewayId" in item["Properties"] else "peering_routes"] += 1
            elif kind == "AWS::EC2::TransitGatewayRoute":
                found["gateway_static_routes"] += 1
    return found


def rule_bounds(estate, flows) -> dict:
    """Rules against their lower bound, and what the exact step costs: every rule set planned again, untimed by
    the stages, through netgen.cover and through the fast path alone, both timed after a first untimed plan (so
    both find the prefixes cached); the exact step is the difference (the check for overlapping ranges, and the
    search where they overlap)."""
    from netgen.addresses import interval_segments, port_range_covers
    from netgen.cover import fewest_rules
    from netgen.targets.aws_rules import rule_sets, ruled_flows

    found = {"rule_sets": 0, "rules_planned": 0, "rules_bound": 0, "searched": 0, "unproven": 0, "search_work": 0,
             "fewest_s": 0.0, "fast_s": 0.0}
    for _, ruled in sorted(ruled_flows(estate, flows).items()):
        for entries in rule_sets(ruled).values():
            port_range_covers(interval_segments(entries))
            t0 = time.perf_counter()
            cover = fewest_rules(entries)
            t1 = time.perf_counter()
            port_range_covers(interval_segments(entries))
            t2 = time.perf_counter()
            found["rule_sets"] += 1
            found["rules_planned"] += cover.rules
            found["rules_bound"] += cover.bound
            found["searched"] += cover.exact + cover.unproven
            found["unproven"] += cover.unproven
            found["search_work"] += cover.work
            found["fewest_s"] += t1 - t0
            found["fast_s"] += t2 - t1
    return found


def main() -> None:
    mode, specs, out, as_of = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    clock = _Clock()
    if mode == "floor":
        floor(specs, out, Path(sys.argv[5]), clock)
    else:
        pipeline(mode, specs, out, date.fromisoformat(as_of), clock)
    clock.stages["total"] = sum(v for v in clock.stages.values() if isinstance(v, float))  # without stats
    # This process's peak; `make bench` also samples the memory of its worker processes (see run.py).
    clock.stages["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(clock.stages))


if __name__ == "__main__":
    main()
