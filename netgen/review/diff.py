"""`netgen diff`: the access a change grants or takes away, and the infrastructure that follows.

The base side is the spec folder as it was at a git revision, extracted with `git archive` into a temporary
folder; the other side is the working tree. Both are resolved as of the same date and compared as flows with
the spec locations stripped, so moving, reformatting or splitting spec files is "no access change". The
infrastructure changes come from running the real compile functions on both sides (see provenance.py).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

from netgen.blast import admits_lines, admits_markdown, by_grant
from netgen.diagnostics import Diagnostic, Reporter, SpecError
from netgen.pipeline import Resolved
from netgen.resolve import Flow, GrantRef
from netgen.review import UsageError
from netgen.review.owners import Approval, approval_json, approval_markdown, approval_text, approvals
from netgen.review.provenance import (
    GatewayRouteFact,
    Infrastructure,
    PeeringFact,
    PolicyFact,
    RouteFact,
    RuleFact,
    grants_by_peering_and_route,
    infrastructure,
)

DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")


# --- git -------------------------------------------------------------------------------------------------------

def _git(cwd: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, text=not binary)
    except FileNotFoundError:
        raise UsageError("git is not installed") from None


def _git_text(cwd: Path, *args: str) -> str:
    done = _git(cwd, *args)
    if done.returncode:
        raise UsageError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def _commit(top: Path, rev: str) -> str | None:
    done = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return done.stdout.strip() if done.returncode == 0 else None


@dataclass(frozen=True)
class Base:
    label: str  # how the report names it: the revision given, or how the default was chosen
    commit: str


def repository(specs: Path) -> tuple[Path, str]:
    """(top-level folder of the git work tree holding specs, specs' path inside it, '' for the top)."""
    if not specs.is_dir():
        raise UsageError(f"'{specs}' is not a folder")
    done = _git(specs, "rev-parse", "--show-toplevel")
    if done.returncode:
        raise UsageError(f"'{specs}' is not inside a git repository ({done.stderr.strip()})")
    top = Path(done.stdout.strip()).resolve()
    try:
        inside = specs.resolve().relative_to(top).as_posix()
    except ValueError:
        raise UsageError(f"'{specs}' is outside the git work tree {top}") from None
    return top, "" if inside == "." else inside


def choose_base(top: Path, rev: str | None) -> Base:
    """The revision given, else the merge-base of HEAD with the default branch, else HEAD."""
    if rev is not None:
        commit = _commit(top, rev)
        if commit is None:
            raise UsageError(f"'{rev}' is not a revision of the repository at {top}")
        return Base(rev, commit)
    head = _commit(top, "HEAD")
    if head is None:
        raise UsageError("the repository has no commits yet: nothing to compare with (give --base)")
    for branch in DEFAULT_BRANCHES:
        if _commit(top, branch) is None:
            continue
        done = _git(top, "merge-base", "HEAD", branch)
        if done.returncode == 0 and done.stdout.strip():
            return Base(f"merge-base of HEAD and {branch}", done.stdout.strip())
    return Base("HEAD", head)


def extract(top: Path, commit: str, inside: str, destination: Path) -> bool:
    """Write the spec folder as it is at commit into destination; False when it did not exist there."""
    if inside and _git(top, "cat-file", "-e", f"{commit}:{inside}").returncode:
        return False
    args = ["archive", "--format=tar", commit] + (["--", inside] if inside else [])
    done = _git(top, *args, binary=True)
    if done.returncode:
        raise UsageError(f"git archive {commit}: {done.stderr.decode(errors='replace').strip()}")
    try:
        with tarfile.open(fileobj=io.BytesIO(done.stdout), mode="r:") as archive:
            archive.extractall(destination, filter="data")  # refuses links out of the folder, devices, ...
    except (tarfile.TarError, OSError) as exc:
        raise UsageError(f"cannot extract {inside or 'the tree'} at {commit[:12]}: {exc}") from None
    return True


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


def flow_text(flow: Flow) -> str:
    """A flow without its grants (they are shown as the heading it is grouped under)."""
    src = ",".join(map(str, flow.source.addresses))
    dst = ",".join(map(str, flow.destination.addresses))
    note = f" [{flow.note}]" if flow.note else ""
    return f"{flow.source} {src} -> {flow.destination} {dst} {flow.ports} via {flow.path}{note}"


def _flow_json(flow: Flow) -> dict:
    return {"source": str(flow.source), "sourceAddresses": [str(a) for a in flow.source.addresses],
            "destination": str(flow.destination),
            "destinationAddresses": [str(a) for a in flow.destination.addresses],
            "protocol": flow.ports.protocol.lower(), "fromPort": flow.ports.first, "toPort": flow.ports.last,
            "path": str(flow.path), "note": flow.note, "text": flow_text(flow),
            "grants": [{"name": g.name, "owner": g.owner, "location": g.location} for g in flow.grants]}


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


def _names(grants: tuple[GrantRef, ...]) -> tuple[tuple[str, str], ...]:
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
                    if _names(before[k].grants) != _names(after[k].grants)]

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


