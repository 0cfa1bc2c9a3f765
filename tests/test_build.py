"""The build stage: generated CloudFormation and NetworkPolicies are valid and exact, the committed generated/
is fresh, builds are deterministic, stable, atomic, --check reports staleness, and quotas fail the build."""

from __future__ import annotations

import json
import re
import shutil
from collections import OrderedDict, defaultdict
from ipaddress import IPv4Network, collapse_addresses
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from buildhelpers import (
    AS_OF_DATE,
    REPO,
    build,
    build_ok,
    copy_specs,
    covered_by,
    document_line,
    group_template,
    mtimes,
    network_template,
    policies,
    rect,
    replace_once,
    resources,
    same_union,
    scatter_specs,
    sg_rule_problems,
    snapshot,
    split_documents,
    templates,
    tree,
)
from cfnlint.api import ManualArgs, lint
from hypothesis import example as hypothesis_example
from hypothesis import given, settings
from hypothesis import strategies as st

from netgen.diagnostics import Reporter
from netgen.loader import load_tree
from netgen.pipeline import Resolved, resolve_specs
from netgen.render import OWNED
from netgen.targets.aws_names import description
from netgen.targets.kubernetes import _block, dns_label
from netgen.targets.kubernetes import dump as kubernetes_dump

KUBERNETES_VERSION = "1.30.0"
SG_TYPES = ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """A fresh build of the example estate (specs/ of the repository) in a private folder."""
    out = tmp_path_factory.mktemp("example") / "out"
    build_ok(out)
    return out


@pytest.fixture(scope="module")
def resolved() -> Resolved:
    return resolve_specs(REPO / "specs", AS_OF_DATE, Reporter())


def _vpc_of_table(resolved: Resolved) -> dict[str, str]:
    return {table: vpc.name for vpc in resolved.estate.vpcs for table in vpc.route_tables}


def _gateway_peers(resolved: Resolved) -> dict[tuple[str, str], set[str]]:
    """{(VPC name, transit gateway id): the VPCs its flows reach through that gateway}, from the flows' paths: a
    VPC routes to the first gateway of the path toward its peer."""
    peers: dict[tuple[str, str], set[str]] = defaultdict(set)
    for flow in resolved.flows:
        if flow.path.transit:
            peers[(flow.path.source_vpc, flow.path.transit[0])].add(flow.path.destination_vpc)
            peers[(flow.path.destination_vpc, flow.path.transit[-1])].add(flow.path.source_vpc)
    return peers


def _route_peer(route: dict, path: str, vpc: str, resolved: Resolved,
                peerings: dict[tuple[str, str], frozenset[str]]) -> str:
    """The VPC (name) a route of VPC `vpc` leads to: the other end of its peering, or, for a route to a transit
    gateway, the one VPC reached through that gateway whose CIDRs hold the destination."""
    vpcs = {v.name: v for v in resolved.estate.vpcs}
    names = {v.vpc_id: v.name for v in resolved.estate.vpcs}
    props = route["Properties"]
    if "TransitGatewayId" in props:
        destination = IPv4Network(props["DestinationCidrBlock"])
        (peer,) = [name for name in _gateway_peers(resolved)[(vpc, props["TransitGatewayId"])]
                   if covered_by([destination], vpcs[name].cidrs)]
        return peer
    pair = {names[i] for i in peerings[(path, props["VpcPeeringConnectionId"]["Ref"])]}
    assert vpc in pair, (path, props)
    (peer,) = pair - {vpc}
    return peer


def _peering_vpcs(out: Path) -> dict[tuple[str, str], frozenset[str]]:
    """{(template, Ref name usable in it): the two VPC ids of that peering}, from the plan and the outputs."""
    plan = json.loads((out / "aws/deploy-plan.json").read_text())
    tpls = templates(out)
    by_stack = {s["stack"]: s for s in plan["stacks"]}
    pairs = {(s["template"], p["peering"]): frozenset((p["requesterVpc"], p["accepterVpc"]))
             for s in plan["stacks"] for p in s["peerings"]}
    for s in plan["stacks"]:
        for parameter, source in s["parameters"].items():
            owner = by_stack[source["stack"]]["template"]
            peering = tpls[owner]["Outputs"][source["output"]]["Value"]["Ref"]
            pairs[(s["template"], parameter)] = pairs[(owner, peering)]
    return pairs


# ---------------------------------------------------------------------------------------------------------
# 1. CloudFormation: cfn-lint, netgen's own rule checks, routes, peerings, exactness
# ---------------------------------------------------------------------------------------------------------


def _expected_templates(resolved: Resolved) -> set[str]:
    """One network stack per (account, region) with a peered VPC; one stack per security group that gets rules."""
    groups = {g.name: g for g in resolved.estate.security_groups}
    vpcs = {v.name: v for v in resolved.estate.vpcs}
    expected = set()
    for flow in resolved.flows:
        if flow.path.peered:
            expected |= {network_template(vpcs[flow.path.source_vpc]),
                         network_template(vpcs[flow.path.destination_vpc])}
        if flow.destination.security_group:
            expected.add(group_template(groups[flow.destination.security_group]))
        source = groups.get(flow.source.security_group or "")
        if source and source.restricts_egress:
            expected.add(group_template(source))
    return expected


def test_example_build_writes_templates_for_every_stack(example, resolved):
    assert sorted(templates(example)) == sorted(_expected_templates(resolved))
    assert sorted(templates(example)) == [
        "aws/acme-legacy/eu-west-1/network.json",
        "aws/acme-legacy/eu-west-1/sg-legacy-batch-euw1.json",
        "aws/acme-legacy/eu-west-1/sg-legacy-billing-euw1.json",
        "aws/acme-legacy/eu-west-1/sg-legacy-db-euw1.json",
        "aws/acme-legacy/eu-west-1/sg-legacy-erp-euw1.json",
        "aws/acme-legacy/us-east-1/network.json",
        "aws/acme-legacy/us-east-1/sg-internal-dns-nlb.json",
        "aws/acme-legacy/us-east-1/sg-legacy-batch-use1.json",
        "aws/acme-legacy/us-east-1/sg-legacy-billing-use1.json",
        "aws/acme-legacy/us-east-1/sg-legacy-db-use1.json",
        "aws/acme-legacy/us-east-1/sg-loyalty-app-use1.json",
        "aws/acme-legacy/us-east-1/sg-payments-api-nlb.json",
        "aws/acme-legacy/us-east-1/sg-prod-use1-nodes.json",
        "aws/acme-platform/us-west-2/network.json",
        "aws/acme-platform/us-west-2/sg-prod-usw2-nodes.json",
    ]


def test_network_stacks_hold_only_network_resources_and_group_stacks_only_their_rules(example, resolved):
    groups = {g.group_id: g for g in resolved.estate.security_groups}
    for path, template in templates(example).items():
        kinds = {r["Type"] for r in template["Resources"].values()}
        if path.endswith("/network.json"):
            assert kinds <= {"AWS::EC2::VPCPeeringConnection", "AWS::EC2::Route", "AWS::EC2::TransitGatewayRoute"}, \
                (path, kinds)
        else:
            assert kinds and kinds <= set(SG_TYPES), (path, kinds)
            assert "Parameters" not in template and "Outputs" not in template, path
            assert {group_template(groups[r["Properties"]["GroupId"]]) for r in template["Resources"].values()} \
                == {path}


def test_every_template_passes_cfn_lint_for_its_region(example):
    # No matches at all: errors, warnings and informational findings are all treated as failures.
    for path, template in templates(example).items():
        region = Path(path).parent.name
        matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
        assert not matches, f"{path}: " + "; ".join(f"{m.rule.id} {m.message}" for m in matches)


