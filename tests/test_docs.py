"""The README and docs/ are part of the interface: the diagnostics catalogue must match the code exactly, and what
they quote of netgen's output must be what netgen prints."""

import re
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
