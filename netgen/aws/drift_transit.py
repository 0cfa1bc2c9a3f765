"""`netgen drift`, transit gateways: the static routes of the transit gateway route tables generated/ writes to
(AWS::EC2::TransitGatewayRoute), read in the gateway owner's account and region, each in the category drift.py
gives the routes of VPC route tables:

- a generated static route is `missing` when it is not live, `changed` when it goes to another attachment or is
  a blackhole; else `managed` when the deployed network stack holds it, `adopted` when it does not (deploy left
  an identical live one in place: netgen/aws/deploy/adopt_transit.py). What the stack holds is read from its
  deployed template (GetTemplate, drift.py);
- a static route the deployed stack holds and generated/ no longer has is `extra` (drift: deploy has not run
  since the build);
- every other static route of those tables is made by hand: `covered` when its destination lies within the
  generated static routes of that table to the same attachment, `uncovered` otherwise (a blackhole always). A
  report, not drift: `netgen drift --strict` fails on uncovered ones.

The tables read are those the stacks' generated and deployed templates write to. Propagated routes are the
gateway's and in no category. (Routes in VPC route tables to a gateway are drift.py's, like peering routes.)
SearchTransitGatewayRoutes answers at most 1,000 routes: a table with more static routes gets a note, and the
hand routes beyond are not named.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network
from typing import Any

from netgen.aws.coverage import ADOPTED, COVERED, MANAGED, UNCOVERED, ipv4, within
from netgen.aws.generated import StackPlan, gateway_routes_of
from netgen.aws.session import Clients
from netgen.aws.transit_routes import attachment_of, is_route, routes_at, static_routes


def gateway_route_drift(stacks: list[StackPlan], deployed: dict[str, dict], clients: Clients, counts: dict[str, int],
                        drift: Any, notes: list[str]) -> list:
    """Drift entries (drift: the Drift class) for the static routes of the gateway route tables the stacks write
    to. deployed: {stack name: the template it was deployed from}; counts (the report's route counts) gets every
    route's category, notes what could not be read whole."""
    found = []
    for stack in stacks:
        wanted = {(r.table, r.cidr): r for r in gateway_routes_of(stack.template)}
        held = {(r.table, r.cidr): r for r in gateway_routes_of(deployed.get(stack.name, {}))}
        if not wanted and not held:
            continue
        ec2 = clients.ec2(*stack.place)
        for table in sorted({t for t, _ in wanted} | {t for t, _ in held}):
            where = f"transit gateway route table {table}"
            mine = [r for (t, _), r in sorted(wanted.items()) if t == table]
            live = {cidr: routes[0] for cidr, routes in routes_at(ec2, table, [r.cidr for r in mine]).items()}
            for route in mine:
                have = live.get(route.cidr)
                if have is None:
                    found.append(drift("route", "missing", where, f"{route.cidr} -> {route.attachment}"))
                elif not is_route(have, route):
                    target = "blackhole" if have.get("State") == "blackhole" else attachment_of(have)
                    found.append(drift("route", "changed", where, f"{route.cidr} -> {target} "
                                                                  f"({have.get('State', '?')}), generated: "
                                                                  f"{route.attachment}"))
                elif (table, route.cidr) in held:
                    counts[MANAGED] += 1
                else:
                    counts[ADOPTED] += 1
                    found.append(drift("route", "adopted", where, f"{route.cidr} -> {route.attachment}: identical "
                                                                  "to a generated route, held by no netgen stack",
                                                                  ADOPTED))
            by_attachment: dict[str, list[IPv4Network]] = defaultdict(list)
            for route in mine:
                by_attachment[route.attachment].append(IPv4Network(route.cidr))
            every, more = static_routes(ec2, table)
            if more:
                notes.append(f"{where} has more than the 1,000 static routes SearchTransitGatewayRoutes answers: "
                             "the hand-made ones beyond are not listed")
            for have in sorted(every, key=lambda r: r["DestinationCidrBlock"]):
                cidr = have["DestinationCidrBlock"]
                if (table, cidr) in wanted:
                    continue
                attachment = attachment_of(have)
                if (table, cidr) in held and is_route(have, held[(table, cidr)]):
                    counts[MANAGED] += 1
                    found.append(drift("route", "extra", where, f"{cidr} -> {held[(table, cidr)].attachment}"))
                    continue
                net = ipv4(cidr)
                covered = (have.get("State") != "blackhole" and net is not None and attachment is not None
                           and within(net, by_attachment.get(attachment, [])))
                if have.get("State") == "blackhole":
                    detail = f"{cidr} -> blackhole: drops what it matches"
                elif covered:
                    detail = f"{cidr} -> {attachment}: within the generated routes of this table to that attachment"
                else:
                    detail = (f"{cidr} -> {attachment or '?'}: no generated route of this table goes there through "
                              "that attachment")
                category = COVERED if covered else UNCOVERED
                counts[category] += 1
                found.append(drift("route", "hand", where, detail, category))
    return found
