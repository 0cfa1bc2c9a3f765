"""Hand-made rules and routes: `netgen drift`'s categories and `netgen import-grants`, against moto (server mode).

The example inventory is seeded into moto and "deployed" without CloudFormation's rule stacks, fast: peerings
through the EC2 API (tagged managed-by=netgen), routes through the network stacks' routes in CloudFormation
(so that drift sees stacks holding them), transit gateway static routes and rules through the EC2 API (rules with
their netgen descriptions). Like deploy, this leaves a hand rule or route that is identical to a generated one in
place rather than create a duplicate.

- test_drift_names_hand_rules_and_import_reproduces_them: hand rules (one identical to a generated rule, one
  narrower, one unrelated, one from a cluster's node subnets, three reproducing a grant deleted from the specs,
  and an egress rule of a legacy group to a service's pods) each land in their category; drift exits 0 (hand
  rules are a report), 1 with --strict; import-grants writes three grants (one from the host group, two from
  hosts) that validate and build into rules identical to the hand rules, lists the rest with why (a grant to
  write for the workload's), a second import finds nothing new, and the file is replaced only with --force.
- test_routes_adopted_and_hand: a hand peering between two VPCs netgen peers, a route through it at a
  generated destination (adopted) and one to the whole peer VPC (covered by no generated route).
- test_import_from_flow_logs: accepted records between a known host and a service become a grant; replies,
  rejects, already granted flows and workload traffic do not.
- coverage units: a rule narrower than the flows is covered, the rest is named exactly.
"""

from __future__ import annotations

import json
from datetime import date
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from judges.aws import MotoCloud, rewrite_spec_ids, seed_estate
from test_aws_deploy import AS_OF, LEGACY, SPECS, build, drift, netgen

from netgen.addresses import interval
from netgen.aws.coverage import Coverage, pieces_text, uncovered_pieces
from netgen.aws.generated import RuleSpec, gateway_routes_of, load_plan, peerings_of, routes_of, rules_of
from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs

# moto's CloudFormation skips the example's static transit gateway routes (apply_generated creates them)
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..TransitGatewayRoute")


def import_grants(cloud: MotoCloud, specs: Path, *extra: str | Path) -> tuple[int, str]:
    return netgen("import-grants", "--specs", specs, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url, *extra)


def remove_grant(specs: Path, name: str) -> None:
    for path in (specs / "access").glob("*.yaml"):
        docs = path.read_text().split("---\n")
        kept = [d for d in docs if f"name: {name}\n" not in d]
        if len(kept) != len(docs):
            path.write_text("---\n".join(kept))
            return
    raise AssertionError(f"no grant {name}")


def hand_rule(cloud: MotoCloud, region: str, group_id: str, port: int | tuple[int, int], cidr: str,
              description: str = "", direction: str = "ingress", account: str = LEGACY) -> None:
    first, last = port if isinstance(port, tuple) else (port, port)
    ranges = [{"CidrIp": cidr, **({"Description": description} if description else {})}]
    permission = {"IpProtocol": "tcp", "FromPort": first, "ToPort": last, "IpRanges": ranges}
    ec2 = cloud.ec2(account, region)
    if direction == "ingress":
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])
    else:
        ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[permission])


