"""Transit gateways (issue 22): the example estate with two transit gateways of the network team, one per region
(tgw-use1 with legacy-use1, loyalty-use1 and k8s-use1 attached, tgw-euw1 with legacy-euw1), peered across regions:
docs/examples/transit-gateways.yaml in place of the example's own inventory/transit-gateways.yaml (tgw-use1 with
loyalty-use1 and k8s-use1 only). k8s-usw2 (the other account) is attached to none and keeps its peerings.

Routing facts the estate exercises (netgen.transit has the sources): legacy-use1's and loyalty-use1's attachments
propagate nowhere, so k8s-use1's answers to them need static routes; k8s-use1's propagates to both of tgw-use1's
tables and legacy-euw1's to tgw-euw1's, so traffic to them arriving on the right table needs none; the peering
attachment carries static routes only.
"""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, REPO_ROOT, copy_example_specs, diagnose_specs, edit_spec, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved, resolve_specs

AS_OF = EXAMPLE_AS_OF.isoformat()
USE1, EUW1 = "tgw-0e100000000000001", "tgw-0e200000000000001"
RTB_USE1_MAIN, RTB_USE1_PEER = "tgw-rtb-0e100000000000011", "tgw-rtb-0e100000000000012"
RTB_EUW1 = "tgw-rtb-0e200000000000011"
ATTACH_LEGACY_USE1, ATTACH_K8S_USE1 = "tgw-attach-0e100000000000021", "tgw-attach-0e100000000000022"
ATTACH_LEGACY_EUW1, PEERING = "tgw-attach-0e200000000000021", "tgw-attach-0e300000000000001"
ATTACH_LOYALTY_USE1 = "tgw-attach-0e100000000000023"

# The gateways as docs/examples/transit-gateways.yaml declares them (with a VpcPath that keeps legacy-use1 and
# k8s-usw2 on peering, which they would be anyway: k8s-usw2 is attached to no gateway).
GATEWAYS = (REPO_ROOT / "docs/examples/transit-gateways.yaml").read_text()


def gateway_specs(root: Path, extra: str = "", gateways: str = GATEWAYS) -> Path:
    """A copy of the example estate with the gateways (and extra documents) in inventory/transit-gateways.yaml."""
    specs = copy_example_specs(root)
    (specs / "inventory/transit-gateways.yaml").write_text(gateways + extra)
    return specs


def build(specs: Path, out: Path) -> tuple[int, str]:
    result = run_cli("build", "--specs", str(specs), "--out", str(out), "--as-of", AS_OF)
    return result.exit_code, result.stdout + result.stderr


def templates(out: Path) -> dict[str, dict]:
    return {p.relative_to(out).as_posix(): json.loads(p.read_text())
            for p in sorted((out / "aws").rglob("*.json")) if p.name != "deploy-plan.json"}


class Built:
    def __init__(self, root: Path, gateways: str = GATEWAYS, edit: tuple[str, str] | None = None):
        self.specs = gateway_specs(root, gateways=gateways)
        if edit:  # (text, replacement) in inventory/vpcs.yaml
            edit_spec(self.specs / "inventory/vpcs.yaml", *edit)
        self.out = root / "generated"
        code, output = build(self.specs, self.out)
        assert code == 0, output
        self.resolved: Resolved = resolve_specs(self.specs, EXAMPLE_AS_OF, Reporter())
        self.templates = templates(self.out)
        self.plan = json.loads((self.out / "aws/deploy-plan.json").read_text())

    def resources(self, kind: str) -> list[dict]:
        return [r["Properties"] for t in self.templates.values() for r in t["Resources"].values() if r["Type"] == kind]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return Built(tmp_path_factory.mktemp("transit"))


PAIRS_THROUGH_GATEWAYS = {frozenset(("legacy-use1", "k8s-use1")): (USE1,),
                          frozenset(("loyalty-use1", "k8s-use1")): (USE1,),  # (as in the example itself)
                          frozenset(("legacy-euw1", "k8s-use1")): None}  # None: both gateways, in path order


def test_pairs_attached_to_gateways_take_them_and_the_others_keep_peering(built: Built):
    flows = [f for f in built.resolved.flows if f.path.peered]
    report = (built.out / "flows.txt").read_text()
    for flow in flows:
        pair = frozenset((flow.path.source_vpc, flow.path.destination_vpc))
        if pair not in PAIRS_THROUGH_GATEWAYS:
            assert flow.path.transit == () and "peering" in flow.path.text, flow.line()
            continue
        expected = PAIRS_THROUGH_GATEWAYS[pair] or (
            (EUW1, USE1) if flow.path.source_vpc == "legacy-euw1" else (USE1, EUW1))
        assert flow.path.transit == expected, flow.line()
        assert flow.line() in report
    assert ("hostGroup/batch 10.11.30.31/32,10.11.30.32/32 -> load-balancer/prod-use1/ledger/ledger-api 10.40.34.0/24 "
            f"tcp/80 via legacy-use1 -> k8s-use1 (transit gateway {USE1}, same-region) [nlb]") in report
    assert ("host/erp-euw1-01 10.20.50.51/32 -> service/prod-use1/ledger/ledger-export 10.40.64.0/18 tcp/2222 via "
            f"legacy-euw1 -> k8s-use1 (transit gateways {EUW1} -> {USE1}, cross-region) [pod-ip]") in report
    assert {frozenset((f.path.source_vpc, f.path.destination_vpc)) for f in flows if f.path.transit} \
        == set(PAIRS_THROUGH_GATEWAYS)