# --- output --------------------------------------------------------------------------------------------------

def _via(names: set[str] | None) -> str:
    return f"  (grants: {', '.join(sorted(names))})" if names else ""


def _policy_allow(entry) -> str:
    cidr, protocol, first, last = entry
    ports = str(first) if first == last else f"{first}-{last}"
    return f"{cidr} {protocol.lower()}/{ports}"


def _policy_lines(before: PolicyFact, after: PolicyFact) -> list[str]:
    lines = []
    way = "from" if after.direction == "ingress" else "to"
    for entry in sorted(set(after.allows) - set(before.allows)):
        lines.append(f"+ {way} {_policy_allow(entry)}")
    for entry in sorted(set(before.allows) - set(after.allows)):
        lines.append(f"- {way} {_policy_allow(entry)}")
    if before.grants != after.grants:
        lines.append(f"~ grants: {','.join(before.grants) or '-'} -> {','.join(after.grants) or '-'}")
    return lines


def infrastructure_sections(report: DiffReport) -> list[tuple[str, list[str]]]:
    """(title, lines with a leading +, - or ~) for every kind of infrastructure that changes."""
    sections = []
    lines = [f"+ {p}{_via(report.peering_grants.get(p))}" for p in report.peerings.added]
    lines += [f"- {p}{_via(report.peering_grants.get(p))}" for p in report.peerings.removed]
    lines += [f"~ {a.requester} <-> {a.accepter}: {_peering_kind(b)} -> {_peering_kind(a)}"
              f"{_via(report.peering_grants.get(a))}" for b, a in report.peerings.changed]
    sections.append(("VPC peerings", lines))
    lines = [f"+ {r}{_via(report.route_grants.get(r))}" for r in report.routes.added]
    lines += [f"- {r}{_via(report.route_grants.get(r))}" for r in report.routes.removed]
    sections.append(("Routes", lines))
    lines = [f"+ {r}{_via(report.route_grants.get(r))}" for r in report.gateway_routes.added]  # type: ignore
    lines += [f"- {r}{_via(report.route_grants.get(r))}" for r in report.gateway_routes.removed]  # type: ignore
    sections.append(("Transit gateway routes", lines))
    lines = [f"+ {r}{_via(set(r.grants))}" for r in report.rules.added]
    lines += [f"- {r}{_via(set(r.grants))}" for r in report.rules.removed]
    lines += [f"~ {a}: grants {', '.join(b.grants)} -> {', '.join(a.grants)}" for b, a in report.rules.changed]
    sections.append(("Security-group rules", lines))
    lines = [f"+ {p.file} ({p.direction}, grants: {', '.join(p.grants)})" for p in report.policies.added]
    lines += [f"- {p.file} ({p.direction}, grants: {', '.join(p.grants)})" for p in report.policies.removed]
    for before, after in report.policies.changed:
        lines.append(f"~ {after.file}")
        lines += [f"    {line}" for line in _policy_lines(before, after)]
    sections.append(("NetworkPolicies", lines))
    return sections


