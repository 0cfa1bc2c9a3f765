"""Adopting a half-migrated estate, end to end against moto (issue 17).

The example estate's accounts already hold, made by hand: three peerings (k8s-use1 -> legacy-use1 in netgen's
direction, k8s-usw2 -> legacy-use1 against it and across accounts and regions, legacy-euw1 -> k8s-use1 across
regions), three rules on the cluster's node group (one identical to a generated rule, one narrower than one,
one unrelated) and a route at a generated destination through the hand peering. Then: `netgen discover`
declares the peerings, `netgen import-grants` proposes grants, `netgen build`, `netgen deploy`: exactly one
active peering per pair of VPCs, no hand rule ever revoked (their rule ids survive), `netgen verify` passes,
`netgen drift` puts each hand rule in its category, and a second deploy changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from judges.aws import rewrite_spec_ids, seed_estate
from test_aws_deploy import LEGACY, PLATFORM, SPECS, build, deploy, drift, netgen, verify
from test_judge_aws import example

from netgen.bench.moto import MotoCloud

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..SecurityGroupEgress")
PLACES = ((LEGACY, "us-east-1"), (LEGACY, "eu-west-1"), (PLATFORM, "us-west-2"))


def hand_peering(cloud: MotoCloud, requester, accepter) -> str:
    pcx = cloud.ec2(requester.account, requester.region).create_vpc_peering_connection(
        VpcId=requester.vpc_id, PeerVpcId=accepter.vpc_id, PeerOwnerId=accepter.account,
        PeerRegion=accepter.region)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    cloud.ec2(accepter.account, accepter.region).accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    return pcx


def active_peerings(cloud: MotoCloud) -> dict[str, frozenset]:
    found = {}
    for account, region in PLACES:
        for pcx in cloud.ec2(account, region).describe_vpc_peering_connections()["VpcPeeringConnections"]:
            if pcx["Status"]["Code"] == "active":
                found[pcx["VpcPeeringConnectionId"]] = frozenset((pcx["RequesterVpcInfo"]["VpcId"],
                                                                  pcx["AccepterVpcInfo"]["VpcId"]))
    return found


def test_a_half_migrated_estate_is_adopted_without_a_gap(cloud: MotoCloud, tmp_path: Path) -> None:  # noqa: F811
    seeded = seed_estate(cloud, example().estate)
    vpcs, ids = seeded.vpcs, seeded.substitutions
    specs = rewrite_spec_ids(SPECS, tmp_path / "specs", ids)
    p1 = hand_peering(cloud, vpcs["k8s-use1"], vpcs["legacy-use1"])
    p2 = hand_peering(cloud, vpcs["k8s-usw2"], vpcs["legacy-use1"])
    p3 = hand_peering(cloud, vpcs["legacy-euw1"], vpcs["k8s-use1"])
    nodes = ids["sg-0c3000000000000c1"]  # prod-use1-nodes
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    hand = {}
    for key, cidr, port in (("identical", "10.10.20.21/32", 8443), ("narrower", "10.40.34.5/32", 8080),
                            ("unrelated", "10.0.0.0/8", 22)):
        answer = ec2.authorize_security_group_ingress(GroupId=nodes, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr, "Description": f"hand: {key}"}]}])
        hand[key] = answer["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    table = ids["rtb-0c33d44e55f66a772"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.10.10.11/32", VpcPeeringConnectionId=p1)

    # Before any declaration, deploy refuses to request second peerings, and changes nothing.
    out = tmp_path / "generated"
    build(specs, out)
    code, output = deploy(cloud, specs, out)
    assert code == 1 and "nothing was changed" in output, output
    assert f"are already peered by {p1} (not created by netgen)" in output
    assert f"route table {table} already routes 10.10.10.11/32 to {p1}" in output
    assert set(active_peerings(cloud)) == {p1, p2, p3}

    # netgen discover declares the hand peerings (both accounts, so that the cross-account one is seen).
    discovered = tmp_path / "discovered"
    for account, name, regions in ((LEGACY, "acme-legacy", ("us-east-1", "eu-west-1")),
                                   (PLATFORM, "acme-platform", ("us-west-2",))):
        code, output = netgen("discover", "--out", discovered, "--endpoint-url", cloud.endpoint_url,
                              "--account-id", account, "--account-name", name, "--profile", name,
                              *[x for r in regions for x in ("--region", r)])
        assert code == 0, output
    declared = [d for path in sorted(discovered.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())
                if d and d["kind"] == "VpcPeering"]
    assert sorted(d["spec"]["connectionId"] for d in declared) == sorted([p1, p2, p3])
    names = {v.vpc_id: name for name, v in vpcs.items()}
    discovered_names = {}
    for path in sorted(discovered.glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d and d["kind"] == "Vpc" and d["spec"]["vpcId"] in names:  # (not moto's default VPCs)
                discovered_names[d["metadata"]["name"]] = names[d["spec"]["vpcId"]]
    for d in declared:  # the discovered VPC names -> the example's
        d["spec"]["requesterVpc"] = discovered_names[d["spec"]["requesterVpc"]]
        d["spec"]["accepterVpc"] = discovered_names[d["spec"]["accepterVpc"]]
    (specs / "inventory/peerings.yaml").write_text(yaml.safe_dump_all(declared, sort_keys=False))

    # netgen import-grants: the identical and the narrower rule are granted already; the unrelated one is
    # listed, never guessed.
    imported = specs / "access/imported.yaml"
    code, output = netgen("import-grants", "--specs", specs, "--as-of", "2026-11-26", "--out", imported,
                          "--endpoint-url", cloud.endpoint_url)
    assert code == 0, output
    assert "10.0.0.0/8" in output
    build(specs, out)
    flows = (out / "flows.txt").read_text()
    assert f"(peering {p1}, existing, same-region)" in flows and f"(peering {p3}, existing" in flows
    templates = {p: json.loads(p.read_text()) for p in (out / "aws").rglob("network.json")}
    peering_pairs = [frozenset((str(r["Properties"]["VpcId"]), str(r["Properties"]["PeerVpcId"])))
                     for t in templates.values() for r in t["Resources"].values()
                     if r["Type"] == "AWS::EC2::VPCPeeringConnection"]
    assert peering_pairs == [frozenset((vpcs["legacy-euw1"].vpc_id, vpcs["k8s-usw2"].vpc_id))]

    # deploy: hand rules and the hand route are adopted, not duplicated; nothing hand-made is revoked
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"adopted: rule {nodes} ingress tcp/8443 from 10.10.20.21/32 ({hand['identical']}, hand-made" in output
    assert f"adopted: route {table} 10.10.10.11/32 -> {p1}" in output
    assert "revoked" not in output
    live_ids = {r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [nodes]}])["SecurityGroupRules"]}
    assert set(hand.values()) <= live_ids
    peerings = active_peerings(cloud)
    assert len(peerings) == 4 and len(set(peerings.values())) == 4  # one per pair: three hand-made, one netgen's
    code, output = verify(cloud, specs)
    assert code == 0, output

    # drift: managed, adopted, covered, uncovered
    code, found = drift(cloud, specs, out)
    assert code == 0 and [d for d in found["drift"] if d["change"] in ("missing", "extra", "changed")] == [], found
    code, text = netgen("drift", "--specs", specs, "--out", out, "--as-of", "2026-11-26", "--endpoint-url",
                        cloud.endpoint_url)
    assert "adopted rule:" in text and f"{nodes} ingress tcp/8443 from 10.10.20.21/32 'hand: identical'" in text
    where = f"prod-use1-nodes ({nodes}): {nodes}"
    assert f"hand rule (covered by the grants): {where} ingress tcp/8080 from 10.40.34.5/32" in text
    assert f"hand rule (covered by no grant): {where} ingress tcp/22 from 10.0.0.0/8" in text
    rules = found["migration"]["rules"]
    assert (rules["adopted"], rules["covered"], rules["uncovered"]) == (1, 1, 1), rules
    assert found["migration"]["routes"]["adopted"] == 1

    # a second deploy changes nothing
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    stack_count = len(json.loads((out / "aws/deploy-plan.json").read_text())["stacks"])
    assert output.splitlines()[-1] == f"deploy: {stack_count} unchanged", output
    assert "change set" not in output