def test_no_peering_for_pairs_through_gateways(built: Built):
    vpcs = {v.name: v.vpc_id for v in built.resolved.estate.vpcs}
    requested = {frozenset((p["VpcId"], p["PeerVpcId"])) for p in built.resources("AWS::EC2::VPCPeeringConnection")}
    assert requested == {frozenset((vpcs["legacy-euw1"], vpcs["k8s-usw2"])),
                         frozenset((vpcs["legacy-use1"], vpcs["k8s-usw2"]))}
    assert all("VpcPeeringConnectionId" in r or "TransitGatewayId" in r for r in built.resources("AWS::EC2::Route"))


def test_templates_pass_cfn_lint(built: Built):
    from cfnlint.api import ManualArgs, lint

    for path, template in built.templates.items():
        if path.endswith("network.json"):
            matches = lint(json.dumps(template), config=ManualArgs(regions=[Path(path).parent.name]))
            assert not matches, f"{path}: " + "; ".join(f"{m.rule.id} {m.message}" for m in matches)


# --- an oracle of its own: walk the templates' routes and the declared gateways, hop by hop --------------------

def _longest(routes: dict[IPv4Network, str], ip: IPv4Address) -> str | None:
    best = max((net for net in routes if ip in net), key=lambda n: n.prefixlen, default=None)
    return routes[best] if best is not None else None


def walk(built: Built, src_vpc: str, src: IPv4Address, dst_vpc: str, dst: IPv4Address) -> list[str]:
    """The hops a packet from src (in src_vpc) to dst takes by the generated routes (every listed route table
    of the VPC), the gateways' associations and propagations (as declared) and their static routes (generated),
    static before propagated for the same prefix, longest prefix first. Ends with the VPC it is delivered to,
    or 'dropped: ...'."""
    estate = built.resolved.estate
    vpcs = {v.name: v for v in estate.vpcs}
    vpc_routes: dict[str, dict[IPv4Network, str]] = {}
    statics: dict[str, dict[IPv4Network, str]] = {}
    for r in built.resources("AWS::EC2::Route"):
        vpc_routes.setdefault(r["RouteTableId"], {})[ip_network(r["DestinationCidrBlock"])] = \
            r.get("TransitGatewayId") or str(r.get("VpcPeeringConnectionId"))
    for r in built.resources("AWS::EC2::TransitGatewayRoute"):
        statics.setdefault(r["TransitGatewayRouteTableId"], {})[ip_network(r["DestinationCidrBlock"])] = \
            r["TransitGatewayAttachmentId"]
    gateways = {g.gateway_id: g for g in estate.transit_gateways}
    targets = {vpc_routes.get(table, {}).get(net) for table in vpcs[src_vpc].route_tables
               for net in [max((n for n in vpc_routes.get(table, {}) if dst in n), key=lambda n: n.prefixlen,
                               default=None)]}
    assert len(targets) == 1, f"route tables of {src_vpc} disagree for {dst}: {targets}"
    [target] = targets
    hops = [f"{src_vpc} -> {target}"]
    if target not in gateways:
        return [*hops, "dropped: not a transit gateway"]
    gateway = gateways[target]
    attachment = next(a for a in gateway.attachments if a.vpc.name == src_vpc)
    table = attachment.route_table
    for _ in range(4):
        propagated = {cidr: a.attachment_id for a in gateway.attachments if table in a.propagates_to
                      for cidr in a.vpc.cidrs}
        routes = {**propagated, **statics.get(table, {})}  # (a static route wins for the same prefix)
        to = _longest(routes, dst)
        hops.append(f"{gateway.name}/{table} -> {to}")
        vpc = next((a.vpc for a in gateway.attachments if a.attachment_id == to), None)
        if vpc is not None:
            return [*hops, vpc.name if vpc.name == dst_vpc else f"dropped: delivered to {vpc.name}"]
        peering = next((p for p in estate.gateway_peerings if p.attachment_id == to), None)
        if peering is None:
            return [*hops, "dropped: no route"]
        gateway = peering.accepter if gateway is peering.requester else peering.requester
        table = peering.table_on(gateway)
    return [*hops, "dropped: loop"]


