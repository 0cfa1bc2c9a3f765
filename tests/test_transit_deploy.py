"""Deploying static routes in transit gateway route tables next to routes that exist already (issue 22), against
moto in server mode (the `cloud` fixture of conftest.py):

- test_what_a_static_route_finds_at_its_destination: adoption and preflight's verdicts on AWS's answers
  (static and propagated routes; moto reports no propagated ones);
- test_moving_pairs_onto_gateways_adopts_hand_routes_and_refuses_others: a pair of the example estate moved
  from its peering onto a gateway: a hand-made static route identical to a generated one is adopted, one to
  another attachment and a blackhole stop the run before any change, and drift names the hand-made ones;
- test_a_network_accounts_gateway_routes_leave_with_its_stack: a gateway owned by a network account that owns no
  VPC; a removed grant takes its static route away, and once no pair goes through the gateway the account's
  network stack is deleted with its static routes (cleanup visits the place though no stack of the plan is
  there); hand-made routes in the same table stay;
- test_the_judge_and_verify_read_a_network_accounts_gateway: the AWS judge and verify read that account.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXAMPLE_AS_OF, copy_example_specs, edit_spec, run_cli
from judges.aws import MotoCloud, rewrite_spec_ids, seed_estate
from test_transit_gateways import (
    ATTACH_K8S_USE1,
    ATTACH_LEGACY_USE1,
    RTB_USE1_MAIN,
    USE1,
    gateway_specs,
    templates,
)

from netgen.aws.deploy.adopt_transit import ADOPT, CONFLICT, CREATE, classify, conflict_text
from netgen.aws.generated import GatewayRouteSpec, inventory_places
from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs

AS_OF = EXAMPLE_AS_OF.isoformat()
LEGACY, NETWORK = "123456789012", "333333333333"
# moto's CloudFormation skips these (docs/deploy.md); the judge's deploy gives a network stack that is left with no
# other resource a placeholder (tests/judges/aws.py)
pytestmark = [pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..SecurityGroupEgress"),
              pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..TransitGatewayRoute"),
              pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle"),
              pytest.mark.filterwarnings("ignore:Unable to delete TgwRoute")]

# tgw-use1 owned by a network account that owns no VPC of the inventory (no peering to another gateway).
NETWORK_GATEWAY = f"""apiVersion: netgen.dev/v1alpha1
kind: Account
metadata:
  name: acme-network
spec:
  accountId: "{NETWORK}"
  peeringAcceptRoleArn: arn:aws:iam::{NETWORK}:role/netgen-peering-accepter
---
apiVersion: netgen.dev/v1alpha1
kind: TransitGateway
metadata:
  name: tgw-use1
spec:
  account: acme-network
  region: us-east-1
  transitGatewayId: {USE1}
  routeTables: [{RTB_USE1_MAIN}]
  attachments:
    - {{vpc: legacy-use1, attachmentId: {ATTACH_LEGACY_USE1}, routeTable: {RTB_USE1_MAIN}}}
    - {{vpc: k8s-use1, attachmentId: {ATTACH_K8S_USE1}, routeTable: {RTB_USE1_MAIN}, propagatesTo: [{RTB_USE1_MAIN}]}}
