"""Which hand-made rules (and flow-log records) name a legacy host calling a service: the matching behind
`netgen import-grants` (netgen/aws/import_grants.py writes the grants).

Only one shape can be told from an address: a legacy host (or every host of a legacy group, for an egress rule
on it) calling a service. Where the packets land tells the service:

- pod-ip: cluster group ingress on the target port from the host;
- load-balancer: NLB group ingress on the service port from the host, and with client IP preserved (always
  for UDP) cluster group ingress on the target port from the host: either rule tells it;
- node-port: cluster group ingress on the node port from the host;
- any exposure: egress of a legacy host's group to where its clients dial (pod CIDRs, NLB subnets, node
  subnets) on that port: every host of the group then calls the service.

A port that lands on two services of one group is ambiguous and not matched. A workload calling a legacy host
shows up as the cluster's node subnets (SNAT) or pod CIDRs, which every workload of the cluster shares, so no
workload is ever named from an address: such rules are Unmatched, with a grant to write by hand. What matches
nothing is Unmatched, never guessed.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from netgen.addresses import interval
from netgen.aws.coverage import ipv4, ports_text, protocol_name, within
from netgen.aws.flowlogs import EPHEMERAL_FIRST, FlowRecord
from netgen.aws.generated import RuleSpec
from netgen.model import Cluster, Estate, Host, SecurityGroup, Service, ServicePort


def rule_text(rule: RuleSpec) -> str:
    """`<group id> <direction> <proto>/<ports> <cidr> ('<description>')`: how reasons and reports name a rule."""
    protocol = protocol_name(rule.protocol)
    ports = "all" if protocol == "-1" or rule.first < 0 else ports_text(rule.first, rule.last)
    described = f" ('{rule.description}')" if rule.description else ""
    return f"{rule.group_id} {rule.direction} {'all' if protocol == '-1' else protocol}/{ports} {rule.cidr}{described}"


# -- where a service's clients land ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Landing:
    """Where a client's packets for one port of a service arrive: the group whose ingress rule admits them (if
    any), on which port, and the addresses the client dials (None for a hop the client does not dial)."""

    service: Service
    port: ServicePort
    group_ids: tuple[str, ...]
    protocol: str  # tcp | udp
    number: int
    dialled: tuple[IPv4Network, ...] | None
    hop: str
    seen: tuple[IPv4Network, ...] = ()  # the destination addresses flow logs show for it


def landings(estate: Estate) -> list[Landing]:
    found = []
    for service in estate.services:
        cluster, exposure = service.cluster, service.exposure
        nodes = cluster.security_group.group_ids
        for port in service.ports:
            protocol = port.protocol.lower()
            if exposure.type == "pod-ip":
                found.append(Landing(service, port, nodes, protocol, port.target_port, cluster.pod_cidrs,
                                     "pod-ip", cluster.pod_cidrs))
            elif exposure.type == "load-balancer":
                front = exposure.security_group.group_ids if exposure.security_group else ()
                found.append(Landing(service, port, front, protocol, port.port, exposure.subnet_cidrs, "nlb",
                                     exposure.subnet_cidrs))
                if exposure.preserve_client_ip or port.protocol == "UDP":
                    found.append(Landing(service, port, nodes, protocol, port.target_port, None,
                                         "nlb target, client IP preserved", cluster.pod_cidrs))
            elif port.node_port is not None:
                found.append(Landing(service, port, nodes, protocol, port.node_port, cluster.node_cidrs,
                                     "node-port", cluster.node_cidrs))
                if exposure.external_traffic_policy == "Local":  # the pods see the client; no group between
                    found.append(Landing(service, port, (), protocol, port.target_port, None,
                                         "node-port target, externalTrafficPolicy Local", cluster.pod_cidrs))
    return found


def _overlaps(net: IPv4Network, nets: Iterable[IPv4Network]) -> bool:
    return any(net.overlaps(n) for n in nets)


# -- proposals ---------------------------------------------------------------------------------------------------

Atom = tuple[str, int, str]  # (host name, id() of the service, port name)


@dataclass
class Proposal:
    """Access (host -> service port) that reproduces what exists, with what it came from."""

    host: Host
    service: Service
    port: ServicePort
    sources: list[str] = field(default_factory=list)  # "sg-... ingress tcp/443 ..." or a flow-log summary


@dataclass
class Unmatched:
    what: str  # the rule or flow-log aggregate, as text
    why: str
    hint: str = ""  # a grant to write by hand, when one can be sketched


@dataclass
class Matcher:
    """Rules and flow-log records -> proposals (host -> service port) and what matched nothing."""

    estate: Estate
    granted: set[Atom] = field(default_factory=set)  # what existing grants already allow
    proposals: dict[Atom, Proposal] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # per rule text: why (part of) it did not match
    hints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        estate = self.estate
        self.landings = landings(estate)
        self.groups: dict[str, SecurityGroup] = {gid: g for g in estate.security_groups for gid in g.group_ids}
        self.host_at: dict[IPv4Address, Host] = {h.address: h for h in estate.hosts}
        self.by_address = sorted(estate.hosts, key=lambda h: int(h.address))
        self.addresses = [int(h.address) for h in self.by_address]
        self.guarded: dict[str, list[Host]] = defaultdict(list)  # group id -> the hosts it guards
        for host in sorted(estate.hosts, key=lambda h: h.name):
            for gid in host.security_group.group_ids:
                self.guarded[gid].append(host)
        for grant in estate.grants:
            if grant.service is not None:
                for host in grant.hosts:
                    for port in grant.service_ports:
                        self.granted.add((host.name, id(grant.service), port.name))

    # -- rules ---------------------------------------------------------------------------------------------

    def rule(self, rule: RuleSpec) -> None:
        text = rule_text(rule)
        notes = self.notes.setdefault(text, [])
        protocol = protocol_name(rule.protocol)
        net = ipv4(rule.cidr)
        if protocol not in ("tcp", "udp") or net is None or rule.first < 0:
            notes.append("netgen grants are TCP or UDP port ranges from or to IPv4 addresses")
            return
        guarded = self.guarded.get(rule.group_id, [])
        clusters = [c for c in self.estate.clusters if rule.group_id in c.security_group.group_ids]
        matched = False
        if rule.direction == "ingress":
            sources = self.hosts_in(net)
            here = [x for x in self.landings if rule.group_id in x.group_ids and x.protocol == protocol
                    and rule.first <= x.number <= rule.last]
            if here and sources:
                matched = self._propose(text, sources, here)
            elif here:
                notes.append(f"{rule.cidr} holds no legacy host of the inventory")
            workload_side = self._from_cluster(net, guarded, rule, protocol)
            relayed = self._relayed(net, clusters)
            if workload_side:
                notes.append(workload_side)
            elif relayed:
                notes.append(relayed)
            elif not here and not matched:
                if guarded:
                    notes.append(f"{rule.cidr} is no cluster's node subnets or pod CIDRs, and legacy hosts "
                                 "calling legacy hosts are not netgen's to grant")
                elif clusters or self._is_front(rule.group_id):
                    notes.append(f"no service of the inventory is reached on {protocol}/"
                                 f"{ports_text(rule.first, rule.last)} through this group")
                else:
                    notes.append("the group guards no legacy host, cluster or load balancer of the inventory")
        else:
            group = self.groups.get(rule.group_id)
            if guarded and group is not None and not group.restricts_egress:
                notes.append("the group does not restrict egress (its default rule allows all), so this rule "
                             "tells nothing about what its hosts call")
            elif guarded:
                here = [x for x in self.landings if x.dialled and x.protocol == protocol
                        and rule.first <= x.number <= rule.last and _overlaps(net, x.dialled)]
                if here:
                    matched = self._propose(text, guarded, here)
                else:
                    notes.append(f"no service of the inventory is dialled at {rule.cidr} on {protocol}/"
                                 f"{ports_text(rule.first, rule.last)}")
            elif clusters:
                targets = self.hosts_in(net)
                if targets:
                    cluster = clusters[0]
                    notes.append(f"traffic of some workload of cluster {cluster.name} to legacy hosts: which "
                                 "workload cannot be told from a security-group rule")
                    self.hints[text] = _workload_hint(self.estate, cluster, targets, protocol, rule)
                else:
                    notes.append(f"{rule.cidr} holds no legacy host of the inventory")
            else:
                notes.append("egress of a group that guards no legacy host or cluster of the inventory")
        if not matched and not notes:
            notes.append("nothing of the inventory matches")

    def hosts_in(self, net: IPv4Network) -> list[Host]:
        """The legacy hosts whose address is in net, by name."""
        first, last = interval(net)
        found = self.by_address[bisect_left(self.addresses, first):bisect_right(self.addresses, last)]
        return sorted(found, key=lambda h: h.name)

    def _relayed(self, net: IPv4Network, clusters: list[Cluster]) -> str:
        """A note when an ingress rule on a cluster's group admits the addresses of a hop inside the cluster (an
        NLB's own addresses, the node subnets): such a rule serves every client of a service, none by name."""
        for cluster in clusters:
            for service in self.estate.services:
                if service.cluster is cluster and service.exposure.subnet_cidrs and within(
                        net, service.exposure.subnet_cidrs):
                    return (f"from the load balancer of {service.ref} (its hop to the pods, or its health checks): "
                            "it names no client; the rules of any grant to the service cover it")
            if within(net, cluster.node_cidrs):
                return (f"from cluster {cluster.name}'s node subnets to its pods (a NodePort's second hop, or "
                        "pods of the cluster): it names no client")
        return ""

    def _is_front(self, group_id: str) -> bool:
        return any(s.exposure.security_group and group_id in s.exposure.security_group.group_ids
                   for s in self.estate.services)

    def _from_cluster(self, net: IPv4Network, guarded: list[Host], rule: RuleSpec, protocol: str) -> str:
        """A note (and a hint) when an ingress rule on a legacy group admits a cluster's node or pod addresses."""
        if not guarded:
            return ""
        for cluster in self.estate.clusters:
            for kind, nets in (("node subnets (pods' traffic SNATed to the node)", cluster.node_cidrs),
                               ("pod CIDRs", cluster.pod_cidrs)):
                if within(net, nets):
                    self.hints[rule_text(rule)] = _workload_hint(self.estate, cluster, guarded, protocol, rule)
                    return (f"from cluster {cluster.name}'s {kind}: every workload of the cluster sends from "
                            "these addresses, so which one needs the access cannot be told")
                if _overlaps(net, nets):
                    return (f"{rule.cidr} is no endpoint of the inventory: it spans cluster {cluster.name}'s "
                            f"{kind.split(' (')[0]} and more")
        return ""

    def _propose(self, source: str, hosts: list[Host], here: list[Landing]) -> bool:
        by_number: dict[int, list[Landing]] = defaultdict(list)
        for x in here:
            by_number[x.number].append(x)
        matched = False
        for number, options in sorted(by_number.items()):
            services = {(id(x.service), x.port.name) for x in options}
            if len(services) > 1:
                names = ", ".join(sorted({f"{x.service.ref} port {x.port.name}" for x in options}))
                self.notes[source].append(f"port {number} is ambiguous: {names}")
                continue
            landing = options[0]
            for host in hosts:
                matched = True
                atom = (host.name, id(landing.service), landing.port.name)
                if atom in self.granted:
                    continue
                proposal = self.proposals.setdefault(atom, Proposal(host, landing.service, landing.port))
                if source not in proposal.sources:
                    proposal.sources.append(source)
        return matched

    # -- flow logs -----------------------------------------------------------------------------------------

    def flow_logs(self, records: Iterable[FlowRecord]) -> tuple[int, dict[tuple[str, str, str], tuple[int, str]]]:
        """Proposals from accepted records; returns (records used, {(source, destination, port): (records,
        why)} of those between a legacy host and a cluster that match no service of the host)."""
        used = 0
        unmatched: dict[tuple[str, str, str], tuple[int, str]] = {}
        samples: dict[Atom, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for record in records:
            found, why = self._flow(record.source, record.destination, record.protocol, record.destination_port)
            if found is None:  # maybe the reply of a flow that matches (server port -> client's ephemeral port)
                if self._flow(record.destination, record.source, record.protocol, record.source_port)[0]:
                    continue
                if not self._legacy_and_cluster(record.source, record.destination):
                    continue  # not between a legacy host and a cluster: not netgen's
                if record.destination_port >= EPHEMERAL_FIRST and not why:
                    continue  # the reply of something: its request is listed
                key = (self._name(record.source), self._name(record.destination),
                       f"{record.protocol}/{record.destination_port}")
                count, _ = unmatched.get(key, (0, ""))
                unmatched[key] = (count + record.records, why or _flow_why(key[0]))
                continue
            used += record.records
            atom, host, landing = found
            if atom in self.granted:
                continue
            self.proposals.setdefault(atom, Proposal(host, landing.service, landing.port))
            samples[atom][f"{record.source} -> {record.destination} {record.protocol}/"
                          f"{record.destination_port}"] += record.records
        for atom, seen in samples.items():
            proposal = self.proposals[atom]
            for text, count in sorted(seen.items()):
                summary = f"flow logs {text} ({count} accepted record{'s' if count != 1 else ''})"
                if summary not in proposal.sources:
                    proposal.sources.append(summary)
        return used, unmatched

    def _flow(self, source: IPv4Address, destination: IPv4Address, protocol: str,
              port: int) -> tuple[tuple[Atom, Host, Landing] | None, str]:
        """The (host, service port) a packet from source to destination:port stands for, or None and why
        ('' when nothing of the inventory is near)."""
        host = self.host_at.get(source)
        if host is None:
            return None, ""
        options = [x for x in self.landings if x.protocol == protocol and x.number == port
                   and any(destination in n for n in x.seen)]
        services = {(id(x.service), x.port.name) for x in options}
        if len(services) > 1:
            names = ", ".join(sorted({f"{x.service.ref} port {x.port.name}" for x in options}))
            return None, f"ambiguous: {destination} on {protocol}/{port} is {names}"
        if not options:
            return None, ""
        x = options[0]
        return ((host.name, id(x.service), x.port.name), host, x), ""

    def _legacy_and_cluster(self, a: IPv4Address, b: IPv4Address) -> bool:
        def in_cluster(address: IPv4Address) -> bool:
            return any(address in n for c in self.estate.clusters for n in (*c.node_cidrs, *c.pod_cidrs)) or any(
                address in n for s in self.estate.services for n in s.exposure.subnet_cidrs)

        return (a in self.host_at and in_cluster(b)) or (b in self.host_at and in_cluster(a))

    def _name(self, address: IPv4Address) -> str:
        host = self.host_at.get(address)
        if host is not None:
            return f"{host.name} ({address})"
        for cluster in self.estate.clusters:
            if any(address in n for n in cluster.node_cidrs):
                return f"{address} (node subnets of cluster {cluster.name})"
            if any(address in n for n in cluster.pod_cidrs):
                return f"{address} (pod CIDRs of cluster {cluster.name})"
        return str(address)


def _destination(estate: Estate, hosts: list[Host]) -> tuple[str, str]:
    """How a grant names these hosts: ('hostGroup', name) when a host group has exactly them, else
    ('host', name) for one host, else ('hosts', 'a, b, c')."""
    wanted = {h.name for h in hosts}
    for group in sorted(estate.host_groups, key=lambda g: g.name):
        if {h.name for h in group.hosts} == wanted:
            return "hostGroup", group.name
    if len(hosts) == 1:
        return "host", hosts[0].name
    return "hosts", ", ".join(sorted(wanted))


def _workload_hint(estate: Estate, cluster: Cluster, hosts: list[Host], protocol: str, rule: RuleSpec) -> str:
    kind, name = _destination(estate, hosts)
    port = ports_text(rule.first, rule.last)
    port = (port if "-" not in port else f'"{port}"') if protocol == "tcp" else f'"{port}/{protocol}"'
    target = (f"{{{kind}: {name}, ports: [{port}]}}" if kind != "hosts"
              else f"{{host: <each of {name}, one grant each; or a host group of them>, ports: [{port}]}}")
    workloads = sorted(f"{w.namespace}/{w.name}" for w in estate.workloads if w.cluster is cluster)
    known = f" (workloads of {cluster.name} in the inventory: {', '.join(workloads)})" if workloads else ""
    return f"from: {{workload: <namespace/name>}}  to: {target}{known}"


# -- grants ------------------------------------------------------------------------------------------------------


def _flow_why(source: str) -> str:
    if "cluster" in source:
        return ("from a cluster's addresses to a legacy host: which workload sends it cannot be told from an "
                "address; grant it from the workload by hand")
    return "no service of the inventory is reached at that address and port"
