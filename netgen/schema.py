"""Shape stage: check each document against the shipped JSON Schema (draft 2020-12), with located errors."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from netgen.diagnostics import Reporter, did_you_mean
from netgen.document import Document
from netgen.model import API_VERSION
from netgen.yamlload import CONTROL_CHARACTERS


@cache
def schema_text() -> str:
    return resources.files("netgen").joinpath("schemas/netgen.schema.json").read_text("utf-8")


@cache
def schema() -> dict:
    return json.loads(schema_text())


def kinds() -> list[str]:
    return schema()["properties"]["kind"]["enum"]


def _subschema(kind: str) -> dict:
    return {"$ref": f"#/$defs/{kind}", "$defs": schema()["$defs"]}


@cache
def _validator(kind: str):
    """The full validator, for documents the fast check rejects (imported then: it takes 50 ms to import)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_subschema(kind))


@cache
def _fast_check(kind: str):
    """A compiled yes/no check (fastjsonschema), ~10x faster than jsonschema for the common valid case.

    Only its 'valid' answer is trusted: any document it rejects is checked again by jsonschema, whose
    errors (all of them, located) are what users see. tests/test_schema_fast.py checks the two agree.
    """
    import fastjsonschema

    # Without detailed exceptions code generation takes half the time (we only read the yes/no); that mode cannot
    # generate 'const' (fastjsonschema 2.22), so const: x is given as the equivalent enum: [x].
    return fastjsonschema.compile(_const_as_enum(_subschema(kind)), formats={"date": r"^\d{4}-\d{2}-\d{2}$"},
                                  detailed_exceptions=False)


_SCHEMA_MAPS = {"properties", "patternProperties", "$defs", "dependentSchemas"}  # name -> schema
_DATA = {"const", "enum", "default", "examples"}  # keywords whose values are data, not schemas


def _const_as_enum(schema):
    """The schema with every const: x keyword as the equivalent enum: [x]."""
    if isinstance(schema, list):
        return [_const_as_enum(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {}
    for key, value in schema.items():
        if key in _DATA:
            converted[key] = value
        elif key in _SCHEMA_MAPS:
            converted[key] = {name: _const_as_enum(item) for name, item in value.items()}
        else:
            converted[key] = _const_as_enum(value)
    if "const" in schema:
        assert "enum" not in schema, "const beside enum"
        converted["enum"] = [converted.pop("const")]
    return converted


_TEXT_FIELDS = {"reason"}  # free text: line breaks and tabs allowed


def _plain_values(doc: Document, reporter: Reporter) -> bool:
    """No control characters in strings (Python's '$' lets "name\\n" through every schema pattern) and no
    fractional numbers (jsonschema counts 8080.0 as an integer). True when the document is clean; the positions
    reported go to doc.flagged, so that the schema's own checks do not word the same values again."""
    clean = True
    stack: list[tuple[tuple, object]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if CONTROL_CHARACTERS.search(key):
                    reporter.add(doc.at((*path, key), key=True), "NG123", f"control character in key {key!r}")
                    clean = False  # (a key: the schema's checks of its value are still worded)
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in enumerate(value))
        elif isinstance(value, str):
            text = value.replace("\n", "").replace("\t", "") if path[-1:] and path[-1] in _TEXT_FIELDS else value
            if CONTROL_CHARACTERS.search(text):
                where = doc.at(path)
                reporter.add(where, "NG123", f"control character in {value!r}; remove it (a trailing newline from "
                                             "a block scalar, say)")
                doc.flagged += ((where.line, where.column),)
                clean = False
        elif isinstance(value, float):
            where = doc.at(path)
            reporter.add(where, "NG123", f"{value!r}: netgen takes whole numbers only")
            doc.flagged += ((where.line, where.column),)
            clean = False
    return clean


def _leaf_errors(error):
    """jsonschema nests errors of if/then and $ref; report the most specific ones."""
    if error.context:
        for sub in error.context:
            yield from _leaf_errors(sub)
    else:
        yield error


def check_document(doc: Document, reporter: Reporter) -> bool:
    """Report every schema violation of doc; True when it is well-formed. A value the loader reported (a number
    YAML 1.1 reads in another base: Document.flagged) is not reported again, and fails the document."""
    data = doc.data
    assert isinstance(data, dict)
    if doc.flagged:
        reporter = _Unless(doc.flagged, reporter)
    version = data.get("apiVersion")
    if version != API_VERSION:
        where = doc.at(("apiVersion",)) if "apiVersion" in data else doc.at()
        shown = f"'{version}'" if isinstance(version, str) else "not a string" if "apiVersion" in data else "missing"
        reporter.add(where, "NG010", f"apiVersion is {shown}; expected '{API_VERSION}'")
        return False
    kind = data.get("kind")
    if kind not in kinds():
        where = doc.at(("kind",)) if "kind" in data else doc.at()
        if isinstance(kind, str):
            msg = f"unknown kind '{kind}'{did_you_mean(kind, kinds())}"
        elif "kind" in data:
            msg = f"kind must be a string, one of: {', '.join(kinds())}"
        else:
            msg = f"kind is missing; one of: {', '.join(kinds())}"
        reporter.add(where, "NG011", msg)
        return False
    plain = (_plain_values(doc, reporter) if doc.irregular else True) and not doc.flagged
    if doc.flagged:
        reporter = _Unless(doc.flagged, reporter)
    try:
        _fast_check(kind)(data)
        return plain
    except Exception:  # noqa: BLE001 - any doubt goes to the full validator below
        pass
    ok = plain
    errors = sorted(_validator(kind).iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    for error in errors:
        ok = False
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - set(allowed)):
                reporter.add(doc.at((*path, extra), key=True), "NG013",
                             f"unknown field '{extra}'{did_you_mean(extra, allowed)}; "
                             f"allowed here: {', '.join(allowed)}")
            continue
        for leaf in _leaf_errors(error):
            leaf_path = tuple(leaf.absolute_path)
            code = "NG012"  # x-netgen-code names what a malformed string means; a wrong type stays NG012
            if isinstance(leaf.schema, dict) and leaf.validator in ("pattern", "minLength", "maxLength"):
                code = leaf.schema.get("x-netgen-code", "NG012")
            where = doc.at(leaf_path)
            if "propertyNames" in leaf.absolute_schema_path and isinstance(leaf.instance, str):
                where = doc.at((*leaf_path, leaf.instance), key=True)  # point at the bad key, not its mapping
            reporter.add(where, code, _message(leaf, leaf_path))
    return ok


class _Unless:
    """A reporter that leaves out what is located at given (line, column) positions."""

    def __init__(self, positions: tuple[tuple[int, int], ...], reporter: Reporter):
        self.positions = set(positions)
        self.reporter = reporter

    def add(self, location, code: str, message: str) -> None:
        if (location.line, location.column) not in self.positions:
            self.reporter.add(location, code, message)


def _message(error, path) -> str:
    where = ".".join(str(p) for p in path) or "document"
    if error.validator == "pattern":
        description = error.schema.get("description", "")
        return f"{where}: {error.instance!r} is not valid" + (f"; {description}" if description else "")
    if error.validator == "required":
        return error.message.replace("is a required property", f"is required in {where}")
    if error.validator in ("minProperties", "maxProperties") and where.endswith(("from", "to")):
        return f"{where}: name exactly one of {', '.join(error.schema.get('properties', {}))}"
    return f"{where}: {error.message}"
