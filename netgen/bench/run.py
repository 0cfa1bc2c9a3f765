"""`make bench`: build synthetic estates of growing size and print a table of medians.

python -m netgen.bench.run [--sizes 1000,10000,100000] [--transit-gateway 1000,10000] [--runs 3] [--work DIR]

For each size: wall time and peak memory (max RSS) of `validate` and of `build`, time per pipeline stage,
and the floor: the time to merely parse the same YAML (pyyaml's C loader) and serialize the same output
(re-dump the generated JSON and YAML and write it). Each measurement runs in a fresh interpreter, so peak
memory is that run's alone. Also: rules emitted against the naive count (one rule per host address and
port) and the `netgen build --check` start-to-exit time on the example estate.
With --transit-gateway SIZES, the estates of those sizes are measured a second time with their VPCs joined
through transit gateways (`synth --transit-gateway`: the same estate, plus one gateway per region, peered across
regions) rather than a mesh of VPC peerings, and a last table shows what each writes for the network (stacks,
peerings, routes) beside its build time and memory.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

# grants -> (hosts, services, regions): 100k grants is about 20,000 hosts, 4,000 services, 10 regions, 40 VPCs
SHAPES = {1000: (200, 40, 2), 10000: (2000, 400, 4), 100000: (20000, 4000, 10)}
AS_OF = "2026-11-26"



def _tree_pss_mb(pid: int) -> float:
    """Memory of a process and its descendants as proportional set size: a page shared by n of them counts 1/n
    to each, so the sum is what the tree really holds (fork shares a parent's pages with its children)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack.extend(int(child) for child in children.read().split())
        except (OSError, StopIteration, ValueError):  # gone meanwhile, or no such file on this kernel
            continue
    return total / 1024


def _measure(mode: str, specs: Path, out: Path, sink: Path | None = None) -> dict:
    """One measurement in a fresh interpreter; "peak_mb" is the larger of its own peak RSS and the peak of its
    process tree's memory (netgen and its worker processes), sampled every 0.2 s."""
    args = [sys.executable, "-m", "netgen.bench.measure", mode, str(specs), str(out), AS_OF]
    args += [str(sink)] if sink else []
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _tree_pss_mb(proc.pid))
            time.sleep(0.2)
        stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"bench {mode} failed on {specs}:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = max(peak, result["max_rss_mb"])
    return result


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _check_startup(runs: int) -> float:
    """Median wall time of `netgen build --check` on the example estate, interpreter start-up included."""
    netgen = Path(sys.executable).with_name("netgen")
    times = []
    for _ in range(max(5, runs)):
        t = time.perf_counter()
        subprocess.run([str(netgen), "build", "--check", "--as-of", AS_OF], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def synthetic_estate(work: Path, grants: int, transit: bool = False) -> tuple[int, int, int, Path]:
    """(hosts, services, regions, spec folder) of the synthetic estate of that size, generated unless it is."""
    hosts, services, regions = SHAPES.get(grants, (grants // 5, grants // 25, 4))
    specs = work / f"estate-{grants}{'-tgw' if transit else ''}" / "specs"
    if not specs.exists():
        # in a process of its own: this one stays small, so a measured process's memory, sampled as it
        # starts (before it replaces the copy of this one that fork gives it), is not this one's estates
        subprocess.run([sys.executable, "-m", "netgen.bench.synth", "--hosts", str(hosts), "--services",
                        str(services), "--grants", str(grants), "--regions", str(regions), "--out", str(specs)]
                       + ["--transit-gateway"] * transit, check=True)
    return hosts, services, regions, specs


def _label(key: tuple[int, bool]) -> str:
    grants, transit = key
    return f"{grants:,} tgw" if transit else f"{grants:,}"


def _network_table(rows: list[dict]) -> None:
    print("\nWhat the build writes for the network, through a mesh of VPC peerings and through transit gateways "
          "(tgw): stacks (longest dependsOn chain), stacks requesting peerings, VPC peerings, routes in VPC route "
          "tables over peerings and to gateways, static routes in the gateways' route tables; build medians\n")
    print("| grants | stacks (chain) | stacks requesting peerings | peerings | routes over peerings | "
          "routes to gateways | gateway static routes | build s | build MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["grants"], r["transit_gateways"])):
        print(f"| {r['label']} | {r['stacks']:,} ({r['chain']}) | {r['peering_stacks']:,} | {r['peerings']:,} | "
              f"{r['peering_routes']:,} | {r['gateway_routes']:,} | {r['gateway_static_routes']:,} | "
              f"{r['build_s']:.2f} | {r['build_mb']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description="netgen benchmark")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--transit-gateway", default="", metavar="SIZES",
                        help="measure the estates of these sizes joined through transit gateways too")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(".bench"))
    args = parser.parse_args()
    sizes = _sizes(args.sizes)
    keys = [(grants, False) for grants in sizes] + [(grants, True) for grants in _sizes(args.transit_gateway)]
    if not keys:
        parser.error("nothing to measure")
    estates = {key: synthetic_estate(args.work, *key) for key in keys}
    # Rounds of (validate, build, floor) over every estate, so that a slow spell of the machine weighs on both
    # sides of a ratio: build/floor within a round, and growth between two sizes of one round.
    runs: dict[tuple[int, bool], tuple[list, list, list]] = {key: ([], [], []) for key in keys}
    for _ in range(args.runs):
        for key in keys:
            specs = estates[key][3]
            out = specs.parent / "generated"
            validate_runs, build_runs, floor_runs = runs[key]
            validate_runs.append(_measure("validate", specs, out))
            build_runs.append(_measure("build", specs, out))
            floor_runs.append(_measure("floor", specs, out, specs.parent / "floor"))
    rows = []
    for key in keys:
        grants, transit = key
        hosts, services, regions, _ = estates[key]
        validate_runs, build_runs, floor_runs = runs[key]
        floor = _median(floor_runs, "total")
        build = _median(build_runs, "total")
        ratio = statistics.median(b["total"] / f["total"] for b, f in zip(build_runs, floor_runs, strict=True))
        stages = {k: _median(build_runs, k) for k in ("load", "validate", "resolve", "compile", "write")}
        stats = build_runs[0]["stats"]
        rows.append({"grants": grants, "transit_gateways": transit, "label": _label(key), "hosts": hosts,
                     "services": services, "regions": regions,
                     "validate_s": _median(validate_runs, "total"), "validate_mb": _median(validate_runs, "peak_mb"),
                     "build_s": build, "build_mb": _median(build_runs, "peak_mb"), "floor_s": floor,
                     "build_over_floor": ratio, "build_runs": [r["total"] for r in build_runs],
                     "floor_runs": [r["total"] for r in floor_runs],
                     "stages": stages, **stats,
                     "fewest_s": statistics.median(b["stats"]["fewest_s"] for b in build_runs),
                     "fast_s": statistics.median(b["stats"]["fast_s"] for b in build_runs)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"netgen bench: medians of {args.runs} runs, python {sys.version.split()[0]}\n")
    print("| grants | hosts | services | flows | validate s | validate MB | build s | build MB | floor s | "
          "build/floor | rules | naive rules |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['hosts']:,} | {r['services']:,} | {r['flows']:,} | {r['validate_s']:.2f} | "
              f"{r['validate_mb']:.0f} | {r['build_s']:.2f} | {r['build_mb']:.0f} | {r['floor_s']:.2f} | "
              f"{r['build_over_floor']:.1f}x | {r['rules']:,} | {r['naive_rules']:,} |")
    print("\nRules against their lower bound (netgen.cover; equal where every rule set is proven the fewest), and the "
          "exact step: every rule set planned again, through netgen.cover and through the fast path alone, both after "
          "a first plan (medians of the runs); the exact step is the difference (the check for overlapping ranges, "
          "and the search where they overlap)\n")
    print("| grants | rule sets | rules | lower bound | rules/bound | subproblems searched | not proven | "
          "planning s | fast path s | exact step s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['rule_sets']:,} | {r['rules_planned']:,} | {r['rules_bound']:,} | "
              f"{r['rules_planned'] / max(1, r['rules_bound']):.3f} | {r['searched']:,} | {r['unproven']:,} | "
              f"{r['fewest_s']:.2f} | {r['fast_s']:.2f} | {r['fewest_s'] - r['fast_s']:+.2f} |")
    print("\nbuild/floor: the median of each round's ratio. Every run (s), build / floor:")
    for r in rows:
        print(f"  {r['label']:>11}: " + "  ".join(f"{b:.2f}/{f:.2f}" for b, f in zip(r["build_runs"], r["floor_runs"],
                                                                                       strict=True)))
    print("\nbuild stages (s): " + ", ".join(f"{k}" for k in rows[0]["stages"]))
    for r in rows:
        print(f"  {r['label']:>11}: " + "  ".join(f"{k} {v:.2f}" for k, v in r["stages"].items()))
    if any(r["transit_gateways"] for r in rows):
        _network_table(rows)
    by_size = {r["grants"]: r for r in rows if not r["transit_gateways"]}
    if 10000 in by_size and 100000 in by_size:  # the median of each round's ratio, as for build/floor
        growth = statistics.median(big / small for big, small in zip(by_size[100000]["build_runs"],
                                                                     by_size[10000]["build_runs"], strict=True))
        nlogn = 10 * math.log(100000) / math.log(10000)
        print(f"\ngrowth 10k -> 100k grants: build time x{growth:.1f}, the median of each round's ratio "
              f"(n log n would be x{nlogn:.1f})")
    if Path("specs").is_dir() and Path("generated").is_dir():
        print(f"netgen build --check on the example estate: {_check_startup(args.runs):.2f} s median, "
              "interpreter start-up included")
    else:
        print("netgen build --check on the example estate: not measured (run the bench from the repository "
              "root, as make bench does)")


if __name__ == "__main__":
    main()