def test_every_flow_through_gateways_arrives_and_is_answered_by_the_generated_routes(built: Built):
    checked = 0
    for flow in built.resolved.flows:
        if not flow.path.transit:
            continue
        for src_net in flow.source.addresses:
            for dst_net in flow.destination.addresses:
                for src, dst in ((src_net[0], dst_net[-1]), (src_net[-1], dst_net[0])):
                    there = walk(built, flow.path.source_vpc, src, flow.path.destination_vpc, dst)
                    assert there[-1] == flow.path.destination_vpc, (flow.line(), there)
                    back = walk(built, flow.path.destination_vpc, dst, flow.path.source_vpc, src)
                    assert back[-1] == flow.path.source_vpc, (flow.line(), back)
                    checked += 1
    assert checked > 20
    # and across the gateway peering it takes both gateways' tables
    assert walk(built, "legacy-euw1", ip_address("10.20.50.51"), "k8s-use1", ip_address("10.40.64.9")) == [
        f"legacy-euw1 -> {EUW1}", f"tgw-euw1/{RTB_EUW1} -> {PEERING}", f"tgw-use1/{RTB_USE1_PEER} -> {ATTACH_K8S_USE1}",
        "k8s-use1"]
    # an address no flow needs is not routed: nothing wider than the flows' prefixes
    assert walk(built, "k8s-use1", ip_address("10.40.64.9"), "legacy-use1", ip_address("10.10.99.1"))[-1] \
        .startswith("dropped")


def test_static_routes_only_where_propagation_does_not_cover(built: Built):
    statics = built.resources("AWS::EC2::TransitGatewayRoute")
    by_table: dict[str, set[str]] = {}
    for r in statics:
        by_table.setdefault(r["TransitGatewayRouteTableId"], set()).add(r["TransitGatewayAttachmentId"])
    # k8s-use1 propagates to both of tgw-use1's tables and legacy-euw1 to tgw-euw1's: no static route to them;
    # legacy-use1 and loyalty-use1 propagate nowhere (k8s-use1's answers need static routes), the peering always
    # needs them
    assert by_table == {RTB_USE1_MAIN: {ATTACH_LEGACY_USE1, ATTACH_LOYALTY_USE1, PEERING}, RTB_EUW1: {PEERING}}
    # in the owner's network stack, one route per (table, prefix)
    us_east = built.templates["aws/acme-legacy/us-east-1/network.json"]["Resources"]
    assert sum(r["Type"] == "AWS::EC2::TransitGatewayRoute" for r in us_east.values()) \
        == sum(r["TransitGatewayRouteTableId"].startswith("tgw-rtb-0e1") for r in statics)
    assert len({(r["TransitGatewayRouteTableId"], r["DestinationCidrBlock"]) for r in statics}) == len(statics)


def test_vpc_routes_to_the_gateway_cover_exactly_the_flows_destinations(built: Built):
    from netgen.addresses import collapse

    vpcs = {v.name: v for v in built.resolved.estate.vpcs}
    wanted: dict[str, set[IPv4Network]] = {}
    for flow in built.resolved.flows:
        if flow.path.transit:
            wanted.setdefault(flow.path.source_vpc, set()).update(flow.destination.addresses)
            wanted.setdefault(flow.path.destination_vpc, set()).update(flow.source.addresses)
    for name, nets in wanted.items():
        for table in vpcs[name].route_tables:
            routed = {ip_network(r["DestinationCidrBlock"]) for r in built.resources("AWS::EC2::Route")
                      if r["RouteTableId"] == table and r.get("TransitGatewayId")}
            assert sorted(routed) == sorted(collapse(sorted(nets))), (name, table)


def test_deploy_plan_lists_the_gateways_and_the_stacks_routing_over_them(built: Built):
    gateways = {g["name"]: g for g in built.plan["transitGateways"]}
    assert set(gateways) == {"tgw-use1", "tgw-euw1"}
    assert gateways["tgw-use1"]["routedBy"] == ["netgen-acme-legacy-us-east-1-network"]
    assert gateways["tgw-euw1"]["peerings"] == [{"attachmentId": PEERING, "peer": USE1, "routeTable": RTB_EUW1}]
    assert "'transitGateways'" in built.plan["description"]


def test_preference_and_per_pair_override(tmp_path: Path):
    def paths(specs: Path) -> dict[frozenset, tuple[str, ...]]:
        flows = resolve_specs(specs, EXAMPLE_AS_OF, Reporter()).flows
        return {frozenset((f.path.source_vpc, f.path.destination_vpc)): f.path.transit for f in flows if f.path.peered}

    override = ("---\napiVersion: netgen.dev/v1alpha1\nkind: VpcPath\nmetadata:\n  name: use1-direct\nspec:\n"
                "  vpcs: [k8s-use1, legacy-use1]\n  via: peering\n")
    found = paths(gateway_specs(tmp_path / "override", override))
    assert found[frozenset(("legacy-use1", "k8s-use1"))] == ()
    assert found[frozenset(("legacy-euw1", "k8s-use1"))] in ((EUW1, USE1), (USE1, EUW1))
    preferred = gateway_specs(tmp_path / "prefer")
    edit_spec(preferred / "inventory/settings.yaml", "  defaultRouteQuota: 50", "  defaultRouteQuota: 50\n"
              "  pathPreference: peering")
    assert not any(paths(preferred).values())
    back = override.replace("use1-direct", "use1-gateway").replace("via: peering", "via: transit-gateway")
    edit_spec(preferred / "inventory/transit-gateways.yaml", GATEWAYS, GATEWAYS + back)
    assert {pair for pair, gateways in paths(preferred).items() if gateways} == {frozenset(("legacy-use1", "k8s-use1"))}


