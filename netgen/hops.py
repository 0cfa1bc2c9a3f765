"""The hops a grant needs, as the network's facts make them (see docs/spec.md, "How addresses are chosen").

A grant's legacy side (a host or a host group) becomes one endpoint per (VPC, security group) its hosts sit in;
each endpoint gives one hop per port, or two when the service sits behind a load balancer or a NodePort
(client -> front, front -> pods), and a third for a load balancer's health checks:

- pod-ip: the host dials the pod CIDRs on the target port; pods see the host's address.
- load-balancer (internal NLB, IP targets): the host dials the NLB subnets on the service port; pods see the
  NLB's addresses, or the host's when client IP preservation is on. The NLB sends the second hop, so that
  hop's source endpoint carries the NLB's VPC and security group with the client's addresses. Health checks
  come from the NLB's own addresses, over TCP, to the health-check port.
- node-port: the host dials the node subnets on the node port; pods see a node address
  (externalTrafficPolicy Cluster) or the host's (Local: the node hands the packet to its own pods, so that
  hop crosses no security group).
- workload -> host: pods dial the host; the host sees the node addresses when the CNI SNATs traffic to that
  destination (the default outside the cluster's VPC, unless excluded), else the pod CIDRs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import lru_cache
from ipaddress import IPv4Network
from typing import TypeVar

from netgen.addresses import collapse
from netgen.flows import Endpoint, NetworkPath, Pods
from netgen.model import Cluster, Grant, Host, PortRange, Service, ServicePort, Vpc, Workload

T = TypeVar("T")
HEALTH_CHECK = "nlb health check"  # the note of the hop that lets an NLB's health checks reach its targets


@lru_cache(maxsize=4096)
def _path(a: Vpc, b: Vpc) -> NetworkPath:
    return NetworkPath(a.name, b.name, a.region != b.region, a.account.account_id != b.account.account_id)


def _legacy_endpoints(legacy_ref: str, hosts: tuple[Host, ...]) -> list[Endpoint]:
    """A grant's legacy side, one endpoint per (VPC, security group): hosts that share a path and a guard."""
    kind, name = legacy_ref.split(" ", 1)
    subsets: dict[tuple[str, str], list[IPv4Network]] = defaultdict(list)
    for host in hosts:
        subsets[(host.vpc.name, host.security_group.name)].append(host.network)
    return [Endpoint(kind, name, vpc, collapse(nets), group) for (vpc, group), nets in sorted(subsets.items())]


@lru_cache(maxsize=4096)
def _service_pods(service: Service) -> Endpoint:
    cluster = service.cluster
    return Endpoint("service", service.ref, cluster.vpc.name, cluster.pod_cidrs, cluster.security_group.name,
                    Pods(cluster.name, service.namespace, service.pod_selector))


@lru_cache(maxsize=4096)
def _front(service: Service) -> Endpoint:
    """The internal NLB of a load-balancer service."""
    exposure = service.exposure
    group = exposure.security_group.name if exposure.security_group else None
    return Endpoint("load-balancer", service.ref, service.cluster.vpc.name, exposure.subnet_cidrs, group)


@lru_cache(maxsize=4096)
def _nodes(cluster: Cluster) -> Endpoint:
    return Endpoint("nodes", cluster.name, cluster.vpc.name, cluster.node_cidrs, cluster.security_group.name)


@lru_cache(maxsize=65536)
def _relayed(sender: Endpoint, vpc: str, security_group: str | None) -> Endpoint:
    """sender's addresses as they arrive from a hop inside another VPC or behind another group."""
    return replace(sender, vpc=vpc, security_group=security_group)