def test_cfn_lint_harness_reports_a_broken_template(example):
    """Guard for the test above: the same call does flag a broken template (of either kind)."""
    group = templates(example)["aws/acme-legacy/eu-west-1/sg-legacy-db-euw1.json"]
    rule = next(r for r in group["Resources"].values() if r["Type"] in SG_TYPES)
    rule["Properties"]["CidrIp"] = "10.0.0.0/33"
    network = templates(example)["aws/acme-legacy/eu-west-1/network.json"]
    route = next(r for r in network["Resources"].values() if r["Type"] == "AWS::EC2::Route")
    route["Properties"]["VpcPeeringConnectionId"] = {"Ref": "NoSuchPeering"}
    ids = {m.rule.id for m in lint(json.dumps(group), config=ManualArgs(regions=["eu-west-1"]))}
    assert "E3002" in ids
    ids = {m.rule.id for m in lint(json.dumps(network), config=ManualArgs(regions=["eu-west-1"]))}
    assert "E1020" in ids


def test_every_security_group_rule_passes_netgen_checks(example):
    rules = {key: r for key, r in resources(example).items() if r["Type"] in SG_TYPES}
    assert len(rules) > 20
    problems = {key: sg_rule_problems(r) for key, r in rules.items()}
    assert {k: p for k, p in problems.items() if p} == {}


GOOD_RULE = {"CidrIp": "10.0.0.0/24", "Description": "netgen: a-b, c_d (x) [y] @z #1 +2 =3; {4}! $5 *6",
             "FromPort": 80, "ToPort": 90, "GroupId": "sg-12345678", "IpProtocol": "tcp"}


@pytest.mark.parametrize("change", [
    {"FromPort": -1}, {"ToPort": 65536}, {"FromPort": "80"}, {"FromPort": True}, {"FromPort": 91},
    {"Description": "x" * 256}, {"Description": "netgen: caf\u00e9"}, {"Description": "a<b>"},
    {"CidrIp": "10.0.0.1/24"}, {"CidrIp": "10.0.0.0/33"}, {"CidrIp": "010.0.0.0/24"}, {"CidrIp": "fd00::/8"},
    {"IpProtocol": "-1"}, {"IpProtocol": "icmp"}, {"IpProtocol": "6"},
])
def test_netgen_rule_checks_reject_bad_rules(change):
    assert sg_rule_problems({"Properties": GOOD_RULE}) == []
    assert sg_rule_problems({"Properties": {**GOOD_RULE, **change}})


def test_every_route_stays_inside_the_peer_vpc(example, resolved):
    vpcs = {v.name: v for v in resolved.estate.vpcs}
    table_vpc = _vpc_of_table(resolved)
    peerings = _peering_vpcs(example)
    routes = [(path, r) for (path, _), r in resources(example).items() if r["Type"] == "AWS::EC2::Route"]
    assert len(routes) > 10
    assert any("TransitGatewayId" in r["Properties"] for _, r in routes)  # (loyalty-use1 and k8s-use1's)
    for path, route in routes:
        props = route["Properties"]
        peer = _route_peer(route, path, table_vpc[props["RouteTableId"]], resolved, peerings)
        destination = IPv4Network(props["DestinationCidrBlock"])
        assert str(destination) == props["DestinationCidrBlock"]
        assert covered_by([destination], vpcs[peer].cidrs), (path, props, peer)


def test_routes_cover_exactly_the_peer_addresses_that_flows_use(example, resolved):
    needed: dict[tuple[str, str], set[IPv4Network]] = defaultdict(set)
    for flow in resolved.flows:
        if flow.path.source_vpc != flow.path.destination_vpc:
            needed[(flow.path.source_vpc, flow.path.destination_vpc)].update(flow.destination.addresses)
            needed[(flow.path.destination_vpc, flow.path.source_vpc)].update(flow.source.addresses)
    table_vpc = _vpc_of_table(resolved)
    peerings = _peering_vpcs(example)
    actual: dict[tuple[str, str], dict[str, set[IPv4Network]]] = defaultdict(lambda: defaultdict(set))
    for (path, _), r in resources(example).items():
        if r["Type"] == "AWS::EC2::Route":
            props = r["Properties"]
            vpc = table_vpc[props["RouteTableId"]]
            peer = _route_peer(r, path, vpc, resolved, peerings)
            actual[(vpc, peer)][props["RouteTableId"]].add(IPv4Network(props["DestinationCidrBlock"]))
    assert set(actual) == set(needed)
    vpcs = {v.name: v for v in resolved.estate.vpcs}
    for (vpc, peer), tables in actual.items():
        assert set(tables) == set(vpcs[vpc].route_tables), (vpc, peer)
        for table, nets in tables.items():
            assert list(collapse_addresses(nets)) == sorted(nets), (table, "routes are not minimal")
            assert list(collapse_addresses(nets)) == list(collapse_addresses(needed[(vpc, peer)])), (vpc, peer)


def test_security_group_rules_allow_exactly_the_flows(example, resolved):
    groups = {g.name: g for g in resolved.estate.security_groups}
    expected: dict[tuple, list] = defaultdict(list)
    for flow in resolved.flows:
        p, proto = flow.ports, flow.ports.protocol.lower()
        if flow.destination.security_group:
            group = groups[flow.destination.security_group]
            expected[(group.group_id, SG_TYPES[0], proto)] += [rect(n, p.first, p.last)
                                                               for n in flow.source.addresses]
        source = groups.get(flow.source.security_group or "")
        if source and source.restricts_egress:
            expected[(source.group_id, SG_TYPES[1], proto)] += [rect(n, p.first, p.last)
                                                                for n in flow.destination.addresses]
    actual: dict[tuple, list] = defaultdict(list)
    for (path, _), r in resources(example).items():
        if r["Type"] in SG_TYPES:
            props = r["Properties"]
            group = next(g for g in groups.values() if g.group_id == props["GroupId"])
            assert path == f"aws/{group.vpc.account.name}/{group.vpc.region}/sg-{group.name}.json", \
                "rule in the wrong stack"
            actual[(props["GroupId"], r["Type"], props["IpProtocol"])].append(
                rect(IPv4Network(props["CidrIp"]), props["FromPort"], props["ToPort"]))
    assert set(actual) == set(expected)
    for key in expected:
        assert same_union(actual[key], expected[key]), key
        assert len(set(actual[key])) == len(actual[key]), f"duplicate rules in {key}"


def _descriptions_name_the_grants_behind_each_rule(out: Path, resolved: Resolved) -> int:
    """Checks that each rule's description names exactly the grants of the flows that allow some (address, port)
    pair of the rule; returns the number of rules."""
    groups = {g.name: g for g in resolved.estate.security_groups}
    allowed: dict[tuple, list] = defaultdict(list)  # (group id, type, protocol) -> [(net, ports, grant names)]
    for flow in resolved.flows:
        p, names = flow.ports, {g.name for g in flow.grants}
        ends = [(flow.destination.security_group, SG_TYPES[0], flow.source.addresses)]
        source = groups.get(flow.source.security_group or "")
        if source and source.restricts_egress:
            ends.append((source.name, SG_TYPES[1], flow.destination.addresses))
        for group, kind, nets in ends:
            if group:
                allowed[(groups[group].group_id, kind, p.protocol.lower())] += [(n, p.first, p.last, names)
                                                                                for n in nets]
    described = 0
    for r in resources(out).values():
        if r["Type"] in SG_TYPES:
            props = r["Properties"]
            cidr = IPv4Network(props["CidrIp"])
            behind = set().union(*(names for net, first, last, names in allowed[(props["GroupId"], r["Type"],
                                                                                  props["IpProtocol"])]
                                   if net.overlaps(cidr) and first <= props["ToPort"] and props["FromPort"] <= last))
            assert behind and props["Description"] == description(tuple(behind)), props
            described += 1
    return described


