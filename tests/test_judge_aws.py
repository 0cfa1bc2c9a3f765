"""Judge netgen's AWS output by deploying it into moto and asking EC2 what is reachable (tests/judges/aws.py).

Each deploying test: reset moto, seed the example inventory, rewrite a copy of specs/ with moto's ids, run
`netgen build` on it, deploy the plan through CloudFormation, then evaluate probes against EC2 answers only.
Expectations come from the flow list (netgen.resolve); the verdicts come from the evaluator, which never sees
netgen's model.

- test_every_flow_is_reachable / test_unintended_flows_are_not_reachable: the example estate.
  The probes and the judge live in tests/judges/aws.py; tests/test_judge_aws_generated.py runs them on
  hypothesis estates.
- test_mutation_*: a compiled template (or the plan) is damaged before deploying; the judge must notice.
- test_moto_gap_*: pin the moto limitations the harness works around, so a moto upgrade that fixes them fails
  here and the workaround can go.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from datetime import date
from functools import cache
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from judges.aws import (
    Ec2View,
    Judgement,
    Lab,
    MotoCloud,
    Mutation,
    Probe,
    Seeded,
    Verdict,
    evaluate,
    flow_probes,
    granted,
    groups_at,
    moto_server,
    reachable,
    representative,
)
from judges.aws import build_lab as shared_build_lab
from judges.aws import judge as shared_judge

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved, resolve_specs

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
AS_OF = date(2026, 11, 26)


# ---------------------------------------------------------------------------------------------------------------
# Fixtures: one moto server per module, reset before every test.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def cloud(moto_endpoint: str) -> MotoCloud:
    cloud = MotoCloud(moto_endpoint)
    cloud.reset()
    return cloud


@cache
def example() -> Resolved:
    """The example estate and its flows. Names and addresses do not depend on the AWS ids, so the flows of the
    original specs are the flows of the id-rewritten copy."""
    return resolve_specs(SPECS, AS_OF, Reporter())


def build_lab(cloud: MotoCloud, tmp_path: Path, mutate_template: Mutation | None = None,
              mutate_plan: Callable[[dict], None] | None = None) -> Lab:
    """Seed, rewrite ids, build, deploy the example. mutate_template(seeded, stack, template) may damage a
    template first."""
    return shared_build_lab(cloud, SPECS, example().estate, tmp_path, AS_OF, mutate_template, mutate_plan)


def judge(lab: Lab) -> Judgement:
    """The probes (tests/judges/aws.py) of the example estate: every flow reachable, nothing else."""
    return shared_judge(lab, example())


def resources(template: dict, kind: str, **props: object) -> list[str]:
    """Logical ids of the template's resources of a type whose properties include `props`."""
    return [logical for logical, r in template["Resources"].items()
            if r["Type"] == kind and all(r["Properties"].get(k) == v for k, v in props.items())]


