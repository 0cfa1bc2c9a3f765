"""What a team copies into its repository to run netgen in CI: the GitHub Actions workflow (docs/ci/netgen.yml)
and the pre-commit hooks (.pre-commit-hooks.yaml). Both are run for real against a temporary git repository
holding the example estate: the workflow's shell steps with the working tree's `netgen` on PATH, the hooks
through pre-commit with this repository's working tree as the hook repository. The workflow is also linted
(actionlint, shellcheck) and checked against SchemaStore's workflow schema (check-jsonschema's copy).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, edit_spec, run_cli
from test_install import copy_sources

WORKFLOW = REPO_ROOT / "docs" / "ci" / "netgen.yml"
SCRIPTS = Path(sysconfig.get_paths()["scripts"])  # the test environment's commands: netgen, actionlint, ...
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
NEW_GRANT = """---
apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: batch-to-fraud-score
spec:
  owner: team-search
  reason: Batch hosts score yesterday's orders
  from: {hostGroup: batch}
  to: {service: payments/fraud-score, ports: [grpc]}
"""


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **GIT_ENV, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=300)


def git(repo: Path, *args: str) -> str:
    result = run("git", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def estate_repository(path: Path) -> Path:
    """A git repository (branch main) holding the example estate's specs/ and generated/, committed."""
    path.mkdir()
    for folder in ("specs", "generated"):
        shutil.copytree(REPO_ROOT / folder, path / folder)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the example estate")
    return path


def build(repo: Path) -> None:
    cwd = Path.cwd()
    os.chdir(repo)
    try:
        result = run_cli("build")
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.stderr


# ---- the GitHub Actions workflow ---------------------------------------------------------------------------


def test_the_workflow_passes_actionlint_and_the_workflow_schema():
    linted = run(SCRIPTS / "actionlint", "-shellcheck", SCRIPTS / "shellcheck", WORKFLOW, cwd=REPO_ROOT)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    checked = run(SCRIPTS / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW,
                  cwd=REPO_ROOT)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_linters_reject_a_broken_workflow(tmp_path):
    text = WORKFLOW.read_text()
    # A job without runs-on breaks the schema; untrusted input expanded into a script is what actionlint flags.
    broken = text.replace("    runs-on: ubuntu-latest\n    timeout-minutes: 15\n    steps:\n      - uses: actions/"
                          "checkout@v5\n      - uses:", "    timeout-minutes: 15\n    steps:\n      - uses: actions/"
                          "checkout@v5\n      - uses:", 1)
    broken = broken.replace('run: netgen validate --format github',
                            'run: echo "${{ github.event.pull_request.title }}"', 1)
    assert broken.count("runs-on") == text.count("runs-on") - 1 and "pull_request.title" in broken
    path = tmp_path / "netgen.yml"
    path.write_text(broken)
    linted = run(SCRIPTS / "actionlint", "-shellcheck", SCRIPTS / "shellcheck", path, cwd=tmp_path)
    assert linted.returncode == 1 and "runs-on" in linted.stdout and "untrusted" in linted.stdout, linted.stdout
    checked = run(SCRIPTS / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path, cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout


def workflow_steps(job: str) -> list[dict]:
    """The job's `run:` steps, as the runner would run them, less the install (tests/test_install.py installs)."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = [s for s in workflow["jobs"][job]["steps"] if "run" in s]
    assert steps[0]["name"] == "Install netgen" and steps[0]["run"] == 'python -m pip install "$NETGEN_PACKAGE"'
    return steps[1:]


def run_step(step: dict, repo: Path, summary: Path) -> subprocess.CompletedProcess[str]:
    """A run: step through bash as GitHub runs it (-e, pipefail), with its env: and ${{ github.base_ref }}."""
    env = {name: str(value).replace("${{ github.base_ref }}", "main") for name, value in step.get("env", {}).items()}
    assert "${{" not in step["run"], "expressions in scripts are expanded by GitHub, not by this test"
    return run("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"], cwd=repo,
               env={**env, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"})


@pytest.fixture
def pull_request(tmp_path) -> Path:
    """A clone of an estate repository (so origin/main exists) with a pull request's commit: a new grant, built."""
    origin = estate_repository(tmp_path / "origin")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "switch", "-q", "-c", "more-access")
    with (clone / "specs/access/search.yaml").open("a") as specs:
        specs.write(NEW_GRANT)
    build(clone)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "batch hosts call fraud-score")
    return clone


