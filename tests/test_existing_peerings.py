"""Existing peerings (VpcPeering): a pair of VPCs already peered outside netgen is used as it is.

The example estate with a VpcPeering declared for two pairs it peers (legacy-use1 <-> k8s-use1 in one region,
legacy-euw1 <-> k8s-use1 across regions and stacks), once in netgen's own direction and once reversed: the
templates hold no peering for those pairs, routes on both sides name the connection id, the deploy plan has
neither a peering entry nor a parameter for them (and lists them apart), flows.txt names the connection, and
everything else is byte for byte the example's generated/. Then validation (a fixture per failure, located),
the peering quota, the review tools (explain, graph, diff), verify's check of a declared peering, the schema's
fast path, and `netgen discover` writing the declarations of hand-made peerings it finds in moto.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, REPO_ROOT, copy_example_specs, diagnose_specs, edit_spec, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved, resolve_specs

AS_OF = EXAMPLE_AS_OF.isoformat()
GENERATED = REPO_ROOT / "generated"
SAME, CROSS = "pcx-0123456789abcdef0", "pcx-0fedcba9876543210"
# (netgen's requester, netgen's accepter, connection id, scope as the flow report words it)
PAIRS = {SAME: ("k8s-use1", "legacy-use1", "same-region"), CROSS: ("legacy-euw1", "k8s-use1", "cross-region")}
SPARE_VPC = """apiVersion: netgen.dev/v1alpha1
kind: Vpc
metadata:
  name: spare-use1
spec:
  account: acme-legacy
  region: us-east-1
  vpcId: vpc-0e5f60718293a4b5c
  cidrs: [{cidr}]
  routeTables: []
"""


def peering(name: str, requester: str, accepter: str, connection: str) -> str:
    """A VpcPeering document: requesterVpc on line 6, column 17; accepterVpc on line 7, column 16;
    connectionId on line 8, column 17."""
    return (f"apiVersion: netgen.dev/v1alpha1\nkind: VpcPeering\nmetadata:\n  name: {name}\nspec:\n"
            f"  requesterVpc: {requester}\n  accepterVpc: {accepter}\n  connectionId: {connection}\n")


def declarations(reverse: bool) -> str:
    docs = []
    for connection, (requester, accepter, _) in sorted(PAIRS.items()):
        if reverse:
            requester, accepter = accepter, requester
        docs.append(peering(f"{requester}-{accepter}", requester, accepter, connection))
    return "---\n".join(docs)


@dataclass(frozen=True)
class Built:
    root: Path
    specs: Path
    out: Path
    reverse: bool
    resolved: Resolved

    def template(self, path: str) -> dict:
        return json.loads((self.out / path).read_text())

    def templates(self) -> dict[str, dict]:
        return {p.relative_to(self.out).as_posix(): json.loads(p.read_text())
                for p in sorted((self.out / "aws").rglob("*.json")) if p.name != "deploy-plan.json"}

    def requester(self, connection: str) -> tuple[str, str]:
        """(requester, accepter) as the declaration has them."""
        a, b, _ = PAIRS[connection]
        return (b, a) if self.reverse else (a, b)


def build_in(root: Path) -> tuple[int, str]:
    """netgen build of root/specs into root/generated, run from root (so flows.txt names specs/...)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = run_cli("build", "--specs", "specs", "--out", "generated", "--as-of", AS_OF)
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture(scope="module", params=[False, True], ids=["netgen-direction", "reversed"])
def built(request, tmp_path_factory) -> Built:
    root = tmp_path_factory.mktemp("existing")
    specs = copy_example_specs(root)
    (specs / "inventory/peerings.yaml").write_text(declarations(request.param))
    code, output = build_in(root)
    assert code == 0, output
    return Built(root, specs, root / "generated", request.param, resolve_specs(specs, EXAMPLE_AS_OF, Reporter()))


