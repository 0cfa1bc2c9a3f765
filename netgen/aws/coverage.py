"""How the live rules and routes of the inventory stand against the grants: the categories `netgen drift` names
them by (managed, adopted, covered, uncovered), and the coverage that tells hand-made ones apart.

- **Coverage** (`Coverage`): what the specs' flows allow each security group, per direction and protocol, as
  (address range, port range) pairs, exactly as `netgen build` compiles rules from them (ingress on the
  destination's group, egress on the source's group; a group's overflow groups beside it). A rule is
  *covered* when every (address, port) pair it allows is one of those, whatever its ports or prefixes look like
  (a rule narrower than a generated one is covered). Egress is reckoned for every group, also those that do not
  restrict egress (netgen writes no egress rules there, but a hand rule is still judged by what flows need).
- **Categories** (`classify_rules`): managed (a `netgen:` description), adopted (a hand rule identical to a
  generated one), covered or uncovered (every other hand rule, by the coverage). netgen/aws/drift.py names live
  rules and routes by them; netgen/aws/import_grants.py imports grants for the uncovered rules only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network

from netgen.addresses import collapse_intervals, interval
from netgen.aws.generated import RuleSpec, is_owned
from netgen.model import Estate
from netgen.resolve import Flow

PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "132": "sctp", "1": "icmp", "58": "icmpv6"}

# Categories of live rules and routes (netgen drift, netgen import-grants).
MANAGED, ADOPTED, COVERED, UNCOVERED = "managed", "adopted", "covered", "uncovered"


def protocol_name(protocol: str) -> str:
    """EC2's protocol as netgen names it: '6' -> 'tcp'; '-1' stays (all protocols)."""
    return PROTOCOL_NAMES.get(protocol, protocol.lower())


def is_default_egress(rule: RuleSpec, restricts_egress: bool) -> bool:
    """The AWS default egress rule (all traffic to 0.0.0.0/0, and to ::/0 in a VPC with IPv6) of a group that
    does not restrict egress."""
    return (rule.direction == "egress" and rule.protocol == "-1" and rule.cidr in ("0.0.0.0/0", "::/0")
            and not restricts_egress)


def ports_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


# -- coverage ---------------------------------------------------------------------------------------------------

Piece = tuple[int, int, int, int]  # (first address, last address, first port, last port), inclusive


class Coverage:
    """What the flows allow each group: {(group id, direction, protocol): [Piece]}."""

    def __init__(self, estate: Estate, flows: Iterable[Flow]):
        groups = {g.name: g for g in estate.security_groups}
        self.allowed: dict[tuple[str, str, str], list[Piece]] = defaultdict(list)
        for flow in flows:
            p = flow.ports
            protocol = p.protocol.lower()
            for guarded, direction, peer in ((flow.destination, "ingress", flow.source),
                                             (flow.source, "egress", flow.destination)):
                if guarded.security_group in groups:
                    for gid in groups[guarded.security_group].group_ids:
                        self.allowed[(gid, direction, protocol)].extend(
                            (a, b, p.first, p.last) for a, b in peer.intervals)

    def gaps(self, rule: RuleSpec) -> tuple[list[Piece], str]:
        """The (address, port) pieces the rule allows and no flow does, and a reason when the rule cannot be
        judged piecewise (all protocols, a peer that is no IPv4 CIDR). Nothing and '' means covered."""
        protocol = protocol_name(rule.protocol)
        if protocol == "-1":
            return [], "allows all protocols and ports"
        if protocol not in ("tcp", "udp"):
            return [], f"allows {protocol}, which no grant can"
        net = ipv4(rule.cidr)
        if net is None:
            kind = ("a security group" if rule.cidr.startswith("sg-") else "a prefix list"
                    if rule.cidr.startswith("pl-") else "not an IPv4 CIDR")
            return [], f"its peer {rule.cidr} is {kind} (grants name addresses)"
        first, last = (0, 65535) if rule.first < 0 else (rule.first, rule.last)
        return uncovered_pieces(interval(net), first, last,
                                self.allowed.get((rule.group_id, rule.direction, protocol), [])), ""

    def judge(self, rule: RuleSpec) -> tuple[str, str]:
        """(COVERED, '') or (UNCOVERED, why: the reason from gaps, or what no grant allows)."""
        pieces, why = self.gaps(rule)
        if not pieces and not why:
            return COVERED, ""
        return UNCOVERED, why or f"no grant allows {pieces_text(pieces, protocol_name(rule.protocol))}"

    def category(self, rule: RuleSpec) -> str:
        return self.judge(rule)[0]

    def why_uncovered(self, rule: RuleSpec) -> str:
        return self.judge(rule)[1]


