"""Flow report target: one sorted line per allowed flow. Reviewers read its diff first."""

from __future__ import annotations

from collections.abc import Iterable

from netgen.resolve import Flow

HEADER = ("# netgen flow report: one line per allowed flow, generated from specs/; do not edit.\n"
          "# source addresses -> destination addresses protocol/ports via network path [how] grant: name@spec\n")


def flow_report(flows: Iterable[Flow]) -> str:
    return HEADER + "".join(f"{flow.line()}\n" for flow in flows)