def test_overlapping_vpcs_through_a_gateway_are_ng107(tmp_path: Path):
    specs = gateway_specs(tmp_path)
    edit_spec(specs / "inventory/vpcs.yaml", "cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.0/16, 10.40.240.0/24]")
    found = {d.message.split(" needs ")[1] for d in diagnose_specs(specs) if d.code == "NG107"}
    assert len(found) == 2, found  # both ways
    assert any(f"through transit gateway {EUW1} -> {USE1} between VPC 'legacy-euw1' and 'k8s-use1'" in m
               for m in found), found
    assert all(m.endswith("a transit gateway does not route between overlapping VPCs") for m in found), found


@pytest.mark.parametrize("case", ["twice", "peered-twice", "same-gateway"])
def test_validation_refuses_what_aws_refuses(tmp_path: Path, case: str):
    specs = gateway_specs(tmp_path)
    path = specs / "inventory/transit-gateways.yaml"
    if case == "twice":  # one attachment per VPC and gateway
        edit_spec(path, "    - vpc: k8s-use1\n", "    - {vpc: legacy-use1, attachmentId: tgw-attach-0e10000000000002f, "
                  f"routeTable: {RTB_USE1_MAIN}}}\n    - vpc: k8s-use1\n")
        expected = ("NG101", 20, 13, "VPC 'legacy-use1' is already attached to transit gateway 'tgw-use1'")
    elif case == "peered-twice":  # one peering attachment between two gateways
        second = GATEWAYS[GATEWAYS.index("kind: TransitGatewayPeering") - len("apiVersion: netgen.dev/v1alpha1\n"):]
        second = second[:second.index("---\n")]
        edit_spec(path, GATEWAYS, GATEWAYS + "---\n" + second.replace("use1-euw1", "again").replace(
            PEERING, "tgw-attach-0e300000000000002"))
        expected = ("NG101", 61, 31, "already have a peering declared at")
    else:
        edit_spec(path, "accepter: {transitGateway: tgw-euw1, routeTable: tgw-rtb-0e200000000000011}",
                  f"accepter: {{transitGateway: tgw-use1, routeTable: {RTB_USE1_MAIN}}}")
        expected = ("NG101", 44, 30, "a peering joins two different gateways")
    found = [(d.code, d.location.line, d.location.column, d.message) for d in diagnose_specs(specs)]
    assert len(found) == 1 and found[0][:3] == expected[:3] and expected[3] in found[0][3], found


def test_gateway_route_quota_and_overlapping_static_routes_fail_the_build(tmp_path: Path):
    specs = gateway_specs(tmp_path / "quota")
    edit_spec(specs / "inventory/transit-gateways.yaml", f"  transitGatewayId: {USE1}\n",
              f"  transitGatewayId: {USE1}\n  routeQuota: 15\n")
    code, output = build(specs, tmp_path / "quota/out")
    assert code == 1 and not (tmp_path / "quota/out").exists()
    assert (f"{specs}/inventory/transit-gateways.yaml:8:1: error[NG213]: transit gateway 'tgw-use1' would hold 16 "
            "static routes of netgen and 2 propagated ones across its route tables, over its routeQuota of 15"
            ) in output
    # legacy-euw1 also holds 10.10.20.0/24, where billing-euw1-01 moves to 10.10.20.23: k8s-use1's answers would
    # go to 10.10.20.22/31 through legacy-use1's attachment and to 10.10.20.23/32 through the peering
    specs = gateway_specs(tmp_path / "overlap")
    edit_spec(specs / "inventory/vpcs.yaml", "cidrs: [10.20.0.0/16]", "cidrs: [10.20.0.0/16, 10.10.20.0/24]")
    edit_spec(specs / "inventory/hosts-euw1.yaml", "address: 10.20.20.21", "address: 10.10.20.23")
    code, output = build(specs, tmp_path / "overlap/out")
    assert code == 1, output
    assert (f"{specs}/inventory/transit-gateways.yaml:8:1: error[NG214]: transit gateway 'tgw-use1' route table "
            f"{RTB_USE1_MAIN} would route 10.10.20.22/31 to {ATTACH_LEGACY_USE1} and 10.10.20.23/32 to {PEERING}: "
            "the destinations overlap") in output
    assert "error[NG204]: VPC 'k8s-use1' would route 10.10.20.22/31 to 'legacy-use1' and 10.10.20.23/32" in output


