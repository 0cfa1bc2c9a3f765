"""Property tests for netgen.addresses: the exact (address, port) arithmetic every target shares.

Address spaces are kept small (networks inside 10.0.0.0/24, ports 1..20) so the allowed pairs can be
enumerated and compared as plain sets.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from hypothesis import example, given, settings
from hypothesis import strategies as st

from netgen.addresses import (
    collapse,
    interval,
    interval_by_ports,
    interval_segments,
    merge_ports,
    port_range_covers,
)
from netgen.cover import fewest_rules


def by_ports(entries):
    """interval_by_ports() of (network, first port, last port) entries."""
    return interval_by_ports((*interval(net), a, b) for net, a, b in entries)


def segments(entries):
    """interval_segments() of (network, first port, last port, tag) entries."""
    return interval_segments((*interval(net), a, b, tag) for net, a, b, tag in entries)

BASE = int(IPv4Address("10.0.0.0"))
PORTS = range(1, 21)


@st.composite
def networks(draw, base: int = BASE, bits: int = 8) -> IPv4Network:
    prefix = draw(st.integers(min_value=32 - bits, max_value=32))
    offset = draw(st.integers(min_value=0, max_value=2**bits - 1))
    size = 2 ** (32 - prefix)
    return IPv4Network((base + offset // size * size, prefix))


@st.composite
def port_ranges(draw) -> tuple[int, int]:
    first = draw(st.integers(min_value=PORTS.start, max_value=PORTS.stop - 1))
    last = draw(st.integers(min_value=first, max_value=PORTS.stop - 1))
    return first, last


entries = st.lists(st.tuples(networks(), port_ranges()).map(lambda e: (e[0], *e[1])), max_size=12)


def pairs_of_entries(items) -> set[tuple[int, int]]:
    return {(int(address), port) for net, first, last in items for address in net for port in range(first, last + 1)}


def pairs_of_groups(groups) -> set[tuple[int, int]]:
    return {(int(address), port) for ports, nets in groups.items() for net in nets for address in net
            for first, last in ports for port in range(first, last + 1)}


def addresses(nets) -> set[int]:
    return {int(a) for net in nets for a in net}


@given(entries)
@example([])
@example([(IPv4Network("10.0.0.0/25"), 1, 5), (IPv4Network("10.0.0.128/25"), 1, 5)])  # collapses to a /24
@example([(IPv4Network("10.0.0.0/24"), 1, 5), (IPv4Network("10.0.0.7/32"), 6, 9)])  # hole punched, touching
@example([(IPv4Network("10.0.0.0/24"), 1, 20), (IPv4Network("10.0.0.5/32"), 3, 4)])  # contained
@example([(IPv4Network("10.0.0.255/32"), 20, 20)])  # the last address of the space
@settings(max_examples=300, deadline=None)
def test_by_ports_allows_exactly_the_union_of_the_entries(items):
    groups = by_ports(items)
    assert pairs_of_groups(groups) == pairs_of_entries(items)


@given(entries)
@settings(max_examples=200, deadline=None)
def test_by_ports_output_is_canonical_and_minimal(items):
    groups = by_ports(items)
    seen: set[int] = set()
    for ports, nets in groups.items():
        assert ports, "an empty port set allows nothing and must not appear"
        assert ports == merge_ports(ports)
        assert list(nets) == list(collapse_addresses(nets)), "prefixes of one port set are not minimal"
        covered = addresses(nets)
        assert not covered & seen, "an address appears under two port sets"
        seen |= covered
    # Each address lands under exactly the port set the entries give it.
    for address in seen:
        expected = merge_ports((a, b) for net, a, b in items if IPv4Address(address) in net)
        assert any(IPv4Address(address) in net for net in groups[expected])
    assert list(groups) == sorted(groups)


@given(entries)
@settings(max_examples=200, deadline=None)
def test_segments_are_sorted_disjoint_maximal_exact_and_tagged(items):
    tagged = [(net, a, b, index) for index, (net, a, b) in enumerate(items)]
    result = segments(tagged)
    for left, right in zip(result, result[1:], strict=False):
        assert left.last < right.first
        assert not (left.last + 1 == right.first and left.ports == right.ports), "touching equal runs not joined"
    covered: set[int] = set()
    for seg in result:
        assert seg.first <= seg.last and seg.ports
        here = set(range(seg.first, seg.last + 1))
        covered |= here
        assert addresses(seg.cidrs()) == here
        assert seg.cidrs() == list(collapse_addresses(seg.cidrs())), "a run's prefixes are not minimal"
        for address in here:
            assert seg.ports == merge_ports((a, b) for net, a, b in items if IPv4Address(address) in net)
        # a run's entries are exactly the inputs that allow some of its addresses something
        assert {tag for *_, tag in seg.entries} == {i for net, a, b, i in tagged if here & addresses([net])}
    assert covered == addresses(net for net, _, _ in items)


def check_covers(covers, tagged, disjoint=True):
    """Exact, each prefix tagged with exactly the inputs allowing some of its pairs; with disjoint, no two rules
    allow the same pair and the prefixes of each port range are minimal (the fast path's own promise)."""
    assert list(covers) == sorted(covers)
    allowed = [(int(address), port) for (first, last), cover in covers.items() for net, _ in cover
               for address in net for port in range(first, last + 1)]
    assert set(allowed) == pairs_of_entries([(net, a, b) for net, a, b, _ in tagged])
    for (first, last), cover in covers.items():
        nets = [net for net, _ in cover]
        assert nets == sorted(nets)
        if disjoint:
            assert nets == list(collapse_addresses(nets)), "the prefixes of one port range are not minimal"
        for net, tags in cover:
            assert tags == {i for n, a, b, i in tagged if a <= last and first <= b and net.overlaps(n)}
    if disjoint:
        assert len(allowed) == len(set(allowed)), "two rules allow the same pair"


@given(entries)
@example([(IPv4Network("10.0.0.0/25"), 1, 1), (IPv4Network("10.0.0.128/25"), 1, 1),
          (IPv4Network("10.0.0.128/25"), 5, 5)])  # port 1 from the /24, across two port sets
@example([(IPv4Network("10.0.0.0/26"), 1, 3), (IPv4Network("10.0.0.64/26"), 1, 3), (IPv4Network("10.0.0.70/32"), 9, 9),
          (IPv4Network("10.0.0.128/25"), 1, 3)])  # one /24 for 1-3 over three segments, tags per prefix
@settings(max_examples=300, deadline=None)
def test_port_range_covers_are_exact_minimal_per_range_and_tagged(items):
    tagged = [(net, a, b, index) for index, (net, a, b) in enumerate(items)]
    covers = port_range_covers(segments(tagged))
    check_covers(covers, tagged)
    for (first, last), cover in covers.items():  # listed for exactly the addresses whose merged ports hold it
        expected = {a for a in addresses(net for net, _, _ in items)
                    if (first, last) in merge_ports((x, y) for net, x, y in items if IPv4Address(a) in net)}
        assert addresses(net for net, _ in cover) == expected


@given(entries)
@example([(IPv4Network("10.0.0.0/24"), 8, 8), (IPv4Network("10.0.0.7/32"), 9, 9)])  # 2 rules, not 9
@example([(IPv4Network("10.0.0.1/32"), 1, 10), (IPv4Network("10.0.0.2/32"), 5, 15)])  # 2, not 4
@example([(IPv4Network("10.0.0.0/25"), 1, 4), (IPv4Network("10.0.0.128/25"), 3, 9), (IPv4Network("10.0.0.0/24"), 5, 6)])
@settings(max_examples=300, deadline=None)
def test_fewest_rules_are_exact_tagged_and_never_more_than_the_fast_path(items):
    tagged = [(net, a, b, index) for index, (net, a, b) in enumerate(items)]
    found = fewest_rules([(*interval(net), a, b, tag) for net, a, b, tag in tagged])
    check_covers(found.covers, tagged, disjoint=False)
    assert found.rules == sum(map(len, found.covers.values()))
    assert found.proven
    by_address = port_range_covers(segments(tagged))
    assert found.rules <= sum(map(len, by_address.values()))


def test_a_widely_shared_port_beside_a_touching_one_takes_two_rules():
    a = int(IPv4Address("10.0.0.0"))
    covers = fewest_rules([(a, a + 255, 8080, 8080, "web"), (a + 7, a + 7, 8081, 8081, "admin")]).covers
    assert covers == {(8080, 8080): [(IPv4Network("10.0.0.0/24"), {"web"})],  # overlapping rules, exact tags
                      (8080, 8081): [(IPv4Network("10.0.0.7/32"), {"web", "admin"})]}
    covers = fewest_rules([(a + 1, a + 1, 1, 10, "x"), (a + 2, a + 2, 5, 15, "y")]).covers
    assert covers == {(1, 10): [(IPv4Network("10.0.0.1/32"), {"x"})], (5, 15): [(IPv4Network("10.0.0.2/32"), {"y"})]}


@given(st.lists(port_ranges(), max_size=10))
@example([(1, 1), (2, 2)])
@example([(3, 9), (1, 20)])
@example([(5, 6), (8, 9)])
def test_merge_ports_is_exact_and_minimal(ranges):
    merged = merge_ports(ranges)
    assert {p for a, b in merged for p in range(a, b + 1)} == {p for a, b in ranges for p in range(a, b + 1)}
    for a, b in merged:
        assert a <= b
    for (_, last), (first, _) in zip(merged, merged[1:], strict=False):
        assert last + 1 < first, "output ranges overlap or touch"
    assert merge_ports(merged) == merged
    assert merge_ports(reversed(ranges)) == merged


@given(st.lists(networks(), max_size=12))
@example([IPv4Network("10.0.0.0/26"), IPv4Network("10.0.0.64/26")])
def test_collapse_keeps_the_address_set_and_is_minimal(nets):
    collapsed = collapse(nets)
    assert list(collapsed) == list(collapse_addresses(nets))  # the standard library's answer
    assert addresses(collapsed) == addresses(nets)
    assert list(collapsed) == sorted(collapsed)
    for left, right in zip(collapsed, collapsed[1:], strict=False):
        assert not left.overlaps(right)
        merged = left.supernet() if left.prefixlen else None
        assert not (merged and left.prefixlen == right.prefixlen and merged == right.supernet()), \
            "sibling prefixes not merged"


@given(entries, entries)
@settings(max_examples=100, deadline=None)
def test_by_ports_depends_only_on_the_union(first, second):
    """Order, duplicates and how the union is split into entries never change the output."""
    assert by_ports(first + second) == by_ports(second + first) == by_ports(first + second + first)
    assert by_ports(split(first + second)) == by_ports(first + second)


def split(items):
    """The same (address, port) pairs as other entries: halve every network and port range."""
    result = []
    for net, first, last in items:
        halves = list(net.subnets()) if net.prefixlen < 32 else [net]
        middle = (first + last) // 2
        ranges = [(first, middle), (middle + 1, last)] if first < last else [(first, last)]
        result += [(half, a, b) for half in halves for a, b in ranges]
    return result
