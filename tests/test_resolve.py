"""Flow semantics on the edges the network facts create: SNAT boundaries, UDP behind an NLB, health checks,
route scope, and the checks that keep an estate's ids and ports unambiguous."""

import gc
import weakref
from dataclasses import replace
from functools import cache
from ipaddress import IPv4Network

from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.targets.aws_network import plan_peerings_and_routes


def resolved(specs):
    return resolve_specs(specs, EXAMPLE_AS_OF, Reporter())


def flows_to(result, host_names):
    return [f for f in result.flows if f.destination.kind in ("host", "hostGroup")
            and f.source.name == "prod-usw2/reporting/report-builder"]


def test_snat_is_decided_per_address_when_an_excluded_cidr_splits_a_collapsed_prefix(tmp_path):
    """db-euw1-01 (.11) and db-euw1-02 (.12) collapse to no single prefix, but .10/31-style neighbours do;
    exclude only one host from SNAT and the two must get different source addresses."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/hosts-euw1.yaml", "address: 10.20.10.12", "address: 10.20.10.10")
    edit_spec(specs / "inventory/clusters.yaml", "excludedCidrs: [10.20.0.0/16]", "excludedCidrs: [10.20.10.11/32]")
    result = resolved(specs)
    seen = {}
    for flow in flows_to(result, None):
        for net in flow.destination.addresses:
            seen[net] = (flow.source.addresses, flow.note)
    cluster = next(c for c in result.estate.clusters if c.name == "prod-usw2")
    assert seen[IPv4Network("10.20.10.11/32")] == (cluster.pod_cidrs, "pod address")
    assert seen[IPv4Network("10.20.10.10/32")] == (cluster.node_cidrs, "snat to node")


def test_udp_behind_a_load_balancer_always_keeps_the_client_address(tmp_path):
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/services.yaml", "- {name: http, port: 80, targetPort: 8080}",
              "- {name: http, port: 80, targetPort: 8080, protocol: UDP}")
    result = resolved(specs)
    to_pods = [f for f in result.flows if f.destination.name == "prod-use1/ledger/ledger-api"
               and f.destination.kind == "service"]
    sources = {(f.source.kind, f.note, f.ports.text) for f in to_pods}
    assert ("hostGroup", "nlb target, client IP preserved", "udp/8080") in sources
    # An NLB never health-checks over UDP: TCP, to the traffic port, from its own addresses; and nothing else of
    # the NLB's own addresses reaches the pods (UDP keeps the client's address).
    nlb_sourced = {(note, ports) for kind, note, ports in sources if kind == "load-balancer"}
    assert nlb_sourced == {("nlb health check", "tcp/8080")}


def test_the_health_check_port_is_where_the_nlb_checks_its_targets(tmp_path):
    """healthCheckPort (the AWS Load Balancer Controller's healthcheck-port annotation) moves the checks, TCP
    whatever the traffic's protocol; without client IP preservation the traffic hop no longer covers them."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/services.yaml", "    preserveClientIp: false       # pods see the NLB's addresses",
              "    preserveClientIp: false       # pods see the NLB's addresses\n    healthCheckPort: 10254")
    edit_spec(specs / "inventory/services.yaml", "    preserveClientIp: true\n    securityGroup: payments-api-nlb",
              "    preserveClientIp: true\n    securityGroup: payments-api-nlb\n    healthCheckPort: 9000")
    result = resolved(specs)
    checks = {(f.destination.name, f.ports.text) for f in result.flows if f.note == "nlb health check"}
    assert checks == {("prod-use1/ledger/ledger-api", "tcp/10254"), ("prod-use1/payments/payments-api", "tcp/9000"),
                      ("prod-use1/platform/internal-dns", "tcp/8080")}
    ledger = {(f.source.kind, f.ports.text) for f in result.flows
              if f.destination.name == "prod-use1/ledger/ledger-api" and f.destination.kind == "service"}
    assert ledger == {("load-balancer", "tcp/8080"), ("load-balancer", "tcp/10254")}


def test_preserved_client_ip_still_admits_the_load_balancer_health_checks():
    result = resolved(copy_example_specs.__globals__["EXAMPLE_SPECS"])
    checks = [f for f in result.flows if f.note == "nlb health check"]
    assert {f.destination.name for f in checks} == {"prod-use1/payments/payments-api",
                                                    "prod-use1/platform/internal-dns"}
    (check,) = [f for f in checks if f.destination.name == "prod-use1/payments/payments-api"]
    assert check.source.addresses == (IPv4Network("10.40.32.0/24"), IPv4Network("10.40.33.0/24"))
    assert (check.ports.protocol, check.ports.first, check.ports.last) == ("TCP", 8443, 8443)
    # the example's resolver, UDP and TCP behind its NLB: checked over TCP on its healthCheckPort, nothing else
    (dns,) = [f for f in checks if f.destination.name == "prod-use1/platform/internal-dns"]
    assert dns.ports.text == "tcp/8080" and dns.source.addresses == (IPv4Network("10.40.36.0/24"),)


