"""Command-line conventions: --version, -h, shell completion, flags shown as flags, --format json wherever a command
prints results, -q / --quiet, colour only on a terminal (NO_COLOR honoured), running from a subdirectory of the
repository, and the warning for spec-looking files that are not read (NG008)."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from buildhelpers import netgen
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, edit_spec, run_cli

import netgen as package
from netgen.cli import app

AS_OF = EXAMPLE_AS_OF.isoformat()
SPECS = ("--specs", str(EXAMPLE_SPECS), "--as-of", AS_OF)
NETGEN = Path(sys.executable).parent / "netgen"  # the console script pip installed
DUPLICATE = """apiVersion: netgen.dev/v1alpha1
kind: Grant
metadata:
  name: {name}
spec:
  owner: team-test
  reason: a duplicate of billing-to-payments-api
  from: {{hostGroup: billing}}
  to: {{service: payments/payments-api, ports: [https]}}
"""


def commands() -> list[str]:
    from typer.main import get_command

    return sorted(get_command(app).commands)


def run_script(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([str(NETGEN), *args], capture_output=stderr is subprocess.PIPE, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=cwd, **({} if stderr is subprocess.PIPE
                                                                          else {"stderr": stderr,
                                                                                "stdout": subprocess.PIPE}))


@pytest.fixture
def duplicates(example_specs: Path) -> Path:
    """The example estate with two grants that duplicate billing-to-payments-api: two NG112 warnings."""
    for name in ("dup-one", "dup-two"):
        (example_specs / "access" / f"zz-{name}.yaml").write_text(DUPLICATE.format(name=name), "utf-8")
    return example_specs


# --- version, help, completion -------------------------------------------------------------------------------

def test_version_prints_the_package_version():
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout == f"netgen {package.__version__}\n"


@pytest.mark.parametrize("command", [None, "build", "explain", "import-grants"])
def test_short_help_is_the_long_help(command: str | None):
    args = [command] if command else []
    short, long = run_cli(*args, "-h"), run_cli(*args, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and "-h, --help" in short.stdout


def test_every_command_shows_boolean_flags_as_flags():
    """Help names a flag alone (`--check`), never `--check <bool>`, and every value's placeholder is a word."""
    for command in commands():
        text = run_cli(command, "-h").stdout
        assert "<bool>" not in text and "<path>" not in text and "list[" not in text, (command, text)
    build_help = run_cli("build", "-h").stdout
    assert any(line.split()[:2] == ["--check", "Write"] for line in build_help.splitlines()), build_help
    assert "--rules / --no-rules" in run_cli("import-grants", "-h").stdout


# Users get the script for the shell they run netgen from (typer detects it); typer's switch for tests makes the
# shell an argument instead, so that these tests do not depend on which shell started them.
NAMED_SHELL = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


def test_shell_completion_completes_commands_options_and_choices():
    script = run_script("--show-completion", "bash", env=NAMED_SHELL)
    assert script.returncode == 0 and "_NETGEN_COMPLETE=complete_bash" in script.stdout
    assert "compdef _netgen_completion netgen" in run_script("--show-completion", "zsh", env=NAMED_SHELL).stdout

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        done = run_script(env={"_NETGEN_COMPLETE": "complete_bash", "COMP_WORDS": line,
                               "COMP_CWORD": str(len(words) - 1)})
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("netgen va") == ["validate"]
    assert complete("netgen build --fo") == ["--format"]
    assert complete("netgen build --format ") == ["text", "json", "github"]


def test_install_completion_writes_the_script_for_the_shell(tmp_path: Path):
    done = run_script("--install-completion", "bash", env={"HOME": str(tmp_path), **NAMED_SHELL})
    assert done.returncode == 0, done.stderr
    assert "_NETGEN_COMPLETE" in (tmp_path / ".bash_completions" / "netgen.sh").read_text()
    assert ".bash_completions/netgen.sh" in (tmp_path / ".bashrc").read_text()


# --- --format json -------------------------------------------------------------------------------------------

