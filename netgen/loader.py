"""Load stage: spec files -> plain documents that can say where every value came from (netgen.document), read
safely (netgen.yamlload): files must be UTF-8 and at most MAX_FILE_BYTES.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from netgen.diagnostics import Location, Reporter
from netgen.document import Document
from netgen.parallel import EachBeside, deal, worth_forking
from netgen.yamlload import Budget, load_text, remember_unloaded

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_FOLDER_DEPTH = 32  # folders below the spec folder; a folder deeper than that is reported, not entered

Check = Callable[[Document, Reporter], bool]


def _line_col(text: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset; the bytes before it are valid UTF-8."""
    line = text.count(b"\n", 0, offset) + 1
    before = text[text.rfind(b"\n", 0, offset) + 1:offset]
    return line, len(before.decode("utf-8")) + 1


def read_spec(path: Path) -> bytes | None:
    """A regular file's bytes, or None when it holds more than MAX_FILE_BYTES. Its size is looked at before
    anything is read, and at most MAX_FILE_BYTES + 1 bytes are read whatever it says (a sparse file of gigabytes
    behind a symlink, a file that grows meanwhile). Raises OSError, also for a folder, a FIFO or a device (opened
    without blocking, so that a FIFO with no writer cannot hang the run)."""
    with open(path, "rb", opener=lambda name, flags: os.open(name, flags | getattr(os, "O_NONBLOCK", 0))) as f:
        mode = os.fstat(f.fileno())
        if not stat.S_ISREG(mode.st_mode):
            raise OSError(errno.EISDIR, "Is a directory") if stat.S_ISDIR(mode.st_mode) else \
                OSError(errno.EINVAL, "not a regular file")
        if mode.st_size > MAX_FILE_BYTES:
            return None
        raw = f.read(MAX_FILE_BYTES + 1)
    return None if len(raw) > MAX_FILE_BYTES else raw


def load_file(path: Path, display: str, reporter: Reporter, budget: Budget | None = None) -> list[Document]:
    """One file's documents; budget: the run's (see yamlload.Budget), or one of the file's own."""
    try:
        raw = read_spec(path)
    except OSError as exc:
        reporter.add(Location(display), "NG007", f"cannot read file: {exc.strerror}"
                     + (f" (a folder more than {MAX_FOLDER_DEPTH} levels below the spec folder is not entered)"
                        if exc.errno == errno.EISDIR else ""))
        return []
    if raw is None:
        reporter.add(Location(display, 1, 1), "NG004", f"file is larger than {MAX_FILE_BYTES} bytes "
                     f"({MAX_FILE_BYTES // 2**20} MiB), netgen's limit; it is not read: split it")
        return []
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(body, exc.start)
        reporter.add(Location(display, line, col), "NG001",
                     f"invalid UTF-8 byte 0x{body[exc.start]:02x}; save the file as UTF-8")
        remember_unloaded(body.decode("utf-8", errors="replace"), reporter)
        return []
    return load_text(text, display, reporter, budget)


def spec_files(root: Path, skipped: list[Path] | None = None) -> list[Path]:
    """Every *.yaml / *.yml file below root, sorted, so that runs are deterministic. Files that look like specs
    but are not read (see _looks_like_spec) are added to skipped, when given."""
    # A dangling symlink is kept so that it is reported (NG007) rather than silently skipped; so is a folder too
    # deep to enter (see _below).
    found: list[Path] = []
    for p in _below(root, found):
        if p.suffix in (".yaml", ".yml"):
            if p.is_file() or (p.is_symlink() and not p.exists()):
                found.append(p)
        elif skipped is not None and _looks_like_spec(p.name) and p.is_file():
            skipped.append(p)
    if skipped:
        skipped.sort()
    return sorted(found)