# ---------------------------------------------------------------------------------------------------------------
# The example estate.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_lab(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The example estate, deployed once. Tests only read its EC2 snapshot (lab.view), so later resets of moto
    by other tests do not affect them."""
    cloud = MotoCloud(moto_endpoint)
    cloud.reset()
    return build_lab(cloud, tmp_path_factory.mktemp("example"))


def test_every_flow_is_reachable_and_nothing_else(example_lab: Lab) -> None:
    lab = example_lab
    result = judge(lab)
    assert result.failures == [], "\n".join(result.failures[:40])
    # The judge did real work: every flow at every CIDR, and hundreds of near misses.
    assert result.checked_allowed >= 2 * len(example().flows)
    assert result.checked_denied >= 500, result
    # All peerings active; the moto workarounds did what deploy() says.
    assert {p["Status"]["Code"] for p in lab.view.peerings.values()} == {"active"}
    assert len(lab.view.peerings) == 4
    # Peering logical ids: readable part + a 10-hex hash of the two (moto) VPC ids.
    outside = lab.deployment.peerings_created_outside_cloudformation
    assert all(re.fullmatch(r"Peering[A-Za-z0-9]+[0-9a-f]{10}", p) for p in outside), outside
    assert sorted(p[:-10] for p in outside) == [
        "PeeringLegacyEuw1K8sUse1", "PeeringLegacyEuw1K8sUsw2", "PeeringLegacyUse1K8sUsw2"]
    templates = {p.relative_to(lab.out).as_posix(): json.loads(p.read_text())
                 for p in (lab.out / "aws").glob("*/*/*.json")}
    egress = sum(len(resources(t, "AWS::EC2::SecurityGroupEgress")) for t in templates.values())
    assert lab.deployment.egress_rules_applied_outside_cloudformation == egress > 0
    gateway_routes = sum(len(resources(t, "AWS::EC2::TransitGatewayRoute")) for t in templates.values())
    assert lab.deployment.gateway_routes_created_outside_cloudformation == gateway_routes > 0
    # Every stack of the plan was deployed, in its order, one per template; the workarounds touched network
    # stacks (peerings, transit gateway routes) and group stacks (egress rules) only, each moving resources of its
    # own template.
    plan = json.loads((lab.out / "aws/deploy-plan.json").read_text())
    assert lab.deployment.stacks == [s["stack"] for s in plan["stacks"]]
    assert sorted(s["template"] for s in plan["stacks"]) == sorted(templates) and len(templates) > 3
    by_stack = {s["stack"]: templates[s["template"]] for s in plan["stacks"]}
    moved = {"AWS::EC2::VPCPeeringConnection": "-network", "AWS::EC2::TransitGatewayRoute": "-network",
             "AWS::EC2::SecurityGroupEgress": "-sg-"}
    assert {kind: {s for s, ids in lab.deployment.workarounds.items()
                   if any(by_stack[s]["Resources"][i]["Type"] == kind for i in ids)} for kind in moved} == {
        "AWS::EC2::VPCPeeringConnection": {"netgen-acme-legacy-eu-west-1-network",
                                           "netgen-acme-legacy-us-east-1-network"},
        "AWS::EC2::TransitGatewayRoute": {"netgen-acme-legacy-us-east-1-network"},  # (tgw-use1's owner's)
        "AWS::EC2::SecurityGroupEgress": {"netgen-acme-legacy-eu-west-1-sg-legacy-batch-euw1",
                                          "netgen-acme-legacy-us-east-1-sg-internal-dns-nlb",
                                          "netgen-acme-legacy-us-east-1-sg-legacy-batch-use1",
                                          "netgen-acme-legacy-us-east-1-sg-loyalty-app-use1",
                                          "netgen-acme-platform-us-west-2-sg-prod-usw2-nodes"}}
    for stack, ids in lab.deployment.workarounds.items():
        kinds = {by_stack[stack]["Resources"][i]["Type"] for i in ids}
        assert kinds <= set(moved) and all(moved[kind] in stack for kind in kinds), (stack, ids)
    assert sorted(i for ids in lab.deployment.workarounds.values() for i in ids
                  if i.startswith("Peering")) == sorted(outside)


def test_flows_through_the_transit_gateway_are_judged_through_it(example_lab: Lab) -> None:
    """loyalty-use1 and k8s-use1 reach each other through tgw-use1 only (no peering joins them): the judge's view
    holds the gateway, its route table and the static routes deploy() created; every probe of their flows, both
    ways, is reachable; and without the gateway's static routes (to loyalty-use1's attachment, which propagates
    nowhere) every one of them is denied in the gateway's route table, and nothing else changes."""
    lab = example_lab
    resolved = example()
    through = [f for f in resolved.flows if f.path.transit]
    assert {frozenset((f.path.source_vpc, f.path.destination_vpc)) for f in through} == {
        frozenset(("loyalty-use1", "k8s-use1"))}
    assert {f.source.vpc for f in through} == {"loyalty-use1", "k8s-use1"}  # flows both ways
    gateway = lab.seeded.substitutions["tgw-0e100000000000001"]
    table = lab.seeded.substitutions["tgw-rtb-0e100000000000011"]
    assert gateway in lab.view.gateways.gateways
    pair = {lab.seeded.vpcs["loyalty-use1"].vpc_id, lab.seeded.vpcs["k8s-use1"].vpc_id}
    assert all({p["RequesterVpcInfo"]["VpcId"], p["AccepterVpcInfo"]["VpcId"]} != pair
               for p in lab.view.peerings.values())
    statics = {r["DestinationCidrBlock"] for r in lab.view.gateways.routes[table] if r["Type"] == "static"}
    assert statics == {"172.20.10.11/32", "172.20.10.12/31"}
    probes = [p for f in through for p in flow_probes(resolved.estate, f)]
    assert len(probes) >= 2 * len(through) and all(evaluate(lab, p) for p in probes)
    # the same view without the gateway's static routes
    view = copy.copy(lab.view)
    view.gateways = dataclasses.replace(lab.view.gateways, routes={**lab.view.gateways.routes, table: [
        r for r in lab.view.gateways.routes[table] if r["Type"] != "static"]})
    damaged = Lab(lab.seeded, lab.out, lab.deployment, view)
    failures = shared_judge(damaged, resolved).failures
    assert sorted(failures) == sorted(f"DENIED {p}: {evaluate(damaged, p).reason}" for p in probes), \
        "\n".join(failures)
    assert all(f"{gateway} route table {table} has no route for 172.20.10." in f for f in failures), failures