def _vpcs(built: Built):
    return {v.name: v for v in built.resolved.estate.vpcs}


def test_the_estate_holds_the_declarations_as_written(built: Built):
    found = {p.connection_id: (p.requester.name, p.accepter.name) for p in built.resolved.estate.peerings}
    assert found == {c: built.requester(c) for c in PAIRS}


def test_no_template_requests_a_peering_for_a_declared_pair(built: Built):
    vpcs = _vpcs(built)
    declared = {frozenset((vpcs[a].vpc_id, vpcs[b].vpc_id)) for a, b, _ in PAIRS.values()}
    requested = {frozenset((r["Properties"]["VpcId"], r["Properties"]["PeerVpcId"]))
                 for t in built.templates().values() for r in t["Resources"].values()
                 if r["Type"] == "AWS::EC2::VPCPeeringConnection"}
    assert requested and not requested & declared
    # the cross-account pairs are still netgen's own
    assert requested == {frozenset((vpcs["legacy-euw1"].vpc_id, vpcs["k8s-usw2"].vpc_id)),
                         frozenset((vpcs["legacy-use1"].vpc_id, vpcs["k8s-usw2"].vpc_id))}
    for template in built.templates().values():
        assert not any(name.startswith(("PeeringK8sUse1LegacyUse1", "PeeringLegacyEuw1K8sUse1"))
                       for section in ("Resources", "Outputs", "Parameters") for name in template.get(section, {}))


def test_routes_both_ways_name_the_connection_id(built: Built):
    vpcs = _vpcs(built)
    table_vpc = {table: v for v in vpcs.values() for table in v.route_tables}
    targets: dict[tuple[str, str], set] = {}
    for template in built.templates().values():
        for route in template["Resources"].values():
            if route["Type"] != "AWS::EC2::Route":
                continue
            props = route["Properties"]
            vpc = table_vpc[props["RouteTableId"]]
            prefix = IPv4Network(props["DestinationCidrBlock"])
            peer = next(v for v in vpcs.values() if v is not vpc and any(prefix.subnet_of(c) for c in v.cidrs))
            target = props.get("VpcPeeringConnectionId") or props["TransitGatewayId"]
            targets.setdefault((vpc.name, peer.name), set()).add(json.dumps(target, sort_keys=True))
    for connection, (a, b, _) in PAIRS.items():
        assert targets[(a, b)] == targets[(b, a)] == {json.dumps(connection)}, connection
    # the pair joined through the example's transit gateway keeps it
    gateway = json.dumps("tgw-0e100000000000001")
    assert targets[("loyalty-use1", "k8s-use1")] == targets[("k8s-use1", "loyalty-use1")] == {gateway}
    others = {k: v for k, v in targets.items() if "k8s-usw2" in k}
    assert others and all(all(t.startswith('{"Ref"') for t in v) for v in others.values())


def test_deploy_plan_has_no_peering_entry_nor_parameter_for_them(built: Built):
    plan = json.loads((built.out / "aws/deploy-plan.json").read_text())
    vpcs = _vpcs(built)
    declared = {frozenset((vpcs[a].vpc_id, vpcs[b].vpc_id)) for a, b, _ in PAIRS.values()}
    requests = [frozenset((p["requesterVpc"], p["accepterVpc"])) for s in plan["stacks"] for p in s["peerings"]]
    assert len(requests) == 2 and not set(requests) & declared
    by_name = {s["stack"]: s for s in plan["stacks"]}
    use1 = by_name["netgen-acme-legacy-us-east-1-network"]
    assert use1["parameters"] == {} and use1["dependsOn"] == []  # it took legacy-euw1 <-> k8s-use1's id before
    usw2 = by_name["netgen-acme-platform-us-west-2-network"]
    assert sorted(usw2["parameters"]) == ["PeeringLegacyEuw1K8sUsw25e1ca76c75Id",
                                          "PeeringLegacyUse1K8sUsw2e41a370709Id"]
    expected = []
    for connection in sorted(PAIRS):
        requester, accepter = (vpcs[n] for n in built.requester(connection))
        expected.append({
            "connectionId": connection, "name": f"{requester.name}-{accepter.name}",
            "requesterVpc": requester.vpc_id, "requesterAccount": requester.account.account_id,
            "requesterRegion": requester.region, "accepterVpc": accepter.vpc_id,
            "accepterAccount": accepter.account.account_id, "accepterRegion": accepter.region,
            "routedBy": sorted({f"netgen-{v.account.name}-{v.region}-network" for v in (requester, accepter)})})
    assert plan["existingPeerings"] == expected
    assert "'existingPeerings'" in plan["description"]


