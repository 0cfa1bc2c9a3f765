"""netgen deploy, verify, drift and discover against moto in server mode (127.0.0.1; dummy credentials).

The commands run in-process through the CLI (typer's CliRunner), with `--endpoint-url` pointing at moto and
NETGEN_AWS_ACCOUNT_HEADER set so every client sends its account in moto's `x-moto-account-id` header. The
example inventory's accounts name boto3 profiles (acme-legacy, acme-platform): an AWS config file with those
profiles (dummy keys) is written per test, so the per-account profile path is the one exercised.

- test_end_to_end: seed moto with the example inventory, `netgen discover` it into inventory specs, add the
  example's clusters, services and grants, build, deploy, verify (and the independent judge of
  tests/test_judge_aws.py agrees); drift is clean; then update a grant and remove one, build, deploy: verify
  passes, the removed grant's rules are gone and its group's whole stack is deleted; a rule added by hand is
  reported by drift, and a widened netgen rule by verify.
- test_failed_stack_resumes: an invalid rule injected into a template fails its stack with a clear error
  naming the stack and the reason; after the fix a second deploy resumes and succeeds.
- test_dry_run_executes_nothing: change sets are created and described, nothing is executed.
- test_templates_over_the_inline_limit_go_through_s3: a 250-rule group's template (over 51,200 bytes) is
  refused without --template-bucket, then uploaded to S3 and deployed from there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from judges.aws import MotoCloud, rewrite_spec_ids, seed_estate
from test_judge_aws import Lab, example, judge
from typer.testing import CliRunner

from netgen.cli import app

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
AS_OF = date(2026, 11, 26).isoformat()
NETGEN = Path(sys.executable).parent / "netgen"
LEGACY, PLATFORM = "123456789012", "210987654321"
# moto warns that its CloudFormation skips AWS::EC2::SecurityGroupEgress: the gap deploy works around
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..SecurityGroupEgress")


def netgen(*args: str | Path) -> tuple[int, str]:
    """Run a netgen command in-process; (exit code, stdout and stderr)."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def build(specs: Path, out: Path) -> None:
    code, output = netgen("build", "--specs", specs, "--out", out, "--as-of", AS_OF)
    assert code == 0, output


def deploy(cloud: MotoCloud, specs: Path, out: Path, *extra: str) -> tuple[int, str]:
    return netgen("deploy", "--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url,
                  "--ec2-peering", *extra)


def verify(cloud: MotoCloud, specs: Path, *extra: str) -> tuple[int, str]:
    return netgen("verify", "--specs", specs, "--as-of", AS_OF, "--endpoint-url", cloud.endpoint_url, *extra)


def drift(cloud: MotoCloud, specs: Path, out: Path, *extra: str) -> tuple[int, dict]:
    code, output = netgen("drift", "--specs", specs, "--out", out, "--as-of", AS_OF, "--endpoint-url",
                          cloud.endpoint_url, "--format", "json", *extra)
    return code, json.loads(output[output.index("{"):])


def stacks(cloud: MotoCloud) -> dict[str, str]:
    """Live stacks by name -> status, in every place of the example estate."""
    found = {}
    for account, region in ((LEGACY, "us-east-1"), (LEGACY, "eu-west-1"), (PLATFORM, "us-west-2")):
        cfn = cloud.client("cloudformation", account, region)
        for summary in cfn.list_stacks()["StackSummaries"]:
            if summary["StackStatus"] != "DELETE_COMPLETE":
                found[summary["StackName"]] = summary["StackStatus"]
    return found


def plan_size(out: Path) -> int:
    """The number of stacks in the deploy plan (the example's changes as services are added to it)."""
    return len(json.loads((out / "aws/deploy-plan.json").read_text())["stacks"])