def test_hosts_carry_their_inventory_groups(example_lab: Lab) -> None:
    """describe_instances (what the evaluator reads for hosts) agrees with the inventory the probes use."""
    lab = example_lab
    for host in example().estate.hosts:
        vpc_id = lab.seeded.vpcs[host.vpc.name].vpc_id
        assert groups_at(lab.view, str(host.address), vpc_id) == (lab.seeded.groups[host.security_group.name],)


def test_preserved_client_hop_opens_no_direct_path(example_lab: Lab) -> None:
    lab = example_lab
    estate = example().estate
    pods = representative(next(c for c in estate.clusters if c.name == "prod-use1").pod_cidrs[0])
    batch = [h for h in estate.hosts if h.labels == (("role", "batch"),)]
    assert batch
    open_ = []
    for host in batch:
        probe = Probe("bypass", "batch-to-search-api", host.address, host.vpc.name, pods, "k8s-use1", "tcp", 9200,
                      (host.security_group.name,), ("prod-use1-nodes",))
        assert not granted(example().flows, probe)
        if evaluate(lab, probe):
            open_.append(str(probe))
    assert open_ == []


# ---------------------------------------------------------------------------------------------------------------
# Mutations: the judge must fail on damaged output.
# ---------------------------------------------------------------------------------------------------------------


def test_mutation_wider_cidr_is_caught(cloud: MotoCloud, tmp_path: Path) -> None:
    """Widen batch-use1-01's /32 on the node group (search-api NodePort) to all of legacy-use1."""
    hits: list[str] = []

    def widen(seeded: Seeded, stack: str, template: dict) -> None:
        if stack != "netgen-acme-legacy-us-east-1-sg-prod-use1-nodes":
            return
        found = resources(template, "AWS::EC2::SecurityGroupIngress", GroupId=seeded.groups["prod-use1-nodes"],
                          FromPort=30920, CidrIp="10.11.30.31/32")
        assert len(found) == 1
        template["Resources"][found[0]]["Properties"]["CidrIp"] = "10.10.0.0/15"
        hits.append(found[0])

    lab = build_lab(cloud, tmp_path, mutate_template=widen)
    assert hits
    failures = judge(lab).failures
    assert any(f.startswith("REACHABLE [other-source] 10.10.10.11 (legacy-use1) -> 10.40.0.4:30920/tcp")
               for f in failures), "\n".join(failures)
    assert failures and all(f.startswith("REACHABLE") for f in failures), "\n".join(failures)


