"""The real blast radius of a grant (netgen/blast.py): who else its openings admit at each layer, in `netgen diff`
(text, markdown, json) and `netgen explain`, and the Settings.maxCollateralAddresses guardrail (NG124), whose
suggested fixes do narrow the opening."""

from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec, run_cli
from test_review_diff import diff, diff_json, repo  # noqa: F401  (repo: the fixture)

from netgen.blast import by_grant, collateral_addresses
from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs

NODES = "10.40.0.0/20,10.40.16.0/20"


def radius(specs: Path = EXAMPLE_SPECS) -> dict:
    resolved = resolve_specs(specs, EXAMPLE_AS_OF, Reporter())
    return by_grant(resolved.estate, resolved.flows)


def texts(found) -> list[str]:
    return [a.text() for a in found]


def test_snat_and_a_shared_legacy_group_are_named_and_counted():
    found = radius()["settlement-to-pgbouncer-temp"]
    lines = texts(found)
    assert (f"security group legacy-db-use1 (sg-0a1000000000000a1): tcp/6432 from {NODES}, the node subnets of "
            "cluster prod-use1: every pod of the cluster (SNAT gives them their node's address), its nodes and "
            "host-network pods (8192 address(es) beyond the grant's own)") in lines
    assert ("security group legacy-db-use1 (sg-0a1000000000000a1): tcp/6432 to db-use1-02 (10.10.10.12) as well, "
            "which also carries the group (1 address(es) beyond the grant's own)") in lines
    # the pods whose egress no policy restricts: every namespace of prod-use1 run open for egress
    assert ("NetworkPolicy cluster prod-use1: tcp/6432 to host/db-use1-01: the pods of every namespace whose egress "
            "no policy restricts (ledger, platform, search), and of any namespace not declared on the cluster") in lines
    assert collateral_addresses(found) == 8193
    assert any("exclude 10.10.10.11/32 from SNAT on cluster 'prod-use1'" in a.fix and "Security Groups for Pods"
               in a.fix for a in found)


def test_the_grants_own_hosts_and_pods_are_not_counted():
    every = radius()
    # db-use1-02 is one of the databases the grant names: not collateral (only the node subnets, once per group)
    databases = every["settlement-to-databases"]
    assert not any("db-use1-02" in a.who for a in databases)
    assert collateral_addresses(databases) == 2 * 8192
    # SNAT excluded toward legacy-euw1: the group admits pod addresses, the workload's own; NetworkPolicy then
    # restricts the others, every namespace of prod-usw2 running default-deny egress
    eu = texts(every["report-builder-to-databases-eu"])
    assert collateral_addresses(every["report-builder-to-databases-eu"]) == 0
    assert ("security group legacy-db-euw1 (sg-0b2000000000000b1): tcp/5432 from 10.50.64.0/18, the pod CIDRs of "
            "cluster prod-usw2: every pod of the cluster") in eu
    assert any("only pods a policy allows, as every declared namespace runs default-deny egress" in t for t in eu)


def test_a_rule_on_the_cluster_group_opens_every_node_and_pod_of_the_cluster():
    lines = texts(radius()["erp-to-ledger-export"])
    assert ("security group prod-use1-nodes (sg-0c3000000000000c1): tcp/2222 from host/erp-euw1-01 to every node "
            "and pod of cluster prod-use1, which carry the group") in lines
    assert ("NetworkPolicy cluster prod-use1: tcp/2222 from host/erp-euw1-01: the pods of every namespace whose "
            "ingress no policy restricts (search), and of any namespace not declared on the cluster") in lines


def test_the_suggested_fixes_narrow_the_opening(tmp_path):
    """Excluding the host from SNAT leaves only db-use1-02; a group of its own leaves nothing."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/clusters.yaml", "    enabled: true           # the CNI default",
              "    enabled: true\n    excludedCidrs: [10.10.10.11/32]  # the CNI default")
    assert collateral_addresses(radius(specs)["settlement-to-pgbouncer-temp"]) == 1
    settings = specs / "inventory/settings.yaml"
    edit_spec(settings, "  defaultRouteQuota: 50", "  maxCollateralAddresses: 1\n  defaultRouteQuota: 50")
    refused = {d.message.split("'")[1] for d in diagnose_specs(specs) if d.code == "NG124"}
    assert "settlement-to-pgbouncer-temp" not in refused and "settlement-to-databases" in refused
    edit_spec(settings, "maxCollateralAddresses: 1", "maxCollateralAddresses: 0")
    assert "settlement-to-pgbouncer-temp" in {d.message.split("'")[1] for d in diagnose_specs(specs)
                                             if d.code == "NG124"}


def test_no_limit_no_check():
    assert diagnose_specs(EXAMPLE_SPECS) == []


GRANT = """---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: exporter-to-db
spec:
  owner: team-ledger
  reason: The ledger exporter reads the primary database
  from: {workload: ledger/ledger-exporter}
  to: {host: db-use1-01, ports: [5433]}
"""


def test_diff_names_who_else_a_new_grant_admits(repo: Path):  # noqa: F811
    with (repo / "specs/access/ledger.yaml").open("a") as out:
        out.write(GRANT)
    text = diff(repo).stdout
    assert "    who else these openings admit:\n" in text
    assert "tcp/5433 to db-use1-02 (10.10.10.12) as well, which also carries the group" in text
    assert "      narrower: give the grant's hosts a security group of their own\n" in text
    markdown = diff(repo, "--format", "markdown").stdout
    assert "Who else these openings admit:" in markdown
    assert "(**8192** address(es) beyond the grant's own)" in markdown
    (change,) = [g for g in diff_json(repo)["grants"] if g["name"] == "exporter-to-db"]
    assert {(a["layer"], a["addresses"]) for a in change["admits"]} == {
        ("security group", 8192), ("security group", 1), ("NetworkPolicy", 0)}
    assert all(set(a) == {"layer", "where", "who", "addresses", "fix"} for a in change["admits"])


def test_explain_names_who_else_the_openings_admit():
    result = run_cli("explain", "payments/settlement-worker", "db-use1-01", "--port", "6432", "--specs",
                     str(EXAMPLE_SPECS), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("who else these openings admit:")
    assert any("to db-use1-02 (10.10.10.12) as well" in line for line in lines[start:])
    assert any("narrower: exclude 10.10.10.11/32 from SNAT" in line for line in lines[start:])
