"""An independent judge: nca (IBM network-config-analyzer) must find that netgen's NetworkPolicies allow exactly
the flows of the estate, and must catch deliberately wrong policies. See tests/judges/nca.py."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from datetime import date
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from judges import nca
from judges.estates import estates, write_specs
from judges.mutations import MUTATIONS, widen_cidr
from test_properties import estates as property_estates

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved, resolve_specs
from netgen.resolve import Pods
from netgen.targets.kubernetes import compile_kubernetes

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2026, 11, 26)


@pytest.fixture(scope="module")
def nca_bin() -> str:
    configured = os.environ.get("NETGEN_NCA")
    binary = nca.nca_binary()
    if binary is None:
        if configured or os.environ.get("CI"):
            pytest.fail(f"network-config-analyzer not found (NETGEN_NCA={configured!r}, nor nca on PATH); "
                        "the NetworkPolicy judge must run in CI: `make test` installs it into .nca-venv")
        pytest.skip("network-config-analyzer (nca) is not installed: set NETGEN_NCA or put nca on PATH")
    return binary


@pytest.fixture(scope="module")
def example() -> Resolved:
    return resolve_specs(ROOT / "specs", AS_OF, Reporter())


@pytest.fixture(scope="module")
def example_files(example: Resolved) -> dict[str, bytes]:
    return compile_kubernetes(example.estate, list(example.flows))


# ---- the judge on real output ----------------------------------------------------------------------------------


def test_generated_policies_allow_exactly_the_flows(nca_bin, example):
    """What is committed in generated/kubernetes (what gets applied) passes the judge."""
    files = nca.files_from_dir(ROOT / "generated")
    assert files, "generated/kubernetes is empty: run `netgen build`"
    assert nca.judge(example.estate, example.flows, files, nca_bin) == []


def default_deny(resolved: Resolved, pods: Pods, direction: str) -> bool:
    cluster = next(c for c in resolved.estate.clusters if c.name == pods.cluster)
    return getattr(cluster.namespaces[pods.namespace], direction) == "default-deny"


def test_example_is_not_vacuous(example):
    """The example estate exercises both directions in default-deny namespaces and an open namespace."""
    kinds = {(direction, default_deny(example, end.pods, direction))
             for flow in example.flows
             for direction, end in (("ingress", flow.destination), ("egress", flow.source)) if end.pods}
    assert kinds == {(d, dd) for d in ("ingress", "egress") for dd in (True, False)}


JUDGED = settings(max_examples=6, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])


def compile_spec_files(spec_files: dict[str, str]) -> tuple[Resolved, dict[str, bytes]]:
    with tempfile.TemporaryDirectory(prefix="netgen-judge-specs-") as tmp:
        resolved = resolve_specs(write_specs(Path(tmp), spec_files), AS_OF, Reporter())
    return resolved, compile_kubernetes(resolved.estate, list(resolved.flows))


@JUDGED
@given(spec_files=estates())
def test_generated_estates_pass_the_judge(nca_bin, spec_files):
    """Estates with overlapping selectors, UDP and port ranges, every exposure and namespace mode; the same
    output with one ipBlock widened to a /16 fails."""
    resolved, files = compile_spec_files(spec_files)
    assert nca.judge(resolved.estate, resolved.flows, files, nca_bin) == []
    assert_rules_have_distinct_peers(files)
    widened = widen_cidr(files, resolved.estate)
    if widened is not None:
        problems = nca.judge(resolved.estate, resolved.flows, widened, nca_bin)
        assert any(p.startswith("unintended") for p in problems), problems


def assert_rules_have_distinct_peers(files: dict[str, bytes]) -> None:
    """One rule per set of ports (a port: a protocol and a number): no two rules of a policy share their peers,
    as 53/TCP and 53/UDP to the same hosts once did (two rules, identical ipBlocks)."""
    for name, text in files.items():
        policy = yaml.safe_load(text)
        if policy.get("kind") != "NetworkPolicy":
            continue
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            peers = [tuple(p["ipBlock"]["cidr"] for p in rule[peer_key]) for rule in policy["spec"].get(direction, [])]
            assert len(set(peers)) == len(peers), (name, peers)


def test_one_rule_per_set_of_ports_across_protocols(example_files):
    """The example's internal DNS: 53/UDP and 53/TCP (target 5353) to the batch hosts, one rule with both
    ports; the NLB's health checks (TCP 8080) from its subnet, another."""
    policy = yaml.safe_load(example_files["kubernetes/prod-use1/platform/netgen-ingress-internal-dns.yaml"])
    rules = [([p["ipBlock"]["cidr"] for p in rule["from"]], rule["ports"]) for rule in policy["spec"]["ingress"]]
    assert rules == [(["10.11.30.31/32", "10.11.30.32/32", "10.20.30.31/32", "10.20.30.32/32"],
                      [{"port": 5353, "protocol": "TCP"}, {"port": 5353, "protocol": "UDP"}]),
                     (["10.40.36.0/24"], [{"port": 8080, "protocol": "TCP"}])]
    assert_rules_have_distinct_peers(example_files)


@JUDGED
@given(docs=property_estates())
def test_property_estates_pass_the_judge(nca_bin, docs):
    """The estates of test_properties.py: several accounts, hosts inside cluster VPCs, arbitrary ports."""
    resolved, files = compile_spec_files({"specs.yaml": yaml.safe_dump_all(docs, sort_keys=False)})
    assert nca.judge(resolved.estate, resolved.flows, files, nca_bin) == []