def test_rule_descriptions_name_the_grants_behind_them(example, resolved):
    assert _descriptions_name_the_grants_behind_each_rule(example, resolved) > 10


def test_a_rule_names_only_the_grants_of_its_own_addresses(tmp_path):
    """billing-use1-01..03 (10.10.20.21-23) allow the same port, so they make one run of addresses, covered by
    10.10.20.21/32 and 10.10.20.22/31; a grant for billing-use1-01 alone belongs to the first rule only."""
    specs = copy_specs(tmp_path)
    with (specs / "access/billing.yaml").open("a") as f:
        f.write("---\napiVersion: netgen.dev/v1alpha1\nkind: Grant\nmetadata:\n  name: billing-01-to-payments-api\n"
                "spec:\n  owner: team-billing\n  reason: The first billing host posts invoices on its own too\n"
                "  from: {host: billing-use1-01}\n  to: {service: payments/payments-api, ports: [https]}\n")
    assert build(tmp_path / "out", cwd=tmp_path).exit_code == 0
    resolved = resolve_specs(specs, AS_OF_DATE, Reporter())
    assert _descriptions_name_the_grants_behind_each_rule(tmp_path / "out", resolved) > 10
    descriptions = {r["Properties"]["CidrIp"]: r["Properties"]["Description"]
                    for r in resources(tmp_path / "out").values()
                    if r["Type"] == SG_TYPES[0] and r["Properties"]["CidrIp"].startswith("10.10.20.2")
                    and "billing-to-payments-api" in r["Properties"]["Description"]}
    assert descriptions == {"10.10.20.21/32": "netgen: billing-01-to-payments-api, billing-to-payments-api",
                            "10.10.20.22/31": "netgen: billing-to-payments-api"}


def test_peerings_sit_in_the_requester_stack_with_the_right_peer_properties(example, resolved):
    vpcs = {v.vpc_id: v for v in resolved.estate.vpcs}
    count = 0
    for path, template in templates(example).items():
        for r in template["Resources"].values():
            if r["Type"] != "AWS::EC2::VPCPeeringConnection":
                continue
            count += 1
            props = r["Properties"]
            req, acc = vpcs[props["VpcId"]], vpcs[props["PeerVpcId"]]
            assert path == f"aws/{req.account.name}/{req.region}/network.json"
            assert (req.account.account_id, req.region, req.name) < (acc.account.account_id, acc.region, acc.name)
            assert props.get("PeerRegion") == (acc.region if acc.region != req.region else None)
            cross_account = acc.account.account_id != req.account.account_id
            assert props.get("PeerOwnerId") == (acc.account.account_id if cross_account else None)
            assert props.get("PeerRoleArn") == (acc.account.accept_role_arn if cross_account else None)
    peered = {frozenset((f.path.source_vpc, f.path.destination_vpc)) for f in resolved.flows
              if f.path.peered and not f.path.transit}  # (loyalty-use1 and k8s-use1: through tgw-use1)
    assert count == len(peered) == 4


def test_deploy_plan_orders_stacks_so_parameters_come_from_earlier_outputs(example):
    plan = json.loads((example / "aws/deploy-plan.json").read_text())
    tpls = templates(example)
    assert sorted(s["template"] for s in plan["stacks"]) == sorted(tpls)
    done: dict[str, str] = {}
    order = [(s["account"], s["region"], Path(s["template"]).stem != "network", Path(s["template"]).stem)
             for s in plan["stacks"]]
    assert order == sorted(order), "stacks not sorted by (account id, region, part), network first"
    for stack in plan["stacks"]:
        template = tpls[stack["template"]]
        part = Path(stack["template"]).stem
        assert part == "network" or part.startswith("sg-"), part
        assert stack["template"] == f"aws/{stack['accountName']}/{stack['region']}/{part}.json"
        assert stack["stack"] == f"netgen-{stack['accountName']}-{stack['region']}-{part}"
        if part != "network":  # a group's stack takes nothing from other stacks and requests no peering
            assert stack["parameters"] == {} and stack["dependsOn"] == [] and stack["peerings"] == [], stack
        assert set(stack["parameters"]) == set(template.get("Parameters", {}))
        for source in stack["parameters"].values():
            assert source["stack"] in done, f"{stack['stack']} needs {source['stack']} first"
            assert source["output"] in tpls[done[source["stack"]]]["Outputs"]
        assert stack["dependsOn"] == sorted({s["stack"] for s in stack["parameters"].values()})
        done[stack["stack"]] = stack["template"]


# ---------------------------------------------------------------------------------------------------------
# 2. Kubernetes: kubernetes-validate (strict), names, labels, annotations, kustomization, exactness
# ---------------------------------------------------------------------------------------------------------


def test_every_network_policy_passes_kubernetes_validate_strict(example):
    found = policies(example)
    assert len(found) == 11
    for path, document in found.items():
        assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True), path


def test_kubernetes_validate_harness_rejects_a_broken_policy(example):
    document = next(iter(policies(example).values()))
    document["spec"]["podSelctor"] = document["spec"].pop("podSelector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_policy_names_labels_annotations_and_paths(example, resolved):
    grant_names = {g.name for g in resolved.estate.grants}
    clusters = {c.name for c in resolved.estate.clusters}
    for path, document in policies(example).items():
        _, cluster, namespace, filename = path.split("/")
        meta = document["metadata"]
        assert cluster in clusters
        assert document["kind"] == "NetworkPolicy" and document["apiVersion"] == "networking.k8s.io/v1"
        assert DNS_LABEL.fullmatch(meta["name"]) and len(meta["name"]) <= 63, meta["name"]
        assert filename == f"{meta['name']}.yaml" and meta["namespace"] == namespace
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "netgen"
        named = meta["annotations"]["netgen.dev/grants"].split(",")
        assert named == sorted(set(named)) and set(named) <= grant_names, path


def test_kustomization_lists_exactly_the_manifests_of_its_cluster(example):
    clusters = sorted(p.name for p in (example / "kubernetes").iterdir())
    assert clusters == ["prod-use1", "prod-usw2"]
    for cluster in clusters:
        folder = example / "kubernetes" / cluster
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
        assert kustomization["kind"] == "Kustomization"
        manifests = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml")
                           if p.name != "kustomization.yaml")
        assert kustomization["resources"] == manifests
        assert set(kustomization) == {"apiVersion", "kind", "resources"}


def test_policies_allow_exactly_the_flows_into_and_out_of_isolated_pods(example, resolved):
    modes = {c.name: c.namespaces for c in resolved.estate.clusters}
    expected: dict[tuple, list] = defaultdict(list)
    grants: dict[tuple, set[str]] = defaultdict(set)
    for flow in resolved.flows:
        for direction, end, peers in (("Ingress", flow.destination, flow.source.addresses),
                                      ("Egress", flow.source, flow.destination.addresses)):
            if end.pods and getattr(modes[end.pods.cluster][end.pods.namespace], direction.lower()) == \
                    "default-deny":
                key = (end.pods.cluster, end.pods.namespace, tuple(sorted(end.pods.selector)), direction)
                expected[key] += [(flow.ports.protocol, rect(n, flow.ports.first, flow.ports.last))
                                  for n in peers]
                grants[key].update(g.name for g in flow.grants)
    actual: dict[tuple, list] = {}
    for path, document in policies(example).items():
        spec = document["spec"]
        (direction,) = spec["policyTypes"]
        key = (path.split("/")[1], document["metadata"]["namespace"],
               tuple(sorted(spec["podSelector"]["matchLabels"].items())), direction)
        assert key not in actual, f"two policies for {key}"
        peer_key = "from" if direction == "Ingress" else "to"
        allowed = []
        for rule in spec[direction.lower()]:
            assert set(rule) == {peer_key, "ports"}
            for peer in rule[peer_key]:
                for port in rule["ports"]:
                    net = IPv4Network(peer["ipBlock"]["cidr"])
                    allowed.append((port["protocol"], rect(net, port["port"], port.get("endPort", port["port"]))))
        actual[key] = allowed
        assert document["metadata"]["annotations"]["netgen.dev/grants"] == ",".join(sorted(grants[key]))
    assert set(actual) == set(expected)
    for key, entries in expected.items():
        for protocol in {p for p, _ in entries} | {p for p, _ in actual[key]}:
            assert same_union([r for p, r in actual[key] if p == protocol],
                              [r for p, r in entries if p == protocol]), (key, protocol)


