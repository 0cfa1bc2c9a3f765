"""The real blast radius of a grant: who else the openings it needs admit, layer by layer.

Security groups and NetworkPolicy enforce what netgen writes, but at their own grain. A rule names a CIDR and
sits on a group: with the CNI's SNAT on, a workload's packets carry its node's address, so the rule admits the
cluster's node subnets, and with them every pod of the cluster (whose egress no policy restricts), the nodes and
their host-network pods; a rule on a group admits every interface carrying the group, so every other host of a
shared legacy group, or every node and pod of a cluster. Both follow from the facts netgen documents
(docs/spec.md); this module names them per grant for `netgen diff` and `netgen explain`, and counts the addresses
a grant opens on legacy hosts' groups beyond its own for Settings.maxCollateralAddresses (NG124).

What counts as the grant's own: its hosts' addresses; its service's pods, NLB and nodes (the path the service's
exposure chooses); its workload's pods, which may take any address of the cluster's pod CIDRs (only NetworkPolicy
tells them from other pods: the NetworkPolicy layer names the namespaces whose egress no policy restricts).
What counts beyond it, on a legacy host's group (which has no NetworkPolicy behind it): node subnets that SNAT
puts in front of the workload's pods, and the other hosts carrying the group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from netgen.addresses import collapse_intervals, interval
from netgen.diagnostics import Reporter
from netgen.model import Cluster, Estate, Host, PortRange
from netgen.resolve import Flow

SECURITY_GROUP = "security group"
NETWORK_POLICY = "NetworkPolicy"


@dataclass(frozen=True, order=True)
class Admission:
    """One party an opening admits beyond the grant's own."""

    layer: str  # SECURITY_GROUP or NETWORK_POLICY
    where: str  # the group (name and id), or the cluster
    who: str  # in words
    spans: tuple[tuple[int, int], ...] = ()  # addresses beyond the grant's own on a legacy host's group (NG124)
    fix: str = ""  # the narrower fix, when there is one

    @property
    def addresses(self) -> int:
        return _size(self.spans)

    def text(self) -> str:
        counted = f" ({self.addresses} address(es) beyond the grant's own)" if self.addresses else ""
        return f"{self.layer} {self.where}: {self.who}{counted}"

    def as_dict(self) -> dict:
        return {"layer": self.layer, "where": self.where, "who": self.who, "addresses": self.addresses,
                "fix": self.fix}


class _Estate:
    """What the blast radius reads of an estate, indexed once."""

    def __init__(self, estate: Estate):
        self.groups = {g.name: g for g in estate.security_groups}
        self.clusters = {c.name: c for c in estate.clusters}
        self.cluster_of_group = {c.security_group.name: c for c in estate.clusters}
        self.carriers: dict[str, list[Host]] = defaultdict(list)  # group -> the legacy hosts carrying it
        for host in estate.hosts:
            self.carriers[host.security_group.name].append(host)

    def group(self, name: str) -> str:
        group = self.groups[name]
        return f"{name} ({group.group_id})"


def _size(spans: Iterable[tuple[int, int]]) -> int:
    """How many addresses the ranges hold, each counted once."""
    return sum(b - a + 1 for a, b in map(interval, collapse_intervals(spans)))


def _open(cluster: Cluster, direction: str) -> list[str]:
    return sorted(ns for ns, modes in cluster.namespaces.items() if getattr(modes, direction) == "open")


def _pods_of(cluster: Cluster, direction: str, what: str) -> tuple[str, str, str]:
    """The NetworkPolicy layer of an opening that every pod of the cluster shares: (layer, where, who without
    its ports)."""
    opened = _open(cluster, direction)
    if opened:
        who = (f"{what}: the pods of every namespace whose {direction} no policy restricts ({', '.join(opened)}), "
               "and of any namespace not declared on the cluster")
    else:
        who = (f"{what}: only pods a policy allows, as every declared namespace runs default-deny {direction} "
               "(namespaces not declared on the cluster are unknown to netgen)")
    return NETWORK_POLICY, f"cluster {cluster.name}", who


def _others(hosts: list[Host], own: Iterable[tuple[int, int]]) -> list[Host]:
    """The hosts not within the own address ranges."""
    spans = list(own)
    return [h for h in hosts if not any(a <= int(h.address) <= b for a, b in spans)]


def _spans(hosts: list[Host]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((int(h.address), int(h.address)) for h in hosts))


def _carry(hosts: list[Host]) -> str:
    return "which also carries" if len(hosts) == 1 else "which also carry"


def _host_list(hosts: list[Host]) -> str:
    return ", ".join(f"{h.name} ({h.address})" for h in sorted(hosts, key=lambda h: h.name))


