"""Documents: one YAML document's plain data, and where each of its values was written.

Positions are found lazily (`Document.at`): a diagnostic that needs one composes its document's text again.
Loading keeps no positions, so valid estates never pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import yaml

from netgen.diagnostics import Location

try:  # the C parser is ~10x faster; the pure-Python one behaves the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how pyyaml was built
    from yaml import SafeLoader as _BaseLoader

STR_TAG = "tag:yaml.org,2002:str"
_TAG_CACHE_LIMIT = 200_000

Path_ = tuple[str | int, ...]


class SpecLoader(_BaseLoader):
    """pyyaml's safe loader, with its path resolvers (which netgen never registers) skipped and tag resolution
    memoised: the same answers, from C code where pyyaml runs Python for every node. Resolving tags with
    regular expressions was a third of the load stage."""

    # Called for every node; these builtins do nothing.
    descend_resolver = {}.get  # (node, index) -> index
    ascend_resolver = tuple  # () -> ()
    resolve = staticmethod(lru_cache(maxsize=_TAG_CACHE_LIMIT)(yaml.resolver.Resolver().resolve))


def node_mark(node: yaml.Node) -> tuple[int, int]:
    return mark_of(node.start_mark)


def mark_of(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


NAME_PATH = ("metadata", "name")  # its position is recorded while loading (Document.name_position)


def first_entry(mapping: yaml.MappingNode, key: object) -> tuple[yaml.Node, yaml.Node] | None:
    """The first (key node, value node) of a plain-string key, as the loaded data keeps it; None without one."""
    return next(((k, v) for k, v in mapping.value
                 if type(k) is yaml.ScalarNode and k.tag == STR_TAG and k.value == key), None)


def find_mark(node: yaml.Node, path: Path_, key: bool) -> yaml.Mark:
    """Where the value at path starts (or its key, with key=True), or the closest enclosing value; the first
    of duplicate keys wins, as in the loaded data. Follows one path, so aliases cannot make it expand."""
    mark, key_mark = node.start_mark, None
    for step in path:
        if type(node) is yaml.MappingNode:
            found = first_entry(node, step)
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
    # (line, column) of each value reported as written wrong (NG009, NG123, the first of duplicate keys): the
    # document is not used, and no other check words those values again (see schema.check_document).
    flagged: tuple[tuple[int, int], ...] = ()

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
        mark = find_mark(root, tuple(path), key)
        first_line = 1 if self.directives else self.line  # what the marks' line 0 stands for
        return Location(self.file, first_line + mark.line, mark.column + 1)


@lru_cache(maxsize=4)
def _compose_again(text: str, span: tuple[int, int], column: int, whole: bool) -> yaml.Node:
    """One document's root node, composed from its span of text with its first line's indentation kept, so that
    marks count lines from the document's first line and columns are the file's. With whole=True (a file with
    directives: %TAG can change what a tag means) it is taken from the whole file composed, and marks are the
    file's: composing never expands aliases, and find_mark follows one path."""
    if whole and span[0] in _roots(text):
        return _roots(text)[span[0]]
    return yaml.compose(" " * column + text[span[0]:span[1]], Loader=SpecLoader)


@lru_cache(maxsize=1)
def _roots(text: str) -> dict[int, yaml.Node]:
    """The root node of each document of a file, by where it starts (those before a syntax error, if any),
    composed once for all of them: composing the whole file again for each document was quadratic (77 s for a
    file with a %YAML directive and 3,000 invalid documents)."""
    roots = {}
    try:
        for node in yaml.compose_all(text, Loader=SpecLoader):
            if node is not None:
                roots[node.start_mark.index] = node
    except (yaml.YAMLError, RecursionError):
        pass
    return roots