# ---------------------------------------------------------------------------------------------------------
# 3. Golden files
# ---------------------------------------------------------------------------------------------------------


def test_committed_generated_folder_passes_check():
    run = build("generated", check=True)
    assert run.exit_code == 0, run.output
    assert "up to date" in run.stderr


def test_committed_generated_folder_equals_a_fresh_build_byte_for_byte(example):
    committed = tree(REPO / "generated")
    fresh = tree(example)
    assert sorted(committed) == sorted(fresh)
    assert [name for name in fresh if committed[name] != fresh[name]] == []
    owned = [line for line in fresh[OWNED].decode().splitlines() if not line.startswith("#")]
    assert owned == sorted(set(fresh) - {OWNED})


# ---------------------------------------------------------------------------------------------------------
# 4. Determinism
# ---------------------------------------------------------------------------------------------------------

GRANT_LOCATION = re.compile(r"@\S+:\d+")


def test_building_twice_gives_identical_bytes(tmp_path, example):
    build_ok(tmp_path / "a")
    build_ok(tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b") == tree(example)


@pytest.mark.parametrize("seed", [1, 2])
def test_documents_split_and_shuffled_across_files_give_the_same_output(tmp_path, example, seed):
    count = scatter_specs(REPO / "specs", tmp_path / "scattered", seed)
    assert count == len(load_tree(REPO / "specs", Reporter())) == 81
    assert len(list((tmp_path / "scattered").rglob("*.yaml"))) == count
    build_ok(tmp_path / "out", cwd=tmp_path, specs="scattered")
    ours, theirs = tree(tmp_path / "out"), tree(example)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        if name != "flows.txt":
            assert ours[name] == theirs[name], name
    assert ours["flows.txt"] != theirs["flows.txt"]  # the grant locations do move ...
    strip = [GRANT_LOCATION.sub("@", x["flows.txt"].decode()) for x in (ours, theirs)]
    assert strip[0] == strip[1]  # ... and nothing else does
    assert "scattered/part-" in ours["flows.txt"].decode()


def test_split_documents_keeps_every_document():
    text = (REPO / "specs/inventory/vpcs.yaml").read_text()
    docs = split_documents(text)
    assert len(docs) == 5 and all(d.count("kind: Vpc") == 1 for d in docs)


# ---------------------------------------------------------------------------------------------------------
# 5. Stability, ownership and foreign files
# ---------------------------------------------------------------------------------------------------------

NEW_GRANT = """\
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: batch-to-metrics-gateway
spec:
  owner: team-observability
  reason: Batch hosts push job metrics to the west-coast gateway
  from: {hostGroup: batch}
  to: {service: reporting/metrics-gateway, ports: [push]}
"""

FOREIGN = {"README.txt": b"not netgen's\n", "kubernetes/prod-use1/custom.yaml": b"kind: ConfigMap\n",
           "kubernetes/prod-use1/ledger/keep.txt": b"mine\n"}


def _add_foreign_files(out: Path) -> None:
    for name, content in FOREIGN.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)


def _assert_foreign_files_intact(out: Path) -> None:
    for name, content in FOREIGN.items():
        assert (out / name).read_bytes() == content, name


def _owned(out: Path) -> set[str]:
    return {line for line in (out / OWNED).read_text().splitlines() if line and not line.startswith("#")}


def test_adding_a_grant_leaves_unrelated_resources_and_policies_alone(tmp_path):
    specs = copy_specs(tmp_path)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    before_resources, before_files = resources(out), tree(out)
    (specs / "access" / "zz-new.yaml").write_text(NEW_GRANT)
    build_ok(out, cwd=tmp_path)
    after_resources, after_files = resources(out), tree(out)

    new = resolve_specs(specs, AS_OF_DATE, Reporter())
    new_flows = [f for f in new.flows if "batch-to-metrics-gateway" in {g.name for g in f.grants}]
    assert new_flows
    groups = {g.name: g for g in new.estate.security_groups}
    touched_rules: dict[tuple[str, str, str], list[IPv4Network]] = defaultdict(list)
    touched_routes: dict[str, list[IPv4Network]] = defaultdict(list)
    for flow in new_flows:
        proto = flow.ports.protocol.lower()
        touched_rules[(groups[flow.destination.security_group].group_id, SG_TYPES[0], proto)] += \
            flow.source.addresses
        source = groups[flow.source.security_group]
        if source.restricts_egress:
            touched_rules[(source.group_id, SG_TYPES[1], proto)] += flow.destination.addresses
        if flow.path.peered:
            vpcs = {v.name: v for v in new.estate.vpcs}
            for vpc, peers in ((flow.path.source_vpc, flow.destination.addresses),
                               (flow.path.destination_vpc, flow.source.addresses)):
                for table in vpcs[vpc].route_tables:
                    touched_routes[table] += peers

    def touched(resource: dict) -> bool:
        props = resource["Properties"]
        if resource["Type"] in SG_TYPES:
            nets = touched_rules.get((props["GroupId"], resource["Type"], props["IpProtocol"]), [])
            return any(n.overlaps(IPv4Network(props["CidrIp"])) for n in nets)
        if resource["Type"] == "AWS::EC2::Route":
            nets = touched_routes.get(props["RouteTableId"], [])
            return any(n.overlaps(IPv4Network(props["DestinationCidrBlock"])) for n in nets)
        return False

    changed = [key for key, r in before_resources.items() if after_resources.get(key) != r and not touched(r)]
    assert changed == []
    added = set(after_resources) - set(before_resources)
    assert {after_resources[k]["Type"] for k in added} == {*SG_TYPES, "AWS::EC2::Route"}
    assert all(touched(after_resources[k]) for k in added)

    # Files: a group's stack changes when the group gets rules for the new flows (new rules, or the grant named
    # in the description of an existing one); a network stack only when a touched route table did not already
    # route all the new addresses. Nothing else: no other group's stack, no other network stack, no plan change.
    table_vpc = {table: vpc for vpc in new.estate.vpcs for table in vpc.route_tables}
    routed_before: dict[str, list[IPv4Network]] = defaultdict(list)
    for r in before_resources.values():
        if r["Type"] == "AWS::EC2::Route":
            routed_before[r["Properties"]["RouteTableId"]].append(IPv4Network(r["Properties"]["DestinationCidrBlock"]))
    by_id = {g.group_id: g for g in new.estate.security_groups}
    expected_aws = {group_template(by_id[group_id]) for group_id, _, _ in touched_rules}
    expected_aws |= {network_template(table_vpc[table]) for table, nets in touched_routes.items()
                     if not covered_by(nets, routed_before[table])}
    assert any(p.endswith("/network.json") for p in expected_aws)  # the case exercises both kinds of stack
    changed_files = {n for n in after_files if before_files.get(n) != after_files[n]}
    assert changed_files == {"flows.txt", *expected_aws,
                             "kubernetes/prod-usw2/reporting/netgen-ingress-metrics-gateway.yaml"}
    # ... which are exactly the templates holding the added or changed resources
    assert {p for p, _ in added} | {p for p, lid in before_resources if after_resources.get((p, lid))
                                    != before_resources[(p, lid)]} == expected_aws
    assert set(after_files) == set(before_files)