def group_rules(cloud: MotoCloud, account: str, region: str, group_id: str) -> list[dict]:
    return cloud.ec2(account, region).describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def test_end_to_end(cloud: MotoCloud, tmp_path: Path) -> None:
    seeded = seed_estate(cloud, example().estate)
    specs, out = tmp_path / "specs", tmp_path / "generated"
    inventory = specs / "inventory"
    # 1. discover the seeded accounts into inventory specs
    legacy_vpcs = [v.vpc_id for v in seeded.vpcs.values() if v.account == LEGACY]
    args = ["discover", "--out", inventory, "--endpoint-url", cloud.endpoint_url]
    code, output = netgen(*args, "--region", "us-east-1", "--region", "eu-west-1", "--account-id", LEGACY,
                          "--account-name", "acme-legacy", "--profile", "acme-legacy",
                          *[x for v in legacy_vpcs for x in ("--vpc", v)])
    assert code == 0, output
    code, output = netgen(*args, "--region", "us-west-2", "--account-id", PLATFORM, "--account-name",
                          "acme-platform", "--profile", "acme-platform", "--vpc", seeded.vpcs["k8s-usw2"].vpc_id)
    assert code == 0, output
    discovered = {p.name for p in inventory.iterdir()}
    assert discovered == {"acme-legacy.yaml", "acme-legacy-us-east-1.yaml", "acme-legacy-eu-west-1.yaml",
                          "acme-platform.yaml", "acme-platform-us-west-2.yaml"}
    text = (inventory / "acme-legacy-eu-west-1.yaml").read_text()
    assert "name: db-euw1-01" in text and "role: database" in text and "restrictsEgress: true" in text
    assert "kind: HostGroup" in (inventory / "acme-legacy.yaml").read_text()
    code, output = netgen("validate", "--specs", specs, "--as-of", AS_OF)
    assert code == 0, output
    # 2. add what discovery cannot know (clusters, services, workloads, two member-list host groups) and grants
    for name in ("settings.yaml", "clusters.yaml", "services.yaml", "workloads.yaml"):
        shutil.copy(SPECS / "inventory" / name, inventory / name)
    extra_groups = [d for d in (SPECS / "inventory/host-groups.yaml").read_text().split("---\n")
                    if "name: databases" in d]
    (inventory / "host-groups-extra.yaml").write_text("---\n".join(extra_groups))
    shutil.copytree(SPECS / "access", specs / "access")
    for doc in ("clusters.yaml", "services.yaml"):  # the example's ids of discovered groups -> moto's ids
        path = inventory / doc
        text = path.read_text()
        for old, new in seeded.substitutions.items():
            text = text.replace(old, new)
        path.write_text(text)
    build(specs, out)
    # 3. deploy, verify
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert "+ Add" in output and "AWS::EC2::SecurityGroupIngress" in output
    assert "accepted peering" in output and "created pcx-" in output
    code, output = verify(cloud, specs)
    assert code == 0, output
    assert "verify: ok" in output
    lab = Lab(seeded, out, None, cloud.view(seeded.places))  # type: ignore[arg-type]
    assert judge(lab).failures == []
    code, found = drift(cloud, specs, out)
    assert (code, found["drift"]) == (0, [])
    # a rerun changes nothing, and creates no change set: every stack's digest is what is deployed
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert output.splitlines()[-1] == f"deploy: {plan_size(out)} unchanged", output
    assert "change set" not in output and "repaired" not in output
    # 4. update a grant (settlement-to-databases: 5432 -> 5433) and remove one (ledger-exporter-to-erp: the only
    # grant with rules on legacy-erp-euw1)
    payments = specs / "access/payments.yaml"
    text = payments.read_text()
    assert text.count("ports: [5432]") >= 1
    payments.write_text(text.replace("ports: [5432]", "ports: [5433]", 1))
    ledger = specs / "access/ledger.yaml"
    docs = ledger.read_text().split("---\n")
    ledger.write_text("---\n".join(d for d in docs if "name: ledger-exporter-to-erp" not in d))
    build(specs, out)
    erp_stack = "netgen-acme-legacy-eu-west-1-sg-legacy-erp-euw1"
    assert erp_stack in stacks(cloud)
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"[{erp_stack}] no longer in the plan, deleting it" in output
    assert output.splitlines()[-1].startswith(f"deploy: 2 updated, {plan_size(out) - 2} unchanged, 1 deleted"), output
    assert erp_stack not in stacks(cloud)
    code, output = verify(cloud, specs)
    assert code == 0, output
    erp_rules = group_rules(cloud, LEGACY, "eu-west-1", seeded.groups["legacy-erp-euw1"])
    assert [r for r in erp_rules if r.get("Description", "").startswith("netgen:")] == []
    db_rules = [r for g in ("legacy-db-use1", "legacy-db-euw1")
                for r in group_rules(cloud, LEGACY, "us-east-1" if g.endswith("use1") else "eu-west-1",
                                     seeded.groups[g]) if "settlement-to-databases" in r.get("Description", "")]
    assert db_rules and {r["FromPort"] for r in db_rules} == {5433}
    code, found = drift(cloud, specs, out)
    assert (code, found["drift"]) == (0, [])
    # 5. drift names a rule added by hand (covered by no grant: a report, drift only with --strict); a widened
    # netgen rule is also an over-grant for verify
    db_euw1 = seeded.groups["legacy-db-euw1"]
    cloud.ec2(LEGACY, "eu-west-1").authorize_security_group_ingress(GroupId=db_euw1, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    code, found = drift(cloud, specs, out)
    assert code == 0
    assert found["drift"] == [{"kind": "rule", "change": "hand", "category": "uncovered",
                               "where": f"legacy-db-euw1 ({db_euw1})",
                               "detail": f"{db_euw1} ingress tcp/22 from 10.0.0.0/8: no grant allows 10.0.0.0/8 on "
                                         "tcp/22"}]
    assert found["migration"]["rules"]["uncovered"] == 1
    code, found = drift(cloud, specs, out, "--strict")
    assert code == 1
    code, output = verify(cloud, specs)
    assert code == 0, output  # a rule without a netgen description is drift's business, not verify's
    cloud.ec2(LEGACY, "eu-west-1").authorize_security_group_ingress(GroupId=db_euw1, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5433, "ToPort": 5433,
         "IpRanges": [{"CidrIp": "10.40.0.0/16", "Description": "netgen: settlement-to-databases"}]}])
    code, output = verify(cloud, specs, "--format", "json")
    assert code == 1
    report = json.loads(output[output.index("{"):])
    assert [f["rule"] for f in report["overGrants"]] == [f"{db_euw1} ingress tcp/5433 from 10.40.0.0/16"]
    assert report["unreachable"] == []
    # 6. a netgen rule removed by hand: the flows it carried are unreachable, and drift says it is missing
    billing = seeded.groups["legacy-billing-euw1"]
    ec2 = cloud.ec2(LEGACY, "eu-west-1")
    owned = [r for r in group_rules(cloud, LEGACY, "eu-west-1", billing) if not r["IsEgress"]]
    assert len(owned) == 1
    ec2.revoke_security_group_ingress(GroupId=billing, SecurityGroupRuleIds=[owned[0]["SecurityGroupRuleId"]])
    code, output = verify(cloud, specs)
    assert code == 1
    assert "unreachable: " in output and "refunds-worker-to-billing" in output
    assert f"ingress rule of {billing}" in output
    code, found = drift(cloud, specs, out)
    assert code == 1 and {(d["kind"], d["change"], d["where"]) for d in found["drift"]} >= {
        ("rule", "missing", f"legacy-billing-euw1 ({billing})")}
    # a deploy skips the unchanged stack; --full checks every stack against EC2 and repairs it (the stack itself
    # has no changes), and verify is clean of unreachable flows again
    code, output = deploy(cloud, specs, out)
    assert code == 0 and "repaired" not in output, output
    code, output = deploy(cloud, specs, out, "--full")
    assert code == 0 and f"repaired: authorized {billing} ingress" in output, output
    code, output = verify(cloud, specs)
    assert "0 unreachable" in output, output