def test_mutation_wrong_port_is_caught(cloud: MotoCloud, tmp_path: Path) -> None:
    """Open 5433 instead of 5432 on legacy-db-euw1 for the prod-use1 nodes."""
    hits: list[str] = []

    def shift(seeded: Seeded, stack: str, template: dict) -> None:
        if stack != "netgen-acme-legacy-eu-west-1-sg-legacy-db-euw1":
            return
        found = resources(template, "AWS::EC2::SecurityGroupIngress", GroupId=seeded.groups["legacy-db-euw1"],
                          FromPort=5432, CidrIp="10.40.0.0/19")
        assert len(found) == 1
        template["Resources"][found[0]]["Properties"].update(FromPort=5433, ToPort=5433)
        hits.append(found[0])

    lab = build_lab(cloud, tmp_path, mutate_template=shift)
    assert hits
    failures = judge(lab).failures
    assert any(f.startswith("DENIED [flow] 10.40.0.4 (k8s-use1) -> 10.20.10.11:5432/tcp") and "ingress" in f
               for f in failures), "\n".join(failures)
    assert any(f.startswith("REACHABLE [other-port] 10.40.0.4 (k8s-use1) -> 10.20.10.11:5433/tcp")
               for f in failures), "\n".join(failures)
    # k8s-usw2's pods keep 5432 on legacy-db-euw1 (another rule): only the mutated rule is blamed.
    assert not any("(k8s-usw2) -> 10.20.10.11:5432" in f for f in failures)


def test_mutation_udp_health_checks_are_caught(cloud: MotoCloud, tmp_path: Path) -> None:
    """The defect of issue 18, put back: the resolver's NLB (UDP and TCP 53 -> 5353, health checks TCP 8080) gets
    UDP 5353 from its subnet on the cluster group instead of TCP 8080. The judge expects the health checks from the
    estate, not from the flows: they are denied, and the UDP opening nothing sends is reachable."""
    hits: list[str] = []

    def udp(seeded: Seeded, stack: str, template: dict) -> None:
        if stack != "netgen-acme-legacy-us-east-1-sg-prod-use1-nodes":
            return
        found = resources(template, "AWS::EC2::SecurityGroupIngress", GroupId=seeded.groups["prod-use1-nodes"],
                          FromPort=8080, CidrIp="10.40.36.0/24")
        assert len(found) == 1
        template["Resources"][found[0]]["Properties"].update(IpProtocol="udp", FromPort=5353, ToPort=5353)
        hits.append(found[0])

    lab = build_lab(cloud, tmp_path, mutate_template=udp)
    assert hits
    failures = judge(lab).failures
    assert any(f.startswith("DENIED [health-check] 10.40.36.4 (k8s-use1) -> 10.40.64.4:8080/tcp") for f in failures), \
        "\n".join(failures)
    # (found first as another source of the hosts' UDP flow; the nlb-udp probe asks the same packet)
    assert any(f.startswith("REACHABLE [") and "] 10.40.36.4 (k8s-use1) -> 10.40.64.4:5353/udp" in f
               for f in failures), "\n".join(failures)


@pytest.mark.parametrize(("direction", "stack", "vpc", "at", "cidr", "broken", "intact"), [
    # k8s-usw2 pods -> db-euw1-01: the route there, in the table of the pod subnet only.
    ("there", "netgen-acme-platform-us-west-2-network", "k8s-usw2", "10.50.64.4", "10.20.10.11/32",
     "10.50.64.4 (k8s-usw2) -> 10.20.10.11:5432/tcp", "10.50.64.4 (k8s-usw2) -> 10.20.10.12:5432/tcp"),
    # k8s-use1 nodes -> db-use1-01: the route back, in the table of the database subnet only; the batch subnet's
    # table still routes the same prefix (batch-use1 -> search-api NodePort).
    ("back", "netgen-acme-legacy-us-east-1-network", "legacy-use1", "10.10.10.11", "10.40.0.0/19",
     "10.40.0.4 (k8s-use1) -> 10.10.10.11:5432/tcp", "10.11.30.31 (legacy-use1) -> 10.40.0.4:30920/tcp"),
], ids=["there", "back"])
def test_mutation_removed_route_is_caught(cloud: MotoCloud, tmp_path: Path, direction: str, stack: str, vpc: str,
                                          at: str, cidr: str, broken: str, intact: str) -> None:
    """Remove one route from the one route table governing the subnet of one end of a flow: that flow breaks,
    although the other tables of the VPC still carry the same route."""
    removed: list[str] = []

    def drop(seeded: Seeded, name: str, template: dict) -> None:
        if name != stack:
            return
        table = seeded.route_table_for(vpc, IPv4Address(at))
        found = resources(template, "AWS::EC2::Route", RouteTableId=table, DestinationCidrBlock=cidr)
        assert len(found) == 1
        assert len(resources(template, "AWS::EC2::Route", DestinationCidrBlock=cidr)) > 1  # other tables keep it
        del template["Resources"][found[0]]
        removed.append(found[0])

    lab = build_lab(cloud, tmp_path, mutate_template=drop)
    assert removed
    failures = judge(lab).failures
    assert any(f.startswith(f"DENIED [flow] {broken}") and f"no route {direction}" in f for f in failures), \
        "\n".join(failures)
    assert not any(f.startswith(f"DENIED [flow] {intact}") for f in failures)
    assert all(f.startswith("DENIED") for f in failures), "\n".join(failures)


