"""netgen.cover: the fewest rules, checked against a brute-force optimum on small random sets; its budget, the
NG208 warning when it runs out, and rule planning that grows linearly with the ports a grant lists (issue 20)."""

from __future__ import annotations

import json
import sys
from functools import cache
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from buildhelpers import build, copy_specs
from conftest import EXAMPLE_AS_OF
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_addresses import check_covers

import netgen
import netgen.cover as cover
from netgen.addresses import interval, port_range_covers
from netgen.cover import fewest_rules
from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.targets.aws_rules import plan_rules

BASE = int(IPv4Address("10.0.0.0"))
BITS = 4  # addresses 10.0.0.0/28
PORTS = 10  # ports 1..10


def brute_force_minimum(entries) -> int:
    """The fewest rules allowing exactly the entries' pairs, by exhaustive search: every (prefix, port range) that
    allows only allowed pairs and lies in no larger such rule, then a search that covers the first uncovered pair
    in each of the ways the rules allow, keeping the fewest. No lemma of netgen.cover is used."""
    allowed = frozenset((a, p) for lo, hi, first, last, _ in entries for a in range(lo, hi + 1)
                        for p in range(first, last + 1))
    rules = []
    for size in range(BITS + 1):
        for start in range(BASE, BASE + (1 << BITS), 1 << size):
            for first in range(1, PORTS + 1):
                for last in range(first, PORTS + 1):
                    cells = frozenset((a, p) for a in range(start, start + (1 << size)) for p in range(first, last + 1))
                    if cells <= allowed:
                        rules.append(cells)
    largest = [r for r in rules if not any(r < other for other in rules)]
    covering = {cell: [r for r in largest if cell in r] for cell in allowed}

    @cache
    def fewest(uncovered: frozenset) -> int:
        if not uncovered:
            return 0
        cell = min(uncovered, key=lambda c: (len(covering[c]), c))
        return 1 + min(fewest(uncovered - rule) for rule in covering[cell])

    return fewest(allowed)


@st.composite
def rule_sets(draw):
    """Entries as grants give them: hosts, small subnets and the whole space, single ports and ranges."""
    items = []
    for _ in range(draw(st.integers(1, 6))):
        size = draw(st.sampled_from([0, 0, 0, 1, 2, 3, BITS]))
        start = BASE + draw(st.integers(0, (1 << (BITS - size)) - 1)) * (1 << size)
        first = draw(st.integers(1, PORTS))
        last = draw(st.one_of(st.just(first), st.integers(first, PORTS)))
        items.append((IPv4Network((start, 32 - size)), first, last))
    return items


def tagged_entries(items):
    tagged = [(net, a, b, index) for index, (net, a, b) in enumerate(items)]
    return tagged, [(*interval(net), a, b, tag) for net, a, b, tag in tagged]


@given(rule_sets())
@example([(IPv4Network("10.0.0.0/28"), 9, 9), (IPv4Network("10.0.0.3/32"), 8, 10),  # issue 19: 4, not 7
          (IPv4Network("10.0.0.4/31"), 4, 5), (IPv4Network("10.0.0.4/30"), 3, 4)])
@example([(IPv4Network("10.0.0.0/28"), 8, 8), (IPv4Network("10.0.0.7/32"), 9, 9)])  # 2: /28 on 8, host on 8-9
@example([(IPv4Network("10.0.0.0/29"), 1, 4), (IPv4Network("10.0.0.8/29"), 3, 9),
          (IPv4Network("10.0.0.0/28"), 5, 6)])  # 2: a /28 on 5-6 is not worth a rule
@settings(max_examples=250, deadline=None)
def test_the_count_is_the_brute_force_minimum_and_the_union_exact(items):
    tagged, entries = tagged_entries(items)
    found = fewest_rules(entries)
    check_covers(found.covers, tagged, disjoint=False)  # exact union, tags of exactly the entries met
    assert found.rules == sum(map(len, found.covers.values())) == brute_force_minimum(entries)
    assert found.proven and found.bound == found.rules
    assert found.rules <= sum(map(len, port_range_covers_of(entries).values()))


def port_range_covers_of(entries):
    from netgen.addresses import interval_segments
    return port_range_covers(interval_segments(entries))


def test_the_issues_example_takes_four_rules_where_ranges_one_by_one_take_seven():
    _, entries = tagged_entries([(IPv4Network("10.0.0.0/28"), 9, 9), (IPv4Network("10.0.0.3/32"), 8, 10),
                                 (IPv4Network("10.0.0.4/31"), 4, 5), (IPv4Network("10.0.0.4/30"), 3, 4)])
    assert sum(map(len, port_range_covers_of(entries).values())) == 7
    found = fewest_rules(entries)
    assert (found.rules, found.bound, found.exact, found.unproven) == (4, 4, 2, 0)  # ports 3-5 and 8-10 apart
    assert found.covers[(9, 9)] == [(IPv4Network("10.0.0.0/28"), {0, 1})]  # the /28 on 9, over the host


