"""The rules of netgen's NetworkPolicies, before they are written: which policies the flows need (one per pods,
direction and owning service or workload, in namespaces run default-deny for that direction) and their exact
rules. netgen.targets.kubernetes writes them; netgen.targets.enforcers checks them against the cluster's
enforcer."""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network

from netgen.addresses import Ports, interval_by_ports, merge_ports
from netgen.cover import fewest_rules
from netgen.model import Estate
from netgen.resolve import Flow, Pods

PolicyKey = tuple[Pods, str, str]  # (pods, direction, owner: the service's or workload's name)
# {protocol: [(first address, last address, first port, last port)]}: what a policy must allow
Entries = dict[str, list[tuple[int, int, int, int]]]


def policy_entries(estate: Estate, flows: list[Flow], only: set[str] | None = None
                   ) -> tuple[dict[PolicyKey, Entries], dict[PolicyKey, set[str]]]:
    """({policy: what it must allow}, {policy: its grants' names}), for the clusters named in only (all: None)."""
    clusters = {c.name: c for c in estate.clusters}
    wanted: dict[PolicyKey, Entries] = {}
    grants: dict[PolicyKey, set[str]] = defaultdict(set)
    for flow in flows:
        p = flow.ports
        for direction, end, peers in (("ingress", flow.destination, flow.source),
                                      ("egress", flow.source, flow.destination)):
            if end.pods is None or (only is not None and end.pods.cluster not in only):
                continue
            modes = clusters[end.pods.cluster].namespaces[end.pods.namespace]
            if getattr(modes, direction) != "default-deny":
                continue
            key = (end.pods, direction, end.name.rsplit("/", 1)[1])
            entries = wanted.setdefault(key, {}).setdefault(p.protocol, [])
            entries.extend((first, last, p.first, p.last) for first, last in peers.intervals)
            grants[key].update(g.name for g in flow.grants)
    return wanted, grants


# Each protocol's ports sit on one axis at its own offset, far enough apart that no range of one touches another's.
_PROTOCOL_OFFSET = {"TCP": 0, "UDP": 1 << 17, "SCTP": 2 << 17}
_PROTOCOL_AT = sorted((offset, protocol) for protocol, offset in _PROTOCOL_OFFSET.items())


def policy_rules(entries: Entries, peer_key: str, single_ports: bool = False, fewest_pairs: bool = False
                 ) -> list[dict]:
    """Policy rules allowing exactly the entries, a rule per set of ports (a port being a protocol and a number, so
    53/TCP and 53/UDP granted to the same hosts are one rule) with the ipBlocks that set is allowed from.

    Which ipBlocks depends on what the enforcer stores (netgen.targets.enforcers.policy_shape):
    - by default, the fewest ipBlocks covering exactly the addresses allowed exactly that set: the peers of a
      policy's rules are disjoint, so each address carries the fewest port entries it can (its ports merged into
      ranges), which is what an enforcer counting entries per CIDR (the VPC CNI's agent) needs;
    - fewest_pairs: the fewest (CIDR, port range) pairs, proven as for security-group rules (netgen.cover), the
      CIDRs of different rules free to overlap (a /28 allowed 9 and one of its hosts 8-10 are two ipBlocks, not
      five): what an enforcer storing an entry per CIDR and port range (Cilium's policy map) needs.
    single_ports: each port of a range as an entry of its own, for enforcers that ignore endPort."""
    combined = [(a, b, first + offset, last + offset)
                for protocol, items in entries.items() for offset in (_PROTOCOL_OFFSET[protocol],)
                for a, b, first, last in items]
    rules = []
    for ports, nets in (_fewest_pairs(combined, single_ports) if fewest_pairs
                        else interval_by_ports(combined)).items():
        port_list = []
        for first, last in ports:
            offset, protocol = next(pair for pair in reversed(_PROTOCOL_AT) if pair[0] <= first)
            if single_ports:
                port_list.extend({"protocol": protocol, "port": number - offset} for number in range(first, last + 1))
                continue
            port = {"protocol": protocol, "port": first - offset}
            if last != first:
                port["endPort"] = last - offset
            port_list.append(port)
        rules.append({peer_key: [{"ipBlock": {"cidr": str(n)}} for n in nets], "ports": port_list})
    return rules


def _fewest_pairs(combined: list[tuple[int, int, int, int]], single_ports: bool = False
                  ) -> dict[Ports, tuple[IPv4Network, ...]]:
    """{ports: CIDRs allowed them}, from the fewest (CIDR, port range) pairs allowing exactly the entries: each
    CIDR with the ranges the cover gives it, CIDRs with the same ranges in one rule. single_ports: ranges are
    written port by port, so a CIDR leaves out the ports a wider CIDR of the cover already allows it (the cover
    widens each range to its largest, which costs nothing as a range and a port each when written out)."""
    ranges: dict[IPv4Network, list[tuple[int, int]]] = defaultdict(list)
    for port_range, cover in fewest_rules([(*entry, None) for entry in combined]).covers.items():
        for net, _ in cover:
            ranges[net].append(port_range)
    if single_ports:
        wider = {net: [p for length in range(net.prefixlen) for p in ranges.get(net.supernet(new_prefix=length), ())]
                 for net in ranges}  # (a CIDR's wider ones are its supernets: 32 lookups, not a scan of all)
        ranges = {net: kept for net, found in ranges.items() if (kept := _minus(found, wider[net]))}
    by_ports: dict[Ports, list[IPv4Network]] = defaultdict(list)
    for net, found in ranges.items():
        by_ports[merge_ports(found)].append(net)
    return {ports: tuple(sorted(nets)) for ports, nets in sorted(by_ports.items())}


def _minus(ranges: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ports of ranges outside every hole, as ranges."""
    left = list(merge_ports(ranges))
    for first, last in merge_ports(holes):
        left = [piece for a, b in left for piece in ((a, min(b, first - 1)), (max(a, last + 1), b))
                if piece[0] <= piece[1]]
    return left