def test_the_flow_report_names_the_connection_and_nothing_else_changes(built: Built):
    flows = (built.out / "flows.txt").read_text()
    for connection, (a, b, scope) in PAIRS.items():
        for x, y in ((a, b), (b, a)):
            assert f"via {x} -> {y} (peering, " not in flows
        lines = [line for line in flows.splitlines() if f"(peering {connection}, existing, {scope})" in line]
        assert lines and all(re.search(f"via ({a} -> {b}|{b} -> {a}) ", line) for line in lines)
    assert "via legacy-use1 -> k8s-usw2 (peering, cross-region, cross-account)" in flows  # netgen's own: as was
    assert re.sub(r"\(peering pcx-[0-9a-f]+, existing, ", "(peering, ", flows) == (GENERATED / "flows.txt").read_text()
    changed = {"flows.txt", "aws/deploy-plan.json", "aws/acme-legacy/us-east-1/network.json",
               "aws/acme-legacy/eu-west-1/network.json"}
    written = sorted(p.relative_to(built.out).as_posix() for p in built.out.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file())
    for name in written:
        same = (built.out / name).read_bytes() == (GENERATED / name).read_bytes()
        assert same == (name not in changed), name


def test_templates_pass_cfn_lint(built: Built):
    from cfnlint.api import ManualArgs, lint

    for path in ("aws/acme-legacy/us-east-1/network.json", "aws/acme-legacy/eu-west-1/network.json"):
        matches = lint((built.out / path).read_text(), config=ManualArgs(regions=[Path(path).parent.name]))
        assert not matches, f"{path}: " + "; ".join(f"{m.rule.id} {m.message}" for m in matches)


def test_a_parallel_build_writes_the_same_bytes(built: Built, forks, tmp_path: Path):
    shutil.copytree(built.specs, tmp_path / "specs")
    code, output = build_in(tmp_path)
    assert code == 0, output
    assert forks
    for path in built.out.rglob("*"):
        if path.is_file():
            assert (tmp_path / "generated" / path.relative_to(built.out)).read_bytes() == path.read_bytes(), path


def test_explain_names_the_existing_connection(built: Built):
    result = run_cli("explain", "--specs", str(built.specs), "--as-of", AS_OF, "billing-use1-01",
                     "payments/payments-api", "--port", "https")
    assert result.exit_code == 0, result.stderr
    requester, accepter = built.requester(SAME)
    assert (f"via legacy-use1 -> k8s-use1 (peering {SAME}, existing, same-region) [nlb]" in result.stdout)
    assert (f"    peering: {requester} <-> {accepter} (same-region; existing {SAME}), declared at "
            f"{built.specs / 'inventory/peerings.yaml'}:" in result.stdout)
    assert "it exists outside netgen" in result.stdout and "network.json): rtb-" in result.stdout
    # a question whose grant is missing still says the peering is in place
    result = run_cli("explain", "--specs", str(built.specs), "--as-of", AS_OF, "erp-euw1-01",
                     "payments/payments-api", "--port", "https")
    assert result.exit_code == 1
    pair = " <-> ".join(built.requester(CROSS))
    assert f"peering: in place ({pair} (cross-region; existing {CROSS})" in result.stdout