"""
NETWORK_STACK = "netgen-acme-network-us-east-1-network"


def static(attachment: str | None, *, state: str = "active", kind: str = "static") -> dict:
    """A route as SearchTransitGatewayRoutes answers it."""
    attached = [{"TransitGatewayAttachmentId": attachment, "ResourceType": "vpc"}] if attachment else []
    return {"DestinationCidrBlock": "10.10.10.11/32", "TransitGatewayAttachments": attached, "Type": kind,
            "State": state}


def test_what_a_static_route_finds_at_its_destination():
    route = GatewayRouteSpec("TgwRoute", "tgw-rtb-1", "10.10.10.11/32", "tgw-attach-legacy")
    other = "tgw-attach-other"
    assert classify(route, []) == (CREATE, None)
    assert classify(route, [static("tgw-attach-legacy")])[0] == ADOPT
    for found in ([static(other)], [static(None, state="blackhole")],
                  [static(other, kind="propagated")],  # the static route would take the prefix from it
                  [static(other), static("tgw-attach-legacy", kind="propagated")]):
        assert classify(route, found) == (CONFLICT, found[0]), found
    # the same next hop as netgen's: the static route is written beside it; a static route decides first
    assert classify(route, [static("tgw-attach-legacy", kind="propagated")]) == (CREATE, None)
    assert classify(route, [static("tgw-attach-legacy", kind="propagated"), static("tgw-attach-legacy")])[0] == ADOPT
    assert conflict_text(route, static(other, kind="propagated")).startswith(
        "transit gateway route table tgw-rtb-1 already routes 10.10.10.11/32 to tgw-attach-other (propagated), and "
        "netgen would route it to tgw-attach-legacy (static): a static route takes precedence")
    blackhole = conflict_text(route, static(None, state="blackhole"))
    assert "already routes 10.10.10.11/32 to blackhole (static)" in blackhole and "remove or change" in blackhole


# --- against moto -----------------------------------------------------------------------------------------------

def netgen(*args: str | Path) -> tuple[int, str]:
    result = run_cli(*map(str, args))
    assert result.exception is None, result.exception
    return result.exit_code, result.stdout + result.stderr


def build(specs: Path, out: Path) -> None:
    code, output = netgen("build", "--specs", specs, "--out", out, "--as-of", AS_OF)
    assert code == 0, output


def deploy(cloud: MotoCloud, specs: Path, out: Path) -> tuple[int, str]:
    return netgen("deploy", "--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url,
                  "--ec2-peering")


def statics(out: Path, path: str) -> list[GatewayRouteSpec]:
    """The static gateway routes of one generated template."""
    from netgen.aws.generated import gateway_routes_of

    return gateway_routes_of(templates(out)[path])


def live_statics(ec2, table: str) -> dict[str, str]:
    """{destination: attachment, or 'blackhole'} of a gateway route table's static routes."""
    answer = ec2.search_transit_gateway_routes(TransitGatewayRouteTableId=table,
                                               Filters=[{"Name": "type", "Values": ["static"]}])["Routes"]
    return {r["DestinationCidrBlock"]: "blackhole" if r["State"] == "blackhole"
            else r["TransitGatewayAttachments"][0]["TransitGatewayAttachmentId"] for r in answer}


