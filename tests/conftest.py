"""Shared helpers for the test suite. Helpers are plain functions with explicit names; fixtures are few."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netgen.cli import app
from netgen.diagnostics import Diagnostic, Reporter, SpecError
from netgen.pipeline import resolve_specs

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SPECS = REPO_ROOT / "specs"
# A date on which the example estate is valid, with no grant expired or about to expire.
EXAMPLE_AS_OF = date(2026, 11, 26)


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def run_cli(*args: str) -> CliResult:
    """Run netgen in-process through typer's CliRunner, with stdout and stderr kept apart."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return CliResult(result.exit_code, result.stdout, result.stderr, exception)


def diagnose_specs(specs: Path, as_of: date = EXAMPLE_AS_OF) -> list[Diagnostic]:
    """Every diagnostic the load -> validate -> resolve pipeline reports for a spec folder, sorted."""
    reporter = Reporter()
    try:
        resolve_specs(specs, as_of, reporter)
    except SpecError:
        pass
    return reporter.sorted()


def copy_example_specs(destination: Path) -> Path:
    """Copy the example estate to destination/specs and return that folder."""
    target = destination / "specs"
    shutil.copytree(EXAMPLE_SPECS, target)
    return target


def edit_spec(path: Path, old: str, new: str) -> None:
    """Replace exactly one occurrence of old in a spec file (fails loudly when the example changed)."""
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), "utf-8")


@pytest.fixture
def example_specs(tmp_path: Path) -> Path:
    """A private, writable copy of the example estate."""
    return copy_example_specs(tmp_path)


@pytest.fixture
def forks(monkeypatch) -> list[int]:
    """Force the parallel paths for any size, and count the forks."""
    import netgen.loader
    import netgen.parallel
    import netgen.render
    import netgen.targets.aws

    monkeypatch.delenv("NETGEN_JOBS", raising=False)
    monkeypatch.setattr(netgen.loader, "PARALLEL_LOAD_BYTES", 0)
    monkeypatch.setattr(netgen.targets.aws, "PARALLEL_RULE_ENTRIES", 0)
    monkeypatch.setattr(netgen.render, "PARALLEL_WRITES", 0)
    monkeypatch.setattr(netgen.parallel.os, "sched_getaffinity", lambda pid: {0, 1})
    pids: list[int] = []
    real_fork = netgen.parallel.os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(netgen.parallel.os, "fork", fork)
    return pids


# -- moto in server mode, for the tests of netgen's AWS commands (deploy, verify, drift, discover, import) ------


@pytest.fixture(scope="module")
def endpoint():
    """One moto server (127.0.0.1, a free port) per test module; its URL."""
    from judges.aws import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def cloud(endpoint: str, tmp_path: Path, monkeypatch):
    """The module's moto server, reset; the example's account profiles in an AWS config file (dummy keys), so
    that the per-account profile path is the one exercised; clients send moto's account header."""
    from judges.aws import MotoCloud

    from netgen.aws.session import ACCOUNT_HEADER_ENV

    cloud = MotoCloud(endpoint)
    cloud.reset()
    config = tmp_path / "aws-config"
    config.write_text("".join(f"[profile {name}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
                              "region = us-east-1\n\n" for name in ("acme-legacy", "acme-platform")))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv(ACCOUNT_HEADER_ENV, "x-moto-account-id")
    return cloud