def uncovered_pieces(addresses: tuple[int, int], first: int, last: int, allowed: list[Piece]) -> list[Piece]:
    """addresses x first..last minus the union of allowed, as pieces (one per port segment and address run)."""
    a0, b0 = addresses
    relevant = [p for p in allowed if p[0] <= b0 and a0 <= p[1] and p[2] <= last and first <= p[3]]
    cuts = sorted({first} | {p[2] for p in relevant if first < p[2] <= last}
                  | {p[3] + 1 for p in relevant if first <= p[3] < last})
    found: list[Piece] = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] - 1 if i + 1 < len(cuts) else last
        covering = sorted((max(a, a0), min(b, b0)) for a, b, f, t in relevant if f <= start and end <= t)
        cursor = a0
        for a, b in covering:
            if a > cursor:
                found.append((cursor, a - 1, start, end))
            cursor = max(cursor, b + 1)
            if cursor > b0:
                break
        if cursor <= b0:
            found.append((cursor, b0, start, end))
    # join pieces of adjacent port segments with the same addresses
    joined: list[Piece] = []
    for piece in sorted(found, key=lambda p: (p[0], p[1], p[2])):
        if joined and joined[-1][:2] == piece[:2] and joined[-1][3] + 1 == piece[2]:
            joined[-1] = (*piece[:2], joined[-1][2], piece[3])
        else:
            joined.append(piece)
    return joined


def pieces_text(pieces: list[Piece], protocol: str, limit: int = 3) -> str:
    by_ports: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for a, b, f, t in pieces:
        by_ports[(f, t)].append((a, b))
    parts = [f"{','.join(map(str, collapse_intervals(runs)))} on {protocol}/{ports_text(*ports)}"
             for ports, runs in sorted(by_ports.items())]
    more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def ipv4(text: str) -> IPv4Network | None:
    try:
        net = ip_network(text, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, IPv4Network) else None


def within(net: IPv4Network, nets: Iterable[IPv4Network]) -> bool:
    """Every address of net is in one of nets (together, not necessarily one alone)."""
    return not uncovered_pieces(interval(net), 0, 0, [(*interval(n), 0, 0) for n in nets])


# -- classifying live rules --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Classified:
    rule: RuleSpec
    category: str  # managed | adopted | covered | uncovered
    why: str = ""  # for uncovered: what no grant allows


def classify_rules(estate: Estate, flows: Iterable[Flow], live: Iterable[RuleSpec],
                   generated: Iterable[RuleSpec] | None = None) -> list[Classified]:
    """Every live rule of the inventory's groups in its category; the AWS default egress rule of a group that
    does not restrict egress is left out (it is expected). managed: a `netgen:` description; adopted: a hand rule
    identical (group, direction, protocol, ports, CIDR) to one of `generated` (generated/'s rules; without them
    no rule is adopted); covered or uncovered: every other hand rule, by the flows."""
    restricts = {gid: g.restricts_egress for g in estate.security_groups for gid in g.group_ids}
    keys = {r.key for r in generated or ()}
    coverage = Coverage(estate, flows)
    found = []
    for rule in live:
        if is_default_egress(rule, restricts.get(rule.group_id, False)):
            continue
        if is_owned(rule):
            found.append(Classified(rule, MANAGED))
        elif rule.key in keys:
            found.append(Classified(rule, ADOPTED))
        else:
            found.append(Classified(rule, *coverage.judge(rule)))
    return found
