"""YAML text -> documents, safely: YAML is composed (never constructed by pyyaml), so no object can be built
from a tag; duplicate keys are errors; a file holds at most MAX_NODES_PER_FILE nodes and MAX_DOCUMENTS_PER_FILE
documents; aliases are expanded under budgets per file and per run (Budget), so a "billion laughs" fails fast; a
number YAML 1.1 reads in another base (0443 is octal) is an error. pyyaml's C parser is used where it is available.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from sys import intern

import yaml

from netgen.diagnostics import Location, Reporter
from netgen.document import NAME_PATH, STR_TAG, Document, SpecLoader, find_mark, first_entry, mark_of, node_mark

# Nodes built again because an alias names them: aliases may repeat a block a little, not explode.
ALIAS_NODES_PER_FILE = 100_000
ALIAS_NODES_PER_RUN = 1_000_000
MAX_NODES_PER_FILE = 2_000_000  # nodes written out; a 16 MiB file of hosts or grants holds about 1.1 million
MAX_DOCUMENTS_PER_FILE = 100_000  # a 16 MiB file of hosts or grants holds about 80,000
_NODES_PER_CHARACTER = 1.5  # the most YAML holds, with a margin: `{a,b,c}` holds a key and a null value per 2

_NULL = "tag:yaml.org,2002:null"
_SCALAR_TAGS = {
    STR_TAG, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}
_constructor = yaml.constructor.SafeConstructor()
_COLLECTION_TAGS = {yaml.SequenceNode: "tag:yaml.org,2002:seq", yaml.MappingNode: "tag:yaml.org,2002:map"}
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A `name:` entry, in block or flow style: what unloaded text seems to define (see Reporter.unloaded_names).
_NAME_ENTRY = re.compile(r"""(?:^|[\s{,])name[ \t]*:[ \t]*["']?([^"'\s#,{}\[\]]+)""")


class _TooLarge(Exception):
    pass


@dataclass
class Budget:
    """What one run may still spend on aliases, shared by the files it loads (netgen.loader reads every file that
    may hold aliases in one process, in a set order, so that it runs out at the same file on one core or two)."""

    alias_nodes: int = ALIAS_NODES_PER_RUN
    reported: bool = False  # the run's budget ran out, and that was reported once


class _Builder:
    """Turns a composed node graph into plain Python data, checking tags and keys. Strings are interned: keys
    and values repeat across documents ("apiVersion", a team's name), so interned they take a third less memory
    and pickle once per file when the second core loads it (specs to flows: 0.92x the CPU at 100k grants)."""

    def __init__(self, display: str, reporter: Reporter):
        self.display = display
        self.reporter = reporter
        self.irregular = False  # see Document.irregular
        self.flagged: tuple[tuple[int, int], ...] = ()  # see Document.flagged

    def start(self, aliases: int = 0) -> None:
        """Called before each document (one builder serves a file: it costs a little for each document)."""
        self.irregular = False
        self.flagged = ()

    def error(self, node: yaml.Node, code: str, message: str) -> None:
        self.reporter.add(Location(self.display, *node_mark(node)), code, message)

    def build(self, node: yaml.Node) -> object:
        kind = type(node)
        if kind is yaml.ScalarNode:
            if not node.value.isprintable():  # (no control character is printable)
                self.look_at(node.value)
            return intern(node.value) if node.tag == STR_TAG else self.scalar(node)
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
            if type(key_node) is not yaml.ScalarNode or key_node.tag != STR_TAG:
                self.error(key_node, "NG005", "mapping keys must be plain strings")
                continue
            key = intern(key_node.value)
            if not key.isprintable():
                self.look_at(key)
            if key in result:
                first_key, first_value = first_entry(node, key)
                line, col = node_mark(first_key)
                self.error(key_node, "NG003", f"duplicate key '{key}' (first defined at line {line}, column {col})")
                self.flagged += (node_mark(first_value),)  # what the first one holds is not worded as well
                continue
            if type(value_node) is yaml.ScalarNode and value_node.tag == STR_TAG:  # most values: build(), inlined
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
            value = getattr(_constructor, f"construct_yaml_{name}")(node)
        except (ValueError, KeyError, TypeError):  # an explicit tag on the wrong value, or an int too long to read
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            self.error(node, "NG005", f"'{shown}' cannot be read as {name} (tag '{node.tag}')")
            return None
        if name == "int" and not (node.value.isdigit() and node.value[0] != "0" or _DECIMAL.fullmatch(node.value)):
            self.error(node, "NG009", _misread(node.value, value))
            self.flagged += (node_mark(node),)
        return value


class _AliasBuilder(_Builder):
    """A builder for text that may hold aliases: it counts the nodes built again through them. A collection built
    before in the document is built again, through an alias, and its items count against what start() allows
    (past it, _TooLarge). Only such text pays for the counting."""

    def start(self, aliases: int = 0) -> None:
        super().start()
        self.aliases = aliases
        self.seen: set[int] = set()  # ids of this document's collections built so far

    def build(self, node: yaml.Node) -> object:
        if type(node) is not yaml.ScalarNode:
            if id(node) in self.seen:
                self.aliases -= len(node.value) * (2 if type(node) is yaml.MappingNode else 1)
                if self.aliases < 0:
                    raise _TooLarge
            else:
                self.seen.add(id(node))
        return super().build(node)


_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")  # how a whole number is written, in YAML 1.1 and 1.2 alike


def _misread(text: str, value: int) -> str:
    """What YAML 1.1 read a whole number not written in plain decimal as, and how to write it."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    digits = text.lstrip("+-").replace("_", "")
    if ":" in digits:
        how = "a base-60 number (digits between colons)"
    elif digits[:2].lower() == "0x":
        how = "a hexadecimal number"
    elif digits[:2].lower() == "0b":
        how = "a binary number"
    elif digits[:1] == "0" and len(digits) > 1:
        decimal = int(text.replace("_", ""), 10)
        return (f"'{shown}' is an octal number to YAML 1.1 (a leading 0): it reads as {value}, not {decimal}; "
                f"write {decimal} without the leading 0 (or {value} if octal is meant), or quote it if it is text")
    else:
        how = "a number whose underscores are dropped"
    return (f"'{shown}' is {how} to YAML 1.1: it reads as {value}; write {value} if that is meant, or quote it if "
            "it is text")


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column (libyaml's error messages do not name it)."""
    lines = text.split("\n")
    return lines[line][column:column + 1] if line < len(lines) else ""


def _empty(node: yaml.Node) -> bool:
    """True for the null node pyyaml composes for a document with no content at all."""
    return node.tag == _NULL and node.value == "" and node.start_mark.index == node.end_mark.index


ANY_NAME = "*"  # in Reporter.unloaded_names: a document whose name cannot be read failed, which any name may be


def remember_unloaded(text: str, reporter: Reporter, nameless: bool = False) -> None:
    """Names that text which failed to load seems to define: references to them are not worded. nameless: the
    text is one document, which names none it seems to define could be."""
    names = _NAME_ENTRY.findall(text)
    reporter.unloaded_names.update(names or ([ANY_NAME] if nameless else []))


def load_text(text: str, display: str, reporter: Reporter, budget: Budget | None = None) -> list[Document]:
    """The documents of one file's text; budget: the run's (a budget of its own when not given)."""
    budget = budget if budget is not None else Budget()
    over = _too_many_nodes(text)
    if over is not None:
        reporter.add(Location(display, *mark_of(over)), "NG004", f"file holds more than {MAX_NODES_PER_FILE:,} "
                     "nodes (values, lists and mappings), netgen's limit; it is not read: split it")
        remember_unloaded(text, reporter)
        return []
    documents: list[Document] = []
    directives = text.startswith("%") or "\n%" in text
    aliased = "*" in text  # no alias without one: then nothing is counted
    builder = (_AliasBuilder if aliased else _Builder)(display, reporter)
    aliases = ALIAS_NODES_PER_FILE  # what this file may still build through aliases
    file_ran_out = False  # and it was reported (once for the file)
    loaded = 0  # where the text not composed yet starts
    try:
        for count, node in enumerate(yaml.compose_all(text, Loader=SpecLoader), 1):
            if count > MAX_DOCUMENTS_PER_FILE:
                reporter.add(Location(display, *node_mark(node)), "NG004", f"file holds more than "
                             f"{MAX_DOCUMENTS_PER_FILE:,} documents, netgen's limit; the rest is not read: split it")
                remember_unloaded(text[loaded:], reporter)
                break
            if node is None or _empty(node):
                continue  # an empty document, e.g. after a trailing '---'
            loaded = node.end_mark.index
            mark = node.start_mark
            doc = Document(display, mark.line + 1, mark.column + 1, None, text, (mark.index, node.end_mark.index),
                           directives)
            allowed = min(aliases, budget.alias_nodes) if aliased else 0
            builder.start(allowed)
            try:
                doc.data = builder.build(node)
            except (_TooLarge, RecursionError) as exc:
                if isinstance(exc, RecursionError):
                    reporter.add(Location(display, *mark_of(mark)), "NG004", "document is nested too deeply")
                elif aliases <= budget.alias_nodes and not file_ran_out:
                    reporter.add(Location(display, *mark_of(mark)), "NG004", f"aliases in this file expand to more "
                                 f"than {ALIAS_NODES_PER_FILE:,} nodes (an alias bomb?): netgen expands no more, and "
                                 "leaves out each document of it that needs more; write the values out")
                    file_ran_out = True
                elif aliases > budget.alias_nodes and not budget.reported:
                    reporter.add(Location(display, *mark_of(mark)), "NG004", f"aliases in the spec files expand to "
                                 f"more than {ALIAS_NODES_PER_RUN:,} nodes in all: netgen expands no more, and leaves "
                                 "out each document that needs more; write the values out")
                    budget.reported = True
                remember_unloaded(text[mark.index:node.end_mark.index], reporter)
                continue
            finally:
                if aliased:
                    spent = allowed - max(builder.aliases, 0)
                    aliases, budget.alias_nodes = aliases - spent, budget.alias_nodes - spent
            doc.irregular = builder.irregular
            doc.flagged = builder.flagged
            doc.name_position = mark_of(find_mark(node, NAME_PATH, False))
            if not isinstance(doc.data, dict):
                reporter.add(doc.at(), "NG006", "a spec document must be a mapping with apiVersion and kind")
                remember_unloaded(text[mark.index:node.end_mark.index], reporter, nameless=True)
                continue
            documents.append(doc)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "'\\t'" in problem or (mark and _char_at(text, mark.line, mark.column) == "\t"):
            problem += " (tabs are not allowed in YAML indentation; use spaces)"
        reporter.add(Location(display, line, col), "NG002", problem)
        remember_unloaded(text[loaded:], reporter)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a NUL byte, say)
        reporter.add(Location(display, *_reader_position(text, exc.position)), "NG002",
                     f"{str(exc).splitlines()[0]}; remove it")
        remember_unloaded(text[loaded:], reporter)
    except yaml.YAMLError as exc:  # (none other is known)
        reporter.add(Location(display, 1, 1), "NG002", str(exc).splitlines()[0])
        remember_unloaded(text[loaded:], reporter)
    except RecursionError:
        reporter.add(Location(display, 1, 1), "NG004", "document is nested too deeply")
    return documents


_BYTE_OFFSETS = issubclass(SpecLoader, getattr(yaml, "CSafeLoader", ()))  # libyaml's reader counts bytes


def _reader_position(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of the character at a reader error's position: a character index from pyyaml's
    reader, a byte offset into the UTF-8 text from libyaml's."""
    index = len(text.encode("utf-8")[:position].decode("utf-8", errors="ignore")) if _BYTE_OFFSETS else position
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


def _too_many_nodes(text: str) -> yaml.Mark | None:
    """Where the node past MAX_NODES_PER_FILE starts, or None: counted from the parser's events, never composed
    (composing 8 million nodes takes a minute and gigabytes), and only for text long enough to hold that many."""
    if len(text) * _NODES_PER_CHARACTER <= MAX_NODES_PER_FILE:
        return None
    count = 0
    try:
        for event in yaml.parse(text, Loader=SpecLoader):
            if isinstance(event, _NODE_EVENTS):
                count += 1
                if count > MAX_NODES_PER_FILE:
                    return event.start_mark
    except yaml.YAMLError:
        pass  # (composing reports it)
    return None