def test_mutation_missing_egress_is_caught(cloud: MotoCloud, tmp_path: Path) -> None:
    """Drop the egress rule prod-usw2-nodes (restrictsEgress) needs for report-builder -> db-euw1-01."""
    dropped: list[str] = []

    def drop(seeded: Seeded, stack: str, template: dict) -> None:
        if stack != "netgen-acme-platform-us-west-2-sg-prod-usw2-nodes":
            return
        found = resources(template, "AWS::EC2::SecurityGroupEgress", GroupId=seeded.groups["prod-usw2-nodes"],
                          FromPort=5432, CidrIp="10.20.10.11/32")
        assert len(found) == 1
        del template["Resources"][found[0]]
        dropped.append(found[0])

    lab = build_lab(cloud, tmp_path, mutate_template=drop)
    assert dropped
    failures = judge(lab).failures
    assert any(f.startswith("DENIED [flow] 10.50.64.4 (k8s-usw2) -> 10.20.10.11:5432/tcp") and "egress" in f
               for f in failures), "\n".join(failures)
    assert failures and all(f.startswith("DENIED") for f in failures), "\n".join(failures)


def test_mutation_unaccepted_peering_is_caught(cloud: MotoCloud, tmp_path: Path) -> None:
    """A plan that forgets a peering: it stays pending-acceptance and every flow across it breaks."""
    forgotten: list[str] = []

    def forget(plan: dict) -> None:
        for stack in plan["stacks"]:
            # the logical id ends in a hash of the (moto) VPC ids: match its readable part
            target = [p for p in stack["peerings"] if re.fullmatch(r"PeeringLegacyUse1K8sUsw2[0-9a-f]{10}",
                                                                   p["peering"])]
            forgotten.extend(p["peering"] for p in target)
            stack["peerings"] = [p for p in stack["peerings"] if p not in target]

    lab = build_lab(cloud, tmp_path, mutate_plan=forget)
    assert len(forgotten) == 1
    failures = judge(lab).failures
    crossing = [f for f in failures if f.startswith("DENIED [flow]") and "pending-acceptance" in f]
    assert any("(k8s-usw2) -> 10.10.20.21:8443" in f for f in crossing), "\n".join(failures)
    assert any("10.10.40.41 (legacy-use1) -> 10.50.64.4:9091" in f for f in crossing), "\n".join(failures)
    assert failures and all("legacy-use1" in f and "k8s-usw2" in f for f in failures), "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------------
# The moto gaps deploy() works around. Each test fails once moto behaves like AWS, so the workaround can go.
# ---------------------------------------------------------------------------------------------------------------

LEGACY = "123456789012"


def _two_vpcs(cloud: MotoCloud, peer_region: str) -> tuple[str, str]:
    here = cloud.ec2(LEGACY, "eu-west-1").create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    there = cloud.ec2(LEGACY, peer_region).create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    return here, there


