"""The pipeline up to the flows: load -> validate -> resolve. Pure apart from reading the spec files."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from netgen.diagnostics import Reporter
from netgen.loader import load_tree
from netgen.model import Estate
from netgen.resolve import Flow, resolve
from netgen.schema import check_document
from netgen.validate import build_estate


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


def resolve_specs(specs: Path, as_of: date, reporter: Reporter) -> Resolved:
    """Everything netgen knows about an estate; raises SpecError when any stage reported an error."""
    documents = load_tree(specs, reporter, check=check_document)  # the shape check runs as files load
    settle()
    estate = build_estate(documents, reporter, as_of)
    del documents  # only validation reads them; freed now, their memory holds the flows (a third of the peak)
    settle()
    reporter.raise_if_errors()
    flows = resolve(estate, reporter)
    reporter.raise_if_errors()
    return Resolved(estate, tuple(flows))
