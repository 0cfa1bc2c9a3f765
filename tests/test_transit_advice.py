"""NG215 (issue 22, "Advice"): a VPC whose peerings near its quota, or the VPCs with the most peerings of a mesh
past Settings.meshWarningVpcs, are told what attaching the VPC to a transit gateway of its region would change.

The estate: the example, with the network team's gateway tgw-use1 in us-east-1 that legacy-use1 is attached to, in
place of the example's (which joins loyalty-use1 and k8s-use1): k8s-use1 is attached to no gateway, and peers
legacy-use1, legacy-euw1 and loyalty-use1. What the warning says attaching k8s-use1 would change is checked
against what netgen builds once it is attached.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import EXAMPLE_AS_OF, REPO_ROOT, copy_example_specs, diagnose_specs, edit_spec, run_cli

AS_OF = EXAMPLE_AS_OF.isoformat()
K8S_USE1, LEGACY_USE1 = "vpc-0c3d4e5f60718293a", "vpc-0a1b2c3d4e5f60718"
LEGACY_EUW1_TABLE, LOYALTY_USE1_TABLE = "rtb-0b22c33d44e55f661", "rtb-07e11a22b33c44d51"
K8S_USE1_TABLES = {"rtb-0c33d44e55f66a771", "rtb-0c33d44e55f66a772", "rtb-0c33d44e55f66a773"}
LEGACY_USE1_TABLES = {"rtb-0a11b22c33d44e551", "rtb-0a11b22c33d44e552"}
K8S_USE1_CIDRS = "  cidrs: [10.40.0.0/16]\n"

GATEWAY = """\
apiVersion: netgen.dev/v1alpha1
kind: TransitGateway
metadata:
  name: tgw-use1
spec:
  account: acme-legacy
  region: us-east-1
  transitGatewayId: tgw-0e100000000000001
  routeTables: [tgw-rtb-0e100000000000011]
  attachments:
    - {vpc: legacy-use1, attachmentId: tgw-attach-0e100000000000021, routeTable: tgw-rtb-0e100000000000011}