def apply_generated(cloud: MotoCloud, out: Path) -> None:
    """generated/aws made live, fast, leaving what exists (a hand rule or route identical to a generated one) in
    place: peerings through EC2 (tagged, accepted), each network stack's routes (peering ids put in) and transit
    gateway static routes in a CloudFormation stack of its name (the static routes created through EC2 too), rules
    through EC2 with their descriptions. Run again after a build, it adds what is new."""
    stacks = load_plan(out)
    ids: dict[str, str] = {}  # peering logical id -> pcx id
    for stack in stacks:
        account, region = stack.place
        ec2 = cloud.ec2(account, region)
        for logical, props in peerings_of(stack.template).items():
            peer_account, peer_region = props.get("PeerOwnerId", account), props.get("PeerRegion", region)
            existing = [p for p in ec2.describe_vpc_peering_connections(Filters=[
                {"Name": "tag:managed-by", "Values": ["netgen"]},
                {"Name": "requester-vpc-info.vpc-id", "Values": [props["VpcId"]]}])["VpcPeeringConnections"]
                if p["AccepterVpcInfo"]["VpcId"] == props["PeerVpcId"] and p["Status"]["Code"] == "active"]
            if existing:
                ids[logical] = existing[0]["VpcPeeringConnectionId"]
                continue
            pcx = ec2.create_vpc_peering_connection(VpcId=props["VpcId"], PeerVpcId=props["PeerVpcId"],
                                                    PeerOwnerId=peer_account, PeerRegion=peer_region)
            pid = pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"]
            ec2.create_tags(Resources=[pid], Tags=[{"Key": "managed-by", "Value": "netgen"}])
            cloud.ec2(peer_account, peer_region).accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
            ids[logical] = pid
    by_name = {s.name: s for s in stacks}
    for stack in stacks:
        routes = routes_of(stack.template)
        if not routes:
            continue
        account, region = stack.place
        ec2 = cloud.ec2(account, region)
        live = {(t["RouteTableId"], r.get("DestinationCidrBlock")): r
                for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]}
        cfn = cloud.client("cloudformation", account, region)
        try:  # the logical ids of the template the stack was deployed from
            body = cfn.get_template(StackName=stack.name)["TemplateBody"]
            held = set((json.loads(body) if isinstance(body, str) else body)["Resources"])
        except ClientError:
            held = set()
        resources = {}
        # the static routes of the gateway route tables of this place, in the stack's template (where drift finds
        # them) and created through EC2, as deploy does (moto's CloudFormation skips the resource type)
        for gateway_route in gateway_routes_of(stack.template):
            exists = ec2.search_transit_gateway_routes(
                TransitGatewayRouteTableId=gateway_route.table,
                Filters=[{"Name": "route-search.exact-match", "Values": [gateway_route.cidr]}])["Routes"]
            if exists and gateway_route.logical not in held:
                continue  # a hand route: left in place
            resources[gateway_route.logical] = {"Type": "AWS::EC2::TransitGatewayRoute", "Properties": {
                "TransitGatewayRouteTableId": gateway_route.table, "DestinationCidrBlock": gateway_route.cidr,
                "TransitGatewayAttachmentId": gateway_route.attachment}}
            if not exists:
                ec2.create_transit_gateway_route(TransitGatewayRouteTableId=gateway_route.table,
                                                 DestinationCidrBlock=gateway_route.cidr,
                                                 TransitGatewayAttachmentId=gateway_route.attachment)
        for route in routes:
            if (route.table, route.cidr) in live and route.logical not in held:
                continue  # a hand route: left in place
            target = route.target
            if isinstance(target, dict):
                ref = target["Ref"]
                if ref not in ids:
                    source = stack.parameters[ref]
                    ref = by_name[source["stack"]].template["Outputs"][source["output"]]["Value"]["Ref"]
                target = ids[ref]
            resources[route.logical] = {"Type": "AWS::EC2::Route", "Properties": {
                "RouteTableId": route.table, "DestinationCidrBlock": route.cidr, route.via: target}}
        if not resources or set(resources) == held:
            continue
        if held:  # a second run: new routes are added (moto creates added resources on update)
            cfn.update_stack(StackName=stack.name, TemplateBody=json.dumps({"Resources": resources}))
        else:
            cfn.create_stack(StackName=stack.name, TemplateBody=json.dumps({"Resources": resources}))
    for stack in stacks:
        ec2 = cloud.ec2(*stack.place)
        for rule in rules_of(stack.template):
            call = (ec2.authorize_security_group_ingress if rule.direction == "ingress"
                    else ec2.authorize_security_group_egress)
            try:
                call(GroupId=rule.group_id, IpPermissions=[rule.permission()])
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "InvalidPermission.Duplicate":
                    raise


def by_category(found: dict, kind: str = "rule") -> dict[str, set[str]]:
    """{category: {detail up to its first ':' or quote}} of the entries of one kind that are not drift."""
    result: dict[str, set[str]] = {}
    for entry in found["drift"]:
        if entry["kind"] == kind and entry["change"] in ("adopted", "hand"):
            result.setdefault(entry["category"], set()).add(entry["detail"].split(" '")[0].split(":")[0])
    return result


@pytest.fixture
def estate(cloud: MotoCloud, tmp_path: Path):
    seeded = seed_estate(cloud, resolve_specs(SPECS, date.fromisoformat(AS_OF), Reporter()).estate)
    specs = rewrite_spec_ids(SPECS, tmp_path / "specs", seeded.substitutions)
    return seeded, specs, tmp_path / "generated"


