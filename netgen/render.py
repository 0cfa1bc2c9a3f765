"""Write stage: put compiled files into the output folder, or compare them with it (--check).

Ownership: netgen lists every file it writes in OWNED (a plain sorted list inside the output folder). On the
next build, files in that list that are no longer produced are deleted; files not in it are never touched.
Everything is compiled in memory before the first write, so a failing build leaves the folder as it was.
Each file is replaced atomically (temporary file + rename) and only when its bytes change.

Safety: the output folder's content may come from an untrusted pull request, so before the first write (and
before --check reads anything) a pre-flight pass looks at every path netgen would write, read or delete:

- The output folder itself must be a real folder (or absent): a symbolic link there is refused, wherever it
  points. Folders above it are the caller's choice and are followed.
- Symbolic links below the output folder are refused on the path of any file netgen writes, reads or deletes,
  whether they point inside or outside the folder (one simple rule, no resolution of link targets): a target
  that is a link, or a folder on the way to it that is a link, is an OutputError. Links elsewhere in the folder
  (not on the path of a generated or owned file) are foreign content and are left alone.
- Every folder on the way to a written file must be a folder or absent; every written file must be a regular
  file or absent. Anything else (a folder where a file goes, a file where a folder goes, a fifo...) is an
  OutputError naming the path, raised before anything is written.
- Only regular files (never links, folders or special files) that lie inside the output folder are deleted.
  An OWNED entry that is absolute, has '..', a NUL byte or an over-long name is not owned and never touched;
  an owned path that is a folder or a special file is left alone. Emptied folders are removed with rmdir
  after an lstat check, so links are never followed.
- Every path is also checked to resolve (os.path.realpath) inside the resolved output folder.

An I/O error that still happens while writing (disk full, permissions) is reported as an OutputError too.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

from netgen.parallel import Beside, deal, worth_forking

OWNED = ".netgen-owned"
PARALLEL_WRITES = 1_000  # files above which a second core writes half of them
_MAX_PATH = 4096  # bytes; longer OWNED entries cannot name a file netgen wrote
_MAX_NAME = 255


class OutputError(Exception):
    """The output folder cannot be written (or checked) safely; the message is one line naming the path."""


def _safe(relative: str) -> str:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\0" in relative:
        raise ValueError(f"refusing to write outside the output folder: {relative}")
    return relative


def _with_manifest(files: dict[str, bytes]) -> dict[str, bytes]:
    listing = "".join(f"{name}\n" for name in sorted(files))
    header = "# Files written by netgen build. netgen deletes listed files it no longer produces.\n"
    return {**files, OWNED: (header + listing).encode()}


def _owned_entry(line: str) -> str | None:
    """The normalised relative path an OWNED line names, or None when it cannot be a file netgen wrote."""
    if not line or line.startswith("#") or "\0" in line:
        return None
    try:
        encoded = line.encode("utf-8")
    except UnicodeError:
        return None
    path = PurePosixPath(line)
    if len(encoded) > _MAX_PATH or any(len(part.encode("utf-8")) > _MAX_NAME for part in path.parts):
        return None
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path.as_posix()


def _parse_owned(data: bytes) -> set[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return set()
    # An entry that points outside the folder was never written by netgen: it is not owned, never deleted.
    return {entry for entry in map(_owned_entry, text.splitlines()) if entry is not None}


def _read(path: str, shown: Path) -> bytes:
    """The bytes of a regular file, never following a symbolic link at the last component."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise OutputError(f"cannot read {shown}: {exc.strerror or exc}") from None


def _contained(base: str, path: str, shown: Path) -> None:
    real = os.path.realpath(path)
    if os.path.commonpath([base, real]) != base:
        raise OutputError(f"{shown} resolves to {real}, outside the output folder")


def _output_folder(out: Path) -> tuple[str, bool]:
    """(resolved output folder, whether it exists); OutputError when it is a link or not a folder."""
    try:
        st = os.lstat(out)
    except (FileNotFoundError, NotADirectoryError):
        ancestor = out.absolute().parent
        while True:
            try:
                if not stat.S_ISDIR(os.stat(ancestor).st_mode):
                    raise OutputError(f"cannot create output folder {out}: {ancestor} is not a folder")
                break
            except (FileNotFoundError, NotADirectoryError):
                if ancestor.parent == ancestor:
                    break
                ancestor = ancestor.parent
            except OSError as exc:
                raise OutputError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
        return os.path.realpath(out), False
    except OSError as exc:
        raise OutputError(f"cannot use {out} as the output folder: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise OutputError(f"output folder {out} is a symbolic link; netgen does not write through links")
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"output folder {out} is not a folder")
    return os.path.realpath(out), True