@pytest.fixture
def example_build(cloud: MotoCloud, tmp_path: Path):
    seeded = seed_estate(cloud, example().estate)
    specs = rewrite_spec_ids(SPECS, tmp_path / "specs", seeded.substitutions)
    out = tmp_path / "generated"
    build(specs, out)
    return seeded, specs, out


def test_failed_stack_resumes(cloud: MotoCloud, example_build) -> None:
    """A stack that fails does not stop the others: they are deployed, the deploy exits 1 with the reason, and
    a rerun after the fix resumes (the failed create is deleted and created again; the rest is unchanged)."""
    seeded, specs, out = example_build
    bad = "netgen-acme-legacy-us-east-1-sg-legacy-db-use1"
    path = out / "aws/acme-legacy/us-east-1/sg-legacy-db-use1.json"
    template = json.loads(path.read_text())
    rule = next(iter(template["Resources"].values()))
    rule["Properties"]["GroupId"] = "sg-0123456789abcdef0"  # a group that does not exist
    path.write_text(json.dumps(template))
    code, output = deploy(cloud, specs, out)
    assert code == 1
    assert f"[{bad}] failed: executing change set" in output and "InvalidGroup.NotFound" in output
    assert output.splitlines()[-2].startswith(f"deploy: {plan_size(out) - 1} created, 1 failed;"), output
    assert output.splitlines()[-1].startswith(f"failed: {bad}: executing change set")
    live = stacks(cloud)
    plan = [s["stack"] for s in json.loads((out / "aws/deploy-plan.json").read_text())["stacks"]]
    assert all(live.get(s) == "CREATE_COMPLETE" for s in plan if s != bad)
    build(specs, out)  # the fix
    code, output = deploy(cloud, specs, out)
    assert code == 0, output
    assert f"{bad} is REVIEW_IN_PROGRESS" in output and "deleting it before retrying" in output
    assert output.splitlines()[-1].startswith(f"deploy: 1 created, {plan_size(out) - 1} unchanged"), output
    assert all(stacks(cloud).get(s) in ("CREATE_COMPLETE", "UPDATE_COMPLETE") for s in plan)
    code, output = verify(cloud, specs)
    assert code == 0, output