def test_graph_draws_existing_peerings_apart(built: Built):
    args = ("--specs", str(built.specs), "--as-of", AS_OF)
    mermaid = run_cli("graph", "--format", "mermaid", *args).stdout
    a, b = built.requester(SAME)
    assert f'vpc_{a.replace("-", "_")} ===|"existing peering {SAME} (same-region)"| vpc_{b.replace("-", "_")}' \
        in mermaid
    assert len(re.findall(r" -\.-\|\"peering \(", mermaid)) == 2  # netgen's own, as before
    dot = run_cli("graph", "--format", "dot", *args).stdout
    # (dotted: the two existing peerings; bold: loyalty-use1 and k8s-use1 through the transit gateway)
    assert dot.count("style=dotted") == 2 and f'label="existing peering {CROSS} (cross-region)"' in dot
    assert dot.count("style=bold") == 1
    svg = run_cli("graph", "--format", "svg", *args).stdout
    assert f"existing peering {SAME} (same-region)" in svg and "existing VPC peering (not netgen's)" in svg
    plain = run_cli("graph", "--format", "svg", "--specs", str(EXAMPLE_SPECS), "--as-of", AS_OF).stdout
    assert "existing" not in plain and "through transit gateways (not netgen's)" in plain


# --- validation -----------------------------------------------------------------------------------------------

CASES = [
    # (id, files to add (relative to specs), code, file, line, column, message part)
    ("unknown-vpc", {"inventory/peerings.yaml": peering("p", "legacy-us1", "k8s-use1", SAME)},
     "NG104", "inventory/peerings.yaml", 6, 17, "unknown Vpc 'legacy-us1' (did you mean 'legacy-use1'?)"),
    ("malformed-id", {"inventory/peerings.yaml": peering("p", "legacy-use1", "k8s-use1", "pcx-12345")},
     "NG014", "inventory/peerings.yaml", 8, 17, "connectionId: 'pcx-12345' is not valid"),
    ("pair-twice-reversed", {"inventory/peerings.yaml": peering("p", "legacy-use1", "k8s-use1", SAME) + "---\n"
                             + peering("q", "k8s-use1", "legacy-use1", CROSS)},
     "NG101", "inventory/peerings.yaml", 15, 17, "VPCs 'k8s-use1' and 'legacy-use1' already have a peering declared"),
    ("id-twice", {"inventory/peerings.yaml": peering("p", "legacy-use1", "k8s-use1", SAME) + "---\n"
                  + peering("q", "legacy-euw1", "k8s-use1", SAME)},
     "NG101", "inventory/peerings.yaml", 17, 17, f"peering connection {SAME} is already declared at"),
    ("one-vpc", {"inventory/peerings.yaml": peering("p", "legacy-use1", "legacy-use1", SAME)},
     "NG101", "inventory/peerings.yaml", 7, 16, "a peering joins two different VPCs"),
    ("overlapping-cidrs", {"inventory/spare.yaml": SPARE_VPC.format(cidr="10.10.128.0/17"),
                           "inventory/peerings.yaml": peering("p", "legacy-use1", "spare-use1", SAME)},
     "NG107", "inventory/peerings.yaml", 7, 16, "overlapping CIDRs (10.10.0.0/16 ~ 10.10.128.0/17)"),
]