def _peering_kind(peering: PeeringFact) -> str:
    if peering.connection:
        return f"existing {peering.connection} (VpcPeering; netgen neither creates nor deletes it)"
    return f"netgen's own {peering.logical_id}"


def _grant_heading(change: GrantChange) -> str:
    status = {"new": "new grant", "removed": "grant removed", "changed": "grant changed"}[change.status]
    return f"{change.name} ({change.location}; {status})"


def _summary(report: DiffReport) -> str:
    if not report.access_changed:
        return "no access change"
    return f"{len(report.added)} flow(s) added, {len(report.removed)} flow(s) removed"


def render_text(report: DiffReport) -> str:
    out = [f"netgen diff: {report.base.label} ({report.base.commit[:12]}) -> working tree ({report.specs})"]
    if report.base_missing:
        out.append(f"note: {report.specs} did not exist at the base revision; every flow is new")
    out.append(_summary(report))
    for owner, changes in group_by_owner(report).items():
        out += ["", f"owner {owner}:"]
        for change in changes:
            out.append(f"  {_grant_heading(change)}")
            out += [f"    + {flow_text(f)}" for f in change.added]
            out += [f"    {line}" for line in admits_lines(change.admits)]
            out += [f"    - {flow_text(f)}" for f in change.removed]
    out += approval_text(report.approvals)  # after the access, by the grants' owners
    if report.reattributed:
        out += ["", "Same access, other grants:"]
        for before, after in report.reattributed:
            out.append(f"  ~ {flow_text(after)}")
            out.append(f"      grants: {_grant_list(before)} -> {_grant_list(after)}")
    out += ["", "Infrastructure:" if report.infrastructure_changed else "Infrastructure: no change"]
    for title, lines in infrastructure_sections(report):
        if lines:
            out.append(f"  {title}:")
            out += [f"    {line}" for line in lines]
    return "\n".join(out) + "\n"


def _grant_list(flow: Flow) -> str:
    return ", ".join(f"{name} ({owner})" for name, owner in _names(flow.grants))


def render_markdown(report: DiffReport) -> str:
    out = ["### netgen diff", "",
           f"Base: {report.base.label} (`{report.base.commit[:12]}`), compared with the working tree "
           f"(`{report.specs}`).", ""]
    if report.base_missing:
        out += [f"`{report.specs}` did not exist at the base revision: every flow is new.", ""]
    out += [f"**{_summary(report)}**", ""]
    out += approval_markdown(report.approvals)
    if report.grants:
        out += ["#### Access", ""]
        for owner, changes in group_by_owner(report).items():
            out += [f"Owner `{owner}`:", ""]
            for change in changes:
                out += [f"**{change.name}** (`{change.location}`, {change.status} grant)", "", "```diff"]
                out += [f"+ {flow_text(f)}" for f in change.added]
                out += [f"- {flow_text(f)}" for f in change.removed]
                out += ["```", ""]
                out += admits_markdown(change.admits)
    if report.reattributed:
        out += ["#### Same access, other grants", ""]
        for before, after in report.reattributed:
            out.append(f"- `{flow_text(after)}`: {_grant_list(before)} → {_grant_list(after)}")
        out.append("")
    out += ["#### Infrastructure", ""]
    if not report.infrastructure_changed:
        out += ["No change.", ""]
    for title, lines in infrastructure_sections(report):
        if lines:
            out += [f"<details><summary>{title}: {len([x for x in lines if x[:1] in '+-~'])} change(s)"
                    "</summary>", "", "```diff", *lines, "```", "", "</details>", ""]
    return "\n".join(out)