def test_the_example_estate_is_unchanged_by_an_unused_gateway(tmp_path: Path):
    """A gateway that joins no two VPCs of a flow (legacy-use1 alone; its peers are on no gateway, or on another)
    changes nothing in what is written (but the plan's list)."""
    specs = copy_example_specs(tmp_path)
    only_legacy = ("apiVersion: netgen.dev/v1alpha1\nkind: TransitGateway\nmetadata:\n  name: tgw-spare-use1\nspec:\n"
                   "  account: acme-legacy\n  region: us-east-1\n  transitGatewayId: tgw-0e400000000000001\n"
                   "  routeTables: [tgw-rtb-0e400000000000011]\n  attachments:\n    - {vpc: legacy-use1, "
                   "attachmentId: tgw-attach-0e400000000000021, routeTable: tgw-rtb-0e400000000000011}\n")
    (specs / "inventory/tgw.yaml").write_text(only_legacy)
    code, output = build(specs, tmp_path / "out")
    assert code == 0, output
    generated = REPO_ROOT / "generated"
    for path in sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file()):
        relative = path.relative_to(tmp_path / "out").as_posix()
        if relative == "flows.txt":
            continue  # (it names the spec folder)
        assert path.read_bytes() == (generated / relative).read_bytes(), relative


# --- discover (moto) --------------------------------------------------------------------------------------------

LEGACY = "123456789012"


@pytest.fixture(scope="module")
def endpoint():
    from judges.aws import moto_server

    with moto_server() as url:
        yield url


def test_discover_writes_the_gateways_their_attachments_and_tables(endpoint: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    from judges.aws import MotoCloud, seed_estate

    from netgen.aws.session import ACCOUNT_HEADER_ENV

    cloud = MotoCloud(endpoint)
    cloud.reset()
    monkeypatch.setenv(ACCOUNT_HEADER_ENV, "x-moto-account-id")
    estate = resolve_specs(copy_example_specs(tmp_path / "example"), EXAMPLE_AS_OF, Reporter()).estate
    # (the example's own gateway neither: this test makes the gateways by hand)
    estate = replace(estate, hosts=(), security_groups=(), clusters=(), services=(), transit_gateways=())
    seeded = seed_estate(cloud, estate)
    use1, euw1 = cloud.ec2(LEGACY, "us-east-1"), cloud.ec2(LEGACY, "eu-west-1")

    def gateway(ec2, name: str) -> tuple[str, str]:
        found = ec2.create_transit_gateway(Description=name, TagSpecifications=[
            {"ResourceType": "transit-gateway", "Tags": [{"Key": "Name", "Value": name}]}])["TransitGateway"]
        default = found["Options"]["AssociationDefaultRouteTableId"]
        return found["TransitGatewayId"], default

    def attach(ec2, gateway_id: str, vpc: str) -> str:
        first = next(v for v in estate.vpcs if v.name == vpc).cidrs[0]
        subnet = ec2.create_subnet(VpcId=seeded.vpcs[vpc].vpc_id,
                                   CidrBlock=str(next(first.subnets(new_prefix=28))))["Subnet"]["SubnetId"]
        return ec2.create_transit_gateway_vpc_attachment(TransitGatewayId=gateway_id, VpcId=seeded.vpcs[vpc].vpc_id,
                                                         SubnetIds=[subnet])["TransitGatewayVpcAttachment"][
            "TransitGatewayAttachmentId"]

    tgw_use1, main_use1 = gateway(use1, "tgw-use1")
    other_use1 = use1.create_transit_gateway_route_table(TransitGatewayId=tgw_use1)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"]
    legacy, k8s = attach(use1, tgw_use1, "legacy-use1"), attach(use1, tgw_use1, "k8s-use1")
    for table in (main_use1, other_use1):
        use1.enable_transit_gateway_route_table_propagation(TransitGatewayAttachmentId=k8s,
                                                            TransitGatewayRouteTableId=table)
    # legacy-use1's attachment moves to the other table (moto cannot disassociate the association it made by
    # itself until it is made again; DescribeTransitGatewayAttachments keeps reporting the default table)
    for call, table in ((use1.associate_transit_gateway_route_table, main_use1),
                        (use1.disassociate_transit_gateway_route_table, main_use1),
                        (use1.associate_transit_gateway_route_table, other_use1)):
        call(TransitGatewayAttachmentId=legacy, TransitGatewayRouteTableId=table)
    tgw_euw1, main_euw1 = gateway(euw1, "tgw-euw1")
    attach(euw1, tgw_euw1, "legacy-euw1")
    peering = use1.create_transit_gateway_peering_attachment(
        TransitGatewayId=tgw_use1, PeerTransitGatewayId=tgw_euw1, PeerAccountId=LEGACY, PeerRegion="eu-west-1")[
        "TransitGatewayPeeringAttachment"]["TransitGatewayAttachmentId"]
    euw1.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=peering)
    for client, table in ((use1, other_use1), (euw1, main_euw1)):  # the peering's association on each side
        client.associate_transit_gateway_route_table(TransitGatewayAttachmentId=peering,
                                                     TransitGatewayRouteTableId=table)
    inventory = tmp_path / "specs/inventory"
    vpcs = [x for name in ("legacy-use1", "legacy-euw1", "k8s-use1") for x in ("--vpc", seeded.vpcs[name].vpc_id)]
    result = run_cli("discover", "--out", str(inventory), "--endpoint-url", endpoint, "--region", "us-east-1",
                     "--region", "eu-west-1", "--account-id", LEGACY, "--account-name", "acme-legacy", *vpcs)
    assert result.exit_code == 0, result.stderr
    found = {d["metadata"]["name"]: d["spec"] for path in sorted(inventory.glob("*.yaml"))
             for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "TransitGateway"}
    names = {v.vpc_id: name for name, v in seeded.vpcs.items()}
    assert found["tgw-use1"] == {
        "account": "acme-legacy", "region": "us-east-1", "transitGatewayId": tgw_use1,
        "routeTables": sorted([main_use1, other_use1]),
        "attachments": [{"vpc": names[seeded.vpcs[n].vpc_id], "attachmentId": a, "routeTable": table,
                         **({"propagatesTo": sorted([main_use1, other_use1])} if n == "k8s-use1" else {})}
                        for a, n, table in sorted([(legacy, "legacy-use1", other_use1),
                                                   (k8s, "k8s-use1", main_use1)])]}
    assert found["tgw-euw1"]["routeTables"] == [main_euw1]
    peerings = [d["spec"] for d in yaml.safe_load_all((inventory / "acme-legacy.yaml").read_text())
                if d["kind"] == "TransitGatewayPeering"]
    assert peerings == [{"attachmentId": peering, "requester": {"transitGateway": "tgw-use1", "routeTable": other_use1},
                         "accepter": {"transitGateway": "tgw-euw1", "routeTable": main_euw1}}]
    # what was discovered validates, with the gateways as AWS (moto) has them
    discovered = resolve_specs(tmp_path / "specs", EXAMPLE_AS_OF, Reporter()).estate
    assert {g.name: len(g.attachments) for g in discovered.transit_gateways} == {"tgw-use1": 2, "tgw-euw1": 1}
    assert [(p.requester.name, p.accepter.name) for p in discovered.gateway_peerings] == [("tgw-use1", "tgw-euw1")]


