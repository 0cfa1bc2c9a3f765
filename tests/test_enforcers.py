"""Each NetworkPolicy enforcer's limits (netgen/targets/enforcers.py), on the example estate with one edit each:
the failing fixture of every code, located; the same estate on the enforcers it does not concern; and Cilium's
port ranges compiled around, exactly (nca judges the written-out policies)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, copy_example_specs, edit_spec
from judges import nca

from netgen.diagnostics import Reporter, SpecError
from netgen.pipeline import resolve_specs
from netgen.targets import compile_outputs
from netgen.targets.enforcers import _agent_entries, _port_blocks
from netgen.targets.kubernetes import compile_kubernetes

CLUSTERS = Path(__file__).resolve().parent.parent / "specs/inventory/clusters.yaml"


def _declared(cluster: str) -> str:
    """The example's networkPolicy block of a cluster, as written in specs/inventory/clusters.yaml."""
    lines = CLUSTERS.read_text().split(f"  name: {cluster}\n", 1)[1].splitlines(keepends=True)
    start = lines.index("  networkPolicy:\n")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    return "".join(lines[start:end])


USE1, USW2 = _declared("prod-use1"), _declared("prod-usw2")
FRAUD_PORTS = "    - {name: grpc, port: 9090}\n    - {name: metrics, port: 9102}\n"


def build(specs: Path) -> tuple[list[tuple[str, str, int, int]], dict[str, bytes]]:
    """([(code, file relative to specs, line, column)], files) of `netgen build` on specs."""
    reporter = Reporter()
    files: dict[str, bytes] = {}
    try:
        files = compile_outputs(resolve_specs(specs, EXAMPLE_AS_OF, reporter), reporter)
    except SpecError:
        pass
    found = [(d.code, Path(d.location.file).resolve().relative_to(specs.resolve()).as_posix(), d.location.line,
              d.location.column) for d in reporter.sorted()]
    return found, files


def document_line(path: Path, name: str) -> int:
    """The line where the document named name starts (its apiVersion), as diagnostics locate a document."""
    lines = path.read_text().splitlines()
    named = lines.index(f"  name: {name}")
    return max(i for i in range(named) if lines[i].startswith("apiVersion:")) + 1


def enforce(specs: Path, cluster: str, text: str) -> None:
    """Make cluster's networkPolicy text (or none when text is empty)."""
    edit_spec(specs / "inventory/clusters.yaml", USE1 if cluster == "prod-use1" else USW2, text)


def roomy_cluster_group(specs: Path) -> None:
    """The cluster group may hold the rules of many ports (NG201 otherwise)."""
    edit_spec(specs / "inventory/security-groups.yaml", "  groupId: sg-0c3000000000000c1\n",
              "  groupId: sg-0c3000000000000c1\n  ruleQuota: 200\n")


def many_fraud_ports(specs: Path, count: int) -> None:
    """fraud-score takes count ports, none adjacent, and monitoring is granted all of them."""
    roomy_cluster_group(specs)
    ports = "".join(f"    - {{name: p{i}, port: {9000 + 2 * i}}}\n" for i in range(count))
    edit_spec(specs / "inventory/services.yaml", FRAUD_PORTS, ports)
    loyalty_keeps_one_port(specs)
    edit_spec(specs / "access/observability.yaml", "to: {service: payments/fraud-score, ports: [metrics]}",
              "to: {service: payments/fraud-score}")


def loyalty_keeps_one_port(specs: Path) -> None:
    """The loyalty hosts' grant names fraud-score's grpc port, gone once the ports are p0, p1...: it names p0."""
    edit_spec(specs / "access/loyalty.yaml", "to: {service: payments/fraud-score, ports: [grpc]}",
              "to: {service: payments/fraud-score, ports: [p0]}")


# ---- Amazon VPC CNI network policy agent -------------------------------------------------------------------------


def test_ng210_more_than_24_entries_for_a_cidr_fails_at_the_service(tmp_path):
    specs = copy_example_specs(tmp_path)
    many_fraud_ports(specs, 25)
    found, _ = build(specs)
    assert found == [("NG210", "inventory/services.yaml", document_line(specs / "inventory/services.yaml",
                                                                       "fraud-score"), 1)]


def test_24_entries_pass_and_other_enforcers_do_not_count_them(tmp_path):
    specs = copy_example_specs(tmp_path)
    many_fraud_ports(specs, 24)
    assert build(specs)[0] == []
    specs = copy_example_specs(tmp_path / "calico")
    many_fraud_ports(specs, 25)
    enforce(specs, "prod-use1", "  networkPolicy: {enforcer: calico}\n")
    assert build(specs)[0] == []
    specs = copy_example_specs(tmp_path / "unstated")
    many_fraud_ports(specs, 25)
    enforce(specs, "prod-use1", "")
    assert build(specs)[0] == []


