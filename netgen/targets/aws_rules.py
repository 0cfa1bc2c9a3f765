"""Security-group rules: what each group's rules must allow (ruled_flows), the fewest rules allowing exactly
that per direction and protocol (group_rules, through netgen.cover), and their places in the group and its
overflow groups within the quota (_spread). netgen.targets.aws renders them into the groups' stacks."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, replace
from ipaddress import IPv4Network

from netgen.cover import fewest_rules
from netgen.diagnostics import Reporter
from netgen.model import Estate, SecurityGroup
from netgen.resolve import Endpoint, Flow


@dataclass(frozen=True)
class Rule:
    group: SecurityGroup
    direction: str  # ingress | egress
    protocol: str
    first: int
    last: int
    cidr: IPv4Network
    grants: tuple[str, ...]
    part: int = 0  # which of group.group_ids holds the rule: 0 the group itself, 1.. its overflow groups

    @property
    def group_id(self) -> str:
        return self.group.group_ids[self.part]

    @property
    def identity(self) -> tuple:
        return self.group.group_id, self.direction, self.protocol, self.first, self.last, self.cidr


def _spread(rules: list[Rule], group: SecurityGroup) -> list[Rule] | None:
    """Place a group's rules for one direction into the group and its overflow groups, each within the quota.

    A rule's place is picked by a hash of what it is, moving on to the next group with room, so that adding or
    removing a rule moves few others. None when even all the groups together cannot hold the rules."""
    parts = len(group.group_ids)
    if len(rules) <= group.rule_quota:
        return rules
    if len(rules) > group.rule_quota * parts:
        return None
    load = [0] * parts
    placed = []
    for rule in sorted(rules, key=lambda r: r.identity):
        digest = hashlib.sha256("|".join(map(str, rule.identity)).encode()).digest()
        part = int.from_bytes(digest[:4], "big") % parts
        while load[part] >= group.rule_quota:
            part = (part + 1) % parts
        load[part] += 1
        placed.append(replace(rule, part=part))
    return placed


# An entry of what a group's rules must allow, before minimisation: (first address, last address, first port,
# last port, the names of the flow's grants).
Entry = tuple[int, int, int, int, tuple[str, ...]]


def ruled_flows(estate: Estate, flows: list[Flow]) -> dict[str, list[tuple[str, Flow]]]:
    """{group name: [(direction, flow)]}, in flow order: the flows whose rules each group takes, ingress on the
    destination's group, and egress on the source's group when that group restricts egress."""
    restricting = {g.name for g in estate.security_groups if g.restricts_egress}
    ruled: dict[str, list[tuple[str, Flow]]] = defaultdict(list)
    for flow in flows:
        if flow.destination.security_group:
            ruled[flow.destination.security_group].append(("ingress", flow))
        if flow.source.security_group in restricting:
            ruled[flow.source.security_group].append(("egress", flow))
    return ruled


def _peer(direction: str, flow: Flow) -> Endpoint:
    """The other end of a flow, as a rule of the given direction names it."""
    return flow.source if direction == "ingress" else flow.destination


def _rule_weights(ruled: dict[str, list[tuple[str, Flow]]]) -> dict[str, int]:
    """{group name: how many address ranges its rules must cover}, the work of planning them, for sharing it."""
    return {name: sum(len(_peer(direction, flow).intervals) for direction, flow in of_group)
            for name, of_group in ruled.items()}


def rule_sets(ruled: list[tuple[str, Flow]]) -> dict[tuple[str, str], list[Entry]]:
    """{(direction, protocol): entries} of one group (ruled: its entry of ruled_flows()): what each of its rule
    sets must allow."""
    wanted: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for direction, flow in ruled:
        names = tuple([g.name for g in flow.grants])
        protocol, first, last = flow.ports.protocol, flow.ports.first, flow.ports.last
        add = wanted[(direction, protocol)].append
        for a, b in _peer(direction, flow).intervals:
            add((a, b, first, last, names))
    return wanted


def group_rules(group: SecurityGroup, ruled: list[tuple[str, Flow]], reporter: Reporter) -> list[Rule]:
    """Exact rules of one group (ruled: its entry of ruled_flows()), ingress then egress: per direction and
    protocol, the fewest rules allowing exactly what the group's flows need (netgen.cover), placed over the group
    and its overflow groups. A direction whose rules do not fit is reported (NG201) and left out; a rule set whose
    count the exact search could not prove the fewest within its budget is kept and reported (NG208)."""
    by_direction: dict[str, list[Rule]] = defaultdict(list)
    for (direction, protocol), entries in sorted(rule_sets(ruled).items()):
        of_direction = by_direction[direction]
        found = fewest_rules(entries)
        if not found.proven:
            reporter.add(group.loc, "NG208", f"security group '{group.name}' ({group.group_id}): {found.rules} "
                                             f"{direction} {protocol} rules, not proven the fewest (at least "
                                             f"{found.bound}): the search of overlapping port ranges ran out of "
                                             "its budget")
        for (first, last), cover in found.covers.items():
            for cidr, tags in cover:
                grants = tuple(sorted({name for names in tags for name in names}))
                of_direction.append(Rule(group, direction, protocol, first, last, cidr, grants))
    rules: list[Rule] = []
    for direction, planned in sorted(by_direction.items()):
        placed = _spread(planned, group)
        if placed is None:
            if group.overflow_group_ids:
                limit = (f"over the room of {group.rule_quota * len(group.group_ids)} in it and its "
                         f"{len(group.overflow_group_ids)} overflow group(s)")
            else:
                limit = (f"over its quota of {group.rule_quota} (list overflowGroupIds to spread rules over "
                         "more groups)")
            reporter.add(group.loc, "NG201", f"security group '{group.name}' ({group.group_id}) would need "
                                             f"{len(planned)} {direction} rules, {limit}")
            continue
        rules.extend(placed)
    return rules


def plan_rules(estate: Estate, flows: list[Flow], reporter: Reporter) -> list[Rule]:
    """Every group's rules (group_rules), groups in name order."""
    groups = {g.name: g for g in estate.security_groups}
    return [rule for name, ruled in sorted(ruled_flows(estate, flows).items())
            for rule in group_rules(groups[name], ruled, reporter)]