def render_json(report: DiffReport) -> str:
    def rule(r: RuleFact) -> dict:
        return {"group": r.group, "groupId": r.group_id, "direction": r.direction,
                "protocol": r.protocol.lower(), "fromPort": r.first, "toPort": r.last, "cidr": str(r.cidr),
                "grants": list(r.grants)}

    def peering(p: PeeringFact) -> dict:
        return {"requester": p.requester, "accepter": p.accepter, "requesterVpcId": p.requester_vpc_id,
                "accepterVpcId": p.accepter_vpc_id, "logicalId": p.logical_id, "crossRegion": p.cross_region,
                "crossAccount": p.cross_account, "existingConnectionId": p.connection or None,
                "grants": sorted(report.peering_grants.get(p, ()))}

    def route(r: RouteFact) -> dict:
        return {"vpc": r.vpc, "routeTable": r.route_table, "prefix": str(r.prefix), "peer": r.peer,
                **({"transitGatewayId": r.gateway} if r.gateway else {}),
                "grants": sorted(report.route_grants.get(r, ()))}

    def gateway_route(r: GatewayRouteFact) -> dict:
        return {"transitGateway": r.gateway, "routeTable": r.route_table, "prefix": str(r.prefix),
                "attachment": r.attachment, "leadsTo": r.leads_to,
                "grants": sorted(report.route_grants.get(r, ()))}  # type: ignore[call-overload]

    def policy(p: PolicyFact) -> dict:
        return {"file": p.file, "cluster": p.cluster, "namespace": p.namespace, "name": p.name,
                "direction": p.direction, "grants": list(p.grants),
                "allows": [_policy_allow(a) for a in p.allows]}

    data = {
        "base": {"label": report.base.label, "commit": report.base.commit, "specsMissing": report.base_missing},
        "specs": report.specs,
        "accessChanged": report.access_changed,
        "infrastructureChanged": report.infrastructure_changed,
        "approvals": approval_json(report.approvals),
        "flows": {"added": [_flow_json(f) for f in report.added],
                  "removed": [_flow_json(f) for f in report.removed],
                  "reattributed": [{"flow": flow_text(a), "before": [list(x) for x in _names(b.grants)],
                                    "after": [list(x) for x in _names(a.grants)]}
                                   for b, a in report.reattributed]},
        "grants": [{"name": c.name, "owner": c.owner, "location": c.location, "status": c.status,
                    "added": [flow_text(f) for f in c.added], "removed": [flow_text(f) for f in c.removed],
                    "admits": [a.as_dict() for a in c.admits]}
                   for c in report.grants],
        "peerings": {"added": [peering(p) for p in report.peerings.added],
                     "removed": [peering(p) for p in report.peerings.removed],
                     "changed": [{"before": peering(b), "after": peering(a)} for b, a in report.peerings.changed]},
        "routes": {"added": [route(r) for r in report.routes.added],
                   "removed": [route(r) for r in report.routes.removed]},
        **({"transitGatewayRoutes": {"added": [gateway_route(r) for r in report.gateway_routes.added],
                                     "removed": [gateway_route(r) for r in report.gateway_routes.removed]}}
           if report.gateway_routes else {}),
        "securityGroupRules": {"added": [rule(r) for r in report.rules.added],
                               "removed": [rule(r) for r in report.rules.removed],
                               "changed": [{"before": rule(b), "after": rule(a)} for b, a in report.rules.changed]},
        "networkPolicies": {"added": [policy(p) for p in report.policies.added],
                            "removed": [policy(p) for p in report.policies.removed],
                            "changed": [{"before": policy(b), "after": policy(a)}
                                        for b, a in report.policies.changed]},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}


def group_by_owner(report: DiffReport) -> dict[str, list[GrantChange]]:
    owners: dict[str, list[GrantChange]] = defaultdict(list)
    for change in report.grants:
        owners[change.owner].append(change)
    return dict(owners)
