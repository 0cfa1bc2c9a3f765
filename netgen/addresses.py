"""Exact, minimal address and port sets: the arithmetic every target shares.

A permission is a set of (address, port) pairs. `interval_segments` partitions the address space into maximal
runs that allow the same ports, so a rule set built from it allows exactly the union of its inputs: adjacent
and contained prefixes collapse, and nothing is ever widened. The arithmetic runs on integer intervals
(ipaddress's own collapse is too slow for estates with tens of thousands of hosts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Network

Ports = tuple[tuple[int, int], ...]  # sorted, disjoint, non-adjacent inclusive ranges


def merge_ports(ranges: Iterable[tuple[int, int]]) -> Ports:
    """Union of inclusive port ranges, with touching ranges joined: (80,80),(81,90) -> (80,90)."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
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


@dataclass(frozen=True)
class Segment:
    """Addresses first..last (integers) that allow exactly `ports`; `tags` say which inputs allowed what."""

    first: int
    last: int
    ports: Ports
    tags: frozenset[tuple[int, int, Hashable]] = frozenset()

    def cidrs(self) -> list[IPv4Network]:
        return range_cidrs(self.first, self.last)

    def tags_for(self, first: int, last: int) -> set[Hashable]:
        """Tags of the inputs that allow some port in first..last here."""
        return {tag for a, b, tag in self.tags if a <= last and first <= b}


def interval_segments(entries: Iterable[tuple[int, int, int, int, Hashable]]) -> list[Segment]:
    """Partition the addresses of (first address, last address, first port, last port, tag) entries into maximal
    runs that allow the same ports.

    A sweep over the points where entries open and close, counting the entries and port ranges active."""
    opens: dict[int, list[tuple[int, int, Hashable]]] = defaultdict(list)
    closes: dict[int, list[tuple[int, int, Hashable]]] = defaultdict(list)
    for start, end, first, last, tag in entries:
        item = (first, last, tag)
        opens[start].append(item)
        closes[end + 1].append(item)
    active: dict[tuple[int, int, Hashable], int] = {}
    port_counts: dict[tuple[int, int], int] = {}
    ports: Ports = ()
    runs: list[list] = []  # [first, last, ports, tags]: tags active at the run's start, and any opened in it
    points = sorted(opens.keys() | closes.keys())
    for here, following in zip(points, points[1:], strict=False):
        ports_changed = False
        for item in closes.get(here, ()):
            count = active[item] - 1
            if count:
                active[item] = count
            else:
                del active[item]
            key = item[:2]
            count = port_counts[key] - 1
            if count:
                port_counts[key] = count
            else:
                del port_counts[key]
                ports_changed = True
        opened = opens.get(here, ())
        for item in opened:
            active[item] = active.get(item, 0) + 1
            key = item[:2]
            count = port_counts.get(key, 0)
            ports_changed |= not count
            port_counts[key] = count + 1
        if not active:
            continue
        if ports_changed:
            ports = merge_ports(port_counts)
        if runs and runs[-1][1] + 1 == here and runs[-1][2] == ports:
            runs[-1][1] = following - 1
            runs[-1][3].update(opened)
        else:
            runs.append([here, following - 1, ports, set(active)])
    return [Segment(first, last, ports, frozenset(tags)) for first, last, ports, tags in runs]


def interval_by_ports(entries: Iterable[tuple[int, int, int, int]]) -> dict[Ports, tuple[IPv4Network, ...]]:
    """Exact cover of (first address, last address, first port, last port) entries grouped by port set:
    {ports: minimal prefixes that allow exactly those ports}."""
    groups: dict[Ports, list[IPv4Network]] = {}
    for segment in interval_segments((*entry, None) for entry in entries):
        groups.setdefault(segment.ports, []).extend(segment.cidrs())
    return {ports: tuple(sorted(nets)) for ports, nets in sorted(groups.items())}
