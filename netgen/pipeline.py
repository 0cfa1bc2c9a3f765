"""The pipeline up to the flows: load -> validate -> resolve. Pure apart from reading the spec files.

Grants are most of a large estate, and nothing but grants refers to them. So the files that seem to hold
only grants (loader.holds_only_grants) load last, and each one's grants are validated and resolved as soon as
it is loaded, in file order, while the next ones load on the second core. That is exact only when everything
grants may refer to, and every name a file that failed to load seems to define, was known before: a late file
that holds anything but grants, or anything reported while loading, and the documents are validated and
resolved again at the end from scratch, as one batch (what build_estate and resolve do).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from netgen.diagnostics import Reporter, Severity
from netgen.loader import Document, holds_only_grants, load_checked, load_files, spec_files
from netgen.model import Estate
from netgen.resolve import Flow, Resolution, resolve
from netgen.schema import check_document
from netgen.validate import EstateBuilder, build_estate


@dataclass(frozen=True)
class Resolved:
    estate: Estate
    flows: tuple[Flow, ...]


def tune_gc() -> None:
    """netgen builds millions of long-lived objects and almost no reference cycles: collect young objects
    less often (the default thresholds spend up to a third of a large build re-scanning live data)."""
    gc.set_threshold(100_000, 50, 100)


def settle() -> None:
    """Between stages: what is alive now lives to the end, so the cyclic collector can stop scanning it."""
    gc.freeze()


def _errors(diagnostics: list) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


class _AsFilesLoad:
    """Validation and resolution of grants file by file, in file order, after every other kind: see above."""

    def __init__(self, documents: list[Document], as_of: date):
        self.reporter = Reporter()  # validation's; the caller's reporter gets it only if this run is kept
        self.resolve_reporter = Reporter()  # kept only when validation found no error, as in _all_at_once
        self.builder = EstateBuilder([d for d in documents if d.data.get("kind") != "Grant"], self.reporter, as_of)
        self.builder.inventory()
        self.resolution: Resolution | None = None
        if not self.reporter.has_errors:  # grants are resolved only while validation has found no error
            vpcs = tuple(self.builder.tables["Vpc"].values())
            self.resolution = Resolution(self.builder.settings_, vpcs, self.resolve_reporter)
        self.checked = len(self.reporter.diagnostics)  # diagnostics looked at for errors

    def grants(self, documents: list[Document]) -> None:
        grants = self.builder.grants(self.builder.admit([d for d in documents if d.data.get("kind") == "Grant"],
                                                        keep=False))
        if self.resolution is not None and _errors(self.reporter.diagnostics[self.checked:]):
            self.close()
        self.checked = len(self.reporter.diagnostics)
        if self.resolution is not None:
            self.resolution.add(grants)

    def close(self) -> None:
        if self.resolution is not None:
            self.resolution.__exit__(None, None, None)
            self.resolution = None


def resolve_specs(specs: Path, as_of: date, reporter: Reporter,
                  lap: Callable[[str], None] = lambda stage: None) -> Resolved:
    """Everything netgen knows about an estate; raises SpecError when any stage reported an error.

    lap(stage) is called as each stage ends: "load" once every file is loaded, "validate", "resolve"."""
    paths = spec_files(specs)
    late = [holds_only_grants(path) for path in paths]
    waiting = late.count(False)  # early files not loaded yet
    documents: list[list[Document] | None] = [[] for _ in paths]  # per file; None once streamed took it
    loaded: list[bool] = [False] * len(paths)
    reported = (len(reporter.diagnostics), len(reporter.unloaded_names))
    streamed: _AsFilesLoad | None = None
    given_up = False  # streamed was abandoned: everything is validated and resolved at the end instead
    taken = 0  # files whose grants streamed has taken, in file order
    try:
        file_documents: list[Document] = []
        with closing(load_files(paths, late, reporter, check_document)) as files:
            for i, file_documents in files:
                documents[i], loaded[i] = file_documents, True
                waiting -= not late[i]
                if given_up or waiting:
                    continue
                if (len(reporter.diagnostics), len(reporter.unloaded_names)) != reported or (
                        late[i] and any(d.data.get("kind") != "Grant" for d in file_documents)):
                    given_up = True  # a file failed to load, or something grants refer to came late
                    if streamed is not None:
                        streamed.close()
                    continue
                if streamed is None:  # every early file is loaded
                    settle()
                    streamed = _AsFilesLoad([d for docs in documents if docs for d in docs], as_of)
                while taken < len(paths) and loaded[taken]:
                    streamed.grants(documents[taken])
                    if late[taken]:  # (an early file's other documents stay with the estate builder)
                        documents[taken] = None  # freed: the flows take their memory
                    taken += 1
                settle()
            del file_documents
        lap("load")
        if given_up or streamed is None:
            for i, docs in enumerate(documents):  # files streamed took and freed (they loaded cleanly): again
                if docs is None:
                    documents[i], found = load_checked(paths[i], check_document)
                    reporter.diagnostics.extend(found.diagnostics)  # (nothing, unless the file just changed)
                    reporter.unloaded_names |= found.unloaded_names
            return _all_at_once([d for docs in documents if docs for d in docs], as_of, reporter, lap)
        del documents
        settle()
        reporter.diagnostics.extend(streamed.reporter.diagnostics)
        estate = streamed.builder.estate()
        reporter.raise_if_errors()
        lap("validate")
        reporter.diagnostics.extend(streamed.resolve_reporter.diagnostics)
        reporter.raise_if_errors()
        assert streamed.resolution is not None, "resolution stops only at a validation error"
        flows = streamed.resolution.flows()
    finally:
        if streamed is not None:
            streamed.close()
    lap("resolve")
    return Resolved(estate, tuple(flows))


def _all_at_once(documents: list[Document], as_of: date, reporter: Reporter,
                 lap: Callable[[str], None]) -> Resolved:
    settle()
    estate = build_estate(documents, reporter, as_of)
    del documents[:]  # only validation reads them; freed now, their memory holds the flows (a third of the peak)
    settle()
    reporter.raise_if_errors()
    lap("validate")
    flows = resolve(estate, reporter)
    reporter.raise_if_errors()
    lap("resolve")
    return Resolved(estate, tuple(flows))