"""
K8S_ATTACHED = ("    - {vpc: k8s-use1, attachmentId: tgw-attach-0e100000000000022, "
                "routeTable: tgw-rtb-0e100000000000011}\n")
EXISTING = """\
---
apiVersion: netgen.dev/v1alpha1
kind: VpcPeering
metadata: {name: legacy-k8s-use1}
spec: {requesterVpc: legacy-use1, accepterVpc: k8s-use1, connectionId: pcx-0123456789abcdef0}
"""
PEERING_PATH = """\
---
apiVersion: netgen.dev/v1alpha1
kind: VpcPath
metadata: {name: legacy-k8s-use1}
spec: {vpcs: [legacy-use1, k8s-use1], via: peering}
"""

NEAR = "VPC 'k8s-use1' has 3 peerings, 100% of its quota of 3 (Settings.peeringWarningPercent: 80); "
ROUTES = ("its 21 routes to that VPC (7 prefixes in each of its 3 route tables) and the 10 back would name a transit "
          "gateway instead of a peering, for the same prefixes (plus static routes in the gateways' route tables "
          "where propagation does not carry them)")
STAYS = "2 would stay: to legacy-euw1 and loyalty-use1 (attached to no gateway 'tgw-use1' reaches)"


def specs_with(root: Path, *, quota: int | None = 3, gateway: str = GATEWAY, settings: str = "") -> Path:
    """A copy of the example with k8s-use1's peering quota, `gateway` in place of the example's
    inventory/transit-gateways.yaml ("" keeps the example's), and settings appended."""
    specs = copy_example_specs(root)
    if quota is not None:
        edit_spec(specs / "inventory/vpcs.yaml", K8S_USE1_CIDRS, f"{K8S_USE1_CIDRS}  peeringQuota: {quota}\n")
    if gateway:
        (specs / "inventory/transit-gateways.yaml").write_text(gateway)
    if settings:
        with (specs / "inventory/settings.yaml").open("a") as f:
            f.write(settings)
    return specs


def build(root: Path, out: str = "generated", fmt: str = "text"):
    """netgen build of root/specs, run from root (so diagnostics name specs/...)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        return run_cli("build", "--specs", "specs", "--out", out, "--as-of", AS_OF, "--format", fmt)


def warnings(root: Path) -> list[tuple[str, str, int, int, str]]:
    run = build(root, fmt="json")
    assert run.exit_code == 0, run.stdout + run.stderr
    return [(d["code"], d["file"], d["line"], d["column"], d["message"]) for d in json.loads(run.stdout)]


def vpc_line(specs: Path, name: str) -> int:
    lines = (specs / "inventory/vpcs.yaml").read_text().splitlines()
    return lines.index(f"  name: {name}") - 2  # at the document's apiVersion


def resources(out: Path, kind: str) -> list[dict]:
    return [r["Properties"] for p in sorted((out / "aws").rglob("*.json")) if p.name != "deploy-plan.json"
            for r in json.loads(p.read_text())["Resources"].values() if r["Type"] == kind]


def routes(out: Path, tables: set[str], target: str) -> int:
    return sum(1 for r in resources(out, "AWS::EC2::Route") if r["RouteTableId"] in tables and target in r)


def peerings_of(out: Path, vpc_id: str) -> int:
    return sum(1 for p in resources(out, "AWS::EC2::VPCPeeringConnection") if vpc_id in (p["VpcId"], p["PeerVpcId"]))


def test_a_vpc_near_its_quota_is_told_what_attaching_it_would_change(tmp_path: Path):
    """One warning, at k8s-use1's Vpc document, with the numbers netgen builds once k8s-use1 is attached: one
    peering fewer (to legacy-use1, attached to tgw-use1), its 21 routes to legacy-use1 and legacy-use1's 10 back
    naming the gateway; legacy-euw1 and loyalty-use1, attached to no gateway, keep their peerings. The build
    succeeds."""
    before = tmp_path / "before"
    specs = specs_with(before)
    message = (NEAR + "attached to transit gateway 'tgw-use1', it would need 1 fewer: netgen's peering to "
               f"legacy-use1 would go; {ROUTES}; {STAYS}")
    line = vpc_line(specs, "k8s-use1")
    assert warnings(before) == [("NG215", "specs/inventory/vpcs.yaml", line, 1, message)]
    text = build(before)
    assert text.exit_code == 0
    assert f"specs/inventory/vpcs.yaml:{line}:1: warning[NG215]: {message}" in text.stderr.splitlines()
    out = before / "generated"
    assert peerings_of(out, K8S_USE1) == 3
    # to legacy-use1, to legacy-euw1, to loyalty-use1 (2 prefixes: its hosts collapsed)
    assert routes(out, K8S_USE1_TABLES, "VpcPeeringConnectionId") == 21 + 21 + 6

    after = tmp_path / "after"
    specs_with(after, gateway=GATEWAY + K8S_ATTACHED)
    assert warnings(after) == []  # 2 peerings of 3: under 80%
    out = after / "generated"
    assert peerings_of(out, K8S_USE1) == 2
    assert routes(out, K8S_USE1_TABLES, "TransitGatewayId") == 21
    assert routes(out, K8S_USE1_TABLES, "VpcPeeringConnectionId") == 21 + 6
    assert routes(out, LEGACY_USE1_TABLES, "TransitGatewayId") == 10


def test_the_catalogue_example_is_what_netgen_prints(tmp_path: Path):
    section = (REPO_ROOT / "docs/diagnostics.md").read_text().split("### NG215: ", 1)[1].split("\n### ", 1)[0]
    example = re.search(r"^```\n(.*)\n```$", section, re.MULTILINE)[1]
    specs_with(tmp_path)
    assert example in build(tmp_path).stderr.splitlines()


@pytest.mark.parametrize(("extra", "change"), [
    # flows would leave the existing peering, which netgen does not delete: it still counts
    (EXISTING, "it would stop routing over its existing peering to legacy-use1 (VpcPeering: counted against the "
               f"quota until deleted outside netgen); {ROUTES}; {STAYS}"),
    (PEERING_PATH, "3 would stay: to legacy-euw1 and loyalty-use1 (attached to no gateway 'tgw-use1' reaches), to "
                   "legacy-use1 (a VpcPath says peering)"),
], ids=["existing-peering", "vpc-path"])
def test_what_stays_and_why(tmp_path: Path, extra: str, change: str):
    specs_with(tmp_path, gateway=GATEWAY + extra)
    assert [(code, m) for code, *_, m in warnings(tmp_path)] == [
        ("NG215", NEAR + "attached to transit gateway 'tgw-use1', " + change)]


def test_a_peering_preference_keeps_the_pairs_on_peering(tmp_path: Path):
    specs_with(tmp_path, settings="  pathPreference: peering\n")
    [(_, _, _, _, message)] = warnings(tmp_path)
    assert message == (NEAR + "attached to transit gateway 'tgw-use1', 3 would stay: to legacy-euw1 and loyalty-use1 "
                       "(attached to no gateway 'tgw-use1' reaches), to legacy-use1 (Settings.pathPreference: peering)")


def test_across_a_gateway_peering_the_rules_stay_cidr_rules(tmp_path: Path):
    """With docs/examples/transit-gateways.yaml (tgw-use1 holds legacy-use1 and loyalty-use1, tgw-euw1 legacy-euw1,
    peered with tgw-use1) less k8s-use1's attachment, attaching k8s-use1 would drop its three peerings, one across
    the gateway peering: as netgen builds those gateways."""
    gateways = (REPO_ROOT / "docs/examples/transit-gateways.yaml").read_text()
    attachment = ("    - vpc: k8s-use1\n      attachmentId: tgw-attach-0e100000000000022\n"
                  "      routeTable: tgw-rtb-0e100000000000011\n"
                  "      propagatesTo: [tgw-rtb-0e100000000000011, tgw-rtb-0e100000000000012]\n")
    assert attachment in gateways
    specs_with(tmp_path / "before", gateway=gateways.replace(attachment, ""))
    [(_, _, _, _, message)] = warnings(tmp_path / "before")
    assert message == (NEAR + "attached to transit gateway 'tgw-use1', it would need 3 fewer: netgen's peerings to "
                       "legacy-euw1, legacy-use1 and loyalty-use1 would go; its 48 routes to those 3 VPCs (16 prefixes "
                       "in each of its 3 route tables) and the 17 back would name a transit gateway instead of a "
                       "peering, for "
                       "the same prefixes (plus static routes in the gateways' route tables where propagation does "
                       "not carry them); netgen's security-group rules stay as they are: they name CIDRs, and a group "
                       "reference would not cross the gateway peering (use1-euw1)")
    after = tmp_path / "after"
    specs_with(after, gateway=gateways)  # k8s-use1 attached: as the example's gateways are
    assert warnings(after) == []
    out = after / "generated"
    assert peerings_of(out, K8S_USE1) == 0
    assert routes(out, K8S_USE1_TABLES, "TransitGatewayId") == 48
    assert routes(out, LEGACY_USE1_TABLES | {LEGACY_EUW1_TABLE, LOYALTY_USE1_TABLE}, "TransitGatewayId") == 17


def test_without_a_gateway_in_its_region_it_says_so(tmp_path: Path):
    specs = specs_with(tmp_path)
    (specs / "inventory/transit-gateways.yaml").unlink()  # (loyalty-use1 peers k8s-use1 too, as with GATEWAY)
    assert [m for *_, m in warnings(tmp_path)] == [
        NEAR + "no transit gateway is declared in us-east-1 to attach it to (declare the one your network team "
               "runs, with its attachments: netgen discover writes them)"]


@pytest.mark.parametrize(("percent", "quota", "warns"), [
    (None, 4, False),  # 3 of 4: 75%, under the default 80%
    (75, 4, True),  # 300 >= 300
    (76, 4, False),  # 300 < 304
    (None, 3, True),  # at the quota (over it is NG203, an error)
    (100, 3, True),
])
def test_the_threshold_is_a_share_of_the_quota(tmp_path: Path, percent: int | None, quota: int, warns: bool):
    setting = f"  peeringWarningPercent: {percent}\n" if percent is not None else ""
    specs_with(tmp_path, quota=quota, settings=setting)
    assert [code for code, *_ in warnings(tmp_path)] == (["NG215"] if warns else [])


def test_over_the_quota_is_ng203_alone(tmp_path: Path):
    specs_with(tmp_path, quota=2)
    run = build(tmp_path, fmt="json")
    assert run.exit_code == 1
    assert [d["code"] for d in json.loads(run.stdout)] == ["NG203"]


def test_a_mesh_past_its_threshold_warns_at_the_vpcs_with_the_most_peerings(tmp_path: Path):
    """Peerings join four VPCs of the example (loyalty-use1 goes through its transit gateway), 2 peerings each:
    past meshWarningVpcs 3, all four warn, once each, in order; at 4, none. With docs/examples/transit-gateways.yaml,
    peerings join three VPCs, and k8s-usw2 has the most (2)."""
    specs = specs_with(tmp_path / "tied", quota=None, gateway="", settings="  meshWarningVpcs: 3\n")
    found = warnings(tmp_path / "tied")
    order = ["legacy-use1", "legacy-euw1", "k8s-use1", "k8s-usw2"]
    assert [(code, line) for code, _, line, _, _ in found] == [("NG215", vpc_line(specs, n)) for n in order]
    assert all(", the most of the 4 VPCs that peerings join (Settings.meshWarningVpcs: 3); " in m
               for *_, m in found)
    specs_with(tmp_path / "under", quota=None, gateway="", settings="  meshWarningVpcs: 4\n")
    assert warnings(tmp_path / "under") == []

    gateways = (REPO_ROOT / "docs/examples/transit-gateways.yaml").read_text()
    specs_with(tmp_path / "hub", quota=None, gateway=gateways, settings="  meshWarningVpcs: 2\n")
    assert [m for *_, m in warnings(tmp_path / "hub")] == [
        "VPC 'k8s-usw2' has 2 peerings, the most of the 3 VPCs that peerings join (Settings.meshWarningVpcs: 2); "
        "no transit gateway is declared in us-west-2 to attach it to (declare the one your network team runs, with "
        "its attachments: netgen discover writes them)"]


def test_the_example_estate_gets_no_advice(tmp_path: Path):
    specs_with(tmp_path, quota=None, gateway="")
    assert warnings(tmp_path) == []


@pytest.mark.parametrize(("setting", "value"), [("peeringWarningPercent", 0), ("peeringWarningPercent", 101),
                                                ("meshWarningVpcs", 0), ("meshWarningVpcs", "many")])
def test_the_settings_are_checked_by_the_schema(tmp_path: Path, setting: str, value):
    specs = specs_with(tmp_path, quota=None, gateway="", settings=f"  {setting}: {value}\n")
    found = diagnose_specs(specs)
    assert [(d.code, d.location.line) for d in found] == [("NG012", 11)], [d.text() for d in found]
    assert setting in found[0].message


def test_the_mesh_warning_skips_a_vpc_over_its_quota(tmp_path: Path):
    """In the hub estate k8s-usw2 has the most peerings (2); with a quota of 1 it is NG203's, and the mesh warning
    goes to the busiest VPCs within their quota (1 peering each) rather than to no one."""
    gateways = (REPO_ROOT / "docs/examples/transit-gateways.yaml").read_text()
    specs = specs_with(tmp_path, quota=None, gateway=gateways, settings="  meshWarningVpcs: 2\n")
    vpcs = specs / "inventory/vpcs.yaml"
    text = vpcs.read_text()
    head, _, tail = text.partition("  name: k8s-usw2\n")
    vpcs.write_text(head + "  name: k8s-usw2\n" + tail.replace("  cidrs:", "  peeringQuota: 1\n  cidrs:", 1))
    run = build(tmp_path, fmt="json")
    found = [(d["code"], d["message"].split("'")[1]) for d in json.loads(run.stdout)]
    assert ("NG203", "k8s-usw2") in found and run.exit_code == 1
    mesh = [vpc for code, vpc in found if code == "NG215"]
    assert mesh and "k8s-usw2" not in mesh, found
