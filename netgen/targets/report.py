"""Flow report target: one sorted line per allowed flow. Reviewers read its diff first."""

from __future__ import annotations

from collections.abc import Iterable

from netgen.resolve import Flow

HEADER = ("# netgen flow report: one line per allowed flow, generated from specs/; do not edit.\n"
          "# source addresses -> destination addresses protocol/ports via network path [how] grant: name@spec\n")


def flow_report(flows: Iterable[Flow]) -> str:
    return HEADER + "".join(f"{flow.line()}\n" for flow in flows)


def flow_json(flow: Flow) -> dict:
    """One flow for `--format json`: the report's line and its parts."""
    return {"source": str(flow.source), "sourceAddresses": [str(a) for a in flow.source.addresses],
            "destination": str(flow.destination),
            "destinationAddresses": [str(a) for a in flow.destination.addresses],
            "protocol": flow.ports.protocol.lower(), "fromPort": flow.ports.first, "toPort": flow.ports.last,
            "path": str(flow.path), "note": flow.note, "line": flow.line(),
            "grants": [{"name": g.name, "owner": g.owner, "location": g.location} for g in flow.grants]}