def test_validate_json_on_success_is_an_empty_list():
    result = run_cli("validate", *SPECS, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_build_json_prints_one_document(tmp_path: Path):
    result = run_cli("build", *SPECS, "--out", str(tmp_path / "out"), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_flows_json_is_the_report_as_data():
    text = run_cli("flows", *SPECS)
    result = run_cli("flows", *SPECS, "--format", "json")
    assert result.exit_code == text.exit_code == 0
    data = json.loads(result.stdout)
    assert data["diagnostics"] == []
    report_lines = text.stdout.splitlines()[2:]  # after the two header lines
    assert [f["line"] for f in data["flows"]] == report_lines
    first = data["flows"][0]
    assert first["line"].startswith(f"{first['source']} {','.join(first['sourceAddresses'])} -> ")
    assert {g["name"] for f in data["flows"] for g in f["grants"]} >= {"billing-to-payments-api"}


def test_explain_json_carries_the_answer_and_the_exit_code():
    for args, code in ((("billing-euw1-01", "payments/payments-api", "--port", "443"), 0),
                       (("erp-euw1-01", "payments/payments-api"), 1)):
        text = run_cli("explain", *args, *SPECS)
        result = run_cli("explain", *args, *SPECS, "--format", "json")
        assert result.exit_code == text.exit_code == code
        data = json.loads(result.stdout)
        assert data["allowed"] is (code == 0) and data["diagnostics"] == []
        assert "\n".join(data["lines"]) + "\n" == text.stdout
        assert data["question"].startswith("can host/")


def test_graph_json_has_every_vpc_edge_and_peering():
    data = json.loads(run_cli("graph", *SPECS, "--format", "json").stdout)
    mermaid = run_cli("graph", *SPECS).stdout
    assert {v["name"] for v in data["vpcs"]} == {"legacy-use1", "legacy-euw1", "loyalty-use1", "k8s-use1", "k8s-usw2"}
    assert len(data["edges"]) == mermaid.count(" -->|") > 0
    # (peerings, and pairs joined through a transit gateway: loyalty-use1 and k8s-use1)
    assert [p["label"] for p in data["peerings"]] == [line.split('"')[1] for line in mermaid.splitlines()
                                                      if " -.-|" in line or " ===|" in line or " <==>|" in line]
    assert any(p["label"].startswith("transit gateway ") for p in data["peerings"])
    assert data["diagnostics"] == []


@pytest.mark.parametrize("command", [["flows"], ["graph", "--format", "json"],
                                     ["explain", "billing-euw1-01", "payments/payments-api"]])
def test_result_json_with_spec_errors_is_the_diagnostics_alone(command: list[str], example_specs: Path):
    edit_spec(example_specs / "access/billing.yaml", "payments/payments-api, ports", "payments/payment-api, ports")
    args = [*command, "--specs", str(example_specs), "--as-of", AS_OF]
    if "--format" not in args:
        args += ["--format", "json"]
    result = run_cli(*args)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert list(data) == ["diagnostics"] and data["diagnostics"][0]["code"] == "NG104"


# --- -q / --quiet --------------------------------------------------------------------------------------------

def test_warnings_are_printed_unless_silenced(duplicates: Path):
    args = ["validate", "--specs", str(duplicates), "--as-of", AS_OF]
    loud = run_cli(*args)
    assert loud.exit_code == 0 and loud.stderr.count("warning[NG112]") == 2
    for quiet in (["-q"], ["--quiet", "NG112"], ["--quiet", "ng120,NG112"], ["--quiet", "all"]):
        result = run_cli(*args, *quiet)
        assert result.exit_code == 0, result.stderr
        assert "NG112]" not in result.stderr
        assert "2 warning(s) silenced (NG112: 2)" in result.stderr.splitlines()
    other = run_cli(*args, "--quiet", "NG120")
    assert other.stderr.count("warning[NG112]") == 2 and "silenced" not in other.stderr


def test_quiet_json_stays_one_document(duplicates: Path):
    result = run_cli("validate", "--specs", str(duplicates), "--as-of", AS_OF, "--format", "json", "-q")
    assert json.loads(result.stdout) == [] and "2 warning(s) silenced" in result.stderr
    flows = run_cli("flows", "--specs", str(duplicates), "--as-of", AS_OF, "--format", "json", "--quiet", "NG112")
    assert json.loads(flows.stdout)["diagnostics"] == []
    loud = json.loads(run_cli("flows", "--specs", str(duplicates), "--as-of", AS_OF, "--format", "json").stdout)
    assert [d["code"] for d in loud["diagnostics"]] == ["NG112", "NG112"]


@pytest.mark.parametrize(("code", "why"), [("NG104", "only warnings can be silenced"),
                                           ("NG999", "no such diagnostic code")])
def test_quiet_refuses_what_is_not_a_warning_code(code: str, why: str):
    result = run_cli("validate", *SPECS, "--quiet", code)
    assert result.exit_code == 2 and why in result.stderr


def test_errors_are_never_silenced(duplicates: Path):
    edit_spec(duplicates / "access/billing.yaml", "payments/payments-api, ports", "payments/payment-api, ports")
    result = run_cli("validate", "--specs", str(duplicates), "--as-of", AS_OF, "-q")
    assert result.exit_code == 1 and "error[NG104]" in result.stderr


# --- colour --------------------------------------------------------------------------------------------------

def _stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """netgen's stderr when it is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([str(NETGEN), *args], stdout=subprocess.DEVNULL, stderr=follower,
                                   env={**{k: v for k, v in os.environ.items() if k != "NO_COLOR"}, **env})
        os.close(follower)
        chunks = []
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=30)
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def test_diagnostics_are_coloured_on_a_terminal_only(duplicates: Path):
    args = ["validate", "--specs", str(duplicates), "--as-of", AS_OF]
    coloured = _stderr_on_a_terminal(args, {"TERM": "xterm"})
    assert "\x1b[1;33mwarning[NG112]:" in coloured
    assert "\x1b[" not in _stderr_on_a_terminal(args, {"TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b[" not in _stderr_on_a_terminal(args, {"TERM": "dumb"})
    piped = run_script(*args, env={"TERM": "xterm"})
    assert "warning[NG112]" in piped.stderr and "\x1b[" not in piped.stderr


# --- a subdirectory of the repository ------------------------------------------------------------------------

@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A repository holding the example estate: specs/, a docs/ folder, and .git (a folder is enough here)."""
    top = tmp_path / "repo"
    top.mkdir()
    copy_example_specs(top)
    (top / ".git").mkdir()
    (top / "docs" / "deep").mkdir(parents=True)
    return top


def test_build_from_a_subdirectory_is_the_build_from_the_top(repository: Path):
    at_top = netgen("build", "--as-of", AS_OF, "--out", "from-top", cwd=repository)
    assert at_top.exit_code == 0, at_top.output
    inside = netgen("build", "--as-of", AS_OF, cwd=repository / "specs" / "access")
    assert inside.exit_code == 0, inside.output
    generated = repository / "generated"  # beside specs/, not in the folder netgen ran in
    assert not (repository / "specs" / "access" / "generated").exists()
    names = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(repository / "from-top").as_posix()
                           for p in (repository / "from-top").rglob("*") if p.is_file())
    for name in names:  # byte for byte: files are named from the top, wherever netgen runs
        assert (generated / name).read_bytes() == (repository / "from-top" / name).read_bytes(), name
    assert "specs/access/billing.yaml:2" in (generated / "flows.txt").read_text()
    check = netgen("build", "--check", "--as-of", AS_OF, cwd=repository / "docs" / "deep")
    assert check.exit_code == 0 and "../../generated is up to date" in check.stderr


def test_validate_from_a_subdirectory_names_files_from_the_top(repository: Path):
    edit_spec(repository / "specs/access/billing.yaml", "payments/payments-api, ports", "payments/payment-api, ports")
    result = netgen("validate", "--as-of", AS_OF, cwd=repository / "docs" / "deep")
    assert result.exit_code == 1
    assert "specs/access/billing.yaml:10:17: error[NG104]" in result.stderr


def test_specs_are_not_looked_for_above_the_repository(repository: Path):
    inner = repository / "docs" / "deep" / "other-repo"
    (inner / ".git").mkdir(parents=True)
    result = netgen("validate", "--as-of", AS_OF, cwd=inner)
    assert result.exit_code == 2 and "no specs/ folder here or in a parent folder" in result.stderr
    given = netgen("validate", "--as-of", AS_OF, "--specs", str(repository / "specs"), cwd=inner)
    assert given.exit_code == 0, given.output


def test_flows_from_a_subdirectory_match_the_generated_report(repository: Path):
    netgen("build", "--as-of", AS_OF, cwd=repository)
    result = netgen("flows", "--as-of", AS_OF, cwd=repository / "specs" / "inventory")
    assert result.stdout == (repository / "generated" / "flows.txt").read_text()


# --- spec-looking files that are not read (NG008) ------------------------------------------------------------

def test_skipped_spec_looking_files_are_warned_about_and_the_build_goes_on(repository: Path):
    shutil.copy(repository / "specs/access/billing.yaml", repository / "specs/access/billing.yaml.bak")
    (repository / "specs/access/notes.yml.txt").write_text("x: 1\n")
    (repository / "specs/access/.billing.yaml.swp").write_bytes(b"\0vim swap")  # an editor's: ignored
    (repository / "README.yaml").write_text("title: not a spec\n")  # beside specs/, but no netgen document
    (repository / "stray.yaml").write_text("# a grant in the wrong place\n" + DUPLICATE.format(name="stray"))
    result = netgen("validate", "--as-of", AS_OF, cwd=repository / "docs")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning[NG008]" in line]
    assert [w.split(": warning")[0] for w in warnings] == ["specs/access/billing.yaml.bak",
                                                             "specs/access/notes.yml.txt", "stray.yaml:2:13"]
    assert result.stderr.splitlines()[-1].startswith("ok: ")