def test_removing_grants_deletes_their_output_and_keeps_foreign_files(tmp_path):
    specs = copy_specs(tmp_path)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    _add_foreign_files(out)
    owned_before, resources_before = _owned(out), resources(out)
    ledger = specs / "access" / "ledger.yaml"

    # 1. remove one grant: its policy, its only rule, its owned entry go; nothing else of the tree goes.
    docs = split_documents(ledger.read_text())
    ledger.write_text("---\n".join(d for d in docs if "name: erp-to-ledger-export" not in d))
    build_ok(out, cwd=tmp_path)
    policy = "kubernetes/prod-use1/ledger/netgen-ingress-ledger-export.yaml"
    assert not (out / policy).exists()
    assert _owned(out) == owned_before - {policy}
    after = resources(out)
    for key, r in resources_before.items():
        if r["Type"] in SG_TYPES and r["Properties"]["Description"] == "netgen: erp-to-ledger-export":
            assert key not in after
    assert not any("erp-to-ledger-export" in json.dumps(r) for r in after.values())
    kustomization = yaml.safe_load((out / "kubernetes/prod-use1/kustomization.yaml").read_text())
    assert "ledger/netgen-ingress-ledger-export.yaml" not in kustomization["resources"]
    _assert_foreign_files_intact(out)

    # 2. remove the whole file: the ledger-api policy goes too; the folder stays for the foreign file in it.
    ledger.unlink()
    build_ok(out, cwd=tmp_path)
    # ... and so does the stack of a group left without rules (legacy-erp-euw1 only served ledger-exporter-to-erp)
    remaining = _expected_templates(resolve_specs(specs, AS_OF_DATE, Reporter()))
    emptied = {name for name in owned_before if name.endswith(".json") and name.startswith("aws/")
               and name != "aws/deploy-plan.json" and name not in remaining}
    assert emptied == {"aws/acme-legacy/eu-west-1/sg-legacy-erp-euw1.json"}
    gone = {policy, "kubernetes/prod-use1/ledger/netgen-ingress-ledger-api.yaml", *emptied}
    plan = json.loads((out / "aws/deploy-plan.json").read_text())
    assert {s["template"] for s in plan["stacks"]} == remaining
    assert _owned(out) == owned_before - gone
    assert not any((out / name).exists() for name in gone)
    assert set(tree(out)) == _owned(out) | {OWNED} | set(FOREIGN)
    flows = (out / "flows.txt").read_text()
    assert "ledger.yaml" not in flows and "ledger-exporter-to-erp" not in flows
    _assert_foreign_files_intact(out)

    # 3. once the foreign file is gone, an emptied folder is removed with the last owned file in it.
    shutil.copy(REPO / "specs/access/ledger.yaml", ledger)
    build_ok(out, cwd=tmp_path)
    assert (out / policy).exists()
    (out / "kubernetes/prod-use1/ledger/keep.txt").unlink()
    ledger.unlink()
    build_ok(out, cwd=tmp_path)
    assert not (out / "kubernetes/prod-use1/ledger").exists()
    assert (out / "kubernetes/prod-use1/custom.yaml").read_bytes() == FOREIGN["kubernetes/prod-use1/custom.yaml"]
    assert (out / "README.txt").read_bytes() == FOREIGN["README.txt"]


def test_a_foreign_file_named_in_no_owned_list_survives_a_build_into_a_fresh_folder(tmp_path):
    out = tmp_path / "out"
    _add_foreign_files(out)
    build_ok(out)
    _assert_foreign_files_intact(out)
    assert set(tree(out)) == _owned(out) | {OWNED} | set(FOREIGN)


# ---------------------------------------------------------------------------------------------------------
# 6. Atomicity and no needless rewrites
# ---------------------------------------------------------------------------------------------------------


def _break_unknown_service(specs: Path) -> str:
    replace_once(specs / "access/billing.yaml", "service: payments/payments-api", "service: payments/nope")
    return "NG104"


def _break_rule_quota(specs: Path) -> str:
    replace_once(specs / "inventory/security-groups.yaml", "groupId: sg-0c3000000000000c1",
                 "groupId: sg-0c3000000000000c1\n  ruleQuota: 1")
    return "NG201"


def _break_route_quota(specs: Path) -> str:
    replace_once(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0b22c33d44e55f661]",
                 "  routeTables: [rtb-0b22c33d44e55f661]\n  routeQuota: 1")
    return "NG202"


@pytest.mark.parametrize("breaker", [_break_unknown_service, _break_rule_quota, _break_route_quota])
def test_a_failing_build_leaves_the_output_folder_exactly_as_it_was(tmp_path, breaker):
    specs = copy_specs(tmp_path)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    _add_foreign_files(out)
    (out / "flows.txt").write_text("hand edited\n")  # a stale file must stay stale, not get fixed halfway
    before = snapshot(out)
    code = breaker(specs)
    run = build(out, cwd=tmp_path)
    assert run.exit_code == 1
    assert f"[{code}]" in run.stderr
    assert snapshot(out) == before
    assert not list(tmp_path.rglob(".*.*")), "temporary files left behind"


def test_a_failing_build_creates_no_output_folder(tmp_path):
    specs = copy_specs(tmp_path)
    _break_rule_quota(specs)
    assert build(tmp_path / "out", cwd=tmp_path).exit_code == 1
    assert not (tmp_path / "out").exists()


def test_unchanged_files_are_not_rewritten(tmp_path):
    out = tmp_path / "out"
    first = build_ok(out)
    assert f"{len(tree(out))} written or deleted" in first.stderr  # every file, .netgen-owned included
    assert len(tree(out)) == 31
    before = snapshot(out)
    second = build_ok(out)
    assert "0 written or deleted" in second.stderr
    assert snapshot(out) == before


def _group_of_host(specs: Path, host: str):
    estate = resolve_specs(specs, AS_OF_DATE, Reporter()).estate
    return next(h.security_group for h in estate.hosts if h.name == host)


def test_only_changed_files_are_rewritten(tmp_path):
    specs = copy_specs(tmp_path)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    before = mtimes(out)
    # the ledger exporter's egress is 'open': only the AWS side and the flow report change
    replace_once(specs / "access/ledger.yaml", "to: {host: erp-euw1-01, ports: [22]}",
                 "to: {host: erp-euw1-01, ports: [2022]}")
    build_ok(out, cwd=tmp_path)
    after = mtimes(out)
    rewritten = {name for name in before if name in after and after[name] != before[name]
                 and (out / name).is_file()}
    erp = _group_of_host(specs, "erp-euw1-01")
    assert rewritten == {"flows.txt", group_template(erp)} == {"flows.txt",
                                                                "aws/acme-legacy/eu-west-1/sg-legacy-erp-euw1.json"}


# ---------------------------------------------------------------------------------------------------------
# 7. --check
# ---------------------------------------------------------------------------------------------------------

STALE_LINE = re.compile(r"^(missing|differs|no longer generated): (.+)$", re.MULTILINE)


def _stale_listing(run, out: Path) -> set[tuple[str, str]]:
    return {(kind, Path(path).relative_to(out).as_posix()) for kind, path in STALE_LINE.findall(run.stderr)}


def test_check_on_an_up_to_date_folder_exits_0_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    build_ok(out)
    before = snapshot(out)
    run = build(out, check=True)
    assert run.exit_code == 0 and _stale_listing(run, out) == set()
    assert snapshot(out) == before