# --- deployed into moto and judged (tests/judges/aws.py) --------------------------------------------------------

@pytest.fixture(scope="module")
def gateway_lab(endpoint: str, tmp_path_factory):
    """The estate with gateways, seeded into moto (gateways, attachments, associations, propagations, the
    peering), built with moto's ids and deployed; the EC2 snapshot is read once."""
    from judges.aws import MotoCloud, build_lab

    root = tmp_path_factory.mktemp("gateway-lab")
    specs = gateway_specs(root / "original")
    resolved = resolve_specs(specs, EXAMPLE_AS_OF, Reporter())
    cloud = MotoCloud(endpoint)
    cloud.reset()
    return build_lab(cloud, specs, resolved.estate, root / "lab", EXAMPLE_AS_OF), resolved


def test_deployed_estate_is_reachable_exactly_as_intended(gateway_lab):
    from judges.aws import judge

    lab, resolved = gateway_lab
    result = judge(lab, resolved)
    assert not result.failures, "\n".join(result.failures[:20])
    assert result.checked_allowed > 50 and result.checked_denied > 100, result
    statics = sum(r["Type"] == "AWS::EC2::TransitGatewayRoute" for t in templates(lab.out).values()
                  for r in t["Resources"].values())
    assert lab.deployment.gateway_routes_created_outside_cloudformation == statics > 0
    # two peerings only (with k8s-usw2): the other pairs go through the gateways
    assert len(lab.view.peerings) == 2


def test_the_judge_sees_a_missing_gateway_route(gateway_lab, endpoint: str, tmp_path: Path):
    """The evaluator follows the gateways: without the static routes back to legacy-use1 (which propagates
    nowhere), k8s-use1 cannot answer it, and every flow between them is denied with the gateway's reason."""
    from judges.aws import reachable

    lab, resolved = gateway_lab
    view = lab.view
    gateways = replace(view.gateways, routes={t: [r for r in routes if not r["DestinationCidrBlock"].startswith(
        "10.1")] for t, routes in view.gateways.routes.items()})
    damaged = replace(view, gateways=gateways)
    vpcs = {name: v.vpc_id for name, v in lab.seeded.vpcs.items()}
    flow = next(f for f in resolved.flows if f.path.transit and f.path.source_vpc == "legacy-use1")
    src, dst = flow.source.addresses[0][0], flow.destination.addresses[0][4]
    args = (str(src), vpcs["legacy-use1"], str(dst), vpcs["k8s-use1"], "tcp", flow.ports.first, None, None)
    assert reachable(view, *args)
    verdict = reachable(damaged, *args)
    assert not verdict and verdict.reason.startswith("no route back") and "has no route for" in verdict.reason, \
        verdict.reason


@pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..SecurityGroupEgress")
@pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..TransitGatewayRoute")
def test_netgen_deploy_writes_the_gateway_routes_and_verify_agrees(endpoint: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch):
    """`netgen deploy` into moto: its CloudFormation skips AWS::EC2::TransitGatewayRoute, so settle creates each
    static route (a repair, as it would after a change by hand on AWS); a second run finds them; then `netgen
    verify` judges every flow reachable through the gateways."""
    from judges.aws import MotoCloud, rewrite_spec_ids, seed_estate

    from netgen.aws.session import ACCOUNT_HEADER_ENV

    cloud = MotoCloud(endpoint)
    cloud.reset()
    monkeypatch.setenv(ACCOUNT_HEADER_ENV, "x-moto-account-id")
    config = tmp_path / "aws-config"
    config.write_text("".join(f"[profile {name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
                              "region = us-east-1\n\n" for name in ("acme-legacy", "acme-platform")))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    original = gateway_specs(tmp_path / "original")
    seeded = seed_estate(cloud, resolve_specs(original, EXAMPLE_AS_OF, Reporter()).estate)
    specs = rewrite_spec_ids(original, tmp_path / "specs", seeded.substitutions)
    out = tmp_path / "generated"
    common = ("--specs", str(specs), "--as-of", AS_OF, "--endpoint-url", endpoint)
    assert build(specs, out)[0] == 0
    result = run_cli("deploy", *common, "--out", str(out), "--ec2-peering")
    assert result.exit_code == 0, result.stdout + result.stderr
    statics = [r["Properties"] for t in templates(out).values() for r in t["Resources"].values()
               if r["Type"] == "AWS::EC2::TransitGatewayRoute"]
    assert statics and (result.stdout + result.stderr).count("created transit gateway route") == len(statics)
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    for route in statics:
        if route["TransitGatewayRouteTableId"] in seeded.substitutions.values():
            client = ec2 if any(route["TransitGatewayRouteTableId"] == seeded.substitutions[t]
                                for t in (RTB_USE1_MAIN, RTB_USE1_PEER)) else cloud.ec2(LEGACY, "eu-west-1")
            found = client.search_transit_gateway_routes(
                TransitGatewayRouteTableId=route["TransitGatewayRouteTableId"],
                Filters=[{"Name": "route-search.exact-match", "Values": [route["DestinationCidrBlock"]]}])["Routes"]
            assert [a["TransitGatewayAttachmentId"] for r in found for a in r["TransitGatewayAttachments"]] \
                == [route["TransitGatewayAttachmentId"]]
    again = run_cli("deploy", *common, "--out", str(out), "--ec2-peering", "--full")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert "created transit gateway route" not in again.stdout + again.stderr
    verified = run_cli("verify", *common)
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    # drift: nothing, until a static route is deleted and a VPC route points elsewhere by hand
    drifted = run_cli("drift", *common, "--out", str(out), "--format", "json")
    assert drifted.exit_code == 0, drifted.stdout + drifted.stderr
    assert json.loads(drifted.stdout[drifted.stdout.index("{"):])["drift"] == []
    gone = statics[0]
    table_client = next(cloud.ec2(LEGACY, region) for region in ("us-east-1", "eu-west-1")
                        if cloud.ec2(LEGACY, region).describe_transit_gateway_route_tables(Filters=[
                            {"Name": "transit-gateway-route-table-id", "Values": [gone["TransitGatewayRouteTableId"]]}
                        ])["TransitGatewayRouteTables"])
    table_client.delete_transit_gateway_route(TransitGatewayRouteTableId=gone["TransitGatewayRouteTableId"],
                                              DestinationCidrBlock=gone["DestinationCidrBlock"])
    drifted = run_cli("drift", *common, "--out", str(out), "--format", "json")
    assert drifted.exit_code == 1
    entries = json.loads(drifted.stdout[drifted.stdout.index("{"):])["drift"]
    assert [(e["change"], e["where"], e["detail"]) for e in entries] == [
        ("missing", f"transit gateway route table {gone['TransitGatewayRouteTableId']}",
         f"{gone['DestinationCidrBlock']} -> {gone['TransitGatewayAttachmentId']}")], entries


# --- review: explain, diff, graph -------------------------------------------------------------------------------

def test_explain_shows_each_gateway_hop_both_ways(built: Built):
    result = run_cli("explain", "--specs", str(built.specs), "--as-of", AS_OF, "erp-euw1-01", "ledger/ledger-export")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert f"path: through transit gateways {EUW1} -> {USE1} (TransitGateway;" in text
    assert (f"routes there (legacy-euw1, generated/aws/acme-legacy/eu-west-1/network.json): rtb-0b22c33d44e55f661 "
            f"10.40.64.0/18 -> transit gateway {EUW1}") in text
    assert (f"there: transit gateway tgw-euw1 route table {RTB_EUW1} -> {PEERING} (transit gateway tgw-use1): static "
            "10.40.64.0/18 in generated/aws/acme-legacy/eu-west-1/network.json") in text
    assert (f"there: transit gateway tgw-use1 route table {RTB_USE1_PEER} -> {ATTACH_K8S_USE1} (k8s-use1): "
            "propagated 10.40.0.0/16") in text
    assert (f"back: transit gateway tgw-use1 route table {RTB_USE1_MAIN} -> {PEERING} (transit gateway tgw-euw1): "
            "static 10.20.50.51/32 in generated/aws/acme-legacy/us-east-1/network.json") in text
    assert (f"back: transit gateway tgw-euw1 route table {RTB_EUW1} -> {ATTACH_LEGACY_EUW1} (legacy-euw1): "
            "propagated 10.20.0.0/16") in text
    assert "peering" not in text.split("who else")[0].replace("TransitGatewayPeering", "")