def test_a_class_whose_options_share_one_indifferent_half_is_solved_option_by_option():
    """A /24 on k separate ports, its lower /25 on the range around them, one host on a wider range: 2^k subsets
    tried one by one; the lower half is worth as much whatever the /24 takes, so each option is judged alone."""
    a, k = BASE, 24
    entries = ([(a, a + 255, p, p, "s") for p in range(1, 2 * k, 2)] + [(a, a + 127, 1, 2 * k, "l")]
               + [(a + 7, a + 7, 1, 2 * k + 5, "h")])
    found = fewest_rules(entries)
    assert (found.rules, found.bound) == (k + 2, k + 2)
    assert found.work < 2_000


def test_separate_ports_on_a_subnet_and_a_range_on_one_of_its_hosts():
    """The host's range is a rule of its own; each port is one rule on the subnet, not one per piece of it."""
    a, n = BASE, 500
    entries = [(a, a + 255, p, p, f"s{p}") for p in range(1, 2 * n, 2)] + [(a + 7, a + 7, 1, 2 * n, "h")]
    found = fewest_rules(entries)
    assert sum(map(len, port_range_covers_of(entries).values())) == 8 * n + 1
    assert (found.rules, found.bound) == (n + 1, n + 1)


def test_out_of_budget_keeps_an_exact_cover_and_a_true_lower_bound():
    tagged, entries = tagged_entries([(IPv4Network("10.0.0.0/28"), 9, 9), (IPv4Network("10.0.0.3/32"), 8, 10)])
    found = fewest_rules(entries, budget=0)
    check_covers(found.covers, tagged, disjoint=False)
    assert (found.exact, found.unproven, found.work) == (0, 1, 0)
    assert not found.proven and found.bound <= 2 < found.rules  # the fast path's 5 rules, and at least 1
    for budget in (10, 100, 1000):
        spent = fewest_rules(entries, budget=budget)
        assert spent.work <= budget and spent.bound <= 2 <= spent.rules


OVERLAP = "".join(
    [f"""---
apiVersion: netgen.dev/v1alpha1
kind: LegacyHost
metadata:
  name: kiosk-{i}
  labels: {{role: kiosk}}
spec:
  vpc: legacy-use1
  address: 10.10.99.{i}
  securityGroup: legacy-billing-use1
""" for i in range(4)]) + """---
apiVersion: netgen.dev/v1alpha1
kind: HostGroup
metadata:
  name: kiosks
spec:
  selector: {matchLabels: {role: kiosk}}
---
apiVersion: netgen.dev/v1alpha1
kind: Service
metadata:
  name: till
  namespace: payments
spec:
  cluster: prod-use1
  podSelector: {app.kubernetes.io/name: till}
  ports:
    - {name: sale, port: 7000}
    - {name: refund, port: 7001}
  exposure:
    type: pod-ip
---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: kiosks-to-till
spec:
  owner: team-payments
  reason: Kiosks record sales
  from: {hostGroup: kiosks}
  to: {service: payments/till, ports: [sale]}
---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: kiosk-1-refunds
spec:
  owner: team-payments
  reason: The supervisor's kiosk also refunds
  from: {host: kiosk-1}
  to: {service: payments/till, ports: [sale, refund]}
"""


def _node_rules(out: Path) -> list[tuple[str, int, int, str]]:
    """The TCP ingress rules of the cluster's node group: (CIDR, from port, to port, description)."""
    body = json.loads((out / "aws/acme-legacy/us-east-1/sg-prod-use1-nodes.json").read_text())
    return sorted((p["CidrIp"], p["FromPort"], p["ToPort"], p["Description"])
                  for p in (r["Properties"] for r in body["Resources"].values()) if p["IpProtocol"] == "tcp")


