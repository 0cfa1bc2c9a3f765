"""`netgen explain`, transit gateways: the lines of a hop whose path goes through transit gateways, both ways:
the routes to the gateway in each VPC, then each gateway route table the packets are routed by and what carries
them on from there (the attachment's propagated CIDRs, or netgen's static routes, in the network stack of the
gateway's owner account and region). netgen.review.provenance finds them (Carriers.gateway_there and _back).
"""

from __future__ import annotations

from collections.abc import Callable

from netgen.flows import Flow
from netgen.model import Estate
from netgen.review.provenance import Carriers


def gateway_lines(estate: Estate, stack_file: Callable[[str], str], flow: Flow, found: Carriers) -> list[str]:
    """stack_file(vpc name): the network stack file of a VPC, as explain names it."""
    from netgen.targets.aws_names import gateway_stack_of

    gateways = {g.name: g for g in estate.transit_gateways}
    lines = [f"    path: through transit gateway{'s' if len(flow.path.transit) > 1 else ''} "
             f"{' -> '.join(flow.path.transit)} (TransitGateway; netgen writes routes, never the gateway)"]
    for label, routes, vpc, hops, to in (
            ("there", found.routes_there, flow.path.source_vpc, found.gateway_there, flow.destination),
            ("back", found.routes_back, flow.path.destination_vpc, found.gateway_back, flow.source)):
        if routes:
            listed = ", ".join(f"{r.route_table} {r.prefix}" for r in routes)
            lines.append(f"    routes {label} ({vpc}, {stack_file(vpc)}): {listed} -> transit gateway "
                         f"{routes[0].gateway}")
        for hop in hops:
            where = f"    {label}: transit gateway {hop.gateway} route table {hop.route_table} -> {hop.attachment} "
            carried = [net for net in hop.propagated if any(net.overlaps(a) for a in to.addresses)]
            if hop.statics:
                stack = f"generated/{gateway_stack_of(gateways[hop.gateway]).path}"
                listed = ", ".join(str(r.prefix) for r in hop.statics)
                lines.append(f"{where}({hop.leads_to}): static {listed} in {stack}")
            elif carried:
                lines.append(f"{where}({hop.leads_to}): propagated {', '.join(map(str, carried))}")
            else:
                lines.append(f"{where}({hop.leads_to}): no route")
    return lines