def test_ng210_counts_across_the_policies_that_select_the_same_pods(tmp_path):
    """Two services on the same pods, 13 ports each to the same hosts: 26 entries for those hosts' CIDR."""
    specs = copy_example_specs(tmp_path)
    roomy_cluster_group(specs)
    ports = "".join(f"    - {{name: p{i}, port: {9000 + 2 * i}}}\n" for i in range(13))
    edit_spec(specs / "inventory/services.yaml", FRAUD_PORTS, ports)
    loyalty_keeps_one_port(specs)
    twin = (specs / "inventory/services.yaml").read_text().split("---\n")[1]
    twin = twin.replace("name: fraud-score\n", "name: fraud-score-admin\n").replace("port: 90", "port: 70")
    with (specs / "inventory/services.yaml").open("a") as out:
        out.write("---\n" + twin)
    edit_spec(specs / "access/observability.yaml", "to: {service: payments/fraud-score, ports: [metrics]}",
              "to: {service: payments/fraud-score}")
    with (specs / "access/observability.yaml").open("a") as out:
        out.write("---\napiVersion: netgen.dev/v1alpha1\nkind: Grant\nmetadata:\n  name: monitoring-to-admin\n"
                  "spec:\n  owner: team-observability\n  reason: admin ports\n  from: {hostGroup: monitoring}\n"
                  "  to: {service: payments/fraud-score-admin}\n")
    found, _ = build(specs)
    assert [code for code, *_ in found] == ["NG210"], found


def test_the_agent_copies_the_entries_of_wider_cidrs_into_narrower_ones():
    """A /31 with 20 ports and a /32 inside it with 5 others: the /32's key holds 25, the /31's 20."""
    def rule(cidr, ports):
        return {"peers": [{"ipBlock": {"cidr": cidr}}], "ports": [{"protocol": "TCP", "port": p} for p in ports]}
    wide = [rule("10.0.0.10/31", range(1000, 1040, 2))]
    narrow = [rule("10.0.0.11/32", range(2000, 2010, 2))]
    assert _agent_entries([wide, narrow]) == (25, "10.0.0.11/32")
    assert _agent_entries([wide]) == (20, "10.0.0.10/31")
    # a /32 passes nothing on (the agent copies from non-host CIDRs only); duplicates count once
    assert _agent_entries([narrow, [rule("10.0.0.11/32", range(2000, 2010, 2))]]) == (5, "10.0.0.11/32")


# ---- Cilium --------------------------------------------------------------------------------------------------------


def test_ng211_node_addresses_on_cilium_need_policy_cidr_match_mode_nodes(tmp_path):
    specs = copy_example_specs(tmp_path)
    enforce(specs, "prod-usw2", "  networkPolicy: {enforcer: cilium, version: \"1.16\"}\n")
    found, _ = build(specs)
    # at refunds-api: node-port, externalTrafficPolicy Cluster
    assert found == [("NG211", "inventory/services.yaml", document_line(specs / "inventory/services.yaml",
                                                                       "refunds-api"), 1)]


def test_node_addresses_pass_with_match_mode_nodes_or_on_other_enforcers(tmp_path):
    assert build(copy_example_specs(tmp_path))[0] == []  # the example declares policyCidrMatchMode: [nodes]
    specs = copy_example_specs(tmp_path / "vpc-cni")
    enforce(specs, "prod-usw2", "  networkPolicy: {enforcer: aws-vpc-cni}\n")
    assert build(specs)[0] == []


def range_grant(specs: Path, ports: str) -> None:
    """The refunds worker (prod-usw2, default-deny egress) is granted a port range to the billing hosts."""
    edit_spec(specs / "access/payments.yaml", "to: {hostGroup: billing, ports: [8443]}",
              f"to: {{hostGroup: billing, ports: [8443, \"{ports}\"]}}")


def test_ng212_a_range_written_port_by_port_overflows_the_policy_map(tmp_path):
    specs = copy_example_specs(tmp_path)
    range_grant(specs, "10000-30000")
    enforce(specs, "prod-usw2", USW2.replace('"1.16"', '"1.15"'))
    found, _ = build(specs)
    assert found == [("NG212", "inventory/workloads.yaml", document_line(specs / "inventory/workloads.yaml",
                                                                        "refunds-worker"), 1)]
    specs = copy_example_specs(tmp_path / "1.16")  # enforced as ranges: a few masked port blocks
    range_grant(specs, "10000-30000")
    assert build(specs)[0] == []
    assert _port_blocks(10000, 30000) == 13 and _port_blocks(8443, 8443) == 1 and _port_blocks(0, 65535) == 1


