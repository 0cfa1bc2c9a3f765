"""`netgen explain`: allowed and denied questions in both directions, what it says carries each hop, and that
its answers follow the specs (every granted host, port and workload is a yes; taking a grant away is a no)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.review.explain import explain
from netgen.targets import compile_outputs

AS_OF = EXAMPLE_AS_OF.isoformat()


@pytest.fixture(scope="module")
def resolved():
    return resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter())


@pytest.fixture(scope="module")
def generated(resolved) -> dict[str, bytes]:
    return compile_outputs(resolved, Reporter())


def ask(*args: str, specs: Path = EXAMPLE_SPECS):
    return run_cli("explain", *args, "--specs", str(specs), "--as-of", AS_OF)


def mentioned_files(text: str) -> set[str]:
    return set(re.findall(r"generated/(\S+?\.(?:json|yaml))", text))


def test_host_to_service_through_nlb_names_both_hops_and_what_carries_them(resolved, generated):
    result = ask("billing-euw1-01", "payments/payments-api", "--port", "443")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("yes:")
    assert "hop 1/2" in out and "hop 2/2" in out
    assert "load-balancer/prod-use1/payments/payments-api" in out
    grant = next(g for g in resolved.estate.grants if g.name == "billing-to-payments-api")
    assert f"billing-to-payments-api (owner team-billing) {grant.loc.file}:{grant.loc.line}" in out
    assert "peering: legacy-euw1 <-> k8s-use1" in out
    vpcs = {v.name: v for v in resolved.estate.vpcs}
    for table in (*vpcs["legacy-euw1"].route_tables, *vpcs["k8s-use1"].route_tables):
        assert table in out  # routes there and back, in every route table of both VPCs
    groups = {g.name: g.group_id for g in resolved.estate.security_groups}
    assert f"payments-api-nlb ({groups['payments-api-nlb']}) ingress tcp/443 from 10.20.20.21/32" in out
    assert f"prod-use1-nodes ({groups['prod-use1-nodes']}) ingress tcp/8443" in out
    assert "NetworkPolicy: generated/kubernetes/prod-use1/payments/netgen-ingress-payments-api.yaml" in out
    # every file explain points at is one netgen generates
    assert mentioned_files(out) and mentioned_files(out) <= set(generated)


def test_host_to_service_through_node_port(resolved, generated):
    for port in ("9200", "30920", "http"):  # service port, node port or port name
        result = ask("batch-use1-01", "search/search-api", "--port", port)
        assert result.exit_code == 0, result.stdout
        assert "nodes/prod-use1" in result.stdout and "tcp/30920" in result.stdout
        assert "hop 2/2" in result.stdout and "externalTrafficPolicy Local" in result.stdout
        assert "batch-to-search-api" in result.stdout
        assert "runs ingress open: no NetworkPolicy needed" in result.stdout
        assert mentioned_files(result.stdout) <= set(generated)


def test_workload_to_host_and_host_by_address(resolved, generated):
    result = ask("search/indexer", "batch-euw1-01", "--port", "9001")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("yes:")
    assert "indexer-to-batch-rsync" in result.stdout and "tcp/9001" in result.stdout
    groups = {g.name: g.group_id for g in resolved.estate.security_groups}
    assert f"legacy-batch-euw1 ({groups['legacy-batch-euw1']}) ingress tcp/9000-9003" in result.stdout
    # the host by address, the workload qualified with its cluster
    result = ask("prod-use1/payments/settlement-worker", "10.10.10.11", "--port", "5432")
    assert result.exit_code == 0, result.stdout
    assert "settlement-to-databases" in result.stdout
    assert "netgen-egress-settlement-worker.yaml" in result.stdout
    assert mentioned_files(result.stdout) <= set(generated)


def test_wrong_port_is_no_with_the_closest_grant():
    result = ask("mon-use1-01", "payments/fraud-score", "--port", "grpc")
    assert result.exit_code == 1
    out = result.stdout
    assert out.startswith("no:")
    assert "first missing piece: no grant allows host/mon-use1-01" in out
    assert "monitoring-to-fraud-score-metrics" in out and "same source and destination, other port(s)" in out
    assert "exists but does not allow this source and port" in out  # the policy is there, for metrics only
    assert "ports: [grpc]" in out  # the grant that would allow it


def test_port_the_service_does_not_have():
    result = ask("erp-euw1-01", "ledger/ledger-export", "--port", "22")
    assert result.exit_code == 1
    assert "has no port 22/tcp" in result.stdout and "sftp" in result.stdout
    assert "erp-to-ledger-export" in result.stdout


def test_other_source_is_no_with_the_grant_of_the_same_destination():
    result = ask("billing-use1-01", "ledger/ledger-api")
    assert result.exit_code == 1
    out = result.stdout
    assert "hop 1/2 (NOT granted)" in out and "hop 2/2 (granted)" in out  # the NLB -> pods hop exists already
    assert "batch-to-ledger-api" in out and "same destination and port, other hosts: hostGroup batch" in out


def test_workload_to_host_wrong_port_is_no():
    result = ask("payments/settlement-worker", "db-use1-02", "--port", "6432")
    assert result.exit_code == 1
    out = result.stdout
    assert "settlement-to-databases" in out and "same source and destination, other port(s): tcp/5432" in out
    assert "security-group rule on legacy-db-use1" in out and "missing" in out
    assert "from: {workload: prod-use1/payments/settlement-worker}" in out


def test_unknown_names_exit_2_with_a_hint():
    result = ask("billing-use1-1", "payments/payments-api")
    assert result.exit_code == 2
    assert "did you mean 'billing-use1-01'" in result.stderr
    assert ask("billing-use1-01", "payments/payment-api").exit_code == 2
    assert ask("10.99.0.1", "payments/payments-api").exit_code == 2
    assert ask("billing", "payments/payments-api").exit_code == 2  # a host group, not a host
    assert ask("billing-use1-01", "payments/payments-api", "--protocol", "icmp").exit_code == 2


@pytest.mark.parametrize(("source", "destination"), [("billing-use1-01", "payments/payments-api"),
                                                     ("payments/settlement-worker", "db-use1-02")])
@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_number_out_of_range_is_a_usage_error_for_any_destination(source, destination, port):
    result = ask(source, destination, "--port", port)
    assert result.exit_code == 2 and f"--port {port}: not a port number (1-65535)" in result.stderr


def test_every_granted_host_and_port_is_a_yes(resolved):
    """Independently of the flow list: every (host, port) a grant names is answered yes, naming the grant."""
    asked = 0
    for grant in resolved.estate.grants:
        for host in grant.hosts:
            if grant.service is not None:
                for sp in grant.service_ports:
                    answer = explain(resolved, host.name, grant.service.ref, sp.name, sp.protocol)
                    assert answer.allowed, answer.lines
                    assert any(grant.name in line for line in answer.lines)
                    asked += 1
            else:
                for ports in grant.host_ports:
                    for port in {ports.first, ports.last}:
                        answer = explain(resolved, grant.workload.ref, str(host.address), str(port), ports.protocol)
                        assert answer.allowed, answer.lines
                        assert any(grant.name in line for line in answer.lines)
                        asked += 1
    assert asked > 40


def test_removing_a_grant_turns_yes_into_no(example_specs: Path):
    assert ask("batch-use1-01", "search/search-api", specs=example_specs).exit_code == 0
    path = example_specs / "access/search.yaml"
    chunks = path.read_text("utf-8").split("\n---\n")
    path.write_text("\n---\n".join(c for c in chunks if "name: batch-to-search-api" not in c), "utf-8")
    result = ask("batch-use1-01", "search/search-api", specs=example_specs)
    assert result.exit_code == 1
    assert "batch-to-search-api" not in result.stdout
