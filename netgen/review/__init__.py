"""Reviewer and engineer tools: `netgen diff`, `netgen explain`, `netgen graph`.

One module per command, split further by concern (diff_git, diff, diff_render; explain_parties, explain,
explain_render, explain_transit; graph, graph_svg), plus `owners` (who owns what a grant reaches) and
`provenance`, which maps every peering, route, security-group rule and NetworkPolicy back to the flows and
grants behind it. Everything here works from the resolved flows and the
existing compile functions; nothing re-implements a target.
"""

from __future__ import annotations


class UsageError(Exception):
    """A question netgen cannot answer as asked (not a git repository, a bad revision, an unknown name): exit 2."""
