"""`netgen explain SOURCE DESTINATION`: can this reach that, and why (or why not)?

The answer is worked out the way netgen builds the network: the hops the question needs are what the
resolver itself makes of a grant for exactly this question (a load balancer or a NodePort is two hops), each
hop is looked up in the resolved flows (a flow of a whole host group covers each of its hosts), and what
carries it (peering, routes, security-group rules, NetworkPolicy) comes from the real compile functions
through provenance.carriers. For "no", the first missing piece is named, what is already in place is listed,
and the existing grants closest to the question are shown with a grant that would allow it.

This module finds the hops and ranks the closest grants; explain_parties.py finds the two ends of the question,
explain_render.py writes the lines of each hop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from netgen.diagnostics import Location, Reporter
from netgen.hints import port_label
from netgen.model import Grant, Host, PortRange, Service, ServicePort, Workload
from netgen.pipeline import Resolved
from netgen.resolve import HEALTH_CHECK, Endpoint, Flow, resolve
from netgen.review import UsageError
from netgen.review.explain_parties import Party, find_party
from netgen.review.explain_render import HopLines, closest_lines
from netgen.review.provenance import Carriers, Infrastructure, carriers, infrastructure

PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass
class Hop:
    expected: Flow  # the hop the question needs, with the grants of the real flow that covers it
    present: bool
    carried: Carriers


@dataclass
class Answer:
    allowed: bool
    question: str
    lines: list[str] = field(default_factory=list)


_LEGACY = ("host", "hostGroup")


def _end_covers(real: Endpoint, wanted: Endpoint) -> bool:
    """The real endpoint includes the wanted one: same thing (any legacy hosts count alike), every address."""
    same = (real.kind in _LEGACY and wanted.kind in _LEGACY) or (real.kind, real.name) == (wanted.kind, wanted.name)
    return (same and real.vpc == wanted.vpc and real.pods == wanted.pods
            and all(any(a.subnet_of(b) for b in real.addresses) for a in wanted.addresses))


def covers(real: Flow, wanted: Flow) -> bool:
    p, q = real.ports, wanted.ports
    return (real.path == wanted.path and real.note == wanted.note and p.protocol == q.protocol
            and p.first <= q.first and q.last <= p.last
            and _end_covers(real.source, wanted.source) and _end_covers(real.destination, wanted.destination))


class Explainer:
    def __init__(self, resolved: Resolved):
        self.estate = resolved.estate
        self.all_flows = resolved.flows
        self.infra: Infrastructure = infrastructure(resolved, Reporter())
        self.out = HopLines(self.estate, self.infra)

    # --- the question ------------------------------------------------------------------------------------

    def explain(self, source: str, destination: str, port: str | None, protocol: str) -> Answer:
        protocol = protocol.lower()
        if protocol not in PROTOCOLS:
            raise UsageError(f"unknown protocol '{protocol}' (one of {', '.join(PROTOCOLS)})")
        if port is not None:
            _port_number(port)  # a number out of range is a usage error, whatever the destination
        src = find_party(self.estate, source, "source")
        dst = find_party(self.estate, destination, "destination")
        if src.kind == "service" and dst.kind == "host":
            workload = self._workload_for(src.obj)  # type: ignore[arg-type]
            if workload is None:
                return Answer(False, f"{src.label} -> {dst.label}", [
                    f"no: no Workload selects the pods of {src.label}, and only a Workload can be granted "
                    "access to legacy hosts (declare one with the same podSelector, then grant from it)"])
            src = Party("workload", workload)
        if src.kind == "host" and dst.kind == "workload":
            service = self._service_for(dst.obj)  # type: ignore[arg-type]
            if service is None:
                return Answer(False, f"{src.label} -> {dst.label}", [
                    f"no: no Service selects the pods of {dst.label}, and legacy hosts can only be granted "
                    "access to a Service (declare one, then grant to it)"])
            dst = Party("service", service)
        if src.kind == "host" and dst.kind == "service":
            return self._host_to_service(src.obj, dst.obj, port, protocol.upper())  # type: ignore[arg-type]
        if src.kind == "workload" and dst.kind == "host":
            return self._workload_to_host(src.obj, dst.obj, port, protocol.upper())  # type: ignore[arg-type]
        question = f"{src.label} -> {dst.label}"
        if src.kind == "host":
            why = "both are legacy hosts"
        elif src.kind == "workload" and dst.kind in ("service", "workload"):
            why = "both are in Kubernetes"
        else:
            why = f"a {src.kind} cannot start a connection netgen manages"
        return Answer(False, question, [f"no: netgen only connects legacy hosts and Kubernetes ({why}); "
                                        "it neither opens nor explains this path"])

    def _workload_for(self, service: Service) -> Workload | None:
        for workload in self.estate.workloads:
            if (workload.cluster is service.cluster and workload.namespace == service.namespace
                    and workload.pod_selector == service.pod_selector):
                return workload
        return None

    def _service_for(self, workload: Workload) -> Service | None:
        for service in self.estate.services:
            if (service.cluster is workload.cluster and service.namespace == workload.namespace
                    and service.pod_selector == workload.pod_selector):
                return service
        return None

    # --- host -> service ---------------------------------------------------------------------------------

    @staticmethod
    def _port_matches(sp: ServicePort, port: str | None, protocol: str) -> bool:
        if sp.protocol != protocol:
            return False
        if port is None:
            return True
        return port == sp.name or port in {str(sp.port), str(sp.target_port), str(sp.node_port)}

    _port_label = staticmethod(port_label)

    def _needed(self, grant: Grant) -> tuple[list[Flow], list[str]]:
        """The hops a grant for exactly this question would need, as the resolver makes them, and the problems
        it would report for such a grant."""
        reporter = Reporter()
        flows = resolve(replace(self.estate, grants=(grant,)), reporter)
        return flows, [d.message for d in reporter.sorted()]

    def _hops(self, grant: Grant) -> tuple[list[Hop], list[str]]:
        hops = []
        needed, problems = self._needed(grant)
        # in the order packets take them: client -> front (load balancer, node port) first, then -> pods
        # (health checks are the NLB's own traffic, not a hop of the question's path)
        path = [f for f in needed if f.note != HEALTH_CHECK]
        for wanted in sorted(path, key=lambda f: f.destination.kind not in ("load-balancer", "nodes")):
            real = [f for f in self.all_flows if covers(f, wanted)]
            grants = tuple(sorted({g for f in real for g in f.grants}))
            flow = replace(wanted, grants=grants)
            hops.append(Hop(flow, bool(real), carriers(self.infra, flow)))
        return hops, problems

    def _service_grant(self, host: Host, service: Service, sp: ServicePort) -> Grant:
        return Grant("explain", "-", "-", None, (host,), service, (sp,), None, (), Location("<explain>"),
                     f"host {host.name}")

    def _workload_grant(self, workload: Workload, host: Host, ports: PortRange) -> Grant:
        return Grant("explain", "-", "-", None, (host,), None, (), workload, (ports,), Location("<explain>"),
                     f"host {host.name}")

    def _host_to_service(self, host: Host, service: Service, port: str | None, protocol: str) -> Answer:
        wanted = f" on port {port}/{protocol.lower()}" if port else f" ({protocol.lower()})"
        question = f"can host/{host.name} ({host.address}) reach service/{service.ref}{wanted}?"
        ports = [sp for sp in service.ports if self._port_matches(sp, port, protocol)]
        if not ports:
            listed = ", ".join(self._port_label(sp) for sp in service.ports)
            lines = [f"no: service/{service.ref} has no port {port or ''}/{protocol.lower()} "
                     f"(its ports: {listed})"]
            lines += self._closest_service_grants(host, service, port, protocol)
            return Answer(False, question, lines)
        results = []
        for sp in ports:
            hops, problems = self._hops(self._service_grant(host, service, sp))
            results.append((sp, hops, problems))
        allowed = [(sp, hops) for sp, hops, _ in results if hops and all(h.present for h in hops)]
        if allowed:
            lines = [f"yes: host/{host.name} ({host.address}) can reach service/{service.ref} on "
                     f"{', '.join(self._port_label(sp) for sp, _ in allowed)}, exposed as "
                     f"{self._exposure(service)}"]
            for sp, hops in allowed:
                lines.append(f"port {self._port_label(sp)}:")
                for i, hop in enumerate(hops, 1):
                    lines += self.out.hop_lines(i, len(hops), hop)
            others = [sp for sp, _, _ in results if all(sp is not a for a, _ in allowed)]
            if others:
                lines.append(f"not granted: {', '.join(self._port_label(sp) for sp in others)}")
            lines += self.out.blast_lines([hop for _, hops in allowed for hop in hops])
            return Answer(True, question, lines)
        sp, hops, problems = results[0]
        lines = [f"no: host/{host.name} ({host.address}) cannot reach service/{service.ref} on "
                 f"{', '.join(self._port_label(sp) for sp, _, _ in results)}"]
        lines += [f"a grant for it would be refused: {problem}" for problem in problems]
        lines += self.out.missing_lines(hops, f"no grant allows host/{host.name} to reach service/{service.ref} "
                                            f"on {sp.name}")
        lines += self._closest_service_grants(host, service, port, protocol)
        lines += ["a grant that would allow it:",
                  f"  from: {{host: {host.name}}}",
                  f"  to: {{service: {service.ref}, ports: [{sp.name}]}}"]
        return Answer(False, question, lines)

    @staticmethod
    def _exposure(service: Service) -> str:
        e = service.exposure
        if e.type == "load-balancer":
            return f"an internal NLB ({'client IP preserved' if e.preserve_client_ip else 'source is the NLB'})"
        if e.type == "node-port":
            return f"a NodePort (externalTrafficPolicy {e.external_traffic_policy})"
        return "pod IPs"

    def _closest_service_grants(self, host: Host, service: Service, port: str | None,
                                protocol: str) -> list[str]:
        ranked: list[tuple[int, str, Grant]] = []
        for grant in self.estate.grants:
            if grant.service is None:
                continue
            same_src = host in grant.hosts
            same_dst = grant.service is service
            same_port = any(self._port_matches(sp, port, protocol) for sp in grant.service_ports)
            granted = ", ".join(sp.name for sp in grant.service_ports)
            if same_src and same_dst:
                ranked.append((0, f"same source and destination, other port(s): {granted}", grant))
            elif same_dst and same_port:
                ranked.append((1, f"same destination and port, other hosts: {grant.legacy_ref}", grant))
            elif same_dst:
                ranked.append((2, f"same destination, other hosts ({grant.legacy_ref}) and port(s) {granted}",
                               grant))
            elif same_src and grant.service.namespace == service.namespace:
                ranked.append((3, f"same source, other service in namespace {service.namespace}: "
                                  f"{grant.service.ref}", grant))
            elif same_src:
                ranked.append((4, f"same source, other service: {grant.service.ref}", grant))
        return closest_lines(ranked)

    # --- workload -> host --------------------------------------------------------------------------------

    def _workload_to_host(self, workload: Workload, host: Host, port: str | None, protocol: str) -> Answer:
        number = None
        if port is not None:
            number = _port_number(port)
            if number is None:
                raise UsageError(f"--port {port}: a host port is a number")
        wanted = f" on port {number}/{protocol.lower()}" if number else f" ({protocol.lower()})"
        question = f"can workload/{workload.ref} reach host/{host.name} ({host.address}){wanted}?"
        if number is not None:
            hops, problems = self._hops(self._workload_grant(workload, host, PortRange(protocol, number, number)))
        else:  # any port: the real flows from the workload to this host
            hops, problems = [], []
            for flow in self.all_flows:
                if (flow.source.kind, flow.source.name) == ("workload", workload.ref) and flow.ports.protocol == \
                        protocol and flow.destination.kind in _LEGACY and flow.destination.vpc == host.vpc.name \
                        and any(host.network.subnet_of(n) for n in flow.destination.addresses):
                    narrowed = replace(flow, destination=replace(flow.destination, kind="host", name=host.name,
                                                                 addresses=(host.network,)))
                    hops.append(Hop(narrowed, True, carriers(self.infra, narrowed)))
        if hops and all(h.present for h in hops):
            ports = ", ".join(str(h.expected.ports) for h in hops)
            seen = ", ".join(sorted({str(a) for h in hops for a in h.expected.source.addresses}))
            notes = ", ".join(sorted({h.expected.note for h in hops}))
            lines = [f"yes: workload/{workload.ref} can reach host/{host.name} ({host.address}) on {ports}; "
                     f"the host sees {seen} ({notes})"]
            for i, hop in enumerate(hops, 1):
                lines += self.out.hop_lines(i, 0, hop)
            lines += self.out.blast_lines(hops)
            return Answer(True, question, lines)
        lines = [f"no: workload/{workload.ref} cannot reach host/{host.name} ({host.address}){wanted}"]
        lines += [f"a grant for it would be refused: {problem}" for problem in problems]
        if number is not None:
            lines += self.out.missing_lines(hops, f"no grant allows workload/{workload.ref} to reach "
                                               f"host/{host.name} on {protocol.lower()}/{number}")
        else:
            lines.append(f"first missing piece: a grant from workload/{workload.ref} to host/{host.name} "
                         f"({protocol.lower()})")
        lines += self._closest_workload_grants(workload, host, number, protocol)
        lines += ["a grant that would allow it:",
                  f"  from: {{workload: {workload.ref}}}",
                  f"  to: {{host: {host.name}, ports: [{self._port_spec(number, protocol)}]}}"]
        return Answer(False, question, lines)

    @staticmethod
    def _port_spec(number: int | None, protocol: str) -> str:
        text = str(number) if number else "PORT"
        return text if protocol == "TCP" else f'"{text}/{protocol.lower()}"'

    def _closest_workload_grants(self, workload: Workload, host: Host, number: int | None,
                                 protocol: str) -> list[str]:
        ranked: list[tuple[int, str, Grant]] = []
        for grant in self.estate.grants:
            if grant.workload is None:
                continue
            same_src = grant.workload is workload
            same_dst = host in grant.hosts
            same_port = any(r.protocol == protocol and (number is None or r.first <= number <= r.last)
                            for r in grant.host_ports)
            granted = ", ".join(str(r) for r in grant.host_ports)
            if same_src and same_dst:
                ranked.append((0, f"same source and destination, other port(s): {granted}", grant))
            elif same_dst and same_port:
                ranked.append((1, f"same destination and port, other workload: {grant.workload.ref}", grant))
            elif same_src and same_port:
                ranked.append((2, f"same source and port, other hosts: {grant.legacy_ref}", grant))
            elif same_dst:
                ranked.append((3, f"same destination, other workload ({grant.workload.ref}) and port(s) "
                                  f"{granted}", grant))
            elif same_src:
                ranked.append((4, f"same source, other hosts ({grant.legacy_ref}) and port(s) {granted}", grant))
        return closest_lines(ranked)


def _port_number(port: str) -> int | None:
    """--port as a number, or None for a port name; UsageError for a number outside 1-65535."""
    try:
        number = int(port)
    except ValueError:
        return None
    if not 0 < number < 65536:
        raise UsageError(f"--port {port}: not a port number (1-65535)")
    return number


def explain(resolved: Resolved, source: str, destination: str, port: str | None, protocol: str) -> Answer:
    return Explainer(resolved).explain(source, destination, port, protocol)