# ---- the judge catches wrong output ----------------------------------------------------------------------------


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_judge_catches_wrong_policies(nca_bin, example, example_files, mutation):
    mutate, word = MUTATIONS[mutation]
    mutated = mutate(example_files, example.estate)
    assert mutated is not None, f"the example estate offers nothing for mutation {mutation}"
    assert mutated != example_files
    problems = nca.judge(example.estate, example.flows, mutated, nca_bin)
    assert problems, f"the judge missed mutation {mutation}"
    assert any(word in p for p in problems), problems


def test_judge_catches_missing_output(nca_bin, example):
    """No policies at all: every flow in a default-deny direction is reported missing."""
    problems = nca.judge(example.estate, example.flows, {}, nca_bin)
    isolated = {f for f in example.flows
                if (f.destination.pods and default_deny(example, f.destination.pods, "ingress"))
                or (f.source.pods and default_deny(example, f.source.pods, "egress"))}
    assert isolated
    for flow in isolated:
        assert any(flow.line() in p for p in problems), flow.line()


def test_judge_catches_a_flow_missing_from_the_policies(nca_bin, example, example_files):
    """Judging the output against a flow list with one extra flow (same pods, port 1) fails on that flow."""
    flow = next(f for f in example.flows if f.destination.pods is not None
                and default_deny(example, f.destination.pods, "ingress"))
    extra = dataclasses.replace(flow, ports=dataclasses.replace(flow.ports, first=1, last=1))
    problems = nca.judge(example.estate, (*example.flows, extra), example_files, nca_bin)
    assert problems and all("missing ingress" in p and extra.line() in p for p in problems), problems


def test_judge_expects_health_checks_from_the_estate_not_the_flows(nca_bin, example, example_files):
    """The defect of issue 18, in flows and policy alike: the resolver's NLB health checks as UDP 5353 (the traffic's
    protocol and port) instead of TCP 8080. The policies then match the flows, and only the estate says the NLB
    checks over TCP on the health-check port."""
    flows = tuple(dataclasses.replace(f, ports=dataclasses.replace(f.ports, protocol="UDP", first=5353, last=5353))
                  if f.note == "nlb health check" and f.destination.name.endswith("/internal-dns") else f
                  for f in example.flows)
    name = "kubernetes/prod-use1/platform/netgen-ingress-internal-dns.yaml"
    policy = yaml.safe_load(example_files[name])
    for rule in policy["spec"]["ingress"]:
        if [p["ipBlock"]["cidr"] for p in rule["from"]] == ["10.40.36.0/24"]:
            rule["ports"] = [{"port": 5353, "protocol": "UDP"}]
    files = {**example_files, name: yaml.safe_dump(policy).encode()}
    problems = nca.judge(example.estate, flows, files, nca_bin)
    assert problems and all(p.startswith("missing health checks: 10.40.36.0-10.40.36.255 -> prod-use1/platform/")
                            for p in problems), problems


# ---- the parsing of nca's output, without nca ------------------------------------------------------------------


def test_parse_connections():
    tcp80 = nca.ConnSet.single("TCP", 80, 80)
    assert nca.parse_conns("All connections").is_all()
    assert nca.parse_conns("{protocols:TCP,dst_ports:80}") == tcp80
    both = nca.parse_conns("{protocols:TCP, UDP,dst_ports:53,8000-8010}")
    assert nca.ConnSet.single("UDP", 8005, 8010).issubset(both)
    assert not nca.ConnSet.single("UDP", 54, 54).issubset(both)
    assert not both.has_others()
    all_but = nca.parse_conns("All but {protocols:TCP,dst_ports:80}")
    assert not tcp80.issubset(all_but) and nca.ConnSet.single("TCP", 81, 65535).issubset(all_but)
    assert all_but.has_others() and (all_but | tcp80).is_all()
    icmp = nca.parse_conns("{protocols:ICMP},{protocols:TCP,dst_ports:1-65535}")
    assert icmp.others == {"ICMP"} and not icmp.others_complement
    non_tcp = nca.parse_conns("{protocols:all but TCP}")
    assert non_tcp.has_others() and not nca.ConnSet.single("TCP", 1, 1).issubset(non_tcp)
    assert nca.ConnSet.single("SCTP", 1, 65535).issubset(non_tcp)
    with pytest.raises(nca.NcaError):
        nca.parse_conns("{protocols:TCP,methods:GET}")


def test_parse_lines_and_partition():
    edges = nca.parse_connectivity(
        "0.0.0.0-10.0.0.255 => ns/pod-a : All connections\n"
        "10.0.1.0 => ns/pod-a : {protocols:TCP,dst_ports:443}\n"
        "ns/pod-a => 10.0.0.0/24 : {protocols:UDP,dst_ports:53}\n")
    first = int(IPv4Address("10.0.1.0"))
    assert edges[1] == nca.Edge(nca.IpRange(first, first), nca.PodRef("ns", "pod-a"),
                                nca.ConnSet.single("TCP", 443, 443))
    assert edges[2].destination == nca.IpRange(int(IPv4Address("10.0.0.0")), int(IPv4Address("10.0.0.255")))
    rects = [(e.source.first, e.source.last, e.conns) for e in edges[:2]]
    pieces = nca.partition(int(IPv4Address("10.0.0.128")), first + 1, rects)
    assert [(nca.ip_text(lo, hi), str(c)) for lo, hi, c in pieces] == [
        ("10.0.0.128-10.0.0.255", "all connections"), ("10.0.1.0", "tcp/443"), ("10.0.1.1", "nothing")]
    with pytest.raises(nca.NcaError):
        nca.parse_connectivity("ns/pod-a -> 10.0.0.1 : All connections")
