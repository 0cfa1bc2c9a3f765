"""Load stage: spec files -> plain documents that can say where every value came from.

Safety rules: YAML is composed (never constructed by pyyaml), so no object can be built from a tag; duplicate
keys are errors; aliases are expanded under a node budget, so a "billion laughs" file fails fast; files must be
UTF-8. pyyaml's C parser is used where it is available.

Positions are found lazily (`Document.at`): a diagnostic that needs one composes its document's text again.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from sys import intern

import yaml

from netgen.diagnostics import Location, Reporter
from netgen.parallel import EachBeside, deal, worth_forking

try:  # the C parser is ~10x faster; the pure-Python one behaves the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how pyyaml was built
    from yaml import SafeLoader as _BaseLoader

MAX_FILE_BYTES = 16 * 1024 * 1024
# Expanded nodes allowed per document, beyond its own size: aliases may repeat a block a little, not explode.
ALIAS_NODE_BUDGET = 100_000

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_SCALAR_TAGS = {
    _STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}
_constructor = yaml.constructor.SafeConstructor()
_COLLECTION_TAGS = {yaml.SequenceNode: "tag:yaml.org,2002:seq", yaml.MappingNode: "tag:yaml.org,2002:map"}
_TAG_CACHE_LIMIT = 200_000
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A `name:` entry, in block or flow style: what unloaded text seems to define (see Reporter.unloaded_names).
_NAME_ENTRY = re.compile(r"""(?:^|[\s{,])name[ \t]*:[ \t]*["']?([^"'\s#,{}\[\]]+)""")

Path_ = tuple[str | int, ...]
Check = Callable[["Document", Reporter], bool]


class _Loader(_BaseLoader):
    """pyyaml's safe loader, with its path resolvers (which netgen never registers) skipped and tag resolution
    memoised: the same answers, from C code where pyyaml runs Python for every node. Resolving tags with
    regular expressions was a third of the load stage."""

    # Called for every node; these builtins do nothing.
    descend_resolver = {}.get  # (node, index) -> index
    ascend_resolver = tuple  # () -> ()
    resolve = staticmethod(lru_cache(maxsize=_TAG_CACHE_LIMIT)(yaml.resolver.Resolver().resolve))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return _mark_of(node.start_mark)


def _mark_of(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


NAME_PATH = ("metadata", "name")  # its position is recorded while loading (Document.name_position)


def _entry(mapping: yaml.MappingNode, key: object) -> tuple[yaml.Node, yaml.Node] | None:
    """The first (key node, value node) of a plain-string key, as the loaded data keeps it; None without one."""
    return next(((k, v) for k, v in mapping.value if type(k) is yaml.ScalarNode and k.tag == _STR and k.value == key),
                None)


def _find(node: yaml.Node, path: Path_, key: bool) -> yaml.Mark:
    """Where the value at path starts (or its key, with key=True), or the closest enclosing value; the first
    of duplicate keys wins, as in the loaded data. Follows one path, so aliases cannot make it expand."""
    mark, key_mark = node.start_mark, None
    for step in path:
        if type(node) is yaml.MappingNode:
            found = _entry(node, step)
            if found is None:
                return mark
            key_mark, node = found[0].start_mark, found[1]
        elif type(node) is yaml.SequenceNode and type(step) is int and 0 <= step < len(node.value):
            key_mark, node = None, node.value[step]
        else:
            return mark
        mark = node.start_mark
    return key_mark if key and key_mark is not None else mark


@dataclass
class Document:
    """One YAML document: its data, where it starts, and the span of file text it came from."""

    file: str
    line: int
    column: int
    data: object
    text: str = field(default="", repr=False, compare=False)  # the whole file's text, shared by its documents
    span: tuple[int, int] = (0, 0)  # character offsets of the document's root node in text
    directives: bool = False  # the file has directives (%YAML, %TAG)
    # A control character in some string or key, or a fractional number: the schema stage then looks for where
    # (and whether the field allows it). True unless the loader found none.
    irregular: bool = True
    shape_ok: bool | None = None  # the schema check's answer, when load_tree ran it (see there)
    # Where metadata.name's value starts, (line, column), recorded as the document loads: the position that
    # diagnostics about a whole object (a duplicate name, a duplicate grant) point at, found without composing.
    name_position: tuple[int, int] | None = None

    def at(self, path: Path_ = (), *, key: bool = False) -> Location:
        """Location of the value at path (or of its key), falling back to the closest enclosing value.

        Positions are found lazily: this document's text is composed again and the path followed. Loading
        keeps no positions, so valid estates never pay for them.
        """
        if not path or not self.text:
            return Location(self.file, self.line, self.column)
        if self.name_position and not key and tuple(path) == NAME_PATH:
            return Location(self.file, *self.name_position)
        try:
            root = _compose_again(self.text, self.span, self.column - 1, self.directives)
        except (yaml.YAMLError, RecursionError):  # cannot happen for text that loaded; stay safe anyway
            return Location(self.file, self.line, self.column)
        mark = _find(root, tuple(path), key)
        first_line = 1 if self.directives else self.line  # what the marks' line 0 stands for
        return Location(self.file, first_line + mark.line, mark.column + 1)


@lru_cache(maxsize=4)
def _compose_again(text: str, span: tuple[int, int], column: int, whole: bool) -> yaml.Node:
    """One document's root node, composed from its span of text with its first line's indentation kept, so that
    marks count lines from the document's first line and columns are the file's. With whole=True (a file with
    directives: %TAG can change what a tag means) the whole file is composed instead, and marks are the file's:
    composing never expands aliases, and _find follows one path."""
    if whole:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is not None and node.start_mark.index == span[0]:
                return node
    return yaml.compose(" " * column + text[span[0]:span[1]], Loader=_Loader)


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns a composed node graph into plain Python data, checking tags and keys. Strings are interned: keys
    and values repeat across documents ("apiVersion", a team's name), so interned they take a third less memory
    and pickle once per file when the second core loads it (specs to flows: 0.92x the CPU at 100k grants)."""

    def __init__(self, display: str, reporter: Reporter, budget: int):
        self.display = display
        self.reporter = reporter
        self.budget = budget
        self.irregular = False  # see Document.irregular

    def error(self, node: yaml.Node, code: str, message: str) -> None:
        self.reporter.add(Location(self.display, *_mark(node)), code, message)

    def build(self, node: yaml.Node) -> object:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
        kind = type(node)
        if kind is yaml.ScalarNode:
            if not node.value.isprintable():  # (no control character is printable)
                self.look_at(node.value)
            return intern(node.value) if node.tag == _STR else self.scalar(node)
        if node.tag != _COLLECTION_TAGS[kind]:
            self.error(node, "NG005", f"explicit tag '{node.tag}' is not allowed")
            return None
        if kind is yaml.SequenceNode:
            return [self.build(item) for item in node.value]
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.error(key_node, "NG005", "merge keys ('<<') are not supported; write the fields out")
                continue
            if type(key_node) is not yaml.ScalarNode or key_node.tag != _STR:
                self.error(key_node, "NG005", "mapping keys must be plain strings")
                continue
            key = intern(key_node.value)
            if not key.isprintable():
                self.look_at(key)
            if key in result:
                line, col = _mark(_entry(node, key)[0])
                self.error(key_node, "NG003", f"duplicate key '{key}' (first defined at line {line}, column {col})")
                continue
            if type(value_node) is yaml.ScalarNode and value_node.tag == _STR:  # most values: build(), inlined
                self.budget -= 1
                if self.budget < 0:
                    raise _TooLarge
                value = intern(value_node.value)
                if not value.isprintable():
                    self.look_at(value)
                result[key] = value
            else:
                result[key] = self.build(value_node)
        return result

    def look_at(self, text: str) -> None:
        """Called for text that is not all printable: is there a control character in it?"""
        if CONTROL_CHARACTERS.search(text):
            self.irregular = True

    def scalar(self, node: yaml.ScalarNode) -> object:
        if node.tag not in _SCALAR_TAGS:
            self.error(node, "NG005", f"explicit tag '{node.tag}' is not allowed")
            return None
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value  # dates stay ISO strings; the schema checks their format
        name = node.tag.rsplit(":", 1)[1]
        self.irregular |= name == "float"
        try:
            return getattr(_constructor, f"construct_yaml_{name}")(node)
        except (ValueError, KeyError, TypeError):  # an explicit tag on the wrong value, or an int too long to read
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            self.error(node, "NG005", f"'{shown}' cannot be read as {name} (tag '{node.tag}')")
            return None


def _line_col(text: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset; the bytes before it are valid UTF-8."""
    line = text.count(b"\n", 0, offset) + 1
    before = text[text.rfind(b"\n", 0, offset) + 1:offset]
    return line, len(before.decode("utf-8")) + 1


def load_file(path: Path, display: str, reporter: Reporter) -> list[Document]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reporter.add(Location(display), "NG007", f"cannot read file: {exc.strerror}")
        return []
    if len(raw) > MAX_FILE_BYTES:
        reporter.add(Location(display, 1, 1), "NG004", f"file is larger than {MAX_FILE_BYTES} bytes")
        return []
    body = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(body, exc.start)
        reporter.add(Location(display, line, col), "NG001",
                     f"invalid UTF-8 byte 0x{body[exc.start]:02x}; save the file as UTF-8")
        _unloaded(body.decode("utf-8", errors="replace"), reporter)
        return []
    return load_text(text, display, reporter)


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column (libyaml's error messages do not name it)."""
    lines = text.split("\n")
    return lines[line][column:column + 1] if line < len(lines) else ""


def _empty(node: yaml.Node) -> bool:
    """True for the null node pyyaml composes for a document with no content at all."""
    return node.tag == _NULL and node.value == "" and node.start_mark.index == node.end_mark.index


def _unloaded(text: str, reporter: Reporter) -> None:
    reporter.unloaded_names.update(_NAME_ENTRY.findall(text))


def load_text(text: str, display: str, reporter: Reporter) -> list[Document]:
    documents: list[Document] = []
    directives = text.startswith("%") or "\n%" in text
    loaded = 0  # where the text not composed yet starts
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None or _empty(node):
                continue  # an empty document, e.g. after a trailing '---'
            loaded = node.end_mark.index
            mark = node.start_mark
            doc = Document(display, mark.line + 1, mark.column + 1, None, text, (mark.index, node.end_mark.index),
                           directives)
            builder = _Builder(display, reporter, ALIAS_NODE_BUDGET)
            try:
                doc.data = builder.build(node)
            except _TooLarge:
                reporter.add(Location(display, mark.line + 1, mark.column + 1), "NG004",
                             f"document expands to more than {ALIAS_NODE_BUDGET} nodes "
                             "(alias bomb?); netgen refuses to expand it")
                continue
            except RecursionError:
                reporter.add(Location(display, mark.line + 1, mark.column + 1), "NG004",
                             "document is nested too deeply")
                continue
            doc.irregular = builder.irregular
            doc.name_position = _mark_of(_find(node, NAME_PATH, False))
            if not isinstance(doc.data, dict):
                reporter.add(doc.at(), "NG006", "a spec document must be a mapping with apiVersion and kind")
                continue
            documents.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "'\\t'" in problem or (mark and _char_at(text, mark.line, mark.column) == "\t"):
            problem += " (tabs are not allowed in YAML indentation; use spaces)"
        reporter.add(Location(display, line, col), "NG002", problem)
        _unloaded(text[loaded:], reporter)
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        reporter.add(Location(display, 1, 1), "NG002", str(exc).splitlines()[0])
        _unloaded(text[loaded:], reporter)
    except RecursionError:
        reporter.add(Location(display, 1, 1), "NG004", "document is nested too deeply")
    return documents


def spec_files(root: Path) -> list[Path]:
    """Every *.yaml / *.yml file below root, sorted, so that runs are deterministic."""
    # A dangling symlink is kept so that it is reported (NG007) rather than silently skipped.
    return sorted(p for p in root.rglob("*")
                  if p.suffix in (".yaml", ".yml") and (p.is_file() or (p.is_symlink() and not p.exists())))


# Spec bytes above which the files are read on two cores (1 MB takes ~0.25 s to load; a fork costs milliseconds).
PARALLEL_LOAD_BYTES = 1024 * 1024
# What a file the child reads costs, against one read here: the child also pickles its documents (~10% of
# loading them), a little more than what unpickling them costs this process.
CHILD_LOAD_HANDICAP = 1.05
# The share of the late files (see load_files) that this process reads itself when the child reads the others:
# this process also validates and resolves each late file's grants as it comes (netgen.pipeline), which takes
# longer than taking the child's documents in (at 100k grants, 0.15 to 0.3 were alike within the noise).
LATE_SHARE_HERE = 0.2


def load_checked(path: Path, check: Check | None) -> tuple[list[Document], Reporter]:
    """One file's documents, each checked by check (when given), and what was reported about them."""
    reporter = Reporter()
    documents = load_file(path, str(path), reporter)
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


_KIND_VALUE = re.compile(rb"kind[ \t]*:([^\n]*)")  # what follows each `kind:`
_GRANT_VALUE = re.compile(rb"""[ \t]*(Grant|"Grant"|'Grant')[ \t]*(#.*)?\r?""")


def holds_only_grants(path: Path) -> bool:
    """Whether a file seems to hold grants and nothing else: whatever follows each `kind:` in it reads Grant.
    A guess, for scheduling only (netgen.pipeline checks what each loaded document really is)."""
    try:
        text = path.read_bytes()
    except OSError:
        return False
    grants = text.count(b"\nkind: Grant\n") + text.startswith(b"kind: Grant\n")
    if grants and text.count(b"kind:") == grants:  # the usual way to write them, told at memchr's speed
        return True
    if b"Grant" not in text:
        return False
    kinds = _KIND_VALUE.findall(text)  # CRLF line ends, quotes, comments, flow style, `kind :`
    return bool(kinds) and all(_GRANT_VALUE.fullmatch(kind) for kind in kinds)


def load_files(paths: list[Path], late: list[bool], reporter: Reporter,
               check: Check | None = None) -> Iterator[tuple[int, list[Document]]]:
    """(index in paths, documents) of every file: first each file not marked late, in no set order, then each
    late file in path order, as soon as it is loaded, so that the caller can use the others while the late
    ones load. What loading reports goes to reporter as each file comes. check: as in load_tree.

    Large estates are read on two cores: the early files are dealt by size between this process and a forked
    child, in turn, so that both get their share of each kind of file (hosts cost more per byte than grants);
    the late ones too, but the child takes most of them (LATE_SHARE_HERE), for the caller works on each late
    file as it comes. The child sends each file's documents as soon as they are loaded, and this process takes
    them in between its own files."""
    sizes = [path.stat().st_size if path.is_file() else 0 for path in paths]
    fork = worth_forking(sum(sizes), PARALLEL_LOAD_BYTES)
    early = [i for i in range(len(paths)) if not late[i]]
    lates = [i for i in range(len(paths)) if late[i]]
    mine = set(early)
    if fork:
        mine = {early[k] for k in deal([sizes[i] for i in early], CHILD_LOAD_HANDICAP)[0]}
        there = LATE_SHARE_HERE / (1 - LATE_SHARE_HERE)  # the weight of a byte read there, against one read here
        mine |= {lates[k] for k in deal([sizes[i] for i in lates], there)[0]}
    theirs = [i for i in early + lates if i not in mine]  # the child's files, its early ones first

    def taken(i: int, result: tuple[list[Document], Reporter]) -> tuple[int, list[Document]]:
        documents, found = result
        reporter.diagnostics.extend(found.diagnostics)
        reporter.unloaded_names |= found.unloaded_names
        return i, documents

    sent: dict[int, tuple[list[Document], Reporter]] = {}  # what the child sent, by file, not handed out yet
    with EachBeside(lambda i: load_checked(paths[i], check), theirs, fork=fork) as child:
        for i in early:
            if i in mine:
                yield taken(i, load_checked(paths[i], check))
                sent.update((theirs[k], result) for k, result in child.ready())  # (drained between files)
        arriving = child.rest()  # the child's results not taken yet, in its order
        for i in [i for i in early if i not in mine] + lates:
            if i in mine:
                yield taken(i, load_checked(paths[i], check))
                continue
            while i not in sent:
                k, result = next(arriving)
                sent[theirs[k]] = result
            yield taken(i, sent.pop(i))