def _inspect(base: str, out: Path, name: str, *, target: bool) -> str:
    """'file' or 'absent' for what is at name below base; anything else ('other') only when not a target.

    Raises OutputError for a symbolic link on the way or at the end (always), and, for a target (a file netgen
    writes), for a non-folder on the way or a non-regular file at the end."""
    parts = PurePosixPath(name).parts
    current = base
    for depth, part in enumerate(parts):
        current = os.path.join(current, part)
        shown = out.joinpath(*parts[: depth + 1])
        last = depth == len(parts) - 1
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return "absent"
        except OSError as exc:
            if not target and exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
                return "absent"
            raise OutputError(f"cannot inspect {shown}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"{shown} is a symbolic link; netgen does not write, read or delete through links")
        if last:
            if stat.S_ISREG(st.st_mode):
                _contained(base, current, shown)
                return "file"
            if target:
                what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise OutputError(f"{shown} is {what}; netgen needs to write a file there")
            return "other"
        if not stat.S_ISDIR(st.st_mode):
            if target:
                raise OutputError(f"{shown} is not a folder; netgen needs to write {out / name}")
            return "absent"
    return "absent"  # pragma: no cover - parts is never empty


class _Plan:
    """The pre-flight result: what is in the folder now, what to write, what to delete."""

    def __init__(self, out: Path, files: dict[str, bytes]) -> None:
        self.out = out
        self.files = _with_manifest(files)
        for name in self.files:
            _safe(name)
        self.base, self.exists = _output_folder(out)
        self.current: dict[str, bytes | None] = {}
        if self.exists:
            for name in self.files:
                kind = _inspect(self.base, out, name, target=True)
                self.current[name] = _read(self._path(name), out / name) if kind == "file" else None
        else:
            self.current = dict.fromkeys(self.files)
        owned = _parse_owned(self.current[OWNED]) if self.current.get(OWNED) is not None else set()
        self.stale = [name for name in sorted(owned - set(self.files))
                      if _inspect(self.base, out, name, target=False) == "file"]

    def _path(self, name: str) -> str:
        return os.path.join(self.base, *PurePosixPath(name).parts)

    def changes(self) -> list[str]:
        return [name for name, content in self.files.items() if self.current[name] != content]


def check_tree(out: Path, files: dict[str, bytes]) -> list[str]:
    """Lines describing every difference between the folder and the compiled files (empty: up to date).

    Raises OutputError when the folder cannot be checked safely (links, a folder where a file should be)."""
    plan = _Plan(out, files)
    problems = []
    for name in plan.changes():
        kind = "missing" if plan.current[name] is None else "differs"
        problems.append(f"{kind}: {out / name}")
    problems += [f"no longer generated: {out / name}" for name in plan.stale]
    return problems


def _make_folders(base: str, out: Path, name: str) -> str:
    """Create the folders on the way to name (none of them a link); return the folder that holds it."""
    parts = PurePosixPath(name).parts[:-1]
    current = base
    for depth, part in enumerate(parts):
        current = os.path.join(current, part)
        try:
            os.mkdir(current)
        except FileExistsError:
            st = os.lstat(current)
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
                raise OutputError(f"{out.joinpath(*parts[: depth + 1])} is not a plain folder") from None
    _contained(base, current, out / name)
    return current


def _write(base: str, out: Path, name: str, content: bytes) -> None:
    folder = _make_folders(base, out, name)
    leaf = PurePosixPath(name).name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{leaf}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, os.path.join(folder, leaf))  # replaces a link itself, never its target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _delete(base: str, out: Path, name: str) -> None:
    path = os.path.join(base, *PurePosixPath(name).parts)
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):  # only ever a regular file, never a link
        return
    _contained(base, path, out / name)
    os.unlink(path)
    parent = os.path.dirname(path)
    while parent != base and os.path.commonpath([base, parent]) == base:
        st = os.lstat(parent)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            break
        try:
            os.rmdir(parent)  # fails on a non-empty folder: nothing else to do
        except OSError:
            break
        parent = os.path.dirname(parent)


def write_tree(out: Path, files: dict[str, bytes]) -> int:
    """Write changed files, delete owned files no longer produced; return how many files changed.

    Raises OutputError, before writing anything, when the folder cannot be written safely; and also when an
    I/O error happens while writing."""
    plan = _Plan(out, files)
    changes = plan.changes()
    if changes or plan.stale:
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as exc:
            raise _cannot_write(out, exc) from None
        if os.path.islink(out) or os.path.realpath(out) != plan.base:
            raise OutputError(f"output folder {out} changed while netgen was writing it")
    # Many files (a large estate written from scratch): a second core writes half of them. The list of owned
    # files is written last, by this process, once every file it lists is in place.
    manifest = [OWNED] if OWNED in changes else []
    others = [name for name in changes if name != OWNED]
    fork = worth_forking(len(others), PARALLEL_WRITES)
    mine, theirs = deal([1] * len(others)) if fork else (range(len(others)), [])
    with Beside(lambda: _write_all(plan, [others[i] for i in theirs]), fork=fork) as later:
        try:
            _write_all(plan, [others[i] for i in mine])
        except OutputError:  # let the child finish its files rather than stop it halfway through one
            try:
                later.result()
            except OutputError:
                pass
            raise
        later.result()
    _write_all(plan, manifest)
    for name in plan.stale:
        try:
            _delete(plan.base, out, name)
        except OSError as exc:
            raise _cannot_write(out / name, exc) from None
    return len(changes) + len(plan.stale)


def _write_all(plan: _Plan, names: list[str]) -> None:
    for name in names:
        try:
            _write(plan.base, plan.out, name, plan.files[name])
        except OSError as exc:
            raise _cannot_write(plan.out / name, exc) from None


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """An I/O error met while writing (disk full, permissions), as the one-line error netgen reports."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")