def test_check_after_a_spec_edit_lists_exactly_the_files_a_build_would_change(tmp_path):
    specs = copy_specs(tmp_path)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    replace_once(specs / "access/observability.yaml", "ports: [push]}", "ports: [push]}\n  expires: 2027-01-31")
    replace_once(specs / "access/ledger.yaml", "ports: [22]", "ports: [22, 990]")
    before = snapshot(out)
    run = build(out, cwd=tmp_path, check=True)
    assert run.exit_code == 1
    assert snapshot(out) == before
    build_ok(tmp_path / "fresh", cwd=tmp_path)
    fresh, stale = tree(tmp_path / "fresh"), tree(out)
    expected = {("differs", n) for n in fresh if n in stale and fresh[n] != stale[n]}
    # the new port only adds rules to the group of the ERP host; the expiry only shows in the flow report
    assert expected == {("differs", "flows.txt"), ("differs", group_template(_group_of_host(specs, "erp-euw1-01")))}
    assert _stale_listing(run, out) == expected
    assert "is stale" in run.stderr


def test_check_reports_a_deleted_generated_file(tmp_path):
    out = tmp_path / "out"
    build_ok(out)
    (out / "kubernetes/prod-usw2/payments/netgen-egress-refunds-worker.yaml").unlink()
    before = snapshot(out)
    run = build(out, check=True)
    assert run.exit_code == 1
    assert _stale_listing(run, out) == {("missing", "kubernetes/prod-usw2/payments/netgen-egress-refunds-worker.yaml")}
    assert snapshot(out) == before


def test_check_reports_a_stale_owned_file_and_ignores_foreign_ones(tmp_path):
    out = tmp_path / "out"
    build_ok(out)
    _add_foreign_files(out)
    stale = "kubernetes/prod-use1/payments/netgen-ingress-old-api.yaml"
    (out / stale).write_text("kind: NetworkPolicy\n")
    with (out / OWNED).open("a") as handle:
        handle.write(f"{stale}\n")
    before = snapshot(out)
    run = build(out, check=True)
    assert run.exit_code == 1
    assert _stale_listing(run, out) == {("no longer generated", stale), ("differs", OWNED)}
    assert snapshot(out) == before
    build_ok(out)  # and a real build deletes it, keeping the foreign files
    assert not (out / stale).exists()
    _assert_foreign_files_intact(out)
    assert build(out, check=True).exit_code == 0


def test_check_on_an_empty_folder_lists_every_file_as_missing(tmp_path, example):
    out = tmp_path / "out"
    run = build(out, check=True)
    assert run.exit_code == 1
    assert _stale_listing(run, out) == {("missing", name) for name in tree(example)}
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------
# 8. Quotas and route conflicts (NG201..NG204): code, file, line, column, exit 1
# ---------------------------------------------------------------------------------------------------------

DR_ESTATE = """\
apiVersion: netgen.dev/v1alpha1
kind: Vpc
metadata:
  name: legacy-dr
spec:
  account: acme-legacy
  region: us-east-2
  vpcId: vpc-0e5f60718293a4b5c
  cidrs: [10.10.0.0/16]      # a copy of legacy-use1's address space
  routeTables: [rtb-0e55f66a77b88c991]
---
apiVersion: netgen.dev/v1alpha1
kind: SecurityGroup
metadata:
  name: legacy-billing-dr
spec:
  vpc: legacy-dr
  groupId: sg-0e5000000000000e1
---
apiVersion: netgen.dev/v1alpha1
kind: LegacyHost
metadata:
  name: billing-dr-01
  labels: {role: billing-dr}
spec:
  vpc: legacy-dr
  address: 10.10.20.21       # same address as billing-use1-01
  securityGroup: legacy-billing-dr
---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: billing-dr-to-payments-api
spec:
  owner: team-billing
  reason: The disaster-recovery billing host posts invoices too
  from: {host: billing-dr-01}
  to: {service: payments/payments-api, ports: [https]}
"""


def _count(example: Path, kind: str, key: str, value: str) -> int:
    return sum(1 for r in resources(example).values() if r["Type"] == kind and r["Properties"][key] == value)


def _quota_case(name: str, specs: Path, example: Path) -> tuple[str, Path, str, str, str]:
    """Break the copy; return (code, spec file, kind, name of the located document, expected message part)."""
    if name == "NG201":
        _break_rule_quota(specs)
        count = _count(example, SG_TYPES[0], "GroupId", "sg-0c3000000000000c1")
        return ("NG201", specs / "inventory/security-groups.yaml", "SecurityGroup", "prod-use1-nodes",
                f"security group 'prod-use1-nodes' (sg-0c3000000000000c1) would need {count} ingress rules, "
                "over its quota of 1")
    if name == "NG202":
        _break_route_quota(specs)
        count = _count(example, "AWS::EC2::Route", "RouteTableId", "rtb-0b22c33d44e55f661")
        return ("NG202", specs / "inventory/vpcs.yaml", "Vpc", "legacy-euw1",
                f"route tables of VPC 'legacy-euw1' would need {count} peering routes, over the quota of 1")
    if name == "NG203":
        replace_once(specs / "inventory/vpcs.yaml", "  cidrs: [10.40.0.0/16]", "  cidrs: [10.40.0.0/16]\n"
                                                                             "  peeringQuota: 1")
        return ("NG203", specs / "inventory/vpcs.yaml", "Vpc", "k8s-use1",
                "VPC 'k8s-use1' would need 2 peerings, over its quota of 1")
    assert name == "NG204"
    (specs / "inventory" / "dr.yaml").write_text(DR_ESTATE)
    return ("NG204", specs / "inventory/vpcs.yaml", "Vpc", "k8s-use1",
            "VPC 'k8s-use1' would route 10.10.20.21/32 to '")


@pytest.mark.parametrize("code", ["NG201", "NG202", "NG203", "NG204"])
def test_build_errors_point_at_the_document_and_fail_the_build(tmp_path, example, code):
    specs = copy_specs(tmp_path)
    code, file, kind, name, message = _quota_case(code, specs, example)
    line = document_line(file, kind, name)
    relative = file.relative_to(tmp_path).as_posix()
    run = build(tmp_path / "out", cwd=tmp_path, fmt="json")
    assert run.exit_code == 1
    diagnostics = json.loads(run.stdout)
    assert {d["code"] for d in diagnostics} == {code}, diagnostics
    for d in diagnostics:
        assert (d["file"], d["line"], d["column"], d["severity"]) == (relative, line, 1, "error")
    assert any(message in d["message"] for d in diagnostics), (message, diagnostics)
    text = build(tmp_path / "out", cwd=tmp_path)
    assert text.exit_code == 1
    assert f"{relative}:{line}:1: error[{code}]: " in text.stderr
    assert not (tmp_path / "out").exists()


def _many_ports_grant(count: int) -> str:
    """A grant opening `count` non-adjacent ports on erp-euw1-01 (one rule each for the ledger exporter's one
    source CIDR, whose group does not restrict egress): only the ERP group's stack grows."""
    ports = ", ".join(str(10001 + 2 * i) for i in range(count))
    return f"""\
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: ledger-exporter-to-erp-many-ports
spec:
  owner: team-ledger
  reason: Many ports, to fill a stack
  from: {{workload: ledger/ledger-exporter}}
  to: {{host: erp-euw1-01, ports: [{ports}]}}
"""