def _below(root: Path, too_deep: list[Path]) -> Iterator[Path]:
    """Every path below root, as root.rglob("*") gives them (a symlink to a folder is not entered), walked with
    a stack rather than recursion, so that no depth of folders overflows Python's. A folder more than
    MAX_FOLDER_DEPTH levels below root is added to too_deep instead of being entered."""
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = [(entry.name, _is_folder(entry)) for entry in listing]
        except OSError:
            continue  # as rglob does: an unreadable folder is left out
        for name, is_folder in entries:
            path = folder / name
            yield path
            if is_folder and depth == MAX_FOLDER_DEPTH:
                too_deep.append(path)
            elif is_folder:
                stack.append((path, depth + 1))


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _looks_like_spec(name: str) -> bool:
    """A name that holds .yaml or .yml without ending in either (x.yaml.bak, x.yml.txt, X.YAML, x.yaml~); hidden
    files (editors' swap files) aside."""
    lower = name.lower()
    return not name.startswith(".") and any(f"{s}." in lower or lower.endswith((s, f"{s}~"))
                                            for s in (".yaml", ".yml"))


NETGEN_MARK = b"netgen.dev/"  # what every netgen document's apiVersion holds
PEEK_BYTES = 4096  # how much of a file beside the spec folder is read to see whether it holds netgen documents