def test_drift_names_hand_rules_and_import_reproduces_them(cloud: MotoCloud, estate) -> None:
    seeded, specs, out = estate
    nodes, nlb = seeded.groups["prod-use1-nodes"], seeded.groups["payments-api-nlb"]
    batch, db_euw1, db_use1 = (seeded.groups[g] for g in ("legacy-batch-use1", "legacy-db-euw1", "legacy-db-use1"))
    # The billing team's access to the payments API was made by hand: its grant is not in the specs yet.
    remove_grant(specs, "billing-to-payments-api")
    build(specs, out)
    use1, euw1 = "us-east-1", "eu-west-1"
    hand_rule(cloud, use1, nodes, 9102, "10.10.40.41/32", "prometheus")  # identical to a generated rule
    hand_rule(cloud, use1, batch, 9001, "10.40.0.0/20", "indexer data port")  # narrower than a generated one
    hand_rule(cloud, euw1, db_euw1, 22, "10.0.0.0/8", "ssh from anywhere")  # unrelated
    hand_rule(cloud, use1, db_use1, 3306, "10.40.0.0/20", "mysql from the cluster")  # some workload
    for cidr in ("10.10.20.21/32", "10.10.20.22/31", "10.20.20.21/32"):  # billing -> payments-api, by hand
        hand_rule(cloud, use1, nlb, 443, cidr, "billing invoices")
    # the batch hosts of us-east-1 (a group that restricts egress) may call fraud-score's grpc port (pod-ip)
    hand_rule(cloud, use1, batch, 9090, "10.40.64.0/18", "fraud checks", direction="egress")
    apply_generated(cloud, out)

    code, found = drift(cloud, specs, out)
    assert code == 0, found  # hand rules are a report, not drift
    assert [e for e in found["drift"] if e["change"] in ("missing", "extra", "changed")] == []
    assert by_category(found) == {
        "adopted": {f"{nodes} ingress tcp/9102 from 10.10.40.41/32"},
        "covered": {f"{batch} ingress tcp/9001 from 10.40.0.0/20"},
        "uncovered": {f"{db_euw1} ingress tcp/22 from 10.0.0.0/8", f"{db_use1} ingress tcp/3306 from 10.40.0.0/20",
                      f"{batch} egress tcp/9090 to 10.40.64.0/18",
                      f"{nlb} ingress tcp/443 from 10.10.20.21/32", f"{nlb} ingress tcp/443 from 10.10.20.22/31",
                      f"{nlb} ingress tcp/443 from 10.20.20.21/32"}}
    generated = sum(len(rules_of(s.template)) for s in load_plan(out))
    assert found["migration"]["rules"] == {"uncovered": 6, "covered": 1, "adopted": 1, "managed": generated - 1}
    ssh = next(e for e in found["drift"] if "tcp/22 " in e["detail"])
    assert ssh["where"] == f"legacy-db-euw1 ({db_euw1})"
    assert "no grant allows 10.0.0.0/8 on tcp/22" in ssh["detail"]
    code, output = netgen("drift", "--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url",
                          cloud.endpoint_url)
    assert code == 0, output
    assert (f"migration: 6 hand rule(s) covered by no grant, 1 covered, 1 adopted, {generated - 1} managed"
            in output), output
    assert "drift: none" in output and "hand rule (covered by no grant): legacy-db-euw1" in output
    assert f"adopted rule: prod-use1-nodes ({nodes}): {nodes} ingress tcp/9102 from 10.10.40.41/32" in output
    code, _ = drift(cloud, specs, out, "--strict")
    assert code == 1

    # import-grants: the billing rules become one grant from the host group, the egress rule one per batch host
    # of the group (the host group batch has hosts elsewhere too); the rest is listed, not guessed
    imported = specs / "access/imported.yaml"
    code, output = import_grants(cloud, specs, "--out", imported)
    assert code == 0, output
    text = imported.read_text()
    assert text.count("kind: Grant") == 3, text
    assert "  from: {hostGroup: billing}\n  to: {service: payments/payments-api, ports: [https]}\n" in text
    for host in ("batch-use1-01", "batch-use1-02"):
        assert f"  from: {{host: {host}}}\n  to: {{service: payments/fraud-score, ports: [grpc]}}\n" in text
        assert f"name: imported-{host}-to-fraud-score\n" in text
    assert f"reason: imported from {batch} egress tcp/9090 10.40.64.0/18 ('fraud checks')\n" in text
    assert "owner: TODO-owner" in text and "name: imported-billing-to-payments-api" in text
    for cidr in ("10.10.20.21/32", "10.10.20.22/31", "10.20.20.21/32"):
        assert f"{nlb} ingress tcp/443 {cidr} ('billing invoices')" in text
    assert f"# - {db_euw1} ingress tcp/22 10.0.0.0/8 ('ssh from anywhere'), group legacy-db-euw1" in text
    assert f"# - {db_use1} ingress tcp/3306 10.40.0.0/20 ('mysql from the cluster'), group legacy-db-use1" in text
    assert "which one needs the access cannot be told" in text
    assert ("grant to write: from: {workload: <namespace/name>}  to: {host: <each of db-use1-01, db-use1-02, one "
            "grant each; or a host group of them>, ports: [3306]} (workloads of prod-use1 in the inventory: "
            "ledger/ledger-exporter, payments/settlement-worker, search/indexer)") in text
    assert "import-grants: wrote" in output and "3 grant(s) covering 4 hand rule(s)" in output
    assert "not imported: " in output and "tcp/22" in output

    code, output = netgen("validate", "--specs", specs, "--as-of", AS_OF)
    assert code == 0, output
    build(specs, out)
    generated_rules = {r.key for s in load_plan(out) for r in rules_of(s.template)}
    for cidr in ("10.10.20.21/32", "10.10.20.22/31", "10.20.20.21/32"):  # reproduced exactly
        assert (nlb, "ingress", "tcp", 443, 443, cidr) in generated_rules
    # the build adds the grant's other hops (cluster group, health checks): missing until deployed
    code, found = drift(cloud, specs, out)
    assert code == 1
    missing = {(e["kind"], e["category"]) for e in found["drift"] if e["change"] == "missing"}
    assert ("rule", "managed") in missing and missing <= {("rule", "managed"), ("route", "managed")}
    assert not [e for e in found["drift"] if e["change"] in ("extra", "changed")]
    apply_generated(cloud, out)
    code, found = drift(cloud, specs, out)
    assert code == 0, found
    categories = by_category(found)
    assert categories["uncovered"] == {f"{db_euw1} ingress tcp/22 from 10.0.0.0/8",
                                       f"{db_use1} ingress tcp/3306 from 10.40.0.0/20"}
    assert len(categories["adopted"]) == 5 and categories["covered"] == {f"{batch} ingress tcp/9001 from 10.40.0.0/20"}
    # a second import finds nothing new to import, and lists the same two rules
    code, output = import_grants(cloud, specs, "--out", specs / "access/imported-again.yaml")
    assert code == 0, output
    assert "0 grant(s)" in output and output.count("not imported: ") == 2, output
    # the same file is replaced only with --force; its grants are then imported again, the same
    code, output = import_grants(cloud, specs, "--out", imported)
    assert code == 2 and "exists: pass --force" in output
    (specs / "access/imported-again.yaml").unlink()
    code, output = import_grants(cloud, specs, "--out", imported, "--force")
    assert code == 0, output
    assert imported.read_text() == text


