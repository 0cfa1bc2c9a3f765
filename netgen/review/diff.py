"""`netgen diff`: the access a change grants or takes away, and the infrastructure that follows.

The base side is the spec folder as it was at a git revision, extracted with `git archive` into a temporary
folder (diff_git.py); the other side is the working tree. Both are resolved as of the same date and compared as
flows with the spec locations stripped, so moving, reformatting or splitting spec files is "no access change".
The infrastructure changes come from running the real compile functions on both sides (see provenance.py).
This module computes the DiffReport; diff_render.py writes it as text, markdown or json.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from netgen.blast import by_grant
from netgen.diagnostics import Diagnostic, Reporter, SpecError
from netgen.pipeline import Resolved
from netgen.resolve import Flow, GrantRef
from netgen.review.diff_git import Base, choose_base, extract, repository
from netgen.review.owners import Approval, approvals
from netgen.review.provenance import (
    Infrastructure,
    PeeringFact,
    RouteFact,
    grants_by_peering_and_route,
    infrastructure,
)

# --- resolving both sides ------------------------------------------------------------------------------------

def resolve_folder(folder: Path, display: str, as_of: date, reporter: Reporter) -> Resolved:
    """load -> validate -> resolve for a folder whose files are reported as display/<relative path>."""
    from netgen.loader import load_file, spec_files
    from netgen.resolve import resolve
    from netgen.validate import build_estate

    documents = []
    for path in spec_files(folder):
        relative = path.relative_to(folder).as_posix()
        documents.extend(load_file(path, f"{display}/{relative}" if display else relative, reporter))
    estate = build_estate(documents, reporter, as_of)
    reporter.raise_if_errors()
    flows = resolve(estate, reporter)
    reporter.raise_if_errors()
    return Resolved(estate, tuple(flows))


@dataclass
class Side:
    resolved: Resolved
    infra: Infrastructure


def _side(folder: Path, display: str, as_of: date) -> tuple[Side | None, list[Diagnostic]]:
    reporter = Reporter()
    try:
        resolved = resolve_folder(folder, display, as_of, reporter)
        infra = infrastructure(resolved, reporter)
        reporter.raise_if_errors()
    except SpecError:
        return None, [d for d in reporter.sorted() if d.severity == "error"]
    return Side(resolved, infra), []


class SpecErrors(Exception):
    """Spec errors on either side: the diagnostics, located (base files as REV:path)."""

    def __init__(self, base: list[Diagnostic], head: list[Diagnostic]):
        super().__init__(f"{len(base) + len(head)} error(s)")
        self.base = base
        self.head = head


# --- comparing -----------------------------------------------------------------------------------------------

AccessKey = tuple  # (source, destination, ports, path, note): a flow without its provenance


def _key(flow: Flow) -> AccessKey:
    """Which peering (or transit gateway) a path takes is infrastructure, not access: a pair whose peering turns
    from netgen's own into an existing one (VpcPeering), or that moves to a transit gateway, or back, changes no
    access, and shows under the VPC peerings and the routes."""
    path = replace(flow.path, connection="", transit=()) if flow.path.connection or flow.path.transit else flow.path
    return (flow.source, flow.destination, flow.ports, path, flow.note)


@dataclass
class GrantChange:
    name: str
    owner: str
    location: str  # in the working tree for added flows, at the base for removed ones
    status: str  # new | removed | changed
    added: list[Flow] = field(default_factory=list)
    removed: list[Flow] = field(default_factory=list)
    admits: list = field(default_factory=list)  # netgen.blast.Admission: who else its added openings admit


@dataclass
class Changes:
    added: list  # of facts
    removed: list
    changed: list = field(default_factory=list)  # (before, after) pairs

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass
class DiffReport:
    base: Base
    specs: str
    base_missing: bool  # the spec folder did not exist at the base revision
    added: list[Flow]
    removed: list[Flow]
    reattributed: list[tuple[Flow, Flow]]  # same access, other grants: (base, working tree)
    grants: list[GrantChange]
    peerings: Changes
    routes: Changes
    rules: Changes
    policies: Changes
    peering_grants: dict[PeeringFact, set[str]]
    route_grants: dict[RouteFact, set[str]]  # (transit gateway routes' grants too, by GatewayRouteFact)
    approvals: list[Approval] = field(default_factory=list)  # whose services and hosts gain or lose callers
    gateway_routes: Changes = field(default_factory=lambda: Changes([], []))  # static transit gateway routes

    @property
    def access_changed(self) -> bool:
        return bool(self.added or self.removed)

    @property
    def infrastructure_changed(self) -> bool:
        return bool(self.peerings or self.routes or self.rules or self.policies or self.gateway_routes)


def grant_names(grants: tuple[GrantRef, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({(g.name, g.owner) for g in grants}))


def _set_diff(base, head) -> Changes:
    b, h = set(base), set(head)
    return Changes(sorted(h - b), sorted(b - h))


def compare(base_side: Side, head_side: Side, base: Base, specs: str, base_missing: bool) -> DiffReport:
    before = {_key(f): f for f in base_side.resolved.flows}
    after = {_key(f): f for f in head_side.resolved.flows}
    added = [after[k] for k in sorted(after.keys() - before.keys())]
    removed = [before[k] for k in sorted(before.keys() - after.keys())]
    reattributed = [(before[k], after[k]) for k in sorted(before.keys() & after.keys())
                    if grant_names(before[k].grants) != grant_names(after[k].grants)]

    base_grants = {g.name for g in base_side.resolved.estate.grants}
    head_grants = {g.name for g in head_side.resolved.estate.grants}
    groups: dict[tuple[str, str], GrantChange] = {}

    def group(ref: GrantRef, side: str) -> GrantChange:
        if (ref.name, ref.owner) not in groups:
            if ref.name not in base_grants:
                status = "new"
            elif ref.name not in head_grants:
                status = "removed"
            else:
                status = "changed"
            groups[(ref.name, ref.owner)] = GrantChange(ref.name, ref.owner, ref.location, status)
        elif side == "head":  # prefer the working-tree location
            groups[(ref.name, ref.owner)].location = ref.location
        return groups[(ref.name, ref.owner)]

    for flow in added:
        for ref in flow.grants:
            group(ref, "head").added.append(flow)
    for flow in removed:
        for ref in flow.grants:
            group(ref, "base").removed.append(flow)
    radius = by_grant(head_side.resolved.estate, added)  # the blast radius of what each grant opens anew
    for change in groups.values():
        change.admits = radius.get(change.name, [])

    bi, hi = base_side.infra, head_side.infra
    rules = _set_diff((r.key for r in bi.rules), (r.key for r in hi.rules))
    head_rules = {r.key: r for r in hi.rules}
    base_rules = {r.key: r for r in bi.rules}
    rules = Changes([head_rules[k] for k in rules.added], [base_rules[k] for k in rules.removed],
                    [(base_rules[k], head_rules[k]) for k in sorted(base_rules.keys() & head_rules.keys())
                     if base_rules[k].grants != head_rules[k].grants])
    base_policies = {p.path: p for p in bi.policies}
    head_policies = {p.path: p for p in hi.policies}
    policies = Changes([head_policies[k] for k in sorted(head_policies.keys() - base_policies.keys())],
                       [base_policies[k] for k in sorted(base_policies.keys() - head_policies.keys())],
                       [(base_policies[k], head_policies[k])
                        for k in sorted(base_policies.keys() & head_policies.keys())
                        if base_policies[k] != head_policies[k]])
    peering_grants, route_grants = grants_by_peering_and_route(bi, base_side.resolved.flows)
    head_peering_grants, head_route_grants = grants_by_peering_and_route(hi, head_side.resolved.flows)
    peering_grants.update(head_peering_grants)  # added ones are explained by the working tree
    route_grants.update(head_route_grants)
    return DiffReport(base, specs, base_missing, added, removed, reattributed,
                      sorted(groups.values(), key=lambda g: (g.owner, g.name)),
                      _peering_changes(bi.peerings, hi.peerings), _set_diff(bi.routes, hi.routes), rules, policies,
                      peering_grants, route_grants,
                      approvals(added, removed, base_side.resolved.estate, head_side.resolved.estate),
                      _set_diff(bi.gateway_routes, hi.gateway_routes))


def _peering_changes(base: tuple[PeeringFact, ...], head: tuple[PeeringFact, ...]) -> Changes:
    """Peerings added and removed; a pair of VPCs with a peering on both sides that is another one (netgen's own
    turned existing, or back, or another connection id) is changed."""
    changes = _set_diff(base, head)
    before = {p.pair: p for p in changes.removed}
    after = {p.pair: p for p in changes.added}
    both = before.keys() & after.keys()
    return Changes([p for p in changes.added if p.pair not in both], [p for p in changes.removed if p.pair not in both],
                   sorted((before[pair], after[pair]) for pair in both))


def run(specs: Path, rev: str | None, as_of: date) -> DiffReport:
    """Compare the specs at the base revision with the working tree. Raises UsageError or SpecErrors."""
    top, inside = repository(specs)
    base = choose_base(top, rev)
    short = base.commit[:12]
    with tempfile.TemporaryDirectory(prefix="netgen-diff-") as tmp:
        present = extract(top, base.commit, inside, Path(tmp))
        folder = Path(tmp) / inside if present else Path(tmp)
        base_side, base_errors = _side(folder, f"{short}:{inside}" if inside else f"{short}:", as_of)
    head_side, head_errors = _side(specs, specs.as_posix(), as_of)
    if base_errors or head_errors:
        raise SpecErrors(base_errors, head_errors)
    assert base_side is not None and head_side is not None
    return compare(base_side, head_side, base, specs.as_posix(), not present)
