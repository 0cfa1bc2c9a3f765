"""`netgen graph`: a picture of the estate as Mermaid, Graphviz dot, SVG (graph_svg.py) or JSON.

Accounts and regions hold VPCs; a VPC holds its legacy hosts (grouped the way grants name them: a host group,
or a single host) and its cluster, which holds services and workloads. Peerings (from the real AWS planner)
join VPCs; flows are aggregated into one edge per (host group or host, service or workload), labelled with
the ports. Only what flows use is drawn.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from netgen.diagnostics import Reporter
from netgen.flows import NetworkPath, gateways_text, scope_text
from netgen.model import Vpc
from netgen.pipeline import Resolved


def _id(prefix: str, *parts: str) -> str:
    return prefix + "_" + "_".join(re.sub(r"[^A-Za-z0-9]+", "_", p) for p in parts)


@dataclass
class Node:
    id: str
    kind: str  # hosts | service | workload
    label: str
    detail: str
    vpc: str
    cluster: str | None = None
    hosts: set[str] = field(default_factory=set)


@dataclass
class Edge:
    source: str
    target: str
    ports: set[str] = field(default_factory=set)
    grants: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return ", ".join(sorted(self.ports))


@dataclass(frozen=True)
class PeeringEdge:
    a: str
    b: str
    label: str
    existing: bool = False  # a connection netgen does not make: an existing peering (VpcPeering) or a gateway path
    transit: bool = False  # through transit gateways (existing too), drawn apart from peerings


@dataclass
class Column:
    vpc: Vpc
    legacy: list[Node]
    cluster: str | None
    kubernetes: list[Node]

    @property
    def id(self) -> str:
        return _id("vpc", self.vpc.name)

    @property
    def title(self) -> str:
        return f"VPC {self.vpc.name}"

    @property
    def detail(self) -> str:
        return f"{self.vpc.vpc_id} {', '.join(map(str, self.vpc.cidrs))}"


@dataclass
class EstateGraph:
    columns: list[Column]
    edges: list[Edge]
    peerings: list[PeeringEdge]

    def groups(self):
        """[(account label, [(region, [columns])])], in column order."""
        out: list[tuple[str, list[tuple[str, list[Column]]]]] = []
        for column in self.columns:
            account = f"account {column.vpc.account.name} ({column.vpc.account.account_id})"
            if not out or out[-1][0] != account:
                out.append((account, []))
            regions = out[-1][1]
            if not regions or regions[-1][0] != column.vpc.region:
                regions.append((column.vpc.region, []))
            regions[-1][1].append(column)
        return out


def build_graph(resolved: Resolved) -> EstateGraph:
    from netgen.targets.aws_network import plan_peerings_and_routes

    estate = resolved.estate
    grants = {g.name: g for g in estate.grants}
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str], Edge] = {}

    def legacy(vpc: str, ref: str) -> Node:
        kind, name = ref.split(" ", 1)
        node_id = _id("hosts", vpc, name)
        if node_id not in nodes:
            nodes[node_id] = Node(node_id, "hosts", name, "host group" if kind == "hostGroup" else "host", vpc)
        return nodes[node_id]

    def kube(kind: str, ref: str, cluster) -> Node:
        node_id = _id(kind, ref)
        if node_id not in nodes:
            nodes[node_id] = Node(node_id, kind, ref.split("/", 1)[1], kind, cluster.vpc.name, cluster.name)
        return nodes[node_id]

    for flow in resolved.flows:
        for end in (flow.source, flow.destination):
            if end.kind not in ("host", "hostGroup"):
                continue
            for ref in flow.grants:
                grant = grants[ref.name]
                members = {h.name for h in grant.hosts if h.vpc.name == end.vpc
                           and any(h.network.subnet_of(n) for n in end.addresses)}
                if not members:  # a hop relayed inside the cluster's VPC (NLB or node) with the hosts' addresses
                    continue
                group = legacy(end.vpc, grant.legacy_ref)
                group.hosts.update(members)
                if grant.service is not None:
                    target = kube("service", grant.service.ref, grant.service.cluster)
                    key = (group.id, target.id)
                    ports = {f"{sp.name} {sp.protocol.lower()}/{sp.port}" for sp in grant.service_ports}
                else:
                    assert grant.workload is not None
                    source = kube("workload", grant.workload.ref, grant.workload.cluster)
                    key = (source.id, group.id)
                    ports = {str(flow.ports)}
                edge = edges.setdefault(key, Edge(*key))
                edge.ports |= ports
                edge.grants.add(grant.name)
    for node in nodes.values():
        if node.kind == "hosts" and node.detail == "host group":
            node.detail = f"host group, {len(node.hosts)} host{'s' if len(node.hosts) != 1 else ''}"

    peerings, _ = plan_peerings_and_routes(estate, list(resolved.flows), Reporter())
    peering_edges = []
    for pair in sorted(peerings.values(), key=lambda p: p.logical_id):
        a, b = pair.requester, pair.accepter
        scope = scope_text(a.region != b.region, a.account.account_id != b.account.account_id)
        if pair.existing:
            peering_edges.append(PeeringEdge(_id("vpc", a.name), _id("vpc", b.name),
                                             f"existing peering {pair.connection_id} ({scope})", True))
        else:
            peering_edges.append(PeeringEdge(_id("vpc", a.name), _id("vpc", b.name), f"peering ({scope})"))
    through: dict[frozenset[str], NetworkPath] = {}  # pairs of VPCs joined through transit gateways
    for flow in resolved.flows:
        if flow.path.transit:
            through.setdefault(frozenset((flow.path.source_vpc, flow.path.destination_vpc)), flow.path)
    for pair, path in sorted(through.items(), key=lambda item: sorted(item[0])):
        a, b = sorted(pair)
        ids = path.transit if path.source_vpc == a else tuple(reversed(path.transit))
        label = f"{gateways_text(ids)} ({scope_text(path.cross_region, path.cross_account)})"
        peering_edges.append(PeeringEdge(_id("vpc", a), _id("vpc", b), label, True, True))

    clusters = {c.vpc.name: c.name for c in estate.clusters}
    columns = []
    for vpc in sorted(estate.vpcs, key=lambda v: (v.account.account_id, v.region, v.name)):
        mine = [n for n in nodes.values() if n.vpc == vpc.name]
        columns.append(Column(
            vpc,
            sorted((n for n in mine if n.kind == "hosts"), key=lambda n: n.label),
            clusters.get(vpc.name),
            sorted((n for n in mine if n.kind != "hosts"), key=lambda n: (n.kind != "service", n.label))))
    return EstateGraph(columns, sorted(edges.values(), key=lambda e: (e.source, e.target)), peering_edges)


# --- Mermaid -------------------------------------------------------------------------------------------------

def _mq(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: EstateGraph) -> str:
    out = ["flowchart LR"]
    for account_index, (account, regions) in enumerate(graph.groups()):
        out.append(f"  subgraph account_{account_index}[{_mq(account)}]")
        for region_index, (region, columns) in enumerate(regions):
            out.append(f"    subgraph region_{account_index}_{region_index}[{_mq(region)}]")
            for column in columns:
                out.append(f"      subgraph {column.id}_box[{_mq(column.title)}]")
                out.append(f"        {column.id}[({_mq(column.title + ' ' + column.detail)})]")
                for node in column.legacy:
                    out.append(f"        {node.id}[{_mq(node.label + ' (' + node.detail + ')')}]")
                if column.kubernetes:
                    out.append(f"        subgraph {_id('cluster', column.cluster or '')}"
                               f"[{_mq('cluster ' + str(column.cluster))}]")
                    for node in column.kubernetes:
                        shape = ("([", "])") if node.kind == "service" else ("[[", "]]")
                        out.append(f"          {node.id}{shape[0]}{_mq(node.kind + ' ' + node.label)}{shape[1]}")
                    out.append("        end")
                out.append("      end")
            out.append("    end")
        out.append("  end")
    for p in graph.peerings:  # netgen's own dotted, existing ones (VpcPeering) thick, through gateways both ways
        link = "<==>" if p.transit else "===" if p.existing else "-.-"
        out.append(f"  {p.a} {link}|{_mq(p.label)}| {p.b}")
    for e in graph.edges:
        out.append(f"  {e.source} -->|{_mq(e.label)}| {e.target}")
    out += ["  classDef hosts fill:#fff4d6,stroke:#b08900", "  classDef service fill:#dbeafe,stroke:#1d4ed8",
            "  classDef workload fill:#dcfce7,stroke:#15803d"]
    for kind in ("hosts", "service", "workload"):
        ids = [n.id for c in graph.columns for n in (*c.legacy, *c.kubernetes) if n.kind == kind]
        if ids:
            out.append(f"  class {','.join(ids)} {kind}")
    return "\n".join(out) + "\n"


# --- Graphviz dot --------------------------------------------------------------------------------------------

PEERING_COLOR = "#7c3aed"  # netgen's own peerings
EXISTING_COLOR = "#0f766e"  # peerings that exist outside netgen (VpcPeering)
EXISTING_DASH = "2,4"
TRANSIT_COLOR = "#c2410c"  # pairs joined through transit gateways
TRANSIT_DASH = "10,3,2,3"

def _dq(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: EstateGraph) -> str:
    out = ["digraph netgen {",
           '  graph [rankdir=LR, compound=true, fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=1.2];',
           '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=9];']
    fills = {"hosts": "#fff4d6", "service": "#dbeafe", "workload": "#dcfce7"}
    for account_index, (account, regions) in enumerate(graph.groups()):
        out.append(f"  subgraph cluster_account_{account_index} {{")
        out.append(f'    label={_dq(account)}; style="rounded"; color="#64748b";')
        for region_index, (region, columns) in enumerate(regions):
            out.append(f"    subgraph cluster_region_{account_index}_{region_index} {{")
            out.append(f'      label={_dq(region)}; style="rounded,dashed"; color="#94a3b8";')
            for column in columns:
                out.append(f"      subgraph cluster_{column.id} {{")
                out.append(f'        label={_dq(column.title)}; style="rounded,filled"; fillcolor="#f8fafc";')
                out.append(f'        {column.id} [label={_dq(column.title + chr(10) + column.detail)}, '
                           f'shape=box3d, fillcolor="#e2e8f0"];')
                for node in column.legacy:
                    out.append(f"        {node.id} [label={_dq(node.label + chr(10) + node.detail)}, "
                               f'fillcolor="{fills[node.kind]}", tooltip={_dq(", ".join(sorted(node.hosts)))}];')
                if column.kubernetes:
                    out.append(f"        subgraph cluster_{_id('cluster', column.cluster or '')} {{")
                    out.append(f'          label={_dq("cluster " + str(column.cluster))}; style="rounded,filled";'
                               ' fillcolor="#eef2ff";')
                    for node in column.kubernetes:
                        out.append(f"          {node.id} [label={_dq(node.kind + chr(10) + node.label)}, "
                                   f'fillcolor="{fills[node.kind]}"];')
                    out.append("        }")
                out.append("      }")
            out.append("    }")
        out.append("  }")
    for p in graph.peerings:
        style, color = (("bold", TRANSIT_COLOR) if p.transit else ("dotted", EXISTING_COLOR) if p.existing
                        else ("dashed", PEERING_COLOR))
        out.append(f'  {p.a} -> {p.b} [dir=both, style={style}, penwidth=2, color="{color}", '
                   f"label={_dq(p.label)}];")
    for e in graph.edges:
        out.append(f"  {e.source} -> {e.target} [label={_dq(e.label)}, "
                   f"tooltip={_dq('grants: ' + ', '.join(sorted(e.grants)))}];")
    out.append("}")
    return "\n".join(out) + "\n"


# --- JSON ----------------------------------------------------------------------------------------------------

def to_json(graph: EstateGraph) -> str:
    """The graph as data: VPCs (account, region, cluster, the nodes in them), flow edges and peerings."""
    def node(n: Node) -> dict:
        return {"id": n.id, "kind": n.kind, "label": n.label, "detail": n.detail, "hosts": sorted(n.hosts)}

    data = {"vpcs": [{"id": c.id, "name": c.vpc.name, "vpcId": c.vpc.vpc_id, "account": c.vpc.account.name,
                      "accountId": c.vpc.account.account_id, "region": c.vpc.region,
                      "cidrs": [str(n) for n in c.vpc.cidrs], "cluster": c.cluster,
                      "legacy": [node(n) for n in c.legacy], "kubernetes": [node(n) for n in c.kubernetes]}
                     for c in graph.columns],
            "edges": [{"source": e.source, "target": e.target, "ports": sorted(e.ports), "grants": sorted(e.grants)}
                      for e in graph.edges],
            "peerings": [{"a": p.a, "b": p.b, "label": p.label, "existing": p.existing, "transit": p.transit}
                         for p in graph.peerings]}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def to_svg(graph: EstateGraph) -> str:
    from netgen.review.graph_svg import svg

    return svg(graph)


RENDERERS = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg, "json": to_json}


def render(resolved: Resolved, fmt: str) -> str:
    return RENDERERS[fmt](build_graph(resolved))

