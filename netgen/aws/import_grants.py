"""`netgen import-grants`: Grant documents that reproduce hand-made rules (and, optionally, VPC Flow Logs
records, read by netgen/aws/flowlogs.py) between known endpoints, written as one YAML file.

Only the rules that no grant covers yet (netgen/aws/coverage.py) are imported; netgen/aws/grant_matching.py
tells which of them name a legacy host calling a service, and lists the rest (Unmatched) with why. An imported
grant yields every hop of its path (the NLB's own hop and its health checks included), so after `netgen build`
and deploy it may add rules beside the hand rules; netgen never revokes a rule it did not write, so no traffic
the hand rules allowed is cut.

The grants are rendered as one YAML file (`render_file`; the command writes it to --out): per service, the
hosts that need the same ports, a whole host group named by it; owner a placeholder that validates; the reason
names the rules or flow-log records each came from. They are validated with the specs before they are written
(a grant that fails is dropped and listed), and what was not imported is listed at the end of the file with
why, and a grant to write by hand when one can be sketched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from netgen.aws.coverage import COVERED, UNCOVERED, Coverage, classify_rules
from netgen.aws.flowlogs import aggregate, read_flow_logs
from netgen.aws.generated import RuleSpec
from netgen.aws.grant_matching import (
    Matcher,
    Proposal,
    Unmatched,
    rule_text,
)
from netgen.model import Estate, Service

OWNER_PLACEHOLDER = "TODO-owner"  # matches the schema's owner pattern, so the imported file validates as is
REASON_LIMIT = 500  # the schema's maxLength of Grant.spec.reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")




@dataclass
class ImportedGrant:
    name: str
    legacy: tuple[str, str]  # ("host" | "hostGroup", name)
    service: str  # as the spec names it
    ports: list[str]  # port names
    reason: str

    def document(self) -> str:
        spec = {"owner": OWNER_PLACEHOLDER, "reason": self.reason}
        flow = {"from": {self.legacy[0]: self.legacy[1]}, "to": {"service": self.service, "ports": self.ports}}
        head = yaml.safe_dump({"apiVersion": "netgen.dev/v1alpha1", "kind": "Grant",
                               "metadata": {"name": self.name}, "spec": spec},
                              sort_keys=False, width=1_000, allow_unicode=True)
        tail = "".join(f"  {key}: {_flow_style(value)}\n" for key, value in flow.items())
        return head + tail


def _flow_style(value: dict) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000).strip()


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)


def _reason(sources: list[str]) -> str:
    parts = sorted({_clean(s) for s in sources}, key=lambda s: (s.startswith("flow logs"), s))
    text = "imported from " + "; ".join(parts)
    n = len(parts)
    while len(text) > REASON_LIMIT and n > 1:
        n -= 1
        text = "imported from " + "; ".join(parts[:n]) + f"; and {len(parts) - n} more"
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 3] + "..."


def _grant_name(wanted: str, taken: set[str]) -> str:
    name = re.sub("-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", wanted.lower())).strip("-")[:63].strip("-")
    base, n = name, 2
    while name in taken:
        suffix = f"-{n}"
        name = base[:63 - len(suffix)].rstrip("-") + suffix
        n += 1
    taken.add(name)
    return name


def grants_of(estate: Estate, proposals: Iterable[Proposal]) -> list[ImportedGrant]:
    """Proposals as few grants as exactness allows: per service, the hosts that need the same ports; hosts
    that make up a whole host group are named by it, the rest one by one (a host group some of whose members are
    not in the hand rules would widen them)."""
    per_service: dict[int, dict[str, list[Proposal]]] = defaultdict(lambda: defaultdict(list))
    services: dict[int, Service] = {}
    for proposal in proposals:
        services[id(proposal.service)] = proposal.service
        per_service[id(proposal.service)][proposal.host.name].append(proposal)
    refs: dict[tuple[str, str], int] = defaultdict(int)
    for s in estate.services:
        refs[(s.namespace, s.name)] += 1
    taken = {g.name for g in estate.grants}
    groups = sorted(estate.host_groups, key=lambda g: (-len(g.hosts), g.name))
    found: list[ImportedGrant] = []
    for key, by_host in sorted(per_service.items(), key=lambda kv: services[kv[0]].ref):
        service = services[key]
        ref = f"{service.namespace}/{service.name}"
        if refs[(service.namespace, service.name)] > 1:
            ref = service.ref
        order = [p.name for p in service.ports]
        by_ports: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for host, proposals in by_host.items():
            ports = tuple(sorted({p.port.name for p in proposals}, key=order.index))
            by_ports[ports].append(host)
        for ports, hosts in sorted(by_ports.items()):
            remaining = set(hosts)
            legacies: list[tuple[str, str]] = []
            for group in groups:
                members = {h.name for h in group.hosts}
                if members and members <= remaining:
                    legacies.append(("hostGroup", group.name))
                    remaining -= members
            legacies.extend(("host", h) for h in sorted(remaining))
            for kind, name in legacies:
                members = ({h.name for g in estate.host_groups if g.name == name for h in g.hosts}
                           if kind == "hostGroup" else {name})
                sources: list[str] = []
                for host in sorted(members):
                    for proposal in by_host[host]:
                        for s in proposal.sources:
                            if s not in sources:
                                sources.append(s)
                found.append(ImportedGrant(_grant_name(f"imported-{name}-to-{service.name}", taken), (kind, name), ref,
                                           list(ports), _reason(sources)))
    return found


HEADER = """\
# Grants imported by `netgen import-grants` from what exists: {origin}.
# Each grant reproduces hand-made access between known endpoints; its reason names the rules (or flow-log
# records) it came from. owner: {owner} is a placeholder that passes validation so the estate builds: replace
# it with the team that answers for the access, then move the grant to that team's file.
"""


def render_file(grants: list[ImportedGrant], unmatched: list[Unmatched], origin: str) -> str:
    text = HEADER.format(origin=origin, owner=OWNER_PLACEHOLDER)
    text += "---\n".join(g.document() for g in grants) if grants else "# Nothing to import.\n"
    if unmatched:
        text += ("\n# Not imported: what matches no endpoint of the inventory, or whose endpoint cannot be told "
                 "from an\n# address. Each needs a grant written by hand, or removing.\n")
        for item in unmatched:
            text += f"#\n# - {_clean(item.what)}\n#   {_clean(item.why)}\n"
            if item.hint:
                text += f"#   grant to write: {_clean(item.hint)}\n"
    return text


# -- the whole import --------------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    grants: list[ImportedGrant]
    unmatched: list[Unmatched]
    text: str
    skipped: dict[str, int]  # category -> number of live rules not imported because of it
    imported_rules: int  # hand rules no grant covered before, covered by the imported grants
    flow_records: int = 0  # flow-log records that matched a service of a known host
    diagnostics: list = field(default_factory=list)  # what validating the result reported (warnings)


def import_grants(specs: Path, out: Path, as_of: date, live: list[RuleSpec] | None,
                  flow_logs: list[Path]) -> ImportResult:
    """Grants that reproduce the uncovered hand rules in `live` (None: read no rules) and the accepted flows of
    `flow_logs` between known endpoints, validated with the specs (without `out`'s current content, so that a
    rerun imports again rather than finding its own grants). Raises SpecError when the specs have errors."""
    from netgen.diagnostics import Reporter, SpecError
    from netgen.pipeline import resolve_specs

    with tempfile.TemporaryDirectory(prefix="netgen-import-") as work:
        copy = Path(work) / "specs"
        shutil.copytree(specs, copy, symlinks=False)
        placed = _placed(specs, out, copy)
        if placed.exists():
            placed.unlink()
        base = resolve_specs(copy, as_of, Reporter())
        estate = base.estate
        matcher = Matcher(estate)
        classified = classify_rules(estate, base.flows, live or [])
        skipped: dict[str, int] = defaultdict(int)
        hand = [c for c in classified if c.category == UNCOVERED]
        for c in classified:
            if c.category != UNCOVERED:
                skipped[c.category] += 1
        for c in hand:
            matcher.rule(c.rule)
        records = [r for path in flow_logs for r in read_flow_logs(path)]
        used, unmatched_flows = matcher.flow_logs(aggregate(records))
        grants = grants_of(estate, matcher.proposals.values())
        origin = " and ".join(filter(None, [
            "the live rules of the inventory's security groups" if live is not None else "",
            f"VPC Flow Logs ({', '.join(p.name for p in flow_logs)})" if flow_logs else ""]))
        dropped: list[Unmatched] = []
        diagnostics: list = []
        for _ in range(len(grants) + 1):  # grants that fail validation are dropped and listed
            placed.parent.mkdir(parents=True, exist_ok=True)
            placed.write_text(render_file(grants, [], origin), "utf-8")
            reporter = Reporter()
            try:
                after = resolve_specs(copy, as_of, reporter)
                diagnostics = reporter.sorted()
                break
            except SpecError as exc:
                bad = _failing(exc.diagnostics, placed, grants)
                if not bad:
                    raise
                for grant, message in bad:
                    dropped.append(Unmatched(f"grant {grant.name} ({grant.reason})", f"not valid: {message}"))
                    grants.remove(grant)
        coverage = Coverage(after.estate, after.flows)
        unmatched: list[Unmatched] = []
        imported = 0
        for c in hand:
            category, left = coverage.judge(c.rule)
            if category == COVERED:
                imported += 1
                continue
            text = rule_text(c.rule)
            why = "; ".join(dict.fromkeys(matcher.notes.get(text, [])))
            unmatched.append(Unmatched(f"{text}, {_group_name(estate, c.rule.group_id)}",
                                       f"{why}. Not covered: {left}" if why else f"not covered: {left}",
                                       matcher.hints.get(text, "")))
        for (source, destination, port), (count, why) in sorted(unmatched_flows.items()):
            unmatched.append(Unmatched(f"flow logs: {source} -> {destination} {port} ({count} accepted "
                                       f"record{'s' if count != 1 else ''})", why))
        unmatched.extend(dropped)
        text = render_file(grants, unmatched, origin)
    return ImportResult(grants, unmatched, text, dict(skipped), imported, used, diagnostics)


def _group_name(estate: Estate, group_id: str) -> str:
    return next((f"group {g.name}" for g in estate.security_groups if group_id in g.group_ids), "group ?")


def _placed(specs: Path, out: Path, copy: Path) -> Path:
    """Where `out` sits in the copy of the specs (outside them: a file of its own at the copy's root)."""
    try:
        return copy / out.resolve().relative_to(specs.resolve())
    except ValueError:
        return copy / "netgen-imported-grants.yaml"


def _failing(diagnostics: list, placed: Path, grants: list[ImportedGrant]) -> list[tuple[ImportedGrant, str]]:
    """The imported grants that errors point at (by the line their document starts on)."""
    starts: list[tuple[int, ImportedGrant]] = []
    line = HEADER.count("\n") + 1
    for grant in grants:
        starts.append((line, grant))
        line += grant.document().count("\n") + 1  # the document and its '---'
    found: dict[str, tuple[ImportedGrant, str]] = {}
    for d in diagnostics:
        if d.severity != "error" or Path(d.location.file).resolve() != placed.resolve():
            continue
        owner = None
        for start, grant in starts:
            if start <= d.location.line:
                owner = grant
        if owner is not None and owner.name not in found:
            found[owner.name] = (owner, f"{d.code}: {d.message}")
    return list(found.values())
