"""SVG for `netgen graph --format svg`, in pure Python (no Graphviz needed): a layered layout with one column per
VPC, sorted by account and region, boxes stacked in each column, edges as curves between columns and peerings as
arcs below the columns."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from netgen.review.graph import (
    EXISTING_COLOR,
    EXISTING_DASH,
    PEERING_COLOR,
    TRANSIT_COLOR,
    TRANSIT_DASH,
    EstateGraph,
)

CHAR = 6.6  # average width of a character at font-size 11
NODE_H = 38
GAP_Y = 12
PAD = 14


@dataclass
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _text(x: float, y: float, text: str, size: int = 11, weight: str = "normal", anchor: str = "middle",
          fill: str = "#0f172a") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" text-anchor="{anchor}" '
            f'fill="{fill}">{escape(text)}</text>')


def _rect(box: _Box, fill: str, stroke: str, radius: int = 6, dash: str = "", title: str = "",
          opacity: float = 1.0) -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    extra += f' fill-opacity="{opacity}"' if opacity < 1 else ""
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="{radius}" '
            f'fill="{fill}" stroke="{stroke}"{extra}>{tip}</rect>')


def svg(graph: EstateGraph) -> str:
    fills = {"hosts": ("#fff4d6", "#b08900"), "service": ("#dbeafe", "#1d4ed8"),
             "workload": ("#dcfce7", "#15803d")}
    texts = [c.detail for c in graph.columns] + [c.title for c in graph.columns]
    texts += [n.label for c in graph.columns for n in (*c.legacy, *c.kubernetes)]
    width = max([220.0] + [len(t) * CHAR + 4 * PAD for t in texts])
    gap_x = 150.0
    top = 86.0  # account and region bands above the columns
    boxes: dict[str, _Box] = {}
    body: list[str] = []
    heights = []
    for column in graph.columns:
        h = PAD + NODE_H + GAP_Y + len(column.legacy) * (NODE_H + GAP_Y)
        if column.kubernetes:
            h += 24 + len(column.kubernetes) * (NODE_H + GAP_Y) + PAD
        heights.append(h + PAD)
    column_h = max(heights, default=100.0)
    for index, column in enumerate(graph.columns):
        x = 20 + index * (width + gap_x)
        vpc_box = _Box(x, top, width, column_h)
        boxes[column.id + "_box"] = vpc_box
        body.append(_rect(vpc_box, "#f8fafc", "#475569", 8, opacity=0.82))
        header = _Box(x + PAD, top + PAD, width - 2 * PAD, NODE_H)
        boxes[column.id] = header
        body.append(_rect(header, "#e2e8f0", "#334155", 4))
        body.append(_text(header.cx, header.y + 15, column.title, weight="bold"))
        body.append(_text(header.cx, header.y + 30, column.detail, size=9, fill="#334155"))
        y = header.y + NODE_H + GAP_Y
        for node in column.legacy:
            box = _Box(x + PAD, y, width - 2 * PAD, NODE_H)
            boxes[node.id] = box
            fill, stroke = fills[node.kind]
            body.append(_rect(box, fill, stroke, title=", ".join(sorted(node.hosts))))
            body.append(_text(box.cx, box.y + 16, node.label, weight="bold"))
            body.append(_text(box.cx, box.y + 30, node.detail, size=9, fill="#475569"))
            y += NODE_H + GAP_Y
        if column.kubernetes:
            inner = _Box(x + PAD / 2, y, width - PAD, 24 + len(column.kubernetes) * (NODE_H + GAP_Y))
            body.append(_rect(inner, "#eef2ff", "#6366f1", 6, dash="5,3", opacity=0.8))
            body.append(_text(inner.x + 8, inner.y + 15, f"cluster {column.cluster}", size=10, weight="bold",
                              anchor="start", fill="#3730a3"))
            y += 24
            for node in column.kubernetes:
                box = _Box(x + PAD, y, width - 2 * PAD, NODE_H)
                boxes[node.id] = box
                fill, stroke = fills[node.kind]
                body.append(_rect(box, fill, stroke, radius=16 if node.kind == "service" else 4))
                body.append(_text(box.cx, box.y + 16, node.label, weight="bold"))
                body.append(_text(box.cx, box.y + 30, node.kind, size=9, fill="#475569"))
                y += NODE_H + GAP_Y
    # account and region bands
    bands: list[str] = []
    for account, regions in graph.groups():
        first, last = regions[0][1][0], regions[-1][1][-1]
        a, b = boxes[first.id + "_box"], boxes[last.id + "_box"]
        bands.append(_rect(_Box(a.x - 8, 10, b.x + b.w - a.x + 16, top + column_h - 2), "none", "#64748b", 10))
        bands.append(_text(a.x, 28, account, size=12, weight="bold", anchor="start"))
        for region, columns in regions:
            ra, rb = boxes[columns[0].id + "_box"], boxes[columns[-1].id + "_box"]
            bands.append(_rect(_Box(ra.x - 4, 38, rb.x + rb.w - ra.x + 8, top + column_h - 32), "none", "#94a3b8",
                               8, dash="6,4"))
            bands.append(_text(ra.x + 4, 56, region, size=11, anchor="start", fill="#334155"))
    # peerings: arcs below the columns
    lines: list[str] = []  # drawn over the boxes
    under: list[str] = []  # flow curves, drawn under the boxes so that a long edge does not strike them out
    bottom = top + column_h + 8
    arcs_depth = 0.0
    for index, p in enumerate(graph.peerings):
        a, b = boxes[p.a + "_box"], boxes[p.b + "_box"]
        ax = a.cx - 30 + 12 * (index % 6)
        bx = b.cx - 30 + 12 * (index % 6)
        depth = 40 + abs(bx - ax) * 0.12 + 14 * (index % 4)
        arcs_depth = max(arcs_depth, depth)
        color, dash, ink = ((TRANSIT_COLOR, TRANSIT_DASH, TRANSIT_COLOR) if p.transit
                            else (EXISTING_COLOR, EXISTING_DASH, EXISTING_COLOR) if p.existing
                            else (PEERING_COLOR, "8,5", "#5b21b6"))
        lines.append(f'<path d="M{ax:.1f},{bottom - 8:.1f} C{ax:.1f},{bottom + depth:.1f} {bx:.1f},'
                     f'{bottom + depth:.1f} {bx:.1f},{bottom - 8:.1f}" fill="none" stroke="{color}" '
                     f'stroke-width="2.5" stroke-dasharray="{dash}"><title>{escape(p.label)}</title></path>')
        lines.append(_text((ax + bx) / 2, bottom + depth * 0.75 + 14, p.label, size=9, fill=ink))
    # flow edges: curves between columns
    for edge in graph.edges:
        s, t = boxes[edge.source], boxes[edge.target]
        if s.cx < t.cx:
            x1, x2 = s.x + s.w, t.x
        elif s.cx > t.cx:
            x1, x2 = s.x, t.x + t.w
        else:
            x1 = x2 = s.x + s.w
        y1, y2 = s.cy, t.cy
        bend = max(60.0, abs(x2 - x1) * 0.4)
        c1 = x1 + (bend if x1 <= x2 or x1 == x2 else -bend)
        c2 = x2 - (bend if x1 < x2 else -bend)
        grants = ", ".join(sorted(edge.grants))
        under.append(f'<path d="M{x1:.1f},{y1:.1f} C{c1:.1f},{y1:.1f} {c2:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
                     f'fill="none" stroke="#334155" stroke-width="1.3" opacity="0.8">'
                     f"<title>{escape(edge.label + ' (' + grants + ')')}</title></path>")
        # the ends again, over the boxes: where the edge leaves its source, and the arrow into its target
        d1 = 1 if c1 > x1 else -1
        d2 = 1 if c2 > x2 else -1
        lines.append(f'<path d="M{x1:.1f},{y1:.1f} h{16 * d1}" stroke="#334155" stroke-width="1.3"/>')
        lines.append(f'<path d="M{x2 + 16 * d2:.1f},{y2:.1f} H{x2:.1f}" stroke="#334155" stroke-width="1.3" '
                     'marker-end="url(#arrow)"/>')
        lines.append(f'<text x="{(x1 + x2) / 2:.1f}" y="{(y1 + y2) / 2 - 3:.1f}" font-size="9" '
                     f'text-anchor="middle" fill="#1e293b" stroke="#ffffff" stroke-width="3" '
                     f'paint-order="stroke">{escape(edge.label)}</text>')
    total_w = 40 + len(graph.columns) * width + max(0, len(graph.columns) - 1) * gap_x
    legend_y = bottom + arcs_depth + 30
    legend = []
    x = 20.0
    for label, (fill, stroke) in (("legacy hosts", fills["hosts"]), ("service", fills["service"]),
                                  ("workload", fills["workload"])):
        legend.append(_rect(_Box(x, legend_y, 14, 14), fill, stroke, 3))
        legend.append(_text(x + 20, legend_y + 11, label, size=10, anchor="start"))
        x += 40 + len(label) * CHAR
    legend.append(f'<path d="M{x:.1f},{legend_y + 7:.1f} h30" stroke="#7c3aed" stroke-width="2.5" '
                  'stroke-dasharray="8,5"/>')
    legend.append(_text(x + 36, legend_y + 11, "VPC peering", size=10, anchor="start"))
    x += 120
    for shown, color, dash, label, room in (
            (any(p.existing and not p.transit for p in graph.peerings), EXISTING_COLOR, EXISTING_DASH,
             "existing VPC peering (not netgen's)", 230),
            (any(p.transit for p in graph.peerings), TRANSIT_COLOR, TRANSIT_DASH,
             "through transit gateways (not netgen's)", 240)):
        if shown:
            legend.append(f'<path d="M{x:.1f},{legend_y + 7:.1f} h30" stroke="{color}" stroke-width="2.5" '
                          f'stroke-dasharray="{dash}"/>')
            legend.append(_text(x + 36, legend_y + 11, label, size=10, anchor="start"))
            x += room
    legend.append(f'<path d="M{x:.1f},{legend_y + 7:.1f} h30" stroke="#334155" stroke-width="1.3" '
                  'marker-end="url(#arrow)"/>')
    legend.append(_text(x + 36, legend_y + 11, "flows (who opens the connection -> who accepts it; ports)",
                        size=10, anchor="start"))
    total_h = legend_y + 30
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
            f'viewBox="0 0 {total_w:.0f} {total_h:.0f}" font-family="Helvetica, Arial, sans-serif">',
            "<title>netgen estate</title>",
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#334155"/></marker></defs>',
            '<rect width="100%" height="100%" fill="#ffffff"/>']
    return "\n".join(head + bands + under + body + lines + legend + ["</svg>"]) + "\n"