def test_moving_pairs_onto_gateways_adopts_hand_routes_and_refuses_others(cloud: MotoCloud, tmp_path: Path):
    original = gateway_specs(tmp_path / "original")
    seeded = seed_estate(cloud, resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate)
    ids, vpcs = seeded.substitutions, {name: v.vpc_id for name, v in seeded.vpcs.items()}
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", ids), tmp_path / "generated"
    declared = specs / "inventory/transit-gateways.yaml"
    gateways = declared.read_text()
    # 1. legacy-use1 and k8s-use1 peered, though both are attached to tgw-use1. (Not every pair: moto fails an
    # update that leaves a stack no parameter, as moving legacy-euw1's peering to k8s-use1 would; docs/deploy.md.)
    declared.write_text(gateways + "---\napiVersion: netgen.dev/v1alpha1\nkind: VpcPath\nmetadata:\n  name: use1\n"
                        "spec:\n  vpcs: [legacy-use1, k8s-use1]\n  via: peering\n")
    build(specs, out)
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    # 2. the pair moves onto the gateway; the network team has made static routes by hand in the table its
    # attachments are associated with
    declared.write_text(gateways)
    build(specs, out)
    table, legacy, k8s = ids[RTB_USE1_MAIN], ids[ATTACH_LEGACY_USE1], ids[ATTACH_K8S_USE1]
    generated = [r for r in statics(out, "aws/acme-legacy/us-east-1/network.json") if r.table == table]
    to_legacy = [r for r in generated if r.attachment == legacy]
    identical, elsewhere, blackhole = to_legacy[:3]
    wide = next(r for r in to_legacy if not r.cidr.endswith("/32"))
    narrower = wide.cidr.split("/")[0] + "/32"  # within a generated route, to the same attachment
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    for cidr, target in ((identical.cidr, legacy), (elsewhere.cidr, k8s), (narrower, legacy), ("10.99.0.0/16", k8s)):
        ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=cidr,
                                         TransitGatewayAttachmentId=target)
    ec2.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=blackhole.cidr,
                                     Blackhole=True)
    before = live_statics(ec2, table)
    code, output = deploy(cloud, specs, out)
    assert code == 1, output
    assert "preflight found 2 problem(s); nothing was changed" in output, output
    assert (f"transit gateway route table {table} already routes {elsewhere.cidr} to {k8s} (static), and netgen "
            f"would route it to {legacy} (static)") in output
    assert f"already routes {blackhole.cidr} to blackhole (static), and netgen would route it to {legacy}" in output
    assert live_statics(ec2, table) == before
    # 3. those two removed by hand: the identical route is adopted, the others created; the routes the network
    # stack holds to the peerings move to the gateways (they are netgen's: no conflict), the peerings go
    for route in (elsewhere, blackhole):
        ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock=route.cidr)
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"adopted: transit gateway route {table} {identical.cidr} -> {legacy}" in output
    assert output.count("created transit gateway route") == len(to_legacy) - 1
    assert f"created transit gateway route {table} {identical.cidr}" not in output
    for pcx in ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]:  # the pair's peering is gone
        joins = frozenset((pcx["RequesterVpcInfo"]["VpcId"], pcx["AccepterVpcInfo"]["VpcId"]))
        assert joins != {vpcs["legacy-use1"], vpcs["k8s-use1"]} or pcx["Status"]["Code"] == "deleted", pcx
    assert live_statics(ec2, table)[narrower] == legacy and live_statics(ec2, table)["10.99.0.0/16"] == k8s
    code, output = netgen("verify", "--specs", specs, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url)
    assert code == 0, output
    # 4. drift: the adopted route, and the hand-made ones by coverage; only --strict fails on the uncovered one
    common = ("--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url)
    code, output = netgen("drift", *common, "--format", "json")
    assert code == 0, output
    found = json.loads(output[output.index("{"):])
    where = f"transit gateway route table {table}"
    assert [(d["change"], d["category"], d["detail"]) for d in found["drift"] if d["where"] == where] == [
        ("adopted", "adopted", f"{identical.cidr} -> {legacy}: identical to a generated route, held by no netgen "
                               "stack"),
        ("hand", "covered", f"{narrower} -> {legacy}: within the generated routes of this table to that attachment"),
        ("hand", "uncovered", f"10.99.0.0/16 -> {k8s}: no generated route of this table goes there through that "
                              "attachment")]
    assert [d for d in found["drift"] if d["change"] in ("missing", "extra", "changed")] == []
    routes = found["migration"]["routes"]
    assert (routes["adopted"], routes["covered"], routes["uncovered"]) == (1, 1, 1), routes
    code, output = netgen("drift", *common, "--strict")
    assert code == 1 and f"hand route (covered by no grant): {where}: 10.99.0.0/16 -> {k8s}" in output, output
    # 5. nothing changed: nothing deployed, the adopted route still in place
    code, output = deploy(cloud, specs, out)
    assert code == 0 and "change set" not in output, output
    assert live_statics(ec2, table)[identical.cidr] == legacy


def network_estate(root: Path) -> Path:
    """The example estate with tgw-use1 owned by acme-network (and no gateway in eu-west-1)."""
    specs = copy_example_specs(root)
    (specs / "inventory/transit-gateways.yaml").write_text(NETWORK_GATEWAY)
    return specs


def test_a_network_accounts_gateway_routes_leave_with_its_stack(cloud: MotoCloud, tmp_path: Path):
    original = network_estate(tmp_path / "original")
    estate = resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate
    assert (NETWORK, "acme-network", "us-east-1") in inventory_places(estate)
    assert not any(v.account.account_id == NETWORK for v in estate.vpcs)
    seeded = seed_estate(cloud, estate)
    ids = seeded.substitutions
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", ids), tmp_path / "generated"
    build(specs, out)
    mine = statics(out, "aws/acme-network/us-east-1/network.json")
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    network = cloud.ec2(NETWORK, "us-east-1")
    table, k8s = ids[RTB_USE1_MAIN], ids[ATTACH_K8S_USE1]
    assert {r.table for r in mine} == {table}
    assert live_statics(network, table) == {r.cidr: r.attachment for r in mine}
    network.create_transit_gateway_route(TransitGatewayRouteTableId=table, DestinationCidrBlock="10.99.0.0/16",
                                         TransitGatewayAttachmentId=k8s)
    # a grant removed: the static route only its flows needed goes, with the stack's update
    edit_spec(specs / "access/observability.yaml", """apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: monitoring-to-fraud-score-metrics
spec:
  owner: team-observability
  reason: Legacy Prometheus scrapes fraud-score metrics
  from: {hostGroup: monitoring}
  to: {service: payments/fraud-score, ports: [metrics]}
---
""", "")
    build(specs, out)
    left = statics(out, "aws/acme-network/us-east-1/network.json")
    gone = {r.cidr for r in mine} - {r.cidr for r in left}
    assert gone == {"10.10.40.41/32"}  # the monitoring host, whose only flow through the gateway that was
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"deleted transit gateway route {table} 10.10.40.41/32" in output
    assert live_statics(network, table) == {**{r.cidr: r.attachment for r in left}, "10.99.0.0/16": k8s}
    # no pair through the gateway any more: no stack of the plan is in the network account, whose network stack
    # is deleted with its static routes; the hand-made route stays
    with (specs / "inventory/transit-gateways.yaml").open("a") as doc:
        doc.write("---\napiVersion: netgen.dev/v1alpha1\nkind: VpcPath\nmetadata:\n  name: use1-by-peering\nspec:\n"
                  "  vpcs: [legacy-use1, k8s-use1]\n  via: peering\n")
    build(specs, out)
    plan = json.loads((out / "aws/deploy-plan.json").read_text())
    assert {s["account"] for s in plan["stacks"]} == {LEGACY, "210987654321"}
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"[{NETWORK_STACK}] no longer in the plan, deleting it" in output
    assert output.count(f"[{NETWORK_STACK}] repaired: deleted transit gateway route {table}") == len(left)
    assert live_statics(network, table) == {"10.99.0.0/16": k8s}
    stacks = cloud.client("cloudformation", NETWORK, "us-east-1").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == NETWORK_STACK} <= {"DELETE_COMPLETE"}
    code, output = netgen("verify", "--specs", specs, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url)
    assert code == 0, output  # every pair peered again