def test_the_workflow_checks_a_pull_request_and_writes_its_diff(pull_request, tmp_path):
    summary = tmp_path / "summary.md"
    for step in workflow_steps("check"):
        result = run_step(step, pull_request, summary)
        assert result.returncode == 0, (step["name"], result.stdout + result.stderr)
    for step in workflow_steps("diff"):
        result = run_step(step, pull_request, summary)
        assert result.returncode == 0, (step["name"], result.stdout + result.stderr)
    report = (pull_request / "netgen-diff.md").read_text()
    assert "batch-to-fraud-score" in report and "team-search" in report
    assert summary.read_text() == report


def test_the_workflow_annotates_a_spec_error_and_fails_on_stale_output(pull_request, tmp_path):
    validate, build_check = workflow_steps("check")
    edit_spec(pull_request / "specs/access/search.yaml", "payments/fraud-score, ports: [grpc]",
              "payments/fraud-scor, ports: [grpc]")
    result = run_step(validate, pull_request, tmp_path / "summary.md")
    assert result.returncode == 1
    assert re.search(r"^::error file=specs/access/search\.yaml,line=\d+,col=\d+.*NG104", result.stdout + result.stderr,
                     re.MULTILINE), result.stdout + result.stderr

    edit_spec(pull_request / "specs/access/search.yaml", "payments/fraud-scor, ports: [grpc]",
              "payments/fraud-score, ports: [metrics]")
    result = run_step(build_check, pull_request, tmp_path / "summary.md")
    assert result.returncode == 1
    assert "::error title=generated/ is stale::" in result.stdout


# ---- the pre-commit hooks ----------------------------------------------------------------------------------


def hook_repository(path: Path) -> tuple[Path, str]:
    """This repository's working tree as a hook repository: the package and .pre-commit-hooks.yaml, committed."""
    copy_sources(path)
    shutil.copy2(REPO_ROOT / ".pre-commit-hooks.yaml", path)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "hooks")
    return path, git(path, "rev-parse", "HEAD")


def test_the_pre_commit_hooks_guard_commits_of_specs(tmp_path):
    hooks, rev = hook_repository(tmp_path / "hooks")
    ids = [hook["id"] for hook in yaml.safe_load((hooks / ".pre-commit-hooks.yaml").read_text())]
    assert ids == ["netgen-validate", "netgen-build-check"]
    repo = estate_repository(tmp_path / "estate")
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(
        {"repos": [{"repo": str(hooks), "rev": rev, "hooks": [{"id": i} for i in ids]}]}))
    # pre-commit installs the hook repository into a virtualenv of its own with `pip install .`. To stay offline
    # and fast, pip builds without isolation (the virtualenv's own setuptools; pip reads this variable inverted)
    # and installs no dependencies, which the hooks then find in the test environment through PYTHONPATH.
    offline = {"PRE_COMMIT_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_NO_DEPS": "1",
               "PIP_NO_BUILD_ISOLATION": "0"}
    installed = run(sys.executable, "-m", "pre_commit", "install-hooks", cwd=repo, env=offline)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert run(sys.executable, "-m", "pre_commit", "install", cwd=repo).returncode == 0
    hooked = {"PRE_COMMIT_HOME": offline["PRE_COMMIT_HOME"], "PYTHONPATH": sysconfig.get_paths()["purelib"]}

    clean = run(sys.executable, "-m", "pre_commit", "run", "--all-files", cwd=repo, env=hooked)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.findall(r"^netgen .*(Passed)$", clean.stdout, re.MULTILINE) == ["Passed", "Passed"], clean.stdout

    # A spec changed without `netgen build`: the commit is refused by the build check alone.
    with (repo / "specs/access/search.yaml").open("a") as specs:
        specs.write(NEW_GRANT)
    git(repo, "add", "-A")
    refused = run("git", "commit", "-q", "-m", "grant without build", cwd=repo, env=hooked)
    output = refused.stdout + refused.stderr  # git hands the hook's output to stderr
    assert refused.returncode == 1
    assert re.search(r"^netgen validate\.+Passed$", output, re.MULTILINE), output
    assert re.search(r"^netgen build --check\.+Failed$", output, re.MULTILINE), output

    build(repo)
    git(repo, "add", "-A")
    accepted = run("git", "commit", "-q", "-m", "grant, built", cwd=repo, env=hooked)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr

    # A typo: refused by validate, with the located error.
    edit_spec(repo / "specs/access/search.yaml", "payments/fraud-score, ports", "payments/fraud-scor, ports")
    git(repo, "add", "-A")
    typo = run("git", "commit", "-q", "-m", "typo", cwd=repo, env=hooked)
    output = typo.stdout + typo.stderr
    assert typo.returncode == 1
    assert re.search(r"^specs/access/search\.yaml:\d+:\d+: error\[NG104\]", output, re.MULTILINE), output
    assert git(repo, "log", "--format=%s") == "grant, built\nthe example estate"
