"""`netgen verify`: the specs' flows against the live EC2 state.

Two checks, both from EC2 answers only (netgen/aws/reachability.py decides reachability):

- Every intended flow is reachable: for each flow, a concrete probe from a representative address of every
  source CIDR to one of every destination CIDR (the address itself for a /32, else the first address AWS hands
  out), on the first and the last port, sent by the interface that really sends it (the host, or for a
  forwarded hop with the client's address preserved, the load balancer or the node) and received by the
  destination's group. Peerings, routes there and back, ingress and egress rules all have to agree.
- No netgen-owned rule (description starting 'netgen:') in an inventory group grants more than intended: its
  protocol, ports and CIDR must be covered by the flows that put rules on that group in that direction (what
  netgen build compiles rules from). A rule someone widened, or a rule of a removed grant left behind, is a
  finding. Rules without a netgen description are `netgen drift`'s business.

A peering declared to exist outside netgen (VpcPeering) is the one expected between its two VPCs: the flows'
routes must point at it (the probes accept only an active peering joining exactly those VPCs, and AWS allows
one per pair), and it must exist, be active, and join the VPCs the declaration names, requester and accepter
as declared, even when no flow uses it yet.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network

from netgen.addresses import collapse
from netgen.aws.generated import inventory_places, inventory_rules, is_owned
from netgen.aws.reachability import describe_estate, reachable
from netgen.aws.session import Clients
from netgen.pipeline import Resolved
from netgen.resolve import Endpoint, Flow

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "132": "sctp"}


@dataclass(frozen=True)
class Probe:
    flow: str
    src_ip: str
    src_vpc_id: str
    dst_ip: str
    dst_vpc_id: str
    protocol: str
    port: int
    src_groups: tuple[str, ...] | None  # group ids; None: no security group on that side
    dst_groups: tuple[str, ...] | None

    def __str__(self) -> str:
        return (f"{self.src_ip} ({self.src_vpc_id}) -> {self.dst_ip}:{self.port}/{self.protocol} "
                f"({self.dst_vpc_id})")


@dataclass
class VerifyResult:
    unreachable: list[dict] = field(default_factory=list)  # {flow, probe, reason}
    over_grants: list[dict] = field(default_factory=list)  # {group, rule, description, reason}
    peerings: list[dict] = field(default_factory=list)  # {peering, connectionId, reason}: declared, not as declared
    flows: int = 0
    probes: int = 0
    rules: int = 0
    existing: int = 0  # existing peerings (VpcPeering) checked

    @property
    def findings(self) -> int:
        return len(self.unreachable) + len(self.over_grants) + len(self.peerings)


def representative(net: IPv4Network) -> IPv4Address:
    """A concrete address of a CIDR: the address itself for a /32, else the first one AWS assigns (.4)."""
    if net.prefixlen == 32:
        return net.network_address
    return net.network_address + (4 if net.prefixlen <= 28 else 1)


def _sender_groups(resolved: Resolved, flow: Flow) -> tuple[str, ...] | None:
    """Group names of the interface that sends the flow's packets (the front of a forwarded hop)."""
    if flow.source.vpc == flow.path.source_vpc:
        return (flow.source.security_group,) if flow.source.security_group else None
    service = next((s for s in resolved.estate.services if s.ref == flow.destination.name), None)
    if service is None:
        return (flow.source.security_group,) if flow.source.security_group else None
    if service.exposure.type == "load-balancer":
        group = service.exposure.security_group
        return (group.name,) if group else None
    return (service.cluster.security_group.name,)