def test_the_judge_and_verify_read_a_network_accounts_gateway(cloud: MotoCloud, tmp_path: Path):
    """moto loses the target of a VPC route to another account's gateway (docs/deploy.md), so the packet is
    followed from the gateway on: what the network account's static routes and the propagation deliver."""
    from judges.aws import build_lab

    from netgen.aws.reachability import describe_estate
    from netgen.aws.reachability_tgw import through_gateway
    from netgen.aws.session import Clients

    original = network_estate(tmp_path / "original")
    resolved = resolve_specs(original, EXAMPLE_AS_OF, Reporter())
    lab = build_lab(cloud, original, resolved.estate, tmp_path / "lab", EXAMPLE_AS_OF)
    vpcs = {name: v.vpc_id for name, v in lab.seeded.vpcs.items()}
    gateway = lab.seeded.substitutions[USE1]
    # verify reads the places inventory_places lists: the network account's too
    clients = Clients({}, cloud.endpoint_url, "x-moto-account-id")  # (the moto server's dummy keys)
    verified = describe_estate(clients.ec2(a, r) for a, _, r in inventory_places(resolved.estate))
    flows = [f for f in resolved.flows if f.path.transit and f.source.vpc == f.path.source_vpc]
    assert flows
    for view in (lab.view, verified):
        assert gateway in view.gateways.gateways
        for flow in flows:
            src, dst = flow.path.source_vpc, flow.path.destination_vpc
            for there, back, to_ip in ((src, dst, flow.destination.addresses[0]),
                                       (dst, src, flow.source.addresses[0])):
                delivered, why = through_gateway(view.gateways, view.vpc_cidrs, vpcs[there], gateway,
                                                 to_ip.network_address, vpcs[back])
                assert delivered == vpcs[back], (flow.line(), why)
    # without the network account, the gateway is unknown
    vpc_places = cloud.view(lab.seeded.places)
    delivered, why = through_gateway(vpc_places.gateways, vpc_places.vpc_cidrs, vpcs["legacy-use1"], gateway,
                                     flows[0].destination.addresses[0].network_address, vpcs["k8s-use1"])
    assert delivered is None and why == f"transit gateway {gateway} is unknown (not read, or another account's)"