@pytest.mark.parametrize("version", ['"1.15"', None])
def test_cilium_before_1_16_gets_ranges_port_by_port_exactly(tmp_path, version):
    """endPort is enforced from Cilium 1.16 (before, `port` alone was): older or unstated versions get each port
    of a range as an entry of its own, and nca finds the policies allow exactly the flows."""
    specs = copy_example_specs(tmp_path)
    range_grant(specs, "9000-9003")
    policy = "  networkPolicy: {enforcer: cilium, policyCidrMatchMode: [nodes]" + (
        f", version: {version}}}\n" if version else "}\n")
    enforce(specs, "prod-usw2", policy)
    found, files = build(specs)
    assert found == []
    egress = yaml.safe_load(files["kubernetes/prod-usw2/payments/netgen-egress-refunds-worker.yaml"])
    ports = [p for rule in egress["spec"]["egress"] for p in rule["ports"]]
    assert {p["port"] for p in ports} == {8443, 9000, 9001, 9002, 9003}
    assert not any("endPort" in p for p in ports)
    binary = nca.nca_binary()
    if binary is None:
        if os.environ.get("NETGEN_NCA") or os.environ.get("CI"):
            pytest.fail("network-config-analyzer not found")
        pytest.skip("network-config-analyzer (nca) is not installed")
    resolved = resolve_specs(specs, EXAMPLE_AS_OF, Reporter())
    assert nca.judge(resolved.estate, resolved.flows, compile_kubernetes(resolved.estate, list(resolved.flows)),
                     binary) == []


def test_cilium_1_16_keeps_ranges(tmp_path):
    specs = copy_example_specs(tmp_path)
    range_grant(specs, "9000-9003")
    found, files = build(specs)
    assert found == []
    egress = yaml.safe_load(files["kubernetes/prod-usw2/payments/netgen-egress-refunds-worker.yaml"])
    assert {"port": 9000, "endPort": 9003, "protocol": "TCP"} in [p for r in egress["spec"]["egress"]
                                                                 for p in r["ports"]]


# ---- what netgen never writes, whatever the enforcer -------------------------------------------------------------


def test_generated_policies_never_use_what_enforcers_resolve_differently():
    """No named port (the VPC CNI agent resolves those with an ipBlock on ingress only), no `except` (a deny entry
    there), no pod or namespace selector as a peer, no SCTP (Cilium has none): see netgen/targets/enforcers.py."""
    generated = Path(__file__).resolve().parent.parent / "generated" / "kubernetes"
    policies = [yaml.safe_load(p.read_text()) for p in generated.rglob("netgen-*.yaml")]
    assert policies
    for policy in policies:
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                assert all(set(peer) == {"ipBlock"} and set(peer["ipBlock"]) == {"cidr"} for peer in rule[peer_key])
                assert all(isinstance(p["port"], int) and p["protocol"] in ("TCP", "UDP") for p in rule["ports"])


def test_cilium_gets_the_fewest_cidr_port_pairs_and_the_vpc_cni_disjoint_cidrs(tmp_path):
    """Four kiosks on a /30 allowed the till's 7000, one of them 7000-7001 too (tests/test_cover.py): on Cilium
    the till's ingress holds 2 (CIDR, port range) pairs, the /30 and the host overlapping; under the VPC CNI's
    agent, which copies a wider CIDR's entries into the narrower ones it contains, its CIDRs stay disjoint (3
    ipBlocks, 1 entry per address). nca finds both allow exactly the flows."""
    from test_cover import OVERLAP

    def till_ingress(specs: Path) -> list[tuple[list[str], list[tuple]]]:
        (specs / "inventory/kiosks.yaml").write_text(OVERLAP)
        found, files = build(specs)
        assert found == []
        policy = yaml.safe_load(files["kubernetes/prod-use1/payments/netgen-ingress-till.yaml"])
        return [([p["ipBlock"]["cidr"] for p in rule["from"] if p["ipBlock"]["cidr"].startswith("10.10.99.")],
                 [(p["port"], p.get("endPort")) for p in rule["ports"]]) for rule in policy["spec"]["ingress"]]

    cni = copy_example_specs(tmp_path / "cni")
    assert [rule for rule in till_ingress(cni) if rule[0]] == [
        (["10.10.99.0/32", "10.10.99.2/31"], [(7000, None)]), (["10.10.99.1/32"], [(7000, 7001)])]
    cilium = copy_example_specs(tmp_path / "cilium")
    enforce(cilium, "prod-use1", "  networkPolicy: {enforcer: cilium, policyCidrMatchMode: [nodes], "
                                 "version: \"1.16\"}\n")
    assert [rule for rule in till_ingress(cilium) if rule[0]] == [
        (["10.10.99.0/30"], [(7000, None)]), (["10.10.99.1/32"], [(7000, 7001)])]
    binary = nca.nca_binary()
    if binary is None:
        if os.environ.get("NETGEN_NCA") or os.environ.get("CI"):
            pytest.fail("network-config-analyzer not found")
        pytest.skip("network-config-analyzer (nca) is not installed")
    for specs in (cni, cilium):
        resolved = resolve_specs(specs, EXAMPLE_AS_OF, Reporter())
        assert nca.judge(resolved.estate, resolved.flows, compile_kubernetes(resolved.estate, list(resolved.flows)),
                         binary) == []