def _service_flows(client: Endpoint, client_vpc: Vpc, service: Service,
                   port: ServicePort) -> list[tuple[Endpoint, Endpoint, PortRange, NetworkPath, str]]:
    """(source, destination, ports, path, note) hops from legacy hosts to a service's pods."""
    cluster = service.cluster
    exposure = service.exposure
    pods = _service_pods(service)
    to_cluster = _path(client_vpc, cluster.vpc)
    local = _path(cluster.vpc, cluster.vpc)
    protocol = port.protocol
    if exposure.type == "pod-ip":
        return [(client, pods, _port_range(protocol, port.target_port), to_cluster, "pod-ip")]
    if exposure.type == "load-balancer":
        front = _front(service)
        to_front = (client, front, _port_range(protocol, port.port), to_cluster, "nlb")
        # An NLB health-checks over TCP, HTTP or HTTPS, never UDP (ELBv2 CreateTargetGroup: "The GENEVE, TLS,
        # UDP, and TCP_UDP protocols are not supported for health checks"; an NLB's default is TCP): all of them
        # TCP, from the NLB's own addresses, to the health-check port (default traffic-port: the target's port;
        # set apart like the AWS Load Balancer Controller's aws-load-balancer-healthcheck-port annotation).
        check = (front, pods, _port_range("TCP", exposure.health_check_port or port.target_port), local,
                 HEALTH_CHECK)
        # UDP target groups of type ip always preserve the client IP (AWS offers no switch for them).
        if exposure.preserve_client_ip or protocol == "UDP":  # the NLB sends this hop, client address kept
            relayed = _relayed(client, cluster.vpc.name, front.security_group)
            return [to_front, (relayed, pods, _port_range(protocol, port.target_port), local,
                               "nlb target, client IP preserved"), check]
        hops = [to_front, (front, pods, _port_range(protocol, port.target_port), local,
                           "nlb target, source is the nlb")]
        if check[2] != hops[1][2]:  # (checks on the traffic port ride the hop above)
            hops.append(check)
        return hops
    nodes = _nodes(cluster)
    assert port.node_port is not None  # validation guarantees it
    to_nodes = (client, nodes, _port_range(protocol, port.node_port), to_cluster, "node-port")
    if exposure.external_traffic_policy == "Local":
        # The node hands the packet, client address kept, to its own pods: no security group on the way.
        relayed = _relayed(client, cluster.vpc.name, None)
        return [to_nodes, (relayed, _relayed(pods, pods.vpc, None), _port_range(protocol, port.target_port), local,
                           "node-port target, externalTrafficPolicy Local: node to its own pods")]
    return [to_nodes, (nodes, pods, _port_range(protocol, port.target_port), local,
                       "node-port target, externalTrafficPolicy Cluster")]


def _host_sides(cluster: Cluster, hosts: Endpoint) -> list[tuple[bool, Endpoint]]:
    """hosts as the pods of cluster reach them, split by whether SNAT applies (pods then show a node address)."""
    split: dict[bool, list[IPv4Network]] = defaultdict(list)
    for net in hosts.addresses:
        for part, snat in cluster.snat_split(net):
            split[snat].append(part)
    if len(split) == 1:
        [(snat, nets)] = split.items()
        if len(nets) == len(hosts.addresses):  # no address was cut: the hosts as they are
            return [(snat, hosts)]
    return [(snat, replace(hosts, addresses=collapse(nets))) for snat, nets in sorted(split.items())]


@lru_cache(maxsize=65536)
def _workload_pods(workload: Workload, snat: bool) -> Endpoint:
    """A workload's pods as a source: their own addresses, or the node addresses SNAT gives them."""
    cluster = workload.cluster
    return Endpoint("workload", workload.ref, cluster.vpc.name, cluster.node_cidrs if snat else cluster.pod_cidrs,
                    cluster.security_group.name, Pods(cluster.name, workload.namespace, workload.pod_selector))


def grant_hops(grant: Grant, vpcs: dict[str, Vpc], memo: dict, hop: Callable[[tuple], T]) -> Iterator[T]:
    """Every hop a grant needs, as what hop((source, destination, ports, path, note)) gives (the resolution's
    shared hop).

    memo caches, for one estate, a grant's legacy endpoints by its legacy_ref (a name means one set of hosts,
    and thousands of grants name the same few hundred groups), each with the hops already computed for it by
    (service, port name) and by (workload, host ports): many grants share them."""
    sides = memo.get(grant.legacy_ref)
    if sides is None:
        sides = memo[grant.legacy_ref] = [(hosts, vpcs[hosts.vpc], {})
                                          for hosts in _legacy_endpoints(grant.legacy_ref, grant.hosts)]
    for hosts, vpc, known in sides:
        if grant.service is not None:
            for port in grant.service_ports:
                key = (grant.service, port.name)  # a Service hashes by identity, a name in C
                found = known.get(key)
                if found is None:
                    found = known[key] = [hop(step) for step in _service_flows(hosts, vpc, grant.service, port)]
                yield from found
        else:
            assert grant.workload is not None
            key = (grant.workload, grant.host_ports)
            found = known.get(key)
            if found is None:
                cluster = grant.workload.cluster
                if cluster not in known:  # a Cluster hashes by identity
                    known[cluster] = _host_sides(cluster, hosts)
                path = _path(cluster.vpc, vpc)
                found = known[key] = [
                    hop((_workload_pods(grant.workload, snat), destination, ports, path,
                         "snat to node" if snat else "pod address"))
                    for snat, destination in known[cluster] for ports in grant.host_ports]
            yield from found


@lru_cache(maxsize=65536)
def _port_range(protocol: str, number: int) -> PortRange:
    return PortRange(protocol, number, number)


def clear_memos() -> None:
    """Forget the memos of this module, keyed by an estate's objects (see resolve.Resolution)."""
    for memo in (_path, _service_pods, _front, _nodes, _relayed, _workload_pods):
        memo.cache_clear()
