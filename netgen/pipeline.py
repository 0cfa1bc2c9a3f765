"""The pipeline up to the flows: load -> validate -> resolve. Pure apart from reading the spec files.

Grants are most of a large estate, and nothing but grants refers to them. So the files that seem to hold
only grants (loader.holds_only_grants) load last, and each one's grants are validated and resolved as soon as
it is loaded, in file order, while the next ones load on the second core. That gives what validating and
resolving everything at once gives (build_estate, then resolve) because everything grants may refer to is
known by then, and because what a name that fails to load later explains is decided at the end
(EstateBuilder.estate). Should a late file hold anything but grants, the documents are validated and
resolved again, at the end, as one batch.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from netgen.diagnostics import Location, Reporter
from netgen.loader import (
    Document,
    display,
    holds_only_grants,
    load_checked,
    load_files,
    spec_files,
    stray_specs,
)
from netgen.model import Estate
from netgen.resolve import Flow, Resolution, resolve
from netgen.schema import check_document
from netgen.transit import PathChooser
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


class _AsFilesLoad:
    """Validation and resolution of grants file by file, in file order, after every other kind: see above."""

    def __init__(self, documents: list[Document], as_of: date, reporter: Reporter):
        self.loading = reporter  # the caller's: what loading reports, and the names that failed to load
        self.reporter = Reporter()  # validation's, until the run is kept (the caller's gets it then)
        self.reporter.unloaded_names = reporter.unloaded_names  # the same set, as it grows
        self.resolve_reporter = Reporter()  # reported only when nothing else was an error, as in _all_at_once
        self.builder = EstateBuilder([d for d in documents if d.data.get("kind") != "Grant"], self.reporter, as_of)
        self.builder.inventory()
        tables = self.builder.tables
        vpcs = tuple(tables["Vpc"].values())
        peerings = tuple(tables["VpcPeering"].values())
        gateways = tuple(tables["TransitGateway"].values())
        chooser = PathChooser(self.builder.settings_, peerings, gateways,
                              tuple(tables["TransitGatewayPeering"].values()),
                              tuple(tables["VpcPath"].values())) if gateways else None
        self.resolution: Resolution | None = Resolution(self.builder.settings_, vpcs, self.resolve_reporter,
                                                        peerings, chooser)
        self.checked = (0, 0)  # diagnostics of self.loading and self.reporter looked at for errors
        self.stop_if_failing()

    def stop_if_failing(self) -> None:
        """Stop resolving once the run is bound to fail, as _all_at_once never resolves then."""
        if self.resolution is not None and (self.loading.errors_since(self.checked[0])
                                            or self.reporter.errors_since(self.checked[1])
                                            or self.builder.unexplained()):
            self.close()
        self.checked = (len(self.loading.diagnostics), len(self.reporter.diagnostics))

    def grants(self, documents: list[Document]) -> None:
        grants = self.builder.grants(self.builder.admit([d for d in documents if d.data.get("kind") == "Grant"],
                                                        keep=False))
        self.stop_if_failing()
        if self.resolution is not None:
            self.resolution.add(grants)

    def close(self) -> None:
        if self.resolution is not None:
            self.resolution.__exit__(None, None, None)
            self.resolution = None


def resolve_specs(specs: Path, as_of: date, reporter: Reporter,
                  lap: Callable[[str], None] = lambda stage: None, root: Path | None = None) -> Resolved:
    """Everything netgen knows about an estate; raises SpecError when any stage reported an error.

    lap(stage) is called as each stage ends: "load" once every file is loaded, "validate", "resolve". Files are
    named from root when it is given (see loader.display)."""
    skipped: list[Path] = []
    paths = spec_files(specs, skipped)
    report_skipped(specs, skipped, reporter, root)
    late = [holds_only_grants(path) for path in paths]
    waiting = late.count(False)  # early files not loaded yet
    documents: list[list[Document] | None] = [[] for _ in paths]  # per file; None once streamed took it
    loaded: list[bool] = [False] * len(paths)
    streamed: _AsFilesLoad | None = None
    given_up = False  # streamed was abandoned: everything is validated and resolved at the end instead
    taken = 0  # files whose grants streamed has taken, in file order
    try:
        file_documents: list[Document] = []
        with closing(load_files(paths, late, reporter, check_document, root)) as files:
            for i, file_documents in files:
                documents[i], loaded[i] = file_documents, True
                waiting -= not late[i]
                if given_up or waiting:
                    continue
                if late[i] and any(d.data.get("kind") != "Grant" for d in file_documents):
                    given_up = True  # something grants may refer to came late
                    if streamed is not None:
                        streamed.close()
                    continue
                if streamed is None:  # every early file is loaded
                    settle()
                    streamed = _AsFilesLoad([d for docs in documents if docs for d in docs], as_of, reporter)
                while taken < len(paths) and loaded[taken]:
                    streamed.grants(documents[taken])
                    if late[taken]:  # (an early file's other documents stay with the estate builder)
                        documents[taken] = None  # freed: the flows take their memory
                    taken += 1
                settle()
            del file_documents
        lap("load")
        if given_up or streamed is None:
            for i, docs in enumerate(documents):  # files streamed took and freed: read again
                if docs is None:
                    documents[i], found = load_checked(paths[i], check_document, root)
                    reporter.diagnostics.extend(found.diagnostics)  # (nothing, unless the file just changed)
                    reporter.unloaded_names |= found.unloaded_names
            return _all_at_once([d for docs in documents if docs for d in docs], as_of, reporter, lap)
        del documents
        settle()
        estate = streamed.builder.estate()
        reporter.diagnostics.extend(streamed.reporter.diagnostics)
        reporter.raise_if_errors()
        lap("validate")
        reporter.diagnostics.extend(streamed.resolve_reporter.diagnostics)
        reporter.raise_if_errors()
        assert streamed.resolution is not None, "resolution stops only when the run fails"
        flows = streamed.resolution.flows()
    finally:
        if streamed is not None:
            streamed.close()
    lap("resolve")
    return _guarded(Resolved(estate, tuple(flows)), reporter)


def report_skipped(specs: Path, skipped: list[Path], reporter: Reporter, root: Path | None) -> None:
    """NG008 for files that look like specs but are not read: below specs, by their names; beside it, by what
    they hold."""
    for path in skipped:
        reporter.add(Location(display(path, root)), "NG008",
                     f"skipped: netgen reads only files named *.yaml or *.yml; rename it to load it, or move it out "
                     f"of {display(specs, root)}/")
    for path, line, column in stray_specs(specs):
        reporter.add(Location(display(path, root), line, column), "NG008",
                     f"holds netgen documents but is outside the spec folder {display(specs, root)}/, so it is not "
                     "read: move it there")


def _guarded(resolved: Resolved, reporter: Reporter) -> Resolved:
    """The flows' own checks, once they are all known: Settings.maxCollateralAddresses (NG124)."""
    if resolved.estate.settings.max_collateral_addresses is not None:
        from netgen.blast import check_collateral

        check_collateral(resolved.estate, resolved.flows, reporter)
        reporter.raise_if_errors()
    return resolved


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
    return _guarded(Resolved(estate, tuple(flows)), reporter)
