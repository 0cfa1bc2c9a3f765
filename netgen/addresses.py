"""Exact, minimal address and port sets: the arithmetic every target shares.

A permission is a set of (address, port) pairs. `interval_segments` partitions the address space into maximal
runs that allow the same ports, so a rule set built from it allows exactly the union of its inputs: adjacent
and contained prefixes collapse, and nothing is ever widened. The arithmetic runs on integer intervals
(ipaddress's own collapse is too slow for estates with tens of thousands of hosts).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Network

Ports = tuple[tuple[int, int], ...]  # sorted, disjoint, non-adjacent inclusive ranges


def merge_ports(ranges: Iterable[tuple[int, int]]) -> Ports:
    """Union of inclusive port ranges, with touching ranges joined: (80,80),(81,90) -> (80,90)."""
    ordered = sorted(set(ranges))
    if len(ordered) == 1:  # the common case: one range, however many times given
        return (ordered[0],)
    merged: list[list[int]] = []
    for first, last in ordered:
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((a, b) for a, b in merged)


@cache
def network(first: int, prefixlen: int) -> IPv4Network:
    """One shared IPv4Network per prefix: equal networks are then identical, which makes tuples compare fast."""
    return IPv4Network((first, prefixlen))


@cache
def interval(net: IPv4Network) -> tuple[int, int]:
    """The inclusive integer range of a network."""
    start = int(net.network_address)
    return start, start + (1 << (32 - net.prefixlen)) - 1


def range_cidrs(first: int, last: int) -> list[IPv4Network]:
    """The fewest prefixes covering exactly the addresses first..last (inclusive)."""
    nets = []
    while first <= last:
        size = (first & -first).bit_length() - 1 if first else 32  # alignment of first
        span = (last - first + 1).bit_length() - 1  # largest block that fits
        bits = min(size, span)
        nets.append(network(first, 32 - bits))
        first += 1 << bits
    return nets


def collapse(nets: Iterable[IPv4Network]) -> tuple[IPv4Network, ...]:
    """The fewest prefixes covering exactly the union of nets, sorted."""
    return collapse_intervals(map(interval, nets))


def collapse_intervals(intervals: Iterable[tuple[int, int]]) -> tuple[IPv4Network, ...]:
    """collapse() of inclusive integer ranges."""
    result: list[IPv4Network] = []
    run: list[int] | None = None
    for first, last in sorted(intervals):
        if run and first <= run[1] + 1:
            run[1] = max(run[1], last)
            continue
        if run:
            result.extend(range_cidrs(*run))
        run = [first, last]
    if run:
        result.extend(range_cidrs(*run))
    return tuple(result)


Entry = tuple[int, int, int, int, Hashable]  # (first address, last address, first port, last port, tag)
Covers = dict[tuple[int, int], list[tuple[IPv4Network, set[Hashable]]]]  # {port range: [(prefix, tags)]}


@dataclass(frozen=True)
class Segment:
    """Addresses first..last (integers) that allow exactly `ports`; `entries` are the inputs that allow some of
    these addresses something."""

    first: int
    last: int
    ports: Ports
    entries: frozenset[Entry] = frozenset()

    def cidrs(self) -> list[IPv4Network]:
        return range_cidrs(self.first, self.last)


def interval_segments(entries: Iterable[Entry]) -> list[Segment]:
    """Partition the addresses of (first address, last address, first port, last port, tag) entries into maximal
    runs that allow the same ports.

    Entries are grouped by address range, and the ranges into clusters that overlap. A cluster of one range (a
    host, a subnet nothing else overlaps: nearly every cluster) allows the union of its entries' ports; only
    clusters of overlapping ranges need a sweep over the points where their entries open and close."""
    by_range: dict[tuple[int, int], list[Entry]] = defaultdict(list)
    for entry in entries:
        by_range[entry[:2]].append(entry)
    runs: list[list] = []  # [first, last, ports, entries]
    cluster: list[tuple[int, int]] = []
    reach = -1  # the last address of the cluster so far
    for span in sorted(by_range):
        if span[0] > reach and cluster:
            _cluster_runs(runs, cluster, by_range)
            cluster = []
        cluster.append(span)
        reach = max(reach, span[1])
    if cluster:
        _cluster_runs(runs, cluster, by_range)
    return [Segment(first, last, ports, frozenset(found)) for first, last, ports, found in runs]


def _add_run(runs: list[list], first: int, last: int, ports: Ports, entries: list[Entry]) -> None:
    """Append a run, or extend the previous one when it touches and allows the same ports."""
    if runs and runs[-1][1] + 1 == first and runs[-1][2] == ports:
        runs[-1][1] = last
        runs[-1][3].update(entries)
    else:
        runs.append([first, last, ports, set(entries)])


def _cluster_runs(runs: list[list], cluster: list[tuple[int, int]],
                  by_range: dict[tuple[int, int], list[Entry]]) -> None:
    """The runs of one cluster of overlapping address ranges, appended to runs in address order."""
    if len(cluster) == 1:
        items = by_range[cluster[0]]
        ports = (items[0][2:4],) if len(items) == 1 else merge_ports(item[2:4] for item in items)
        _add_run(runs, *cluster[0], ports, items)
        return
    opens: dict[int, list[Entry]] = defaultdict(list)
    closes: dict[int, list[Entry]] = defaultdict(list)
    for span in cluster:
        items = by_range[span]
        opens[span[0]].extend(items)
        closes[span[1] + 1].extend(items)
    active: dict[Entry, int] = {}
    port_counts: dict[tuple[int, int], int] = {}
    ports: Ports = ()
    points = sorted(opens.keys() | closes.keys())
    for here, following in zip(points, points[1:], strict=False):
        ports_changed = False
        for item in closes.get(here, ()):
            count = active[item] - 1
            if count:
                active[item] = count
            else:
                del active[item]
            key = item[2:4]
            count = port_counts[key] - 1
            if count:
                port_counts[key] = count
            else:
                del port_counts[key]
                ports_changed = True
        opened = opens.get(here, ())
        for item in opened:
            active[item] = active.get(item, 0) + 1
            key = item[2:4]
            count = port_counts.get(key, 0)
            ports_changed |= not count
            port_counts[key] = count + 1
        if ports_changed:  # (something is active: a cluster has no gaps)
            ports = merge_ports(port_counts)
        if runs and runs[-1][1] + 1 == here and runs[-1][2] == ports:
            runs[-1][1] = following - 1
            runs[-1][3].update(opened)
        else:
            runs.append([here, following - 1, ports, set(active)])


def port_range_covers(segments: list[Segment]) -> Covers:
    """{port range: [(prefix, tags)]}: for each range of the segments' port sets, the fewest prefixes covering
    exactly the addresses whose ports hold that range, each with the tags of the entries that allow some of its
    (address, port) pairs. A range's prefixes span segments: (10.0.0.0/25, {80}) and (10.0.0.128/25, {80, 443})
    give 80 from 10.0.0.0/24 and 443 from 10.0.0.128/25.

    Near-linear in the entries and the segments' ranges: a segment's entries are dealt to the ranges that hold
    their ports once, so a prefix's tags come from its own range's entries (a host allowed tens of thousands of
    separate ports is no longer a rescan of every entry per port)."""
    runs: dict[tuple[int, int], list[list]] = defaultdict(list)  # [first, last, [(segment, its entries of the range)]]
    for segment in segments:
        dealt = _entries_by_range(segment)
        for ports in segment.ports:
            of_range = runs[ports]
            if of_range and of_range[-1][1] + 1 == segment.first:
                of_range[-1][1] = segment.last
                of_range[-1][2].append((segment, dealt[ports]))
            else:
                of_range.append([segment.first, segment.last, [(segment, dealt[ports])]])
    covers: Covers = {}
    for ports, of_range in sorted(runs.items()):
        cover = covers[ports] = []
        for first, last, run in of_range:
            nets = range_cidrs(first, last)
            if len(run) == 1 and len(nets) == 1:  # most runs: one segment, one prefix, every entry of the range
                cover.append((nets[0], {entry[4] for entry in run[0][1]}))
                continue
            i, low = 0, first  # the run's segments and the prefixes covering them are both in address order
            for net in nets:
                high = low + (1 << (32 - net.prefixlen)) - 1
                while run[i][0].last < low:
                    i += 1
                tags = set()
                j = i
                while j < len(run) and run[j][0].first <= high:
                    tags.update(entry[4] for entry in run[j][1] if entry[0] <= high and low <= entry[1])
                    j += 1
                cover.append((net, tags))
                low = high + 1
    return covers


def _entries_by_range(segment: Segment) -> dict[tuple[int, int], Iterable[Entry]]:
    """{range of segment.ports: the segment's entries whose ports lie in it}. An entry allows its ports at an
    address of the segment, so they lie in one range of the segment's (merged) ports."""
    if len(segment.ports) == 1:
        return {segment.ports[0]: segment.entries}
    starts = [first for first, _ in segment.ports]
    dealt: dict[tuple[int, int], list[Entry]] = {ports: [] for ports in segment.ports}
    for entry in segment.entries:
        dealt[segment.ports[bisect_right(starts, entry[2]) - 1]].append(entry)
    return dealt


def interval_by_ports(entries: Iterable[tuple[int, int, int, int]]) -> dict[Ports, tuple[IPv4Network, ...]]:
    """Exact cover of (first address, last address, first port, last port) entries grouped by port set:
    {ports: minimal prefixes that allow exactly those ports}."""
    groups: dict[Ports, list[IPv4Network]] = {}
    for segment in interval_segments((*entry, None) for entry in entries):
        groups.setdefault(segment.ports, []).extend(segment.cidrs())
    return {ports: tuple(sorted(nets)) for ports, nets in sorted(groups.items())}