def test_overlapping_rules_in_a_build_and_ng208_when_the_search_has_no_budget(tmp_path, monkeypatch):
    """Four kiosks on a /30 allowed 7000, one of them 7000-7001 too: 2 rules (the /30 on 7000 and the host on
    7000-7001, overlapping) where ranges taken one by one need 3. With no budget the build keeps those 3, which
    are exact, and warns (NG208) at the node group with the lower bound, 2 below."""
    specs = copy_specs(tmp_path)
    (specs / "inventory/kiosks.yaml").write_text(OVERLAP)
    result = build(tmp_path / "fewest", cwd=tmp_path)
    assert result.exit_code == 0 and "NG208" not in result.stderr, result.stderr
    fewest = _node_rules(tmp_path / "fewest")
    kiosks = [rule for rule in fewest if rule[0].startswith("10.10.99.")]
    assert kiosks == [("10.10.99.0/30", 7000, 7000, "netgen: kiosk-1-refunds, kiosks-to-till"),
                      ("10.10.99.1/32", 7000, 7001, "netgen: kiosk-1-refunds, kiosks-to-till")]
    monkeypatch.setattr(cover, "EXACT_BUDGET", 0)
    result = build(tmp_path / "fast", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    fast = _node_rules(tmp_path / "fast")
    assert [rule[:3] for rule in fast if rule[0].startswith("10.10.99.")] == [
        ("10.10.99.0/32", 7000, 7000), ("10.10.99.1/32", 7000, 7001), ("10.10.99.2/31", 7000, 7000)]
    lines = (specs / "inventory/security-groups.yaml").read_text().splitlines()
    line = lines.index("  name: prod-use1-nodes") - 2  # the document's first line, apiVersion
    assert result.stderr.splitlines()[0] == (
        f"specs/inventory/security-groups.yaml:{line}:1: warning[NG208]: security group 'prod-use1-nodes' "
        f"(sg-0c3000000000000c1): {len(fast)} ingress TCP rules, not proven the fewest (at least {len(fast) - 2}): "
        "the search of overlapping port ranges ran out of its budget")
    assert len(fast) == len(fewest) + 1


def _planning_lines(specs: Path, tmp_path: Path, ports: int) -> int:
    """Lines of netgen's code run to plan every group's rules of the example estate plus a grant of separate
    ports to a host group (the Python work, counted: deterministic, unlike time)."""
    access = specs / "access/many-ports.yaml"
    listed = ", ".join(str(p) for p in range(10001, 10001 + 2 * ports, 2))
    access.write_text("apiVersion: netgen.dev/v1alpha1\nkind: Grant\nmetadata:\n  name: many-ports\nspec:\n"
                      "  owner: team-payments\n  reason: separate ports\n"
                      "  from: {workload: payments/settlement-worker}\n"
                      f"  to: {{hostGroup: databases, ports: [{listed}]}}\n")
    resolved = resolve_specs(specs, EXAMPLE_AS_OF, Reporter())
    package = str(Path(netgen.__file__).parent)
    count = 0

    def line(frame, event, arg):
        nonlocal count
        count += event == "line"
        return line

    def call(frame, event, arg):
        return line if frame.f_code.co_filename.startswith(package) else None

    sys.settrace(call)
    try:
        plan_rules(resolved.estate, list(resolved.flows), Reporter())
    finally:
        sys.settrace(None)
    return count


def test_planning_grows_linearly_with_the_ports_a_grant_lists(tmp_path):
    """Issue 20: a grant of tens of thousands of separate ports took ten minutes to plan (every entry rescanned
    per port range). Four times the ports must cost about four times the work, not sixteen (it was 14.8x)."""
    specs = copy_specs(tmp_path)
    few, many = _planning_lines(specs, tmp_path, 250), _planning_lines(specs, tmp_path, 1000)
    assert many / few < 5, (few, many)


def _policy_pairs(rules) -> set[tuple[int, int]]:
    """(address, port) pairs the rules of one protocol allow, and their (CIDR, port entry) count."""
    allowed = set()
    for rule in rules:
        for peer in rule["peers"]:
            first, last = interval(IPv4Network(peer["ipBlock"]["cidr"]))
            for port in rule["ports"]:
                allowed.update((a, p) for a in range(first, last + 1)
                               for p in range(port["port"], port.get("endPort", port["port"]) + 1))
    return allowed


@given(rule_sets())
@example([(IPv4Network("10.0.0.0/28"), 9, 9), (IPv4Network("10.0.0.3/32"), 8, 10)])  # 2 pairs, not 5
@example([(IPv4Network("10.0.0.0/28"), 8, 9), (IPv4Network("10.0.0.3/32"), 7, 10)])  # port by port: 2 + 2
@settings(max_examples=150, deadline=None)
def test_policy_rules_with_fewest_pairs_are_the_brute_force_minimum_and_exact(items):
    """A NetworkPolicy rule allows its ipBlocks x its ports: written for Cilium or Calico (fewest_pairs), a
    policy holds the fewest (CIDR, port range) pairs, as security-group rules do; by default (the VPC CNI's
    agent counts entries per CIDR) its CIDRs are disjoint. Both allow exactly the entries."""
    from netgen.targets.policies import policy_rules

    _, entries = tagged_entries(items)
    wanted = {(a, p) for lo, hi, first, last, _ in entries for a in range(lo, hi + 1) for p in range(first, last + 1)}
    policy = {"TCP": [entry[:4] for entry in entries]}
    fewest, disjoint = policy_rules(policy, "peers", fewest_pairs=True), policy_rules(policy, "peers")
    pairs = [sum(len(rule["peers"]) * len(rule["ports"]) for rule in rules) for rules in (fewest, disjoint)]
    assert _policy_pairs(fewest) == _policy_pairs(disjoint) == wanted
    assert pairs[0] == brute_force_minimum(entries) <= pairs[1]
    peers = [peer["ipBlock"]["cidr"] for rule in disjoint for peer in rule["peers"]]
    assert not any(IPv4Network(a).overlaps(IPv4Network(b)) for i, a in enumerate(peers) for b in peers[i + 1:])
    # written port by port (Cilium before 1.16): still exact, and no CIDR repeats a port a wider one allows
    by_port = policy_rules(policy, "peers", single_ports=True, fewest_pairs=True)
    assert _policy_pairs(by_port) == wanted
    written = [(IPv4Network(peer["ipBlock"]["cidr"]), {p["port"] for p in rule["ports"]})
               for rule in by_port for peer in rule["peers"]]
    assert all(not (ports & other_ports) for net, ports in written for other, other_ports in written
               if other != net and net.subnet_of(other))
