"""`netgen diff`, the base side from git: which work tree the specs are in, which revision to compare with, and
the spec folder as it was there, extracted with `git archive` into a temporary folder.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from netgen.review import UsageError

DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")


def _git(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, text=not binary)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None


def _commit(top: Path, rev: str) -> str | None:
    done = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True)
class Base:
    label: str  # how the report names it: the revision given, or how the default was chosen
    commit: str


def repository(specs: Path) -> tuple[Path, str]:
    """(top-level folder of the git work tree holding specs, specs' path inside it, '' for the top)."""
    if not specs.is_dir():
        raise UsageError(f"'{specs}' is not a folder")
    done = _git(specs, "rev-parse", "--show-toplevel")
    if done.returncode:
        raise UsageError(f"'{specs}' is not inside a git repository ({done.stderr.strip()})")
    top = Path(done.stdout.strip()).resolve()
    try:
        inside = specs.resolve().relative_to(top).as_posix()
    except ValueError:
        raise UsageError(f"'{specs}' is outside the git work tree {top}") from None
    return top, "" if inside == "." else inside


def choose_base(top: Path, rev: str | None) -> Base:
    """The revision given, else the merge-base of HEAD with the default branch, else HEAD."""
    if rev is not None:
        commit = _commit(top, rev)
        if commit is None:
            raise UsageError(f"'{rev}' is not a revision of the repository at {top}")
        return Base(rev, commit)
    head = _commit(top, "HEAD")
    if head is None:
        raise UsageError("the repository has no commits yet: nothing to compare with (give --base)")
    for branch in DEFAULT_BRANCHES:
        if _commit(top, branch) is None:
            continue
        done = _git(top, "merge-base", "HEAD", branch)
        if done.returncode == 0 and done.stdout.strip():
            return Base(f"merge-base of HEAD and {branch}", done.stdout.strip())
    return Base("HEAD", head)


def extract(top: Path, commit: str, inside: str, destination: Path) -> bool:
    """Write the spec folder as it is at commit into destination; False when it did not exist there."""
    if inside and _git(top, "cat-file", "-e", f"{commit}:{inside}").returncode:
        return False
    args = ["archive", "--format=tar", commit] + (["--", inside] if inside else [])
    done = _git(top, *args, binary=True)
    if done.returncode:
        raise UsageError(f"git archive {commit}: {done.stderr.decode(errors='replace').strip()}")
    try:
        with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as archive:
            archive.extractall(destination, filter="data")  # refuses links out of the folder, devices, ...
    except (tarfile.TarError, OSError) as exc:
        raise UsageError(f"cannot extract {inside or 'the tree'} at {commit[:12]}: {exc}") from None
    return True
