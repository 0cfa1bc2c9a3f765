"""`netgen diff`, the report: text for a terminal, markdown for a pull-request comment, json for tools."""

from __future__ import annotations

import json
from collections import defaultdict

from netgen.blast import admits_lines, admits_markdown
from netgen.resolve import Flow
from netgen.review.diff import DiffReport, GrantChange, grant_names
from netgen.review.owners import approval_json, approval_markdown, approval_text
from netgen.review.provenance import GatewayRouteFact, PeeringFact, PolicyFact, RouteFact, RuleFact
from netgen.targets.report import flow_json


def flow_text(flow: Flow) -> str:
    """A flow without its grants (they are shown as the heading it is grouped under)."""
    src = ",".join(map(str, flow.source.addresses))
    dst = ",".join(map(str, flow.destination.addresses))
    note = f" [{flow.note}]" if flow.note else ""
    return f"{flow.source} {src} -> {flow.destination} {dst} {flow.ports} via {flow.path}{note}"


def _flow_json(flow: Flow) -> dict:
    """The flow report's json of a flow (netgen.targets.report.flow_json), with the diff's text for its line."""
    data = {key: value for key, value in flow_json(flow).items() if key != "line"}
    return {**data, "text": flow_text(flow)}


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
    return ", ".join(f"{name} ({owner})" for name, owner in grant_names(flow.grants))


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
                  "reattributed": [{"flow": flow_text(a), "before": [list(x) for x in grant_names(b.grants)],
                                    "after": [list(x) for x in grant_names(a.grants)]}
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