def test_vpc_cidr_route_scope_routes_to_every_vpc_block_a_collapsed_prefix_touches(tmp_path):
    """Nodes in the primary CIDR, pods in a secondary one, adjacent: a collapsed prefix may span both."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/vpcs.yaml", "  cidrs: [10.40.0.0/16]\n",
              "  cidrs: [10.40.0.0/17, 10.40.128.0/17]\n  routeScope: vpc-cidrs\n")
    edit_spec(specs / "inventory/vpcs.yaml", "  cidrs: [10.10.0.0/16, 10.11.0.0/16]",
              "  cidrs: [10.10.0.0/16, 10.11.0.0/16]\n  routeScope: vpc-cidrs")
    edit_spec(specs / "inventory/clusters.yaml", "podCidrs: [10.40.64.0/18]",
              "podCidrs: [10.40.64.0/18, 10.40.128.0/18]")
    result = resolved(specs)
    _, routes = plan_peerings_and_routes(result.estate, list(result.flows), Reporter())
    assert routes[("legacy-use1", "k8s-use1")] == (IPv4Network("10.40.0.0/17"), IPv4Network("10.40.128.0/17"))


def codes(specs):
    return [(d.code, d.location.file.split("/specs/")[-1], d.location.line) for d in diagnose_specs(specs)]


def test_a_route_table_listed_by_two_vpcs_is_rejected(tmp_path):
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/vpcs.yaml", "routeTables: [rtb-0b22c33d44e55f661]",
              "routeTables: [rtb-0a11b22c33d44e551]")
    assert ("NG101", "inventory/vpcs.yaml", 22) in codes(specs)


def test_a_peering_role_in_another_account_is_rejected(tmp_path):
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/accounts.yaml", "arn:aws:iam::210987654321:role", "arn:aws:iam::999999999999:role")
    assert ("NG014", "inventory/accounts.yaml", 17) in codes(specs)


def test_service_port_numbers_and_node_ports_must_not_repeat(tmp_path):
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/services.yaml", "    - {name: metrics, port: 9102}",
              "    - {name: metrics, port: 9102}\n    - {name: metrics2, port: 9102}")
    assert ("NG101", "inventory/services.yaml", 30) in codes(specs)


def test_resolving_keeps_no_estate_alive():
    """resolve()'s memos are keyed by the estate's objects; once the caller drops the estate and its flows,
    nothing of it may stay (netgen as a library, `netgen diff` resolving two revisions in one process)."""
    resolved = resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter())
    assert resolved.flows
    gone = [weakref.ref(resolved.estate), *(weakref.ref(c) for c in resolved.estate.clusters)]
    del resolved
    gc.collect()
    assert [ref() for ref in gone] == [None] * len(gone)


@cache
def _example_cluster():
    result = resolved(EXAMPLE_SPECS)
    return next(c for c in result.estate.clusters if c.name == "prod-usw2")


@st.composite
def networks(draw) -> IPv4Network:
    """Networks inside 10.0.0.0/23, small enough to enumerate."""
    prefix = draw(st.integers(min_value=23, max_value=32))
    offset = draw(st.integers(min_value=0, max_value=511)) >> (32 - prefix) << (32 - prefix)
    return IPv4Network((int(IPv4Network("10.0.0.0/23").network_address) + offset, prefix))


@given(destination=networks(), vpc_cidrs=st.lists(networks(), min_size=1, max_size=3),
       excluded=st.lists(networks(), max_size=3), enabled=st.booleans())
@example(destination=IPv4Network("10.0.0.10/31"), vpc_cidrs=[IPv4Network("10.0.1.0/24")],
         excluded=[IPv4Network("10.0.0.11/32")], enabled=True)  # an exclusion cuts the prefix
@example(destination=IPv4Network("10.0.0.0/24"), vpc_cidrs=[IPv4Network("10.0.0.64/26")], excluded=[],
         enabled=True)  # the VPC sits inside the prefix
@settings(max_examples=300, deadline=None)
def test_snat_split_decides_each_address_as_the_cni_does(destination, vpc_cidrs, excluded, enabled):
    """The parts cover the destination exactly, without overlap, and each address in a part is SNATed iff SNAT is
    on and the address lies in none of the VPC's CIDRs and none of the exclusions."""
    cluster = _example_cluster()
    cluster = replace(cluster, vpc=replace(cluster.vpc, cidrs=tuple(vpc_cidrs)), snat_enabled=enabled,
                      snat_excluded=tuple(excluded))
    parts = cluster.snat_split(destination)
    covered = [int(address) for part, _ in parts for address in part]
    assert sorted(covered) == [int(address) for address in destination]
    edges = [*vpc_cidrs, *excluded]
    for part, snat in parts:
        for address in part:
            assert snat == (enabled and not any(address in edge for edge in edges)), (part, address)