def test_diff_moving_pairs_onto_gateways_changes_no_access(tmp_path: Path):
    import shutil
    import subprocess

    repo = tmp_path / "repo"
    shutil.copytree(copy_example_specs(tmp_path / "example"), repo / "specs")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                       capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "example")
    (repo / "specs/inventory/transit-gateways.yaml").write_text(GATEWAYS)
    result = run_cli("diff", "--specs", str(repo / "specs"), "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert not data["accessChanged"] and data["flows"]["added"] == data["flows"]["removed"] == []
    assert sorted(sorted((p["requester"], p["accepter"])) for p in data["peerings"]["removed"]) == [
        ["k8s-use1", "legacy-euw1"], ["k8s-use1", "legacy-use1"]]
    assert data["peerings"]["added"] == []
    added = data["routes"]["added"]
    assert added and all(r["transitGatewayId"] in (USE1, EUW1) for r in added)
    assert all("transitGatewayId" not in r for r in data["routes"]["removed"])
    statics = data["transitGatewayRoutes"]["added"]
    assert {(r["transitGateway"], r["routeTable"], r["attachment"]) for r in statics} == {
        ("tgw-use1", RTB_USE1_MAIN, ATTACH_LEGACY_USE1), ("tgw-use1", RTB_USE1_MAIN, PEERING),
        ("tgw-euw1", RTB_EUW1, PEERING)}
    assert all(r["grants"] for r in statics)
    text = run_cli("diff", "--specs", str(repo / "specs"), "--as-of", AS_OF).stdout
    assert "Transit gateway routes" in text and f"+ transit gateway tgw-euw1 {RTB_EUW1} 10.40.64.0/18 -> {PEERING}" \
        in text


def test_graph_draws_the_pairs_joined_through_gateways(built: Built):
    result = run_cli("graph", "--specs", str(built.specs), "--as-of", AS_OF, "--format", "mermaid")
    assert result.exit_code == 0, result.stderr
    assert (f'vpc_k8s_use1 <==>|"transit gateways {USE1} -> {EUW1} (cross-region)"| vpc_legacy_euw1'
            in result.stdout)
    assert f'vpc_k8s_use1 <==>|"transit gateway {USE1} (same-region)"| vpc_legacy_use1' in result.stdout
    assert f'vpc_k8s_use1 <==>|"transit gateway {USE1} (same-region)"| vpc_loyalty_use1' in result.stdout
    assert 'vpc_legacy_use1 -.-|"peering (cross-region, cross-account)"| vpc_k8s_usw2' in result.stdout


def test_route_scope_vpc_cidrs_writes_the_destination_vpcs_cidrs_in_the_gateways_tables(tmp_path: Path):
    """TransitGateway.routeScope vpc-cidrs: a static route per CIDR block of the VPC it leads to that holds some of
    the flows' destinations there (the exact routes' destinations, each widened to its block; k8s-use1's
    secondary block, which no flow uses, gets none), and every flow still arrives, both ways."""
    secondary = ("cidrs: [10.40.0.0/16]", "cidrs: [10.40.0.0/16, 10.41.0.0/16]")
    scoped = Built(tmp_path / "scoped",
                   GATEWAYS.replace("  transitGatewayId:", "  routeScope: vpc-cidrs\n  transitGatewayId:"), secondary)
    exact = Built(tmp_path / "exact", edit=secondary).resources("AWS::EC2::TransitGatewayRoute")
    blocks = [c for v in scoped.resolved.estate.vpcs for c in v.cidrs]
    statics = scoped.resources("AWS::EC2::TransitGatewayRoute")
    widened = {(r["TransitGatewayRouteTableId"], r["TransitGatewayAttachmentId"],
                str(next(c for c in blocks if ip_network(r["DestinationCidrBlock"]).subnet_of(c)))) for r in exact}
    assert {(r["TransitGatewayRouteTableId"], r["TransitGatewayAttachmentId"], r["DestinationCidrBlock"])
            for r in statics} == widened
    assert len(statics) < len(exact) and "10.41.0.0/16" not in {r["DestinationCidrBlock"] for r in statics}
    for flow in scoped.resolved.flows:
        if flow.path.transit:
            src, dst = flow.source.addresses[0][0], flow.destination.addresses[0][-1]
            assert walk(scoped, flow.path.source_vpc, src, flow.path.destination_vpc, dst)[-1] == \
                flow.path.destination_vpc
            assert walk(scoped, flow.path.destination_vpc, dst, flow.path.source_vpc, src)[-1] == flow.path.source_vpc