def admissions(estate: Estate, flows: Iterable[Flow], own_hosts: Iterable[Host] = ()) -> list[Admission]:
    """Who else the openings of flows (one grant's, say) admit, sorted, the ports of alike openings together;
    own_hosts: the grant's legacy hosts, never counted as others."""
    index = estate if isinstance(estate, _Estate) else _Estate(estate)
    own = [(int(h.address), int(h.address)) for h in own_hosts]
    alike: dict[tuple, set[tuple[str, int, int]]] = defaultdict(set)  # (layer, where, who, spans, fix): ports

    def add(ports, layer: str, where: str, who: str, spans=(), fix: str = "") -> None:
        alike[(layer, where, who, tuple(spans), fix)].add((ports.protocol, ports.first, ports.last))

    for flow in flows:
        ports, source, destination = flow.ports, flow.source, flow.destination
        dst_group = destination.security_group
        if dst_group and dst_group in index.groups:
            carriers = index.carriers.get(dst_group, [])
            legacy = bool(carriers) and dst_group not in index.cluster_of_group
            if source.kind == "workload" and source.pods is not None:
                cluster = index.clusters[source.pods.cluster]
                nets = ",".join(map(str, source.addresses))
                if flow.note == "snat to node":
                    fix = (f"exclude {','.join(map(str, destination.addresses))} from SNAT on cluster "
                           f"'{cluster.name}' (Cluster.spec.sourceNat.excludedCidrs), so that the group admits pod "
                           "addresses only, or use Security Groups for Pods where the cluster supports them")
                    add(ports, SECURITY_GROUP, index.group(dst_group),
                        f"from {nets}, the node subnets of cluster {cluster.name}: every pod of the cluster (SNAT "
                        "gives them their node's address), its nodes and host-network pods",
                        source.intervals if legacy else (), fix)
                else:
                    add(ports, SECURITY_GROUP, index.group(dst_group),
                        f"from {nets}, the pod CIDRs of cluster {cluster.name}: every pod of the cluster")
                add(ports, *_pods_of(cluster, "egress", f"to {destination}"))
            if legacy:
                others = _others(carriers, [*destination.intervals, *own])
                if others:
                    add(ports, SECURITY_GROUP, index.group(dst_group),
                        f"to {_host_list(others)} as well, {_carry(others)} the group", _spans(others),
                        "give the grant's hosts a security group of their own")
            elif dst_group in index.cluster_of_group:
                cluster = index.cluster_of_group[dst_group]
                add(ports, SECURITY_GROUP, index.group(dst_group),
                    f"from {source} to every node and pod of cluster {cluster.name}, which carry the group")
                add(ports, *_pods_of(cluster, "ingress", f"from {source}"))
        src_group = source.security_group
        if src_group and src_group in index.groups and index.groups[src_group].restricts_egress:
            carriers = index.carriers.get(src_group, [])
            if carriers and src_group not in index.cluster_of_group and flow.path.source_vpc == source.vpc:
                others = _others(carriers, [*source.intervals, *own])
                if others:
                    add(ports, SECURITY_GROUP, index.group(src_group),
                        f"to {destination} from {_host_list(others)} as well, {_carry(others)} the group (egress)",
                        _spans(others), "give the grant's hosts a security group of their own")
    found = []
    for (layer, where, who, spans, fix), ranges in alike.items():
        text = ", ".join(PortRange(*r).text for r in sorted(ranges))
        found.append(Admission(layer, where, f"{text} {who}", spans, fix))
    return sorted(found)


def collateral_addresses(found: Iterable[Admission]) -> int:
    """The addresses beyond a grant's own that its openings admit on legacy hosts' groups, each counted once per
    group (node subnets opened on two ports of one group count once)."""
    per_group: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for admission in found:
        per_group[admission.where].extend(admission.spans)
    return sum(map(_size, per_group.values()))


def by_grant(estate: Estate, flows: Iterable[Flow], names: set[str] | None = None) -> dict[str, list[Admission]]:
    """{grant name: admissions of its flows} for the grants named (all: None)."""
    index = _Estate(estate)
    grants = {g.name: g for g in estate.grants}
    of_grant: dict[str, list[Flow]] = defaultdict(list)
    for flow in flows:
        for ref in flow.grants:
            if names is None or ref.name in names:
                of_grant[ref.name].append(flow)
    return {name: admissions(index, of_grant[name], grants[name].hosts if name in grants else ())
            for name in sorted(of_grant)}


def check_collateral(estate: Estate, flows: Iterable[Flow], reporter: Reporter) -> None:
    """NG124: a grant whose openings on legacy hosts' groups admit more than Settings.maxCollateralAddresses
    addresses beyond its own."""
    limit = estate.settings.max_collateral_addresses
    if limit is None:
        return
    grants = {g.name: g for g in estate.grants}
    for name, found in by_grant(estate, flows).items():
        count = collateral_addresses(found)
        if count <= limit:
            continue
        reasons = [f"group {a.where}, {a.who} ({a.addresses} address(es)); narrower: {a.fix}"
                   for a in found if a.addresses]
        reporter.add(grants[name].loc, "NG124",
                     f"grant '{name}' opens legacy hosts' security groups to {count} addresses beyond its own, over "
                     f"Settings.maxCollateralAddresses ({limit}): " + "; ".join(reasons))



# ---- words for reviewers (netgen diff and explain) ----------------------------------------------------------------


def admits_lines(found: list[Admission]) -> list[str]:
    """Text lines naming who else the openings admit (none when nothing does)."""
    if not found:
        return []
    lines = ["who else these openings admit:"]
    for admission in found:
        lines.append(f"  {admission.text()}")
        if admission.fix:
            lines.append(f"    narrower: {admission.fix}")
    return lines


def admits_markdown(found: list[Admission]) -> list[str]:
    """The same as a Markdown list, for a pull-request comment."""
    if not found:
        return []
    lines = ["Who else these openings admit:", ""]
    for admission in found:
        counted = f" (**{admission.addresses}** address(es) beyond the grant's own)" if admission.addresses else ""
        fix = f" *Narrower:* {admission.fix}." if admission.fix else ""
        lines.append(f"- **{admission.layer}** `{admission.where}`: {admission.who}{counted}.{fix}")
    return [*lines, ""]
