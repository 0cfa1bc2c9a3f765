"""netgen installs as a user gets it: `python -m build` makes a wheel, the wheel installs into a fresh virtual
environment, and that environment's `netgen` command checks the example estate.

The wheel is built from a copy of the sources with the backend of the test environment (`--no-isolation`:
no download), and the fresh environment borrows the test environment's installed dependencies through a
`.pth` file rather than downloading them: the test runs offline, in a few seconds, and `pip check` still
proves the wheel's declared dependencies are met. The netgen that runs is the wheel's (asserted).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from conftest import REPO_ROOT, copy_example_specs

import netgen

SOURCES = ("pyproject.toml", "README.md", "netgen")
DISTRIBUTION = "netgen-access"


def copy_sources(destination: Path) -> Path:
    """The files a build reads, copied so that building writes nothing into the working tree."""
    destination.mkdir()
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = copy_sources(tmp / "source")
    built = run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp / "dist", source)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (tmp / "dist").glob("*.whl")
    return path


def test_the_wheel_holds_the_package_its_schema_and_the_command(wheel):
    assert wheel.name == f"netgen_access-{netgen.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    sources = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "netgen").rglob("*.py")}
    assert sources <= names
    assert "netgen/schemas/netgen.schema.json" in names
    assert not any(n.startswith("tests/") for n in names)
    assert metadata["Name"] == DISTRIBUTION
    assert "netgen = netgen.cli:main" in entry_points


def test_the_wheel_installed_in_a_fresh_environment_runs_netgen(wheel, tmp_path):
    env = tmp_path / "env"
    venv.create(env, with_pip=False, symlinks=True)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    check = run(sys.executable, "-m", "pip", "--python", python, "check")
    assert check.returncode == 0, check.stdout + check.stderr

    where = run(python, "-c", "import netgen; print(netgen.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr

    help_ = run(env / "bin" / "netgen", "--help", cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr
    assert "validate" in help_.stdout

    copy_example_specs(tmp_path)
    validated = run(env / "bin" / "netgen", "validate", cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert re.search(r"^ok: \d+ grants", validated.stdout + validated.stderr, re.MULTILINE), validated.stdout
