"""`netgen diff` across real git revisions of a temporary repository: grants added and removed, the
infrastructure they change, reformatting and moving specs being "no access change", and the exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, edit_spec, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs

AS_OF = EXAMPLE_AS_OF.isoformat()

NEW_GRANT = """---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: billing-to-report-api
spec:
  owner: team-billing
  reason: Billing hosts download monthly reports
  from: {hostGroup: billing}
  to: {service: reporting/report-api}
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=netgen-test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on branch main whose first commit holds a copy of the example specs."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(EXAMPLE_SPECS, root / "specs")
    commit(root, "example estate")
    return root


def diff(repo: Path, *args: str):
    return run_cli("diff", "--specs", str(repo / "specs"), "--as-of", AS_OF, *args)


def diff_json(repo: Path, *args: str) -> dict:
    result = diff(repo, "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def vpc_route_tables(specs: Path) -> dict[str, tuple[str, ...]]:
    estate = resolve_specs(specs, EXAMPLE_AS_OF, Reporter()).estate
    return {v.name: v.route_tables for v in estate.vpcs}


def remove_document(path: Path, name: str) -> str:
    """Remove the document whose metadata.name is name from a multi-document file; return its text."""
    chunks = path.read_text("utf-8").split("\n---\n")
    kept = [c for c in chunks if f"  name: {name}\n" not in c]
    assert len(kept) == len(chunks) - 1, f"{name} not found exactly once in {path}"
    path.write_text("\n---\n".join(kept), "utf-8")
    return next(c for c in chunks if f"  name: {name}\n" in c)


def test_added_grant_reports_its_flows_and_the_infrastructure_it_needs(repo: Path):
    with (repo / "specs/access/billing.yaml").open("a", encoding="utf-8") as f:
        f.write(NEW_GRANT)
    commit(repo, "billing reads reports")
    data = diff_json(repo, "--base", "HEAD~1")

    assert data["accessChanged"] is True
    assert data["flows"]["removed"] == []
    added = data["flows"]["added"]
    # report-api sits behind an NLB that does not preserve the client IP: the new hops are the billing hosts
    # dialling the NLB, from each VPC billing hosts live in; the NLB -> pods hop already existed for the ERP.
    assert {f["destination"] for f in added} == {"load-balancer/prod-usw2/reporting/report-api"}
    assert {(f["protocol"], f["fromPort"]) for f in added} == {("tcp", 443)}
    assert {f["path"].split(" ")[0] for f in added} == {"legacy-use1", "legacy-euw1"}
    assert all([g["name"] for g in f["grants"]] == ["billing-to-report-api"] for f in added)
    assert [(g["name"], g["owner"], g["status"]) for g in data["grants"]] == [
        ("billing-to-report-api", "team-billing", "new")]
    assert any(r["flow"].startswith("load-balancer/prod-usw2/reporting/report-api") and
               ["billing-to-report-api", "team-billing"] in r["after"] for r in data["flows"]["reattributed"])

    # legacy-use1 gains routes to the NLB subnet in every route table; legacy-euw1 already had them (ERP)
    tables = vpc_route_tables(repo / "specs")
    routes = data["routes"]["added"]
    assert {(r["vpc"], r["routeTable"]) for r in routes} == {("legacy-use1", t) for t in tables["legacy-use1"]}
    assert {r["prefix"] for r in routes} == {"10.50.32.0/24"}
    assert all(r["grants"] == ["billing-to-report-api"] for r in routes)
    assert data["routes"]["removed"] == [] and data["peerings"]["added"] == []
    changed = [c["after"]["file"] for c in data["networkPolicies"]["changed"]]
    assert changed == ["generated/kubernetes/prod-usw2/reporting/netgen-ingress-report-api.yaml"]

    text = diff(repo, "--base", "HEAD~1")
    assert text.exit_code == 0
    assert "owner team-billing:" in text.stdout
    assert "billing-to-report-api (" in text.stdout and "billing.yaml:" in text.stdout
    assert "+ legacy-use1 " in text.stdout and "no access change" not in text.stdout

    markdown = diff(repo, "--base", "HEAD~1", "--format", "markdown")
    assert markdown.exit_code == 0
    assert markdown.stdout.startswith("### netgen diff")
    assert "```diff\n+ hostGroup/billing" in markdown.stdout


def test_removed_grant_reports_the_infrastructure_that_goes(repo: Path):
    remove_document(repo / "specs/access/reporting.yaml", "erp-to-report-api")
    base = git(repo, "rev-parse", "HEAD")
    commit(repo, "ERP no longer reads reports")
    data = diff_json(repo, "--base", base)

    assert data["flows"]["added"] == []
    removed = data["flows"]["removed"]
    assert {f["source"] for f in removed} == {"host/erp-euw1-01", "load-balancer/prod-usw2/reporting/report-api"}
    change = data["grants"][0]
    assert (change["name"], change["owner"], change["status"]) == ("erp-to-report-api", "team-finance", "removed")
    # removed grants are located in the base revision, as REV:path
    assert change["location"].startswith(f"{base[:12]}:specs/access/reporting.yaml:")
    assert [p["file"] for p in data["networkPolicies"]["removed"]] == [
        "generated/kubernetes/prod-usw2/reporting/netgen-ingress-report-api.yaml"]
    gone = {(r["group"], r["direction"], r["fromPort"], r["cidr"]) for r in data["securityGroupRules"]["removed"]}
    assert ("prod-usw2-nodes", "ingress", 8443, "10.50.32.0/24") in gone
    assert all("erp-to-report-api" in r["grants"] for r in data["securityGroupRules"]["removed"])
    # legacy-euw1 keeps its peering with k8s-usw2 (monitoring still pushes metrics there)
    assert data["peerings"]["removed"] == []
    assert {r["prefix"] for r in data["routes"]["removed"] if r["vpc"] == "legacy-euw1"} == {"10.50.32.0/24"}


def _reversed_keys(value):
    if isinstance(value, dict):
        return {k: _reversed_keys(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def test_reformatting_and_moving_specs_is_no_access_change(repo: Path):
    specs = repo / "specs"
    # reorder every key and change the indentation of a whole file
    ledger = specs / "access/ledger.yaml"
    documents = [_reversed_keys(d) for d in yaml.safe_load_all(ledger.read_text("utf-8"))]
    ledger.write_text(yaml.safe_dump_all(documents, indent=4, sort_keys=False, default_flow_style=False), "utf-8")
    # move a document into another file (its line numbers and file change)
    moved = remove_document(specs / "access/billing.yaml", "billing-to-refunds-api")
    (specs / "access/more").mkdir()
    (specs / "access/more/refunds.yaml").write_text("# moved here\n\n\n" + moved.lstrip("-\n"), "utf-8")
    # and shift every line of another file
    edit_spec(specs / "access/search.yaml", "# Access owned by the search team.\n",
              "# Access owned by the search team.\n#\n# (and reviewed every quarter)\n\n")
    commit(repo, "tidy specs")

    data = diff_json(repo, "--base", "HEAD~1")
    assert data["accessChanged"] is False and data["infrastructureChanged"] is False
    assert data["flows"] == {"added": [], "removed": [], "reattributed": []}
    assert data["grants"] == []
    text = diff(repo, "--base", "HEAD~1")
    assert text.exit_code == 0
    assert "no access change" in text.stdout
    assert "Infrastructure: no change" in text.stdout
    # the grants really moved: the flow report now locates them elsewhere
    report = run_cli("flows", "--specs", str(specs), "--as-of", AS_OF).stdout
    assert "billing-to-refunds-api@" in report and "more/refunds.yaml:4" in report


def test_uncommitted_working_tree_is_compared_and_default_base_is_the_merge_base(repo: Path):
    git(repo, "checkout", "-q", "-b", "feature")
    with (repo / "specs/access/billing.yaml").open("a", encoding="utf-8") as f:
        f.write(NEW_GRANT)
    commit(repo, "on a feature branch")
    # no --base: merge-base of HEAD and main, which is main's commit, so the feature's grant shows
    data = diff_json(repo)
    assert data["base"]["commit"] == git(repo, "rev-parse", "main")
    assert [g["name"] for g in data["grants"]] == ["billing-to-report-api"]
    # uncommitted edits count too: dropping the grant again in the working tree is no change against main
    remove_document(repo / "specs/access/billing.yaml", "billing-to-report-api")
    assert diff_json(repo)["accessChanged"] is False
    # ... but a change against HEAD
    removed = diff_json(repo, "--base", "HEAD")["flows"]["removed"]
    assert removed and all(f["grants"][0]["name"] == "billing-to-report-api" for f in removed)


def test_spec_errors_on_either_side_exit_1_located(repo: Path):
    edit_spec(repo / "specs/access/billing.yaml", "to: {service: payments/refunds-api}",
              "to: {service: payments/refund-api}")
    result = diff(repo)
    assert result.exit_code == 1
    assert "spec errors in the working tree" in result.stderr
    assert "billing.yaml:20:" in result.stderr and "NG104" in result.stderr
    broken = commit(repo, "broken")
    edit_spec(repo / "specs/access/billing.yaml", "payments/refund-api", "payments/refunds-api")
    result = diff(repo, "--base", "HEAD")
    assert result.exit_code == 1
    assert f"{broken[:12]}:specs/access/billing.yaml:20:" in result.stderr
    assert "spec errors in the working tree" not in result.stderr


def test_usage_errors_exit_2(repo: Path, tmp_path: Path):
    result = diff(repo, "--base", "no-such-revision")
    assert result.exit_code == 2
    assert "no-such-revision" in result.stderr
    outside = tmp_path / "not-a-repo"
    shutil.copytree(EXAMPLE_SPECS, outside / "specs")
    result = run_cli("diff", "--specs", str(outside / "specs"), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "not inside a git repository" in result.stderr
    result = diff(repo, "--format", "yaml")
    assert result.exit_code == 2


def test_specs_folder_new_at_the_base_revision(repo: Path):
    """A repository whose base revision has no spec folder yet: every flow is new."""
    git(repo, "rm", "-q", "-r", "specs")
    base = commit(repo, "no specs yet")
    shutil.copytree(EXAMPLE_SPECS, repo / "specs")
    data = diff_json(repo, "--base", base)
    assert data["base"]["specsMissing"] is True
    flows = resolve_specs(repo / "specs", EXAMPLE_AS_OF, Reporter()).flows
    assert len(data["flows"]["added"]) == len(flows)
    assert data["flows"]["removed"] == []