def test_cleanup_looks_in_an_inventory_only_place_only_with_that_accounts_credentials(cloud: MotoCloud,
                                                                                     tmp_path: Path):
    """A gateway owner's account with no stack in the plan is looked at for stacks the plan no longer has, but
    preflight checked only the plan's accounts: with credentials that do not resolve (a profile missing from the
    AWS config), deploy says so and leaves the place alone, and the run still succeeds."""
    original = network_estate(tmp_path / "original")
    edit_spec(original / "inventory/transit-gateways.yaml", "  accountId: \"" + NETWORK + "\"\n",
              "  accountId: \"" + NETWORK + "\"\n  profile: acme-network-not-configured\n")
    with (original / "inventory/transit-gateways.yaml").open("a") as doc:
        doc.write("---\napiVersion: netgen.dev/v1alpha1\nkind: VpcPath\nmetadata:\n  name: use1-by-peering\nspec:\n"
                  "  vpcs: [legacy-use1, k8s-use1]\n  via: peering\n")
    estate = resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate
    seeded = seed_estate(cloud, estate)
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", seeded.substitutions), tmp_path / "generated"
    build(specs, out)
    assert NETWORK not in {s["account"] for s in json.loads((out / "aws/deploy-plan.json").read_text())["stacks"]}
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert (f"{NETWORK}/us-east-1: stacks and peerings no longer in the plan not looked for: credentials do not "
            "resolve" in output), output


def test_drift_names_the_static_routes_a_stack_holds_once_its_template_has_none(cloud: MotoCloud, tmp_path: Path):
    """The example's loyalty-use1 and k8s-use1 peered instead of joined through tgw-use1, rebuilt, not deployed:
    acme-legacy's network stack stays in the plan (its peerings) with no gateway route left in its template, and
    drift lists the static routes it still holds in tgw-use1's table as extra."""
    original = copy_example_specs(tmp_path / "original")
    seeded = seed_estate(cloud, resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate)
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", seeded.substitutions), tmp_path / "generated"
    build(specs, out)
    held = statics(out, "aws/acme-legacy/us-east-1/network.json")
    assert held
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    with (specs / "inventory/transit-gateways.yaml").open("a") as doc:  # the pair peered instead
        doc.write("---\napiVersion: netgen.dev/v1alpha1\nkind: VpcPath\nmetadata:\n  name: loyalty-peered\n"
                  "spec:\n  vpcs: [loyalty-use1, k8s-use1]\n  via: peering\n")
    build(specs, out)
    assert statics(out, "aws/acme-legacy/us-east-1/network.json") == []
    code, output = netgen("drift", "--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url",
                          cloud.endpoint_url, "--format", "json")
    found = json.loads(output[output.index("{"):])
    extra = sorted(d["detail"] for d in found["drift"] if d["change"] == "extra" and "transit gateway" in d["where"])
    assert extra and len(extra) == len(held), found["drift"]
    assert code == 1  # netgen's own routes drifted from generated/ (deploy has not run since the build)


