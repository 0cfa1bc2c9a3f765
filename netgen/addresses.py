"""Exact, minimal address and port sets: the arithmetic every target shares.

A permission is a set of (address, port) pairs. `segments` partitions the address space into maximal runs
that allow the same ports, so a rule set built from it allows exactly the union of its inputs: adjacent and
contained prefixes collapse, and nothing is ever widened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses, summarize_address_range

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


def collapse(nets: Iterable[IPv4Network]) -> tuple[IPv4Network, ...]:
    """The fewest prefixes covering exactly the union of nets."""
    return tuple(collapse_addresses(nets))


@dataclass(frozen=True)
class Segment:
    """Addresses [first, last] (as integers) that allow exactly `ports`."""

    first: int
    last: int
    ports: Ports

    def cidrs(self) -> list[IPv4Network]:
        return list(summarize_address_range(IPv4Address(self.first), IPv4Address(self.last)))


def segments(entries: Iterable[tuple[IPv4Network, int, int]]) -> list[Segment]:
    """Partition the addresses of (network, first port, last port) entries into maximal equal-port runs."""
    events: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for net, first, last in entries:
        start, end = int(net.network_address), int(net.broadcast_address) + 1
        events.setdefault(start, []).append((1, (first, last)))
        events.setdefault(end, []).append((-1, (first, last)))
    active: dict[tuple[int, int], int] = {}
    result: list[Segment] = []
    points = sorted(events)
    for here, following in zip(points, points[1:], strict=False):
        for delta, ports in events[here]:
            count = active.get(ports, 0) + delta
            if count:
                active[ports] = count
            else:
                active.pop(ports, None)
        if not active:
            continue
        ports = merge_ports(active)
        if result and result[-1].last + 1 == here and result[-1].ports == ports:
            result[-1] = Segment(result[-1].first, following - 1, ports)
        else:
            result.append(Segment(here, following - 1, ports))
    return result


def by_ports(entries: Iterable[tuple[IPv4Network, int, int]]) -> dict[Ports, tuple[IPv4Network, ...]]:
    """Exact cover grouped by port set: {ports: minimal prefixes that allow exactly those ports}."""
    groups: dict[Ports, list[IPv4Network]] = {}
    for segment in segments(entries):
        groups.setdefault(segment.ports, []).extend(segment.cidrs())
    return {ports: collapse(nets) for ports, nets in sorted(groups.items())}