def probes(resolved: Resolved) -> list[Probe]:
    estate = resolved.estate
    vpc_ids = {v.name: v.vpc_id for v in estate.vpcs}
    group_ids = {g.name: g.group_ids for g in estate.security_groups}  # a group's overflow groups sit beside it

    def ids(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if names is None else tuple(i for n in names for i in group_ids[n])

    def receiver(endpoint: Endpoint) -> tuple[str, ...] | None:
        return (endpoint.security_group,) if endpoint.security_group else None

    found = []
    for flow in resolved.flows:
        ports = sorted({flow.ports.first, flow.ports.last})
        for s in flow.source.addresses:
            for d in flow.destination.addresses:
                for port in ports:
                    found.append(Probe(flow.line(), str(representative(s)), vpc_ids[flow.path.source_vpc],
                                       str(representative(d)), vpc_ids[flow.path.destination_vpc],
                                       flow.ports.protocol.lower(), port, ids(_sender_groups(resolved, flow)),
                                       ids(receiver(flow.destination))))
    return found


def intended_rules(resolved: Resolved) -> dict[tuple[str, str, str], list[tuple[IPv4Network, int, int]]]:
    """{(group id, direction, protocol): [(CIDR, first port, last port)]}: what the flows put on each group,
    the same way netgen build compiles rules (ingress on the destination's group, egress on the source's group
    when it restricts egress)."""
    groups = {g.name: g for g in resolved.estate.security_groups}
    wanted: dict[tuple[str, str, str], list[tuple[IPv4Network, int, int]]] = defaultdict(list)
    for flow in resolved.flows:
        p = flow.ports
        protocol = p.protocol.lower()
        if flow.destination.security_group:
            for gid in groups[flow.destination.security_group].group_ids:
                wanted[(gid, "ingress", protocol)].extend((n, p.first, p.last) for n in flow.source.addresses)
        source = groups.get(flow.source.security_group or "")
        if source and source.restricts_egress:
            for gid in source.group_ids:
                wanted[(gid, "egress", protocol)].extend((n, p.first, p.last) for n in flow.destination.addresses)
    return wanted


def excess(protocol: str, first: int, last: int, cidr: str,
           allowed: list[tuple[IPv4Network, int, int]]) -> str | None:
    """Why a rule (protocol, ports, CIDR) grants more than `allowed`, or None when the flows cover it."""
    if protocol in ("-1", "all"):
        return "all protocols and ports"
    try:
        net = ip_network(cidr)
    except ValueError:
        return f"peer {cidr} is not a CIDR (netgen writes CIDR rules only)"
    if first < 0 or last < first:
        return "all ports"
    cuts = ({first} | {a for _, a, _ in allowed if first < a <= last}
            | {b + 1 for _, _, b in allowed if first <= b < last})
    starts = sorted(cuts)
    for i, start in enumerate(starts):
        end = starts[i + 1] - 1 if i + 1 < len(starts) else last
        covering = [n for n, a, b in allowed if a <= start and b >= end and n.version == net.version]
        if not any(net.subnet_of(c) for c in collapse(covering)):  # type: ignore[arg-type]
            ports = str(start) if start == end else f"{start}-{end}"
            return f"no flow allows {cidr} on {protocol}/{ports}"
    return None


def existing_peering_problem(view, connection_id: str, requester_vpc_id: str, accepter_vpc_id: str) -> str:
    """Why the live peering connection_id is not the declared one (active, from requester to accepter), or ''."""
    pcx, why = view.peering_between(connection_id, requester_vpc_id, accepter_vpc_id)
    if pcx is None:
        return why
    actual = pcx["RequesterVpcInfo"]["VpcId"]
    if actual != requester_vpc_id:
        return (f"AWS has {actual} as its requester and {pcx['AccepterVpcInfo']['VpcId']} as its accepter: swap "
                "requesterVpc and accepterVpc")
    return ""


def verify(resolved: Resolved, clients: Clients) -> VerifyResult:
    estate = resolved.estate
    view = describe_estate(clients.ec2(a, r) for a, _, r in inventory_places(estate))  # gateways' owners too
    result = VerifyResult(flows=len(resolved.flows))
    seen: set[Probe] = set()
    for probe in probes(resolved):
        if probe in seen:
            continue
        seen.add(probe)
        result.probes += 1
        verdict = reachable(view, probe.src_ip, probe.src_vpc_id, probe.dst_ip, probe.dst_vpc_id, probe.protocol,
                            probe.port, probe.src_groups, probe.dst_groups)
        if not verdict:
            result.unreachable.append({"flow": probe.flow, "probe": str(probe), "reason": verdict.reason})
    wanted = intended_rules(resolved)
    names = {gid: g.name for g in estate.security_groups for gid in g.group_ids}
    for rule in inventory_rules(estate, clients):
        if not is_owned(rule):
            continue
        result.rules += 1
        protocol = _PROTOCOL_NAMES.get(rule.protocol, rule.protocol)
        why = excess(protocol, rule.first, rule.last, rule.cidr,
                     wanted.get((rule.group_id, rule.direction, protocol), []))
        if why:
            result.over_grants.append({"group": f"{names.get(rule.group_id, '?')} ({rule.group_id})",
                                       "rule": str(rule), "ruleId": rule.rule_id,
                                       "description": rule.description, "reason": why})
    for known in estate.peerings:
        result.existing += 1
        why = existing_peering_problem(view, known.connection_id, known.requester.vpc_id, known.accepter.vpc_id)
        if why:
            result.peerings.append({"peering": f"{known.name} ({known.requester.name} <-> {known.accepter.name})",
                                    "connectionId": known.connection_id, "reason": why})
    result.unreachable.sort(key=lambda f: (f["flow"], f["probe"]))
    result.over_grants.sort(key=lambda f: (f["group"], f["rule"]))
    return result


def render_verify(result: VerifyResult, fmt: str) -> str:
    if fmt == "json":
        data = asdict(result)
        data["overGrants"] = data.pop("over_grants")
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    lines = []
    for f in result.unreachable:
        lines.append(f"unreachable: {f['probe']}: {f['reason']}\n  flow: {f['flow']}")
    for f in result.over_grants:
        lines.append(f"grants more than intended: {f['rule']} ('{f['description']}'): {f['reason']}")
    for f in result.peerings:
        lines.append(f"existing peering not as declared: {f['peering']} {f['connectionId']}: {f['reason']}")
    status = "ok" if not result.findings else f"{result.findings} finding(s)"
    existing = (f", {result.existing} existing peering(s) checked ({len(result.peerings)} not as declared)"
                if result.existing else "")
    lines.append(f"verify: {status}: {result.flows} flows ({result.probes} probes), {result.rules} netgen rules "
                 f"checked; {len(result.unreachable)} unreachable, {len(result.over_grants)} granting more than "
                 f"intended{existing}")
    return "\n".join(lines) + "\n"