def test_rollback_complete_is_deleted_before_retrying(cloud: MotoCloud, example_build) -> None:
    """AWS leaves a failed create in ROLLBACK_COMPLETE (moto cannot: it raises from ExecuteChangeSet), which
    accepts no change set: deploy deletes it first. The stack's status is set in moto's backend (the server runs
    in this process) to stand for what AWS does."""
    from moto.cloudformation.models import cloudformation_backends

    seeded, specs, out = example_build
    code, output = deploy(cloud, specs, out, "--region", "eu-west-1")
    assert code == 0, output
    name = "netgen-acme-legacy-eu-west-1-sg-legacy-erp-euw1"
    backend = cloudformation_backends[LEGACY]["eu-west-1"]
    stack = next(s for s in backend.stacks.values() if s.name == name and s.status != "DELETE_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"
    code, output = deploy(cloud, specs, out, "--region", "eu-west-1")
    assert code == 0, output
    assert f"{name} is ROLLBACK_COMPLETE" in output and "deleting it before retrying" in output
    assert stacks(cloud)[name] == "CREATE_COMPLETE"


def test_dry_run_executes_nothing(cloud: MotoCloud, example_build) -> None:
    seeded, specs, out = example_build
    code, output = deploy(cloud, specs, out, "--dry-run")
    assert code == 0, output
    assert "dry run: change sets only" in output and "+ Add" in output
    assert "is not deployed yet; the change set uses pcx-00000000" in output
    assert stacks(cloud) == {}
    for account, region in seeded.places:
        ec2 = cloud.ec2(account, region)
        assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []
    assert all(not r.get("Description", "").startswith("netgen:")
               for g, gid in seeded.groups.items()
               for r in group_rules(cloud, *next((v.account, v.region) for v in seeded.vpcs.values()
                                                 if v.name == next(x.vpc.name for x in example().estate.security_groups
                                                                   if x.name == g)), gid))


def test_templates_over_the_inline_limit_go_through_s3(cloud: MotoCloud, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A group with hundreds of rules makes a template over CloudFormation's 51,200-byte inline limit: deploy
    refuses it with what to do, and with --template-bucket uploads it to S3 and deploys it from there.

    AWS's default of 60 rules per group can be raised to 1,000 (the spec says ruleQuota: 300); moto's 60 is
    fixed, so its check (the server runs in this process) is given the raised quota, and so is the quota
    Service Quotas reports, which deploy's preflight reads."""
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.servicequotas.models import VPC_DEFAULT_QUOTAS

    rules_quota = next(q for q in VPC_DEFAULT_QUOTAS if q["QuotaCode"] == "L-0EA8095F")
    monkeypatch.setitem(rules_quota, "Value", 1000.0)

    check = SecurityGroupBackend._verify_group_will_respect_rule_count_limit
    monkeypatch.setattr(SecurityGroupBackend, "_verify_group_will_respect_rule_count_limit",
                        lambda self, group, current, ranges, sources=None, egress=False:
                        check(self, group, current - 240, ranges, sources, egress))
    seeded = seed_estate(cloud, example().estate)
    specs = rewrite_spec_ids(SPECS, tmp_path / "specs", seeded.substitutions)
    ports = ", ".join(str(p) for p in range(2001, 2501, 2))  # 250 ports, no two adjacent: 250 rules
    ledger = specs / "access/ledger.yaml"
    ledger.write_text(ledger.read_text().replace("{host: erp-euw1-01, ports: [22]}",
                                                 f"{{host: erp-euw1-01, ports: [{ports}]}}"))
    groups = specs / "inventory/security-groups.yaml"
    groups.write_text(groups.read_text().replace("  name: legacy-erp-euw1\nspec:\n",
                                                 "  name: legacy-erp-euw1\nspec:\n  ruleQuota: 300\n"))
    out = tmp_path / "generated"
    build(specs, out)
    template = json.loads((out / "aws/acme-legacy/eu-west-1/sg-legacy-erp-euw1.json").read_text())
    assert len(json.dumps(template, sort_keys=True, separators=(",", ":"))) > 51_200
    name = "netgen-acme-legacy-eu-west-1-sg-legacy-erp-euw1"

    code, output = deploy(cloud, specs, out, "--region", "eu-west-1")
    assert code == 1 and f"failed: preflight: {name}:" in output and "name an S3 bucket" in output, output
    assert "nothing was changed" in output and stacks(cloud) == {}

    bucket = f"netgen-templates-{LEGACY}-eu-west-1"
    code, output = deploy(cloud, specs, out, "--region", "eu-west-1", "--template-bucket", "netgen-templates-{region}")
    assert code == 1 and "template bucket netgen-templates-eu-west-1 (--template-bucket) cannot be used" in output
    assert "nothing was changed" in output and stacks(cloud) == {}
    cloud.client("s3", LEGACY, "eu-west-1").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    code, output = deploy(cloud, specs, out, "--region", "eu-west-1",
                          "--template-bucket", "netgen-templates-{account}-{region}")
    assert code == 0, output
    assert f"uploaded to s3://{bucket}/netgen/{name}/" in output
    assert f"read from https://{bucket}.s3.eu-west-1.amazonaws.com/netgen/{name}/" in output
    assert stacks(cloud)[name] == "CREATE_COMPLETE"
    deployed = cloud.client("cloudformation", LEGACY, "eu-west-1").get_template(StackName=name)["TemplateBody"]
    assert (json.loads(deployed) if isinstance(deployed, str) else deployed) == template
    group_id = next(iter(template["Resources"].values()))["Properties"]["GroupId"]
    opened = {r["FromPort"] for r in group_rules(cloud, LEGACY, "eu-west-1", group_id) if not r["IsEgress"]}
    assert set(range(2001, 2501, 2)) <= opened
    # One bucket for every region: the template's address names the bucket's region, not the stack's.
    cloud.client("s3", LEGACY, "us-east-1").create_bucket(Bucket="netgen-templates-shared")
    code, output = deploy(cloud, specs, out, "--region", "eu-west-1", "--template-bucket", "netgen-templates-shared",
                          "--full")
    assert code == 0, output
    assert "read from https://netgen-templates-shared.s3.us-east-1.amazonaws.com/netgen/" in output


@pytest.mark.parametrize(("pattern", "name"), [("Templates_{region}", "Templates_us-east-1"),
                                             ("templates.{account}", "templates.123456789012")])
def test_template_bucket_must_be_a_bucket_name_without_dots(tmp_path: Path, pattern: str, name: str) -> None:
    code, output = netgen("deploy", "--template-bucket", pattern, "--specs", SPECS, "--out", tmp_path, "--as-of", AS_OF)
    assert code == 2 and f"--template-bucket: '{name}' is not an S3 bucket name netgen can use" in output


def test_build_and_validate_never_import_boto3(tmp_path: Path) -> None:
    """Nor jsonschema, on a valid estate: it is only needed to explain a document that fails the fast check."""
    probe = ("import sys\n"
             "from netgen.cli import app\n"
             "for args in (['validate', '--as-of', '2026-11-26'], "
             f"['build', '--out', {str(tmp_path / 'out')!r}, '--as-of', '2026-11-26']):\n"
             "    try:\n"
             "        app(args)\n"
             "    except SystemExit as exc:\n"
             "        assert exc.code in (0, None), exc.code\n"
             "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'jsonschema') "
             "or m.startswith('netgen.aws'))\n"
             "print('LEAKED', leaked)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LEAKED []" in result.stdout, result.stdout