@pytest.mark.parametrize(("extra", "cores"), [(0, "one"), (1, "one"), (1, "two")])
def test_a_stack_over_500_resources_fails_the_build_at_its_security_group(tmp_path, example, extra, cores,
                                                                          request):
    """NG205: CloudFormation takes at most 500 resources per stack. The ERP group's stack is filled to exactly
    500 rules (builds), or 501 (fails at the SecurityGroup document, leaving the output folder alone), also when
    a second core plans part of the groups' rules."""
    if cores == "two":
        request.getfixturevalue("forks")
    erp = "aws/acme-legacy/eu-west-1/sg-legacy-erp-euw1.json"
    existing = len(templates(example)[erp]["Resources"])
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", "groupId: sg-0b2000000000000b5",
                 "groupId: sg-0b2000000000000b5\n  ruleQuota: 1000")  # NG201 stays out of the way
    (specs / "access" / "zz-many-ports.yaml").write_text(_many_ports_grant(500 - existing + extra))
    out = tmp_path / "out"
    build_ok(out)  # the example estate, as the folder to keep untouched
    _add_foreign_files(out)
    before = snapshot(out)
    run = build(out, cwd=tmp_path, fmt="json")
    if not extra:
        assert run.exit_code == 0, run.output
        assert len(templates(out)[erp]["Resources"]) == 500
        others = {p: t for p, t in templates(out).items() if p != erp}
        assert others == {p: t for p, t in templates(example).items() if p != erp}  # only that stack grew
        return
    assert run.exit_code == 1
    file = specs / "inventory/security-groups.yaml"
    relative, line = file.relative_to(tmp_path).as_posix(), document_line(file, "SecurityGroup", "legacy-erp-euw1")
    diagnostics = json.loads(run.stdout)
    assert [(d["code"], d["file"], d["line"], d["column"], d["severity"]) for d in diagnostics] == [
        ("NG205", relative, line, 1, "error")]
    assert "netgen-acme-legacy-eu-west-1-sg-legacy-erp-euw1" in diagnostics[0]["message"]
    assert "500" in diagnostics[0]["message"]
    assert snapshot(out) == before
    assert not list(tmp_path.rglob(".*.*")), "temporary files left behind"
    text = build(out, cwd=tmp_path)
    assert text.exit_code == 1
    assert f"{relative}:{line}:1: error[NG205]: " in text.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize("extra", [0, 1])
def test_a_network_stack_over_500_resources_fails_the_build_at_its_vpc(tmp_path, example, extra):
    """NG205 for a network stack: legacy-euw1 (alone in acme-legacy/eu-west-1) gets route tables until the stack
    holds the most resources under 501 (builds), then one table more (fails at the Vpc document)."""
    network = "aws/acme-legacy/eu-west-1/network.json"
    kinds = [r["Type"] for r in templates(example)[network]["Resources"].values()]
    per_table, fixed = kinds.count("AWS::EC2::Route"), len(kinds) - kinds.count("AWS::EC2::Route")
    tables = (500 - fixed) // per_table + extra  # one table's routes more than that would pass 500
    assert (fixed + tables * per_table <= 500) == (not extra)
    specs = copy_specs(tmp_path)
    ids = ", ".join(f"rtb-{0x0b22c33d44e55f661 + i:017x}" for i in range(tables))
    replace_once(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0b22c33d44e55f661]", f"  routeTables: [{ids}]")
    out = tmp_path / "out"
    build_ok(out)
    before = snapshot(out)
    run = build(out, cwd=tmp_path, fmt="json")
    if not extra:
        assert run.exit_code == 0, run.output
        assert len(templates(out)[network]["Resources"]) == fixed + tables * per_table
        return
    assert run.exit_code == 1
    file = specs / "inventory/vpcs.yaml"
    relative, line = file.relative_to(tmp_path).as_posix(), document_line(file, "Vpc", "legacy-euw1")
    diagnostics = json.loads(run.stdout)
    assert [(d["code"], d["file"], d["line"], d["column"], d["severity"]) for d in diagnostics] == [
        ("NG205", relative, line, 1, "error")]
    assert "netgen-acme-legacy-eu-west-1-network" in diagnostics[0]["message"]
    assert snapshot(out) == before


def test_ng205_on_a_shared_network_stack_points_at_the_vpc_that_overflows_it(tmp_path):
    """acme-legacy/us-east-1 holds legacy-use1 and k8s-use1; only legacy-use1 gets 200 route tables."""
    specs = copy_specs(tmp_path)
    ids = ", ".join(f"rtb-{0x0a11b22c33d44e551 + i:017x}" for i in range(200))
    replace_once(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0a11b22c33d44e551, rtb-0a11b22c33d44e552]",
                 f"  routeTables: [{ids}]")
    run = build(tmp_path / "out", cwd=tmp_path, fmt="json")
    assert run.exit_code == 1
    file = specs / "inventory/vpcs.yaml"
    diagnostics = json.loads(run.stdout)
    assert [(d["code"], d["line"]) for d in diagnostics] == [("NG205", document_line(file, "Vpc", "legacy-use1"))]


def test_quota_counts_match_the_generated_output(example):
    """The fixtures above rely on these counts: the example really exceeds quota 1 in each case."""
    assert _count(example, SG_TYPES[0], "GroupId", "sg-0c3000000000000c1") > 1
    assert _count(example, "AWS::EC2::Route", "RouteTableId", "rtb-0b22c33d44e55f661") > 1


def test_quotas_at_exactly_the_needed_count_pass(tmp_path, example):
    specs = copy_specs(tmp_path)
    rules = _count(example, SG_TYPES[0], "GroupId", "sg-0c3000000000000c1")
    routes = _count(example, "AWS::EC2::Route", "RouteTableId", "rtb-0b22c33d44e55f661")
    replace_once(specs / "inventory/security-groups.yaml", "groupId: sg-0c3000000000000c1",
                 f"groupId: sg-0c3000000000000c1\n  ruleQuota: {rules}")
    replace_once(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0b22c33d44e55f661]",
                 f"  routeTables: [rtb-0b22c33d44e55f661]\n  routeQuota: {routes}")
    replace_once(specs / "inventory/vpcs.yaml", "  cidrs: [10.40.0.0/16]", "  cidrs: [10.40.0.0/16]\n"
                                                                         "  peeringQuota: 2")
    build_ok(tmp_path / "out", cwd=tmp_path)
    assert tree(tmp_path / "out") == tree(example)


# ---------------------------------------------------------------------------------------------------------
# 9. Names: rule descriptions, policy names and logical ids stay legal and distinct
# ---------------------------------------------------------------------------------------------------------

spec_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@given(st.lists(spec_names, min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_rule_descriptions_are_legal_and_name_a_sorted_prefix_of_the_grants(names):
    text = description(tuple(names))
    assert sg_rule_problems({"Properties": {**GOOD_RULE, "Description": text}}) == []
    unique = sorted(set(names))
    body = text.removeprefix("netgen: ")
    shown, _, more = body.partition(" +")
    listed = [n for n in shown.split(", ") if n]
    assert listed == unique[:len(listed)]
    if more:
        assert more == f"{len(unique) - len(listed)} more"
        one_more = ", ".join(unique[:len(listed) + 1])
        assert len(f"netgen: {one_more} +{len(unique) - len(listed) - 1} more") > 255  # as many as fit
    else:
        assert listed == unique


@given(spec_names, spec_names)
@settings(max_examples=200, deadline=None)
def test_policy_names_are_dns_labels_and_distinct(a, b):
    for direction in ("ingress", "egress"):
        name = dns_label("netgen", direction, a)
        assert DNS_LABEL.fullmatch(name) and len(name) <= 63
        assert name == dns_label("netgen", direction, a)
        if len(f"netgen-{direction}-{a}") <= 63:
            assert name == f"netgen-{direction}-{a}"
        if a != b:
            assert name != dns_label("netgen", direction, b)
    assert dns_label("netgen", "ingress", a) != dns_label("netgen", "egress", a)


TRICKY_SCALARS = ["true", "No", "yes", "on", "~", "null", "", "123", "-5", "0x1F", "0o17", "1_000", "1e3", ".inf",
                  "-.5", "2026-11-26", "12:30:00", "-", "?", ":", "- a", "a: b", "#x", "a#b", "a #b", "'", '"', "*a",
                  "&a", "!t", "%x", "@x", "`x", "|", ">", "[a]", "{a}", "a,b", "a\\b", "ÿ", "\u2028", "a\nb", " a",
                  "a ", "x" * 100, "x" * 101, "x" * 130, "1" * 130, "g1," * 60, "a b" * 40, "netgen.dev/grants",
                  "10.0.0.0/8", "TCP"]
yaml_scalars = st.one_of(st.sampled_from(TRICKY_SCALARS), st.text(max_size=30), st.integers(-10, 70000), st.booleans())
yaml_documents = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(TRICKY_SCALARS), st.text(max_size=12),
                                                      st.integers()), inner, max_size=4)),
    max_leaves=20)


