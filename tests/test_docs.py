"""The README is part of the interface: its diagnostic table must match the code catalogue exactly."""

import re
from pathlib import Path

from netgen.diagnostics import CODES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_diagnostic_code_with_its_severity():
    rows = dict(re.findall(r"^\| (NG\d{3}) \| (error|warning) \|", README.read_text(), re.MULTILINE))
    assert rows == {code: str(severity) for code, (severity, _) in CODES.items()}


def test_readme_quick_start_is_the_two_make_targets():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make (\w+)", quick, re.MULTILINE) == ["build", "test"]