def test_routes_adopted_and_hand(cloud: MotoCloud, estate) -> None:
    seeded, specs, out = estate
    build(specs, out)
    # a hand peering between the legacy VPC and the cluster VPC in us-east-1, and two hand routes through it
    ec2 = cloud.ec2(LEGACY, "us-east-1")
    legacy, k8s = seeded.vpcs["legacy-use1"], seeded.vpcs["k8s-use1"]
    pid = ec2.create_vpc_peering_connection(VpcId=legacy.vpc_id, PeerVpcId=k8s.vpc_id)[
        "VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)
    table = next(iter(k8s.route_tables.values()))
    wanted = sorted(r.cidr for s in load_plan(out) for r in routes_of(s.template)
                    if r.table == table and IPv4Network(r.cidr).subnet_of(IPv4Network("10.10.0.0/16")))
    assert wanted
    ec2.create_route(RouteTableId=table, DestinationCidrBlock=wanted[0], VpcPeeringConnectionId=pid)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="10.11.0.0/16", VpcPeeringConnectionId=pid)
    apply_generated(cloud, out)
    code, found = drift(cloud, specs, out)
    assert code == 0, found
    assert by_category(found, "route") == {"adopted": {f"{wanted[0]} -> {pid}"},
                                           "uncovered": {f"10.11.0.0/16 -> {pid}"}}
    routes = found["migration"]["routes"]
    assert routes["adopted"] == 1 and routes["uncovered"] == 1 and routes["managed"] > 10
    # a generated route sent elsewhere is drift
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock=wanted[0], GatewayId=ec2.create_internet_gateway()[
        "InternetGateway"]["InternetGatewayId"])
    code, found = drift(cloud, specs, out)
    assert code == 1
    assert [(e["kind"], e["change"]) for e in found["drift"] if e["change"] == "changed"] == [("route", "changed")]


