"""Write stage: put compiled files into the output folder, or compare them with it (--check).

Ownership: netgen lists every file it writes in OWNED (a plain sorted list inside the output folder). On the
next build, files in that list that are no longer produced are deleted; files not in it are never touched.
Everything is compiled in memory before the first write, so a failing build leaves the folder as it was.
Each file is replaced atomically (temporary file + rename) and only when its bytes change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

OWNED = ".netgen-owned"


def _safe(relative: str) -> str:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"refusing to write outside the output folder: {relative}")
    return relative


def _with_manifest(files: dict[str, bytes]) -> dict[str, bytes]:
    listing = "".join(f"{name}\n" for name in sorted(files))
    header = "# Files written by netgen build. netgen deletes listed files it no longer produces.\n"
    return {**files, OWNED: (header + listing).encode()}


def _owned(out: Path) -> set[str]:
    try:
        text = (out / OWNED).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    # An entry that points outside the folder was never written by netgen: it is not owned, never deleted.
    return {line for line in text.splitlines() if line and not line.startswith("#") and _inside(line)}


def _inside(relative: str) -> bool:
    try:
        _safe(relative)
    except ValueError:
        return False
    return True


def check_tree(out: Path, files: dict[str, bytes]) -> list[str]:
    """Lines describing every difference between the folder and the compiled files (empty: up to date)."""
    files = _with_manifest(files)
    problems = []
    for name, content in files.items():
        target = out / _safe(name)
        try:
            current = target.read_bytes()
        except OSError:
            problems.append(f"missing: {out / name}")
            continue
        if current != content:
            problems.append(f"differs: {out / name}")
    for name in sorted(_owned(out) - set(files)):
        if (out / _safe(name)).exists():
            problems.append(f"no longer generated: {out / name}")
    return problems


def write_tree(out: Path, files: dict[str, bytes]) -> int:
    """Write changed files, delete owned files no longer produced; return how many files changed."""
    files = _with_manifest(files)
    stale = sorted(_owned(out) - set(files))
    changed = 0
    for name, content in files.items():
        target = out / _safe(name)
        try:
            if target.read_bytes() == content:
                continue
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        changed += 1
    for name in stale:
        target = out / _safe(name)
        if target.is_file():
            target.unlink()
            changed += 1
            parent = target.parent
            while parent != out and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return changed