def _stack(cloud: MotoCloud, resources_: dict) -> str:
    cfn = cloud.client("cloudformation", LEGACY, "eu-west-1")
    cfn.create_stack(StackName="gap", TemplateBody=json.dumps({"Resources": resources_}))
    return cfn.describe_stacks(StackName="gap")["Stacks"][0]["StackStatus"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # moto warns about the very gap
def test_moto_gap_cloudformation_ignores_peer_region(cloud: MotoCloud) -> None:
    here, there = _two_vpcs(cloud, "us-east-1")
    with pytest.raises(ClientError, match="InvalidVpcID.NotFound"):
        _stack(cloud, {"P": {"Type": "AWS::EC2::VPCPeeringConnection",
                             "Properties": {"VpcId": here, "PeerVpcId": there, "PeerRegion": "us-east-1"}}})
    # The EC2 API does honour PeerRegion: that is what deploy() uses instead.
    ec2 = cloud.ec2(LEGACY, "eu-west-1")
    pcx = ec2.create_vpc_peering_connection(VpcId=here, PeerVpcId=there, PeerRegion="us-east-1")
    assert pcx["VpcPeeringConnection"]["AccepterVpcInfo"]["Region"] == "us-east-1"


def test_moto_gap_cloudformation_leaves_same_region_peering_pending(cloud: MotoCloud) -> None:
    here, there = _two_vpcs(cloud, "eu-west-1")
    assert _stack(cloud, {"P": {"Type": "AWS::EC2::VPCPeeringConnection",
                                "Properties": {"VpcId": here, "PeerVpcId": there}}}) == "CREATE_COMPLETE"
    answer = cloud.ec2(LEGACY, "eu-west-1").describe_vpc_peering_connections()["VpcPeeringConnections"]
    assert [p["Status"]["Code"] for p in answer] == ["pending-acceptance"]


@pytest.mark.filterwarnings("ignore::UserWarning")  # moto warns about the very gap
def test_moto_gap_cloudformation_skips_security_group_egress(cloud: MotoCloud) -> None:
    here, _ = _two_vpcs(cloud, "eu-west-1")
    ec2 = cloud.ec2(LEGACY, "eu-west-1")
    group = ec2.create_security_group(GroupName="g", Description="g", VpcId=here)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    status = _stack(cloud, {"E": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
        "GroupId": group, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "CidrIp": "10.40.0.0/19"}}})
    assert status == "CREATE_COMPLETE"
    assert ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissionsEgress"] == []


# ---------------------------------------------------------------------------------------------------------------
# The evaluator on hand-written EC2 answers (no moto): the corners the example estate does not exercise.
# ---------------------------------------------------------------------------------------------------------------


def _answers(*, pcx_status: str = "active", extra_route: dict | None = None, egress: list | None = None,
             ingress_groups: list | None = None) -> Ec2View:
    def vpc(vpc_id: str, cidr: str) -> dict:
        return {"VpcId": vpc_id, "CidrBlock": cidr,
                "CidrBlockAssociationSet": [{"CidrBlock": cidr, "CidrBlockState": {"State": "associated"}}]}

    def table(rtb: str, vpc_id: str, subnet: str, routes: list[dict]) -> dict:
        return {"RouteTableId": rtb, "VpcId": vpc_id, "Routes": routes,
                "Associations": [{"SubnetId": subnet, "Main": False}]}

    a_routes = [{"DestinationCidrBlock": "10.1.0.0/16", "GatewayId": "local", "State": "active"},
                {"DestinationCidrBlock": "10.2.0.0/16", "VpcPeeringConnectionId": "pcx-1", "State": "active"}]
    if extra_route:
        a_routes.append(extra_route)
    b_routes = [{"DestinationCidrBlock": "10.2.0.0/16", "GatewayId": "local", "State": "active"},
                {"DestinationCidrBlock": "10.1.0.0/24", "VpcPeeringConnectionId": "pcx-1", "State": "active"}]
    permission = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.1.0.0/24"}],
                  "UserIdGroupPairs": ingress_groups or []}
    everything = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "UserIdGroupPairs": []}]
    return Ec2View.from_answers(
        vpcs=[vpc("vpc-a", "10.1.0.0/16"), vpc("vpc-b", "10.2.0.0/16")],
        subnets=[{"SubnetId": "subnet-a", "VpcId": "vpc-a", "CidrBlock": "10.1.0.0/24"},
                 {"SubnetId": "subnet-b", "VpcId": "vpc-b", "CidrBlock": "10.2.0.0/24"}],
        route_tables=[table("rtb-a", "vpc-a", "subnet-a", a_routes), table("rtb-b", "vpc-b", "subnet-b", b_routes)],
        peerings=[{"VpcPeeringConnectionId": "pcx-1", "Status": {"Code": pcx_status},
                   "RequesterVpcInfo": {"VpcId": "vpc-a", "Region": "us-east-1"},
                   "AccepterVpcInfo": {"VpcId": "vpc-b", "Region": "us-east-1"}}],
        security_groups=[{"GroupId": "sg-a", "IpPermissions": [], "IpPermissionsEgress": egress or everything},
                         {"GroupId": "sg-b", "IpPermissions": [permission], "IpPermissionsEgress": everything}])