def test_which_static_routes_move():
    """A route at the same table and destination under another logical id, or to another attachment, moves (two
    updates); one that is only removed, or unchanged, does not."""
    from netgen.aws.deploy.moved_transit import moved_routes

    def template(*routes: tuple[str, str, str]) -> dict:
        return {"Resources": {logical: {"Type": "AWS::EC2::TransitGatewayRoute", "Properties": {
            "TransitGatewayRouteTableId": "tgw-rtb-1", "DestinationCidrBlock": cidr,
            "TransitGatewayAttachmentId": attachment}} for logical, cidr, attachment in routes}}

    before = template(("A", "10.0.0.1/32", "att-1"), ("B", "10.0.0.2/32", "att-1"), ("C", "10.0.0.3/32", "att-1"),
                      ("D", "10.0.0.4/32", "att-1"))
    after = template(("A", "10.0.0.1/32", "att-1"), ("B", "10.0.0.2/32", "att-2"), ("C2", "10.0.0.3/32", "att-1"))
    assert [r.logical for r in moved_routes(before, after)] == ["B", "C"]
    assert moved_routes(before, before) == []


def test_a_renamed_gateway_moves_its_static_routes_in_two_updates(cloud: MotoCloud, tmp_path: Path):
    """The example's tgw-use1 renamed: its static routes get new logical ids at the same destinations. Deploy
    removes them in an update of their own first, then deploys the new template; the routes are live again, to
    the same attachments, and verify passes. (moto's CloudFormation has no AWS::EC2::TransitGatewayRoute: this
    shows the two updates happen and leave the routes right, not AWS's refusal of a second route itself.)"""
    original = copy_example_specs(tmp_path / "original")
    seeded = seed_estate(cloud, resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate)
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", seeded.substitutions), tmp_path / "generated"
    build(specs, out)
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    before = statics(out, "aws/acme-legacy/us-east-1/network.json")
    edit_spec(specs / "inventory/transit-gateways.yaml", "  name: tgw-use1\n", "  name: tgw-use1-core\n")
    build(specs, out)
    after = statics(out, "aws/acme-legacy/us-east-1/network.json")
    assert {(r.table, r.cidr, r.attachment) for r in after} == {(r.table, r.cidr, r.attachment) for r in before}
    assert {r.logical for r in after}.isdisjoint(r.logical for r in before)
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert "static transit gateway routes that move (" in output and "removed first" in output, output
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    for table in {r.table for r in after}:
        assert {c: a for c, a in live_statics(ec2, table).items()} == {r.cidr: r.attachment for r in after
                                                                       if r.table == table}
    code, output = netgen("verify", "--specs", specs, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url)
    assert code == 0, output


def test_preflight_refuses_a_gateway_that_is_not_as_declared(cloud: MotoCloud, tmp_path: Path):
    """The example's tgw-use1 as its owner reads it differs from the inventory twice: k8s-use1's attachment no
    longer propagates to the table (netgen would leave k8s-use1's traffic to a route that is not there), and
    the loyalty attachment declared is not the one that exists. Both are reported, and nothing is changed."""
    original = copy_example_specs(tmp_path / "original")
    seeded = seed_estate(cloud, resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate)
    ids = seeded.substitutions
    specs, out = rewrite_spec_ids(original, tmp_path / "specs", ids), tmp_path / "generated"
    gone = "tgw-attach-0123456789abcdef0"
    edit_spec(specs / "inventory/transit-gateways.yaml", ids["tgw-attach-0e100000000000023"], gone)
    build(specs, out)
    table, k8s = ids[RTB_USE1_MAIN], ids[ATTACH_K8S_USE1]
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    ec2.disable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=table,
                                                        TransitGatewayAttachmentId=k8s)
    code, output = deploy(cloud, specs, out)
    assert code == 1, output
    where = f"error: preflight: transit gateway tgw-use1 ({ids['tgw-0e100000000000001']}): attachment"
    assert f"{where} {gone} (VPC {seeded.vpcs['loyalty-use1'].vpc_id}) does not exist" in output, output
    assert (f"{where} {k8s} (VPC {seeded.vpcs['k8s-use1'].vpc_id}) does not propagate to {table} as declared"
            in output), output
    assert "preflight found 2 problem(s); nothing was changed" in output
    assert cloud.client("cloudformation", LEGACY, "us-east-1").describe_stacks()["Stacks"] == []
