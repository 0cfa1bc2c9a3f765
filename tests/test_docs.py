"""The README and docs/ are part of the interface: the diagnostics catalogue must match the code exactly, and what
they quote of netgen's output must be what netgen prints."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from netgen.diagnostics import CODES

README = Path(__file__).resolve().parents[1] / "README.md"
DOCS = README.parent / "docs"


def test_docs_document_every_diagnostic_code_with_its_severity():
    text = (DOCS / "diagnostics.md").read_text()
    rows = dict(re.findall(r"^\| (NG\d{3}) \| (error|warning) \|", text, re.MULTILINE))
    assert rows == {code: str(severity) for code, (severity, _) in CODES.items()}


def test_readme_quick_start_is_the_two_make_targets():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make (\w+)", quick, re.MULTILINE) == ["build", "test"]


def test_readme_worked_example_shows_real_output():
    """The worked example quotes generated/: every quoted flow line and rule line must be there verbatim."""
    text = README.read_text()
    example = text.split("## Worked example", 1)[1].split("\n## ", 1)[0]
    generated = README.parent / "generated"
    flows = (generated / "flows.txt").read_text().splitlines()
    quoted_flows = [line for line in example.splitlines() if line.startswith("hostGroup/")]
    assert quoted_flows and all(line in flows for line in quoted_flows)
    rule_lines = [line for line in example.splitlines() if line.startswith('"Ingress')]
    template = (generated / "aws/acme-legacy/us-east-1/sg-prod-use1-nodes.json").read_text()
    assert rule_lines and all(f"    {line}" in template.splitlines() for line in rule_lines)
    policy = (generated / "kubernetes/prod-use1/payments/netgen-ingress-payments-api.yaml").read_text()
    assert f"```yaml\n{policy}```" in example


def test_readme_typo_example_is_what_validate_prints(tmp_path, monkeypatch):
    from conftest import copy_example_specs, edit_spec, run_cli

    quoted = next(line for line in README.read_text().splitlines() if "error[NG104]" in line)
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "access/billing.yaml", "payments/payments-api, ports", "payments/payment-api, ports")
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", "--specs", "specs", "--as-of", "2026-11-26")
    assert result.exit_code == 1
    assert quoted in result.stderr.splitlines()


# ---- the README as a newcomer runs it ----------------------------------------------------------------------

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def fresh_clone(path: Path) -> Path:
    """What a clone holds after the quick start: specs/ and generated/ (committed), in a git repository."""
    path.mkdir()
    for folder in ("specs", "generated"):
        shutil.copytree(README.parent / folder, path / folder)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run(["git", *args], cwd=path, check=True, env={**os.environ, **GIT_IDENTITY})
    return path


def test_every_command_in_the_readme_runs_as_written_after_the_quick_start(tmp_path):
    """Each line of the README's sh blocks runs, in order, in a fresh clone, with `netgen` on PATH as the quick
    start's `. .venv/bin/activate` puts it; the walkthrough's YAML is written where it says; what the README
    quotes of the output is what the commands print."""
    text = README.read_text()
    makefile = (README.parent / "Makefile").read_text()
    repo = fresh_clone(tmp_path / "clone")
    env = {**os.environ, **GIT_IDENTITY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    walkthrough = section(text, "Add access for a new service")
    outputs: dict[str, str] = {}
    ran = []
    for language, body in code_blocks(text):
        if language == "yaml" and body.startswith("# specs/"):  # a new file, named on its first line
            target = repo / body.split("\n", 1)[0][2:].strip()
            assert not target.exists(), target
            target.write_text(body)
        elif language == "yaml" and body.startswith("    ") and body.count("\n") == 1:  # a new namespace line
            assert body in walkthrough and "under `prod-use1`'s `namespaces:`" in walkthrough
            clusters = repo / "specs/inventory/clusters.yaml"
            text_before = clusters.read_text()
            assert "metadata:\n  name: prod-use1\n" in text_before.split("  namespaces:\n", 1)[0]
            clusters.write_text(text_before.replace("  namespaces:\n", "  namespaces:\n" + body, 1))
        elif language == "yaml":  # a quote of the example estate or of its generated/ folder
            quoted = [*(README.parent / "specs").rglob("*.yaml"), *(README.parent / "generated").rglob("*.yaml")]
            assert any(body in f.read_text() for f in quoted), body
        elif language == "sh":
            for line in body.splitlines():
                command = re.sub(r"\s+#\s.*$", "", line).strip()
                if command.startswith("make "):  # make test is this suite; make build made the venv it runs in
                    assert re.search(rf"^{command.split()[1]}:", makefile, re.MULTILINE), command
                elif command == ". .venv/bin/activate":
                    assert re.search(r"^VENV := \.venv$", makefile, re.MULTILINE)
                elif command:
                    result = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True,
                                            text=True, timeout=120)
                    assert result.returncode == 0, (command, result.stdout + result.stderr)
                    outputs[command] = result.stdout
                    ran.append(command)
    assert {"netgen validate", "netgen build", "netgen diff"} <= set(ran)
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout == ""

    (diff_quote,) = [body for language, body in code_blocks(walkthrough) if language == ""]
    printed = outputs["netgen diff"].splitlines()
    assert all(line in printed for line in diff_quote.splitlines() if line), (diff_quote, outputs["netgen diff"])


def test_links_in_the_readme_and_docs_resolve():
    for page in [README, *sorted(DOCS.rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+:", target):
                assert (page.parent / target).exists(), f"{page.relative_to(README.parent)}: {target}"


def test_readme_stays_a_newcomers_page():
    assert len(README.read_text()) <= 15_000


# ---- the diagnostics catalogue -----------------------------------------------------------------------------


def catalogue() -> dict[str, str]:
    """docs/diagnostics.md's "### NGxxx: title" sections, by code."""
    parts = re.split(r"^### (NG\d{3}): .*$", (DOCS / "diagnostics.md").read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_diagnostics_catalogue_explains_every_code_with_an_example_and_a_fix():
    sections = catalogue()
    assert sorted(sections) == sorted(CODES), "docs/diagnostics.md needs a '### NGxxx: title' section per code"
    for code, body in sections.items():
        assert "**Fix:**" in body, f"docs/diagnostics.md, {code}: say how to fix it (**Fix:** ...)"
        for _, example in code_blocks(body):
            shape = re.fullmatch(r"specs/\S+:\d+:\d+: (error|warning)\[(NG\d{3})\]: .+\n", example)
            assert shape and shape[2] == code and shape[1] == str(CODES[code][0]), (code, example)


def test_diagnostics_catalogue_examples_are_what_netgen_prints(tmp_path):
    """Each code that has fixtures in tests/test_diagnostics.py shows one line that one of them prints."""
    from conftest import diagnose_specs
    from test_diagnostics import CASES, _relative, build_fixture

    sections = catalogue()
    printed: dict[str, list[str]] = {}
    for case in CASES:
        (tmp_path / case.id).mkdir()
        root = build_fixture(case, tmp_path / case.id)
        printed.setdefault(case.code, []).extend(
            f"specs/{_relative(d.location.file, root)}:{d.location.line}:{d.location.column}: "
            f"{d.severity}[{d.code}]: {d.message.replace(str(root), 'specs')}"
            for d in diagnose_specs(root, case.as_of) if d.code == case.code)
    for code, lines in printed.items():
        examples = [example.rstrip("\n") for _, example in code_blocks(sections.get(code, ""))]
        assert len(examples) == 1 and examples[0] in lines, (
            f"docs/diagnostics.md, {code}: the example must be one line its fixtures print, such as {lines[0]!r}")