def _ask(view: Ec2View, src: str = "10.1.0.10", dst: str = "10.2.0.10", port: int = 443) -> Verdict:
    return reachable(view, src, "vpc-a", dst, "vpc-b", "tcp", port, ["sg-a"], ["sg-b"])


def test_evaluator_allows_the_plain_case() -> None:
    assert _ask(_answers())


@pytest.mark.parametrize(("view", "ask", "reason"), [
    (_answers(pcx_status="pending-acceptance"), {}, "pending-acceptance"),
    (_answers(), {"port": 444}, "no ingress rule of sg-b admits tcp/444"),
    (_answers(), {"src": "10.1.1.10"}, "no subnet of vpc-a contains 10.1.1.10"),
    (_answers(), {"dst": "10.2.1.10"}, "no subnet of vpc-b contains 10.2.1.10"),
    # A more specific route elsewhere wins over the peering route.
    (_answers(extra_route={"DestinationCidrBlock": "10.2.0.0/24", "GatewayId": "igw-1", "State": "active"}), {},
     "route 10.2.0.0/24 -> igw-1"),
    (_answers(extra_route={"DestinationCidrBlock": "10.2.0.0/24", "VpcPeeringConnectionId": "pcx-1",
                           "State": "blackhole"}), {}, "blackhole"),
    (_answers(egress=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
     {}, "no egress rule of sg-a"),
])
def test_evaluator_denies_with_a_reason(view: Ec2View, ask: dict, reason: str) -> None:
    verdict = _ask(view, **ask)
    assert not verdict
    assert reason in verdict.reason


def test_evaluator_reply_needs_a_route_back() -> None:
    view = _answers()
    # 10.1.5.0/24 is in vpc-a but vpc-b only routes 10.1.0.0/24 back.
    view.subnets["subnet-a2"] = {"SubnetId": "subnet-a2", "VpcId": "vpc-a", "CidrBlock": "10.1.5.0/24"}
    view.route_tables["rtb-a"]["Associations"].append({"SubnetId": "subnet-a2", "Main": False})
    verdict = reachable(view, "10.1.5.10", "vpc-a", "10.2.0.10", "vpc-b", "tcp", 443, None, None)
    assert not verdict and "no route back" in verdict.reason


def test_evaluator_group_references_work_on_same_region_peerings_only() -> None:
    pairs = [{"GroupId": "sg-a"}]
    view = _answers(ingress_groups=pairs)
    view.route_tables["rtb-b"]["Routes"][1]["DestinationCidrBlock"] = "10.1.0.0/16"
    view.subnets["subnet-a2"] = {"SubnetId": "subnet-a2", "VpcId": "vpc-a", "CidrBlock": "10.1.5.0/24"}
    view.route_tables["rtb-a"]["Associations"].append({"SubnetId": "subnet-a2", "Main": False})
    assert _ask(view, src="10.1.5.10")  # admitted by group reference, not by CIDR
    view.peerings["pcx-1"]["AccepterVpcInfo"]["Region"] = "eu-west-1"
    verdict = _ask(view, src="10.1.5.10")
    assert not verdict and "ingress" in verdict.reason
