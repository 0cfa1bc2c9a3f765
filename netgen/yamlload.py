"""YAML text -> documents, safely: YAML is composed (never constructed by pyyaml), so no object can be built
from a tag; duplicate keys are errors; aliases are expanded under a node budget, so a "billion laughs" file fails
fast. pyyaml's C parser is used where it is available.
"""

from __future__ import annotations

import re
from sys import intern

import yaml

from netgen.diagnostics import Location, Reporter
from netgen.document import NAME_PATH, STR_TAG, Document, SpecLoader, find_mark, first_entry, mark_of, node_mark

# Expanded nodes allowed per document, beyond its own size: aliases may repeat a block a little, not explode.
ALIAS_NODE_BUDGET = 100_000

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
        self.reporter.add(Location(self.display, *node_mark(node)), code, message)

    def build(self, node: yaml.Node) -> object:
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
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
                line, col = node_mark(first_entry(node, key)[0])
                self.error(key_node, "NG003", f"duplicate key '{key}' (first defined at line {line}, column {col})")
                continue
            if type(value_node) is yaml.ScalarNode and value_node.tag == STR_TAG:  # most values: build(), inlined
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


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column (libyaml's error messages do not name it)."""
    lines = text.split("\n")
    return lines[line][column:column + 1] if line < len(lines) else ""


def _empty(node: yaml.Node) -> bool:
    """True for the null node pyyaml composes for a document with no content at all."""
    return node.tag == _NULL and node.value == "" and node.start_mark.index == node.end_mark.index


def remember_unloaded(text: str, reporter: Reporter) -> None:
    """Names that text which failed to load seems to define: references to them are not worded."""
    reporter.unloaded_names.update(_NAME_ENTRY.findall(text))


def load_text(text: str, display: str, reporter: Reporter) -> list[Document]:
    documents: list[Document] = []
    directives = text.startswith("%") or "\n%" in text
    loaded = 0  # where the text not composed yet starts
    try:
        for node in yaml.compose_all(text, Loader=SpecLoader):
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
            doc.name_position = mark_of(find_mark(node, NAME_PATH, False))
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
        remember_unloaded(text[loaded:], reporter)
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        reporter.add(Location(display, 1, 1), "NG002", str(exc).splitlines()[0])
        remember_unloaded(text[loaded:], reporter)
    except RecursionError:
        reporter.add(Location(display, 1, 1), "NG004", "document is nested too deeply")
    return documents