def stray_specs(root: Path) -> list[tuple[Path, int, int]]:
    """(file, line, column) of each *.yaml / *.yml file right beside the spec folder root (not below: one folder
    listed, a few kilobytes read per file) whose first lines hold a netgen apiVersion: specs put in the wrong
    place."""
    parent = root.resolve().parent
    shown = root.parent if root.name not in ("", "..") else Path(os.path.relpath(parent))  # as root is named
    try:
        beside = sorted(p for p in parent.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError:
        return []
    found = []
    for path in beside:
        try:
            with path.open("rb") as f:
                head = f.read(PEEK_BYTES)
        except OSError:
            continue
        at = head.find(NETGEN_MARK)
        if at >= 0:
            line_start = head.rfind(b"\n", 0, at) + 1
            found.append((shown / path.name, head.count(b"\n", 0, at) + 1, at - line_start + 1))
    return found


# Spec bytes above which the files are read on two cores (1 MB takes ~0.25 s to load; a fork costs milliseconds).
PARALLEL_LOAD_BYTES = 1024 * 1024
# What a file the child reads costs, against one read here: the child also pickles its documents (~10% of
# loading them), a little more than what unpickling them costs this process.
CHILD_LOAD_HANDICAP = 1.05
# The share of the late files (see load_files) that this process reads itself when the child reads the others:
# this process also validates and resolves each late file's grants as it comes (netgen.pipeline), which takes
# longer than taking the child's documents in (at 100k grants, 0.15 to 0.3 were alike within the noise).
LATE_SHARE_HERE = 0.2


def display(path: Path, root: Path | None) -> str:
    """How diagnostics and outputs name a file: as given, or from root (see netgen.cli_common.Specs)."""
    return str(path) if root is None else path.relative_to(root).as_posix()


def load_checked(path: Path, check: Check | None, root: Path | None = None,
                 budget: Budget | None = None) -> tuple[list[Document], Reporter]:
    """One file's documents, each checked by check (when given), and what was reported about them. Files are
    named as display(path, root) names them. budget: as in load_file."""
    reporter = Reporter()
    documents = load_file(path, display(path, root), reporter, budget)
    if check is not None:
        for doc in documents:
            doc.shape_ok = check(doc, reporter)
    return documents, reporter


def load_tree(root: Path, reporter: Reporter, check: Check | None = None) -> list[Document]:
    """Every document below root, in file order. check, when given, is a per-document check (the schema
    stage's) run as each document is loaded; its answer is kept in Document.shape_ok."""
    paths = spec_files(root)
    loaded = dict(load_files(paths, [False] * len(paths), reporter, check))
    return [doc for i in range(len(paths)) for doc in loaded[i]]


def _may_hold_aliases(path: Path) -> bool:
    """Whether a file holds a '*', without which YAML has no alias."""
    try:
        raw = read_spec(path)
    except OSError:
        return False
    return raw is not None and b"*" in raw


_KIND_VALUE = re.compile(rb"kind[ \t]*:([^\n]*)")  # what follows each `kind:`
_GRANT_VALUE = re.compile(rb"""[ \t]*(Grant|"Grant"|'Grant')[ \t]*(#.*)?\r?""")


def holds_only_grants(path: Path) -> bool:
    """Whether a file seems to hold grants and nothing else: whatever follows each `kind:` in it reads Grant.
    A guess, for scheduling only (netgen.pipeline checks what each loaded document really is)."""
    try:
        text = read_spec(path)
    except OSError:
        return False
    if text is None:
        return False  # (load_file reports it)
    grants = text.count(b"\nkind: Grant\n") + text.startswith(b"kind: Grant\n")
    if grants and text.count(b"kind:") == grants:  # the usual way to write them, told at memchr's speed
        return True
    if b"Grant" not in text:
        return False
    kinds = _KIND_VALUE.findall(text)  # CRLF line ends, quotes, comments, flow style, `kind :`
    return bool(kinds) and all(_GRANT_VALUE.fullmatch(kind) for kind in kinds)


def load_files(paths: list[Path], late: list[bool], reporter: Reporter, check: Check | None = None,
               root: Path | None = None) -> Iterator[tuple[int, list[Document]]]:
    """(index in paths, documents) of every file: first each file not marked late, in no set order, then each
    late file in path order, as soon as it is loaded, so that the caller can use the others while the late
    ones load. What loading reports goes to reporter as each file comes. check: as in load_tree.

    Large estates are read on two cores: the early files are dealt by size between this process and a forked
    child, in turn, so that both get their share of each kind of file (hosts cost more per byte than grants);
    the late ones too, but the child takes most of them (LATE_SHARE_HERE), for the caller works on each late
    file as it comes. The child sends each file's documents as soon as they are loaded, and this process takes
    them in between its own files. Files that may hold aliases are all read here, in the order above, so that
    the run's alias budget runs out at the same file whether the child reads some or not. root: as in
    load_checked."""
    sizes = [path.stat().st_size if path.is_file() else 0 for path in paths]
    fork = worth_forking(sum(sizes), PARALLEL_LOAD_BYTES)
    early = [i for i in range(len(paths)) if not late[i]]
    lates = [i for i in range(len(paths)) if late[i]]
    mine = set(early)
    budget = Budget()  # the run's
    if fork:
        mine = {early[k] for k in deal([sizes[i] for i in early], CHILD_LOAD_HANDICAP)[0]}
        there = LATE_SHARE_HERE / (1 - LATE_SHARE_HERE)  # the weight of a byte read there, against one read here
        mine |= {lates[k] for k in deal([sizes[i] for i in lates], there)[0]}
        mine |= {i for i in range(len(paths)) if _may_hold_aliases(paths[i])}
    theirs = [i for i in early + lates if i not in mine]  # the child's files, its early ones first

    def taken(i: int, result: tuple[list[Document], Reporter]) -> tuple[int, list[Document]]:
        documents, found = result
        reporter.diagnostics.extend(found.diagnostics)
        reporter.unloaded_names |= found.unloaded_names
        return i, documents

    sent: dict[int, tuple[list[Document], Reporter]] = {}  # what the child sent, by file, not handed out yet
    with EachBeside(lambda i: load_checked(paths[i], check, root, budget), theirs, fork=fork) as child:
        for i in early:
            if i in mine:
                yield taken(i, load_checked(paths[i], check, root, budget))
                sent.update((theirs[k], result) for k, result in child.ready())  # (drained between files)
        arriving = child.rest()  # the child's results not taken yet, in its order
        for i in [i for i in early if i not in mine] + lates:
            if i in mine:
                yield taken(i, load_checked(paths[i], check, root, budget))
                continue
            while i not in sent:
                k, result = next(arriving)
                sent[theirs[k]] = result
            yield taken(i, sent.pop(i))