@given(st.dictionaries(st.text(max_size=12), yaml_documents, max_size=5))
@hypothesis_example({"a": [{"b": [{"c": "d"}], "e": {}}], "f": [[1]], "g": []})
@settings(max_examples=400, deadline=None)
def test_manifests_are_written_as_yaml_dump_writes_them(document):
    expected = yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=True, default_flow_style=False).encode()
    assert kubernetes_dump(document) == expected


SHARED_LIST, SHARED_EMPTY = [1, 2], {}


@pytest.mark.parametrize("document", [
    {"a": SHARED_LIST, "b": SHARED_LIST},  # anchors and aliases
    {"a": SHARED_EMPTY, "b": {"c": SHARED_EMPTY}},
    {"a": [{"b": SHARED_LIST}, {"c": SHARED_LIST}]},
    {"a": 1, 2: "b"},  # keys that do not sort: pyyaml keeps their order
    {int("1" * 130): "a"},  # an explicit '? key'
    {"k" * 101: "a", "b": "c"},
])
def test_manifests_with_aliases_unsortable_or_long_keys_are_written_as_yaml_dump_writes_them(document):
    expected = yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=True, default_flow_style=False).encode()
    assert kubernetes_dump(document) == expected


class _Text(str):
    pass


@pytest.mark.parametrize("document", [{"a": OrderedDict(b=1)}, {"a": defaultdict(list, b=[1])}, {"a": _Text("x")},
                                      OrderedDict(a=1)])
def test_types_yaml_dump_refuses_are_refused(document):
    with pytest.raises(yaml.representer.RepresenterError):
        kubernetes_dump(document)


def test_policies_and_kustomizations_take_the_fast_path(example):
    files = sorted((example / "kubernetes").rglob("*.yaml"))
    assert len(files) > 10
    for path in files:
        lines: list[str] = []
        _block(yaml.safe_load(path.read_text()), 0, "", lines, set())  # raises _Unusual on the slow path
        assert "".join(lines).encode() == path.read_bytes(), path


LONG_SERVICE = "fraud-score-" + "x" * 50  # 62 characters: 'netgen-ingress-<name>' is too long for a label


def test_a_long_service_name_builds_a_valid_policy_with_a_short_name(tmp_path):
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/services.yaml", "name: fraud-score\n", f"name: {LONG_SERVICE}\n")
    for grants in ("access/observability.yaml", "access/loyalty.yaml"):
        replace_once(specs / grants, "service: payments/fraud-score,", f"service: payments/{LONG_SERVICE},")
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    found = {p: d for p, d in policies(out).items() if "fraud-score" in d["spec"]["podSelector"]["matchLabels"][
        "app.kubernetes.io/name"]}
    (path, document), = found.items()
    name = document["metadata"]["name"]
    assert len(name) <= 63 and DNS_LABEL.fullmatch(name) and name.startswith("netgen-ingress-fraud-score-x")
    assert path == f"kubernetes/prod-use1/payments/{name}.yaml"
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    kustomization = yaml.safe_load((out / "kubernetes/prod-use1/kustomization.yaml").read_text())
    assert f"payments/{name}.yaml" in kustomization["resources"]


LOOKALIKE_VPC = """\
apiVersion: netgen.dev/v1alpha1
kind: Vpc
metadata:
  name: legacy-use-1          # differs from legacy-use1 only by a dash
spec:
  account: acme-legacy
  region: us-east-1
  vpcId: vpc-0f6f60718293a4b5c
  cidrs: [10.12.0.0/16]
  routeTables: [rtb-0f66a77b88c99d001]
---
apiVersion: netgen.dev/v1alpha1
kind: SecurityGroup
metadata:
  name: legacy-use-1-app
spec:
  vpc: legacy-use-1
  groupId: sg-0f6000000000000f1
---
apiVersion: netgen.dev/v1alpha1
kind: LegacyHost
metadata:
  name: app-use-1-01
spec:
  vpc: legacy-use-1
  address: 10.12.1.10
  securityGroup: legacy-use-1-app
---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: app-to-fraud-score
spec:
  owner: team-payments
  reason: The new app scores payments
  from: {host: app-use-1-01}
  to: {service: payments/fraud-score, ports: [grpc]}
"""


def test_vpc_names_differing_only_in_dashes_get_distinct_peering_ids(tmp_path):
    # k8s-use1<->legacy-use1 and k8s-use1<->legacy-use-1 share the readable part of their logical ids
    # (PeeringK8sUse1LegacyUse1); the hash of the two VPC ids tells them apart.
    specs = copy_specs(tmp_path)
    (specs / "inventory" / "lookalike.yaml").write_text(LOOKALIKE_VPC)
    out = tmp_path / "out"
    build_ok(out, cwd=tmp_path)
    peerings = [lid for (_, lid), r in resources(out).items() if r["Type"] == "AWS::EC2::VPCPeeringConnection"]
    assert len(peerings) == len(set(peerings)) == 5
    assert len([p for p in peerings if p.startswith("PeeringK8sUse1LegacyUse1")]) == 2  # the case collides
    # and the lookalike's routes use its own peering
    found = resources(out)
    ends = {lid: r["Properties"]["PeerVpcId"] for (_, lid), r in found.items()
            if r["Type"] == "AWS::EC2::VPCPeeringConnection"}
    lookalike = [r for r in found.values() if r["Type"] == "AWS::EC2::Route"
                 and r["Properties"]["RouteTableId"] == "rtb-0f66a77b88c99d001"]
    assert lookalike
    assert {ends[r["Properties"]["VpcPeeringConnectionId"]["Ref"]] for r in lookalike} == {"vpc-0f6f60718293a4b5c"}


def test_quotas_one_below_the_needed_count_fail(tmp_path, example):
    specs = copy_specs(tmp_path)
    rules = _count(example, SG_TYPES[0], "GroupId", "sg-0c3000000000000c1")
    routes = _count(example, "AWS::EC2::Route", "RouteTableId", "rtb-0b22c33d44e55f661")
    replace_once(specs / "inventory/security-groups.yaml", "groupId: sg-0c3000000000000c1",
                 f"groupId: sg-0c3000000000000c1\n  ruleQuota: {rules - 1}")
    replace_once(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0b22c33d44e55f661]",
                 f"  routeTables: [rtb-0b22c33d44e55f661]\n  routeQuota: {routes - 1}")
    run = build(tmp_path / "out", cwd=tmp_path, fmt="json")
    assert run.exit_code == 1
    found = {d["code"]: d["message"] for d in json.loads(run.stdout)}
    assert sorted(found) == ["NG201", "NG202"]
    assert found["NG201"].startswith(f"security group 'prod-use1-nodes' (sg-0c3000000000000c1) would need {rules} "
                                     f"ingress rules, over its quota of {rules - 1}")
    assert found["NG202"].startswith(f"route tables of VPC 'legacy-euw1' would need {routes} peering routes, over "
                                     f"the quota of {routes - 1}")


def test_an_owned_list_naming_paths_outside_the_folder_never_deletes_them(tmp_path):
    out = tmp_path / "out"
    build_ok(out)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    with (out / OWNED).open("a") as handle:
        handle.write(f"../outside.txt\n{outside}\n")
    run = build(out, check=True)
    assert run.exit_code == 1 and _stale_listing(run, out) == {("differs", OWNED)}
    build_ok(out)
    assert outside.read_text() == "keep me\n"
    assert build(out, check=True).exit_code == 0