def test_import_from_flow_logs(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    import shutil

    shutil.copytree(SPECS, specs)
    remove_grant(specs, "monitoring-to-fraud-score-metrics")
    logs = tmp_path / "flows.log"
    logs.write_text("\n".join([
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
        "log-status",
        # mon-use1-01 scrapes fraud-score metrics (pod IP, pod-ip service), twice, from ephemeral ports
        "2 123456789012 eni-1 10.10.40.41 10.40.70.5 45001 9102 6 10 840 1700000000 1700000060 ACCEPT OK",
        "2 123456789012 eni-1 10.10.40.41 10.40.70.5 45002 9102 6 10 840 1700000000 1700000060 ACCEPT OK",
        # ... and the replies
        "2 123456789012 eni-2 10.40.70.5 10.10.40.41 9102 45001 6 10 840 1700000000 1700000060 ACCEPT OK",
        # billing -> payments-api through the NLB: already granted
        "2 123456789012 eni-3 10.10.20.21 10.40.32.10 45003 443 6 5 400 1700000000 1700000060 ACCEPT OK",
        # rejected: not access that exists
        "2 123456789012 eni-4 10.10.40.41 10.40.70.5 45004 9090 6 1 40 1700000000 1700000060 REJECT OK",
        # a node (some workload, SNAT) to a database on a port no grant has
        "2 123456789012 eni-5 10.40.3.7 10.10.10.11 41000 3306 6 3 180 1700000000 1700000060 ACCEPT OK",
        "2 123456789012 eni-6 - - - - - - - 1700000000 1700000060 - NODATA",
    ]) + "\n")
    out = specs / "access/imported.yaml"
    code, output = netgen("import-grants", "--specs", specs, "--as-of", AS_OF, "--no-rules", "--flow-logs", logs,
                          "--out", out)
    assert code == 0, output
    text = out.read_text()
    assert text.count("kind: Grant") == 1, text
    assert "  from: {host: mon-use1-01}\n  to: {service: payments/fraud-score, ports: [metrics]}\n" in text
    assert "flow logs 10.10.40.41 -> 10.40.70.5 tcp/9102 (2 accepted records)" in text
    assert "10.40.3.7 (node subnets of cluster prod-use1) -> db-use1-01 (10.10.10.11) tcp/3306" in text
    assert "9090" not in text and "443" not in text.split("# Not imported")[0].split("kind: Grant")[1]
    code, output = netgen("validate", "--specs", specs, "--as-of", AS_OF)
    assert code == 0, output
    code, output = netgen("import-grants", "--specs", specs, "--as-of", AS_OF, "--no-rules", "--out", out)
    assert code == 2 and "nothing to import from" in output


def test_coverage_of_a_rule_is_exact() -> None:
    allowed = [(*interval(IPv4Network("10.40.0.0/19")), 9000, 9003), (*interval(IPv4Network("10.40.0.0/19")), 873, 873)]
    assert uncovered_pieces(interval(IPv4Network("10.40.0.0/20")), 9001, 9001, allowed) == []
    assert uncovered_pieces(interval(IPv4Network("10.40.0.0/19")), 873, 873, allowed) == []
    gaps = uncovered_pieces(interval(IPv4Network("10.40.0.0/18")), 9002, 9005, allowed)
    assert gaps == [(*interval(IPv4Network("10.40.0.0/18")), 9004, 9005),
                    (*interval(IPv4Network("10.40.32.0/19")), 9002, 9003)]
    assert pieces_text(gaps, "tcp") == "10.40.32.0/19 on tcp/9002-9003; 10.40.0.0/18 on tcp/9004-9005"
    resolved = resolve_specs(SPECS, date.fromisoformat(AS_OF), Reporter())
    coverage = Coverage(resolved.estate, resolved.flows)
    group = "sg-0a1000000000000a3"  # legacy-batch-use1
    assert coverage.category(RuleSpec(group, "ingress", "6", 9000, 9001, "10.40.16.0/20")) == "covered"
    assert coverage.why_uncovered(RuleSpec(group, "ingress", "tcp", 872, 873, "10.40.0.0/19")) == (
        "no grant allows 10.40.0.0/19 on tcp/872")
    assert coverage.why_uncovered(RuleSpec(group, "ingress", "-1", -1, -1, "10.40.0.0/19")) == (
        "allows all protocols and ports")
    assert "a security group" in coverage.why_uncovered(RuleSpec(group, "ingress", "tcp", 22, 22, "sg-0123"))
