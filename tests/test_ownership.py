"""Ownership: services, host groups and hosts name the team that owns them (spec.owner); `netgen diff` lists the
owners whose services or hosts gain or lose callers (text, markdown, json), and `netgen owners` maps spec files to
the teams that must review them, as a CODEOWNERS block it can write and check."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from buildhelpers import netgen
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.review.owners import BEGIN, END, Owners

AS_OF = EXAMPLE_AS_OF.isoformat()
GRANT = """---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: {name}
spec:
  owner: {owner}
  reason: a grant for the ownership tests
  from: {from_}
  to: {to}
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=netgen-test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds the example estate under netops/specs (not at the top)."""
    root = tmp_path / "repo"
    (root / "netops").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(EXAMPLE_SPECS, root / "netops" / "specs")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "example estate")
    return root


def add_grant(specs: Path, name: str, owner: str, from_: str, to: str) -> None:
    with (specs / "access" / "zz-ownership.yaml").open("a", encoding="utf-8") as f:
        f.write(GRANT.format(name=name, owner=owner, from_=from_, to=to))


# --- the model -----------------------------------------------------------------------------------------------

def test_example_estate_names_owners():
    estate = resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter()).estate
    services = {s.ref: s.owner for s in estate.services}
    assert services["prod-use1/payments/payments-api"] == "team-payments"
    assert services["prod-use1/ledger/ledger-export"] == "team-ledger"
    assert {g.name: g.owner for g in estate.host_groups}["databases"] == "team-dba"
    hosts = {h.name: h for h in estate.hosts}
    assert hosts["erp-euw1-01"].owner == "team-erp" and hosts["db-use1-01"].owner is None


def test_a_host_without_an_owner_is_answered_for_by_its_groups():
    estate = resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter()).estate
    owners = Owners(estate)
    grants = {g.name: g for g in estate.grants}
    # a grant to one host of the databases groups (a host with no owner of its own)
    temp = grants["settlement-to-pgbouncer-temp"]
    assert {owner for owner, kind, _ in owners.targets(temp) if kind == "host"} == {"team-dba"}
    # a grant to a group with an owner: the group answers, not each of its hosts again
    assert owners.targets(grants["settlement-to-databases"]) == [("team-dba", "host group", "databases")]
    assert owners.targets(grants["ledger-exporter-to-erp"]) == [("team-erp", "host", "erp-euw1-01")]
    assert owners.targets(grants["billing-to-payments-api"]) == [
        ("team-payments", "service", "prod-use1/payments/payments-api")]


@pytest.mark.parametrize(("file", "old", "new"), [
    ("inventory/services.yaml", "  owner: team-search", "  owner: -team-search"),
    ("inventory/host-groups.yaml", "db-euw1-02]\n  owner: team-dba", "db-euw1-02]\n  owner: [team-dba]"),
    ("inventory/hosts-euw1.yaml", "  owner: team-erp", "  owner: team erp" + " and more" * 7),
])
def test_an_owner_must_look_like_a_team(file: str, old: str, new: str, example_specs: Path):
    edit_spec(example_specs / file, old, new)
    found = [(d.code, d.location.line) for d in diagnose_specs(example_specs)]
    line = next(i for i, text in enumerate((example_specs / file).read_text().splitlines(), 1) if "owner:" in text
                and new.split("owner: ")[1].split("\n")[0] in text)
    assert ("NG012", line) in found, found


# --- netgen owners -------------------------------------------------------------------------------------------

def test_owners_maps_spec_files_to_the_teams_that_review_them(repo: Path):
    result = netgen("owners", "--as-of", AS_OF, cwd=repo / "netops")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == BEGIN and lines[-1] == END
    # paths from the repository's top; the teams whose services or hosts the file's grants reach, not the grants'
    # own teams (they are the ones asking)
    assert "/netops/specs/access/billing.yaml @team-payments" in lines
    assert "/netops/specs/access/payments.yaml @team-billing @team-dba @team-loyalty" in lines
    assert "/netops/specs/access/ledger.yaml @team-erp @team-ledger" in lines
    assert "/netops/specs/inventory/hosts-euw1.yaml @team-erp" in lines  # what a file defines, too
    assert not any("accounts.yaml" in line or "vpcs.yaml" in line for line in lines)  # nothing owned there
    prefixed = netgen("owners", "--as-of", AS_OF, "--prefix", "@acme/", cwd=repo / "netops")
    assert "/netops/specs/access/billing.yaml @acme/team-payments" in prefixed.stdout.splitlines()


def test_owners_json_says_why(repo: Path):
    data = json.loads(netgen("owners", "--as-of", AS_OF, "--format", "json", cwd=repo / "netops").stdout)
    files = {f["file"]: f["teams"] for f in data["files"]}
    assert files["netops/specs/access/billing.yaml"] == {
        "team-payments": ["grant billing-to-payments-api reaches service prod-use1/payments/payments-api",
                          "grant billing-to-refunds-api reaches service prod-usw2/payments/refunds-api"]}
    assert "defines host erp-euw1-01" in files["netops/specs/inventory/hosts-euw1.yaml"]["team-erp"]
    assert data["diagnostics"] == []


def test_owners_writes_and_checks_its_block_of_a_codeowners_file(repo: Path):
    codeowners = repo / ".github" / "CODEOWNERS"
    codeowners.parent.mkdir()
    codeowners.write_text("* @acme/platform\n/docs/ @acme/writers\n")
    args = ["owners", "--as-of", AS_OF, "--specs", str(repo / "netops" / "specs")]
    assert netgen(*args, "--check", str(codeowners), cwd=repo).exit_code == 1  # no block yet
    assert netgen(*args, "--write", str(codeowners), cwd=repo).exit_code == 0
    text = codeowners.read_text()
    assert text.startswith("* @acme/platform\n/docs/ @acme/writers\n\n" + BEGIN + "\n")  # the team's lines first
    assert text.endswith(END + "\n")
    assert netgen(*args, "--check", str(codeowners), cwd=repo).exit_code == 0
    codeowners.write_text(text + "/tools/ @acme/tooling\n")  # lines after the block stay where they are
    specs = repo / "netops" / "specs"
    edit_spec(specs / "inventory/services.yaml", "  owner: team-search", "  owner: team-find")
    stale = netgen(*args, "--check", str(codeowners), cwd=repo)
    assert stale.exit_code == 1 and "is stale" in stale.stderr
    assert netgen(*args, "--write", str(codeowners), cwd=repo).exit_code == 0
    updated = codeowners.read_text()
    assert updated.count(BEGIN) == 1 and updated.endswith(END + "\n/tools/ @acme/tooling\n")
    assert "/netops/specs/access/search.yaml @team-data @team-find" in updated.splitlines()
    assert netgen(*args, "--check", str(codeowners), cwd=repo).exit_code == 0


def test_owners_without_git_counts_paths_from_the_spec_folders_parent(tmp_path: Path):
    specs = copy_example_specs(tmp_path)
    result = run_cli("owners", "--specs", str(specs), "--as-of", AS_OF)
    assert "/specs/access/billing.yaml @team-payments" in result.stdout.splitlines()


# --- netgen diff: approvals ----------------------------------------------------------------------------------

def diff(repo: Path, *args: str):
    return run_cli("diff", "--specs", str(repo / "netops" / "specs"), "--as-of", AS_OF, *args)


@pytest.fixture
def changed(repo: Path) -> Path:
    """The repository with a change in the working tree: ledger-api and the databases group gain callers, erp
    loses its caller; db-use1-01 gets an owner of its own."""
    specs = repo / "netops" / "specs"
    add_grant(specs, "billing-to-ledger-api", "team-billing", "{hostGroup: billing}", "{service: ledger/ledger-api}")
    add_grant(specs, "fraud-to-databases", "team-payments", "{workload: payments/settlement-worker}",
              "{hostGroup: databases, ports: [6432]}")
    edit_spec(specs / "access/ledger.yaml", "ports: [22]}", "ports: [2222]}")  # ledger-exporter-to-erp: 22 -> 2222
    edit_spec(specs / "inventory/hosts-use1.yaml", "  name: db-use1-01\n  labels: {role: database}\nspec:\n",
              "  name: db-use1-01\n  labels: {role: database}\nspec:\n  owner: team-pg\n")
    return repo


def test_diff_lists_whose_services_and_hosts_gain_or_lose_callers(changed: Path):
    result = diff(changed)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("needs approval from team-dba, team-erp, team-ledger, team-pg:")
    assert lines[start + 1:start + 7] == [
        "  team-dba: host group databases gains callers (grant fraud-to-databases)",
        "  team-erp: host erp-euw1-01 gains callers (grant ledger-exporter-to-erp)",
        "  team-erp: host erp-euw1-01 loses callers (grant ledger-exporter-to-erp)",
        "  team-ledger: service prod-use1/ledger/ledger-api gains callers (grant billing-to-ledger-api)",
        "  team-pg: host db-use1-01 gains callers (grant fraud-to-databases)",
        "",
    ]


def test_diff_approvals_in_markdown_and_json(changed: Path):
    markdown = diff(changed, "--format", "markdown").stdout
    assert ("#### Approvals\n\nNeeds approval from **team-dba**, **team-erp**, **team-ledger**, **team-pg**.\n"
            in markdown)
    assert "- **team-ledger**: service `prod-use1/ledger/ledger-api` gains callers (grant billing-to-ledger-api)" \
        in markdown
    data = json.loads(diff(changed, "--format", "json").stdout)["approvals"]
    assert data["needsApprovalFrom"] == ["team-dba", "team-erp", "team-ledger", "team-pg"]
    assert {"owner": "team-pg", "kind": "host", "name": "db-use1-01", "change": "gains callers",
            "grants": ["fraud-to-databases"]} in data["changes"]


def test_diff_names_what_nobody_owns_and_no_change_needs_nobody(repo: Path):
    specs = repo / "netops" / "specs"
    assert "approval" not in diff(repo).stdout  # no access change
    edit_spec(specs / "inventory/services.yaml", "  owner: team-reporting\n", "")
    edit_spec(specs / "access/reporting.yaml", "ports: [https]", "ports: [443]")  # same access, by number
    assert "approval" not in diff(repo).stdout
    add_grant(specs, "billing-to-report-api", "team-billing", "{hostGroup: billing}", "{service: reporting/report-api}")
    lines = diff(repo).stdout.splitlines()
    start = lines.index("needs approval from nobody (no owner is declared for what changes):")
    assert lines[start + 1] == ("  (no owner): service prod-usw2/reporting/report-api gains callers "
                                "(grant billing-to-report-api)")
    assert json.loads(diff(repo, "--format", "json").stdout)["approvals"]["changes"][0]["owner"] is None


def test_reviewing_doc_quotes_what_diff_prints(repo: Path):
    """docs/reviewing.md's approvals example is the diff of the change it describes."""
    quoted = (Path(__file__).resolve().parents[1] / "docs" / "reviewing.md").read_text()
    block = quoted.split("## Who must approve", 1)[1].split("```\n", 2)[1]
    specs = repo / "netops" / "specs"
    add_grant(specs, "billing-to-ledger-api", "team-billing", "{hostGroup: billing}", "{service: ledger/ledger-api}")
    edit_spec(specs / "access/ledger.yaml", "ports: [22]}", "ports: [2222]}")
    assert "\n" + block in diff(repo).stdout