@pytest.mark.parametrize(("files", "code", "file", "line", "column", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_validation_failure_is_located(tmp_path: Path, files, code, file, line, column, message):
    specs = copy_example_specs(tmp_path)
    for name, text in files.items():
        (specs / name).write_text(text)
    found = diagnose_specs(specs)
    assert [(d.code, Path(d.location.file).relative_to(specs).as_posix(), d.location.line, d.location.column)
            for d in found] == [(code, file, line, column)], [d.text() for d in found]
    assert message in found[0].message


def test_existing_peerings_count_toward_the_peering_quota(tmp_path: Path):
    """legacy-euw1 peers k8s-use1 and k8s-usw2 for flows; a declared peering to a VPC no flow uses is a third."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/vpcs.yaml", "  routeTables: [rtb-0b22c33d44e55f661]\n",
              "  routeTables: [rtb-0b22c33d44e55f661]\n  peeringQuota: 2\n")
    code, output = build_in(tmp_path)
    assert code == 0, output
    (specs / "inventory/spare.yaml").write_text(SPARE_VPC.format(cidr="10.99.0.0/16"))
    (specs / "inventory/peerings.yaml").write_text(peering("p", "spare-use1", "legacy-euw1", SAME))
    assert diagnose_specs(specs) == []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = run_cli("build", "--specs", "specs", "--out", "generated", "--as-of", AS_OF, "--format", "json")
    assert result.exit_code == 1
    line = (specs / "inventory/vpcs.yaml").read_text().splitlines().index("  name: legacy-euw1") - 2  # apiVersion
    assert [(d["code"], d["file"], d["line"], d["message"]) for d in json.loads(result.stdout)] == [
        ("NG203", "specs/inventory/vpcs.yaml", line,
         "VPC 'legacy-euw1' would need 3 peerings (1 of them existing), over its quota of 2")]


def test_schema_fast_path_agrees_with_jsonschema():
    from netgen.schema import _fast_check, _validator

    good = yaml.safe_load(peering("p", "legacy-use1", "k8s-use1", SAME))
    bad = [{**good, "spec": {**good["spec"], "connectionId": "pcx-0123"}},
           {**good, "spec": {**good["spec"], "connectionId": "pcx-0123456789ABCDEF0"}},
           {**good, "spec": {k: v for k, v in good["spec"].items() if k != "accepterVpc"}},
           {**good, "spec": {**good["spec"], "peerRegion": "us-east-1"}},
           {**good, "spec": {**good["spec"], "requesterVpc": 3}}]
    assert not list(_validator("VpcPeering").iter_errors(good))
    _fast_check("VpcPeering")(good)
    for doc in bad:
        assert list(_validator("VpcPeering").iter_errors(doc)), doc
        with pytest.raises(Exception):  # noqa: B017 - fastjsonschema's own exception
            _fast_check("VpcPeering")(doc)


# --- diff and verify --------------------------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> None:
    done = subprocess.run(["git", "-c", "user.name=netgen-test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_diff_shows_a_peering_turning_existing_and_no_access_change(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shutil.copytree(EXAMPLE_SPECS, repo / "specs")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "example")
    (repo / "specs/inventory/peerings.yaml").write_text(declarations(reverse=True))
    args = ("diff", "--specs", str(repo / "specs"), "--as-of", AS_OF)
    result = run_cli(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["accessChanged"] is False and data["flows"]["added"] == data["flows"]["removed"] == []
    peerings = data["peerings"]
    assert peerings["added"] == peerings["removed"] == []
    changed = {(c["before"]["logicalId"], c["after"]["existingConnectionId"]) for c in peerings["changed"]}
    assert changed == {("PeeringK8sUse1LegacyUse1c3070cf4d8", SAME), ("PeeringLegacyEuw1K8sUse1cb9fb96919", CROSS)}
    assert all(c["before"]["existingConnectionId"] is None and c["after"]["logicalId"] == ""
               for c in peerings["changed"])
    # the routes now point at the connection: removed as netgen's, added as the existing one
    assert data["routes"]["added"] and len(data["routes"]["added"]) == len(data["routes"]["removed"])
    text = run_cli(*args).stdout
    assert "no access change" in text
    assert (f"    ~ legacy-use1 <-> k8s-use1: netgen's own PeeringK8sUse1LegacyUse1c3070cf4d8 -> existing {SAME} "
            "(VpcPeering; netgen neither creates nor deletes it)  (grants: ") in text
    assert f"-> existing peering {SAME} to k8s-use1" in text
    markdown = run_cli(*args, "--format", "markdown").stdout
    assert "VPC peerings: 2 change(s)" in markdown


def test_verify_expects_the_declared_connection():
    from netgen.aws.reachability import Ec2View
    from netgen.aws.verify import existing_peering_problem

    def pcx(pcx_id: str, requester: str, accepter: str, status: str = "active") -> dict:
        return {"VpcPeeringConnectionId": pcx_id, "Status": {"Code": status},
                "RequesterVpcInfo": {"VpcId": requester, "Region": "us-east-1"},
                "AccepterVpcInfo": {"VpcId": accepter, "Region": "us-east-1"}}

    view = Ec2View.from_answers(vpcs=[], subnets=[], route_tables=[], security_groups=[], peerings=[
        pcx("pcx-1", "vpc-a", "vpc-b"), pcx("pcx-2", "vpc-a", "vpc-c", "deleted")])
    assert existing_peering_problem(view, "pcx-1", "vpc-a", "vpc-b") == ""
    assert "swap requesterVpc and accepterVpc" in existing_peering_problem(view, "pcx-1", "vpc-b", "vpc-a")
    assert "connects" in existing_peering_problem(view, "pcx-1", "vpc-a", "vpc-c")
    assert "deleted, not active" in existing_peering_problem(view, "pcx-2", "vpc-a", "vpc-c")
    assert "unknown" in existing_peering_problem(view, "pcx-9", "vpc-a", "vpc-b")


# --- discover (moto) --------------------------------------------------------------------------------------------

LEGACY, PLATFORM = "123456789012", "210987654321"


@pytest.fixture(scope="module")
def endpoint():
    from judges.aws import moto_server

    with moto_server() as url:
        yield url


def test_discover_writes_the_hand_made_peerings(endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from judges.aws import MotoCloud, seed_estate

    from netgen.aws.session import ACCOUNT_HEADER_ENV

    cloud = MotoCloud(endpoint)
    cloud.reset()
    monkeypatch.setenv(ACCOUNT_HEADER_ENV, "x-moto-account-id")
    estate = resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter()).estate
    # the VPCs and their route tables: peerings need no subnets, groups or instances (seconds faster)
    estate = replace(estate, hosts=(), security_groups=(), clusters=(), services=())
    vpcs = {name: seeded.vpc_id for name, seeded in seed_estate(cloud, estate).vpcs.items()}
    use1, euw1 = cloud.ec2(LEGACY, "us-east-1"), cloud.ec2(LEGACY, "eu-west-1")
    usw2 = cloud.ec2(PLATFORM, "us-west-2")

    def request(ec2, requester: str, accepter: str, **extra) -> str:
        answer = ec2.create_vpc_peering_connection(VpcId=vpcs[requester], PeerVpcId=vpcs[accepter], **extra)
        return answer["VpcPeeringConnection"]["VpcPeeringConnectionId"]

    # by hand: same region (legacy-use1 requests: the other way round from netgen), across regions, across accounts
    same = request(use1, "legacy-use1", "k8s-use1")
    use1.accept_vpc_peering_connection(VpcPeeringConnectionId=same)
    cross = request(use1, "k8s-use1", "legacy-euw1", PeerRegion="eu-west-1")
    euw1.accept_vpc_peering_connection(VpcPeeringConnectionId=cross)
    account = request(euw1, "legacy-euw1", "k8s-usw2", PeerRegion="us-west-2", PeerOwnerId=PLATFORM)
    usw2.accept_vpc_peering_connection(VpcPeeringConnectionId=account)
    # netgen's own (tagged), and one never accepted: neither is declared
    own = request(use1, "legacy-use1", "legacy-euw1", PeerRegion="eu-west-1", TagSpecifications=[
        {"ResourceType": "vpc-peering-connection", "Tags": [{"Key": "managed-by", "Value": "netgen"}]}])
    euw1.accept_vpc_peering_connection(VpcPeeringConnectionId=own)
    spare = use1.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    pending = use1.create_vpc_peering_connection(VpcId=vpcs["legacy-use1"], PeerVpcId=spare)
    assert pending["VpcPeeringConnection"]["Status"]["Code"] != "active"

    inventory = tmp_path / "specs/inventory"
    common = ("discover", "--out", str(inventory), "--endpoint-url", endpoint)
    legacy = [x for name in ("legacy-use1", "legacy-euw1", "k8s-use1") for x in ("--vpc", vpcs[name])]
    result = run_cli(*common, "--region", "us-east-1", "--region", "eu-west-1", "--account-id", LEGACY,
                     "--account-name", "acme-legacy", *legacy, "--vpc", spare)
    assert result.exit_code == 0, result.stderr
    text = (inventory / "acme-legacy.yaml").read_text()
    declared = [d for d in yaml.safe_load_all(text) if d["kind"] == "VpcPeering"]
    assert sorted((d["spec"]["connectionId"], d["spec"]["requesterVpc"], d["spec"]["accepterVpc"]) for d in declared) \
        == sorted([(same, "legacy-use1", "k8s-use1"), (cross, "k8s-use1", "legacy-euw1")])
    assert f"# {account}: {vpcs['legacy-euw1']} (account {LEGACY}, eu-west-1) -> {vpcs['k8s-usw2']}" in text
    assert own not in text and pending["VpcPeeringConnection"]["VpcPeeringConnectionId"] not in text
    # the other account, discovered next: its side of the cross-account peering, named by the first run's Vpc
    result = run_cli(*common, "--region", "us-west-2", "--account-id", PLATFORM, "--account-name", "acme-platform",
                     "--vpc", vpcs["k8s-usw2"])
    assert result.exit_code == 0, result.stderr
    declared = [d["spec"] for d in yaml.safe_load_all((inventory / "acme-platform.yaml").read_text())
                if d["kind"] == "VpcPeering"]
    assert declared == [{"requesterVpc": "legacy-euw1", "accepterVpc": "k8s-usw2", "connectionId": account}]
    # everything discovered validates, and the estate holds the three peerings as AWS has them
    found = resolve_specs(tmp_path / "specs", EXAMPLE_AS_OF, Reporter()).estate.peerings
    assert sorted((p.connection_id, p.requester.name, p.accepter.name) for p in found) == sorted([
        (same, "legacy-use1", "k8s-use1"), (cross, "k8s-use1", "legacy-euw1"), (account, "legacy-euw1", "k8s-usw2")])
    # a rerun of the first account leaves the cross-account one to the file that declares it
    result = run_cli(*common, "--region", "us-east-1", "--region", "eu-west-1", "--account-id", LEGACY,
                     "--account-name", "acme-legacy", *legacy)
    assert result.exit_code == 0, result.stderr
    assert account not in (inventory / "acme-legacy.yaml").read_text()
    assert diagnose_specs(tmp_path / "specs") == []
    # verify reads the live peerings: each declared one is there, active, between its VPCs as declared
    verify = ("verify", "--specs", str(tmp_path / "specs"), "--as-of", AS_OF, "--endpoint-url", endpoint)
    result = run_cli(*verify)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "3 existing peering(s) checked (0 not as declared)" in result.stdout
    edit_spec(inventory / "acme-platform.yaml", "requesterVpc: legacy-euw1\n  accepterVpc: k8s-usw2",
              "requesterVpc: k8s-usw2\n  accepterVpc: legacy-euw1")
    result = run_cli(*verify, "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["peerings"] == [{
        "peering": "legacy-euw1-k8s-usw2 (k8s-usw2 <-> legacy-euw1)", "connectionId": account,
        "reason": f"AWS has {vpcs['legacy-euw1']} as its requester and {vpcs['k8s-usw2']} as its accepter: swap "
                  "requesterVpc and accepterVpc"}]
