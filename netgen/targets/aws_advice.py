"""AWS target, advice (NG215, a warning): a VPC whose peerings near its quota, or the VPCs with the most peerings
once peerings join more VPCs than Settings.meshWarningVpcs, are told what attaching the VPC to a transit gateway
of its region would change, counted from the compiled plan.

A VPC warns when its peerings (netgen's and existing ones, as NG203 counts them) reach
Settings.peeringWarningPercent of its peeringQuota without passing it (past it, NG203 is the error), or when
peerings join more than Settings.meshWarningVpcs VPCs and it has the most peerings of them. One warning per VPC,
at its Vpc document.

What attaching it would change is what netgen would compile then: the VPC is given an attachment to each gateway
of its region in turn, and netgen.transit.PathChooser (Settings.pathPreference and VpcPath included) tells which
of its peers flows would then reach through gateways. Of the gateways, the one that takes over the most peerings
is named (among equals, the first by name). For those peers the warning counts the peerings netgen would no longer
request, the existing ones (VpcPeering) flows would no longer use (they count against the quota until deleted
outside netgen), and the routes over them in the VPC's route tables and back in the peers': through a gateway
netgen routes the same prefixes (netgen.targets.aws_transit), so each of those routes would name a gateway
instead of a peering. The static routes the gateways' route tables would need depend on the route table the new
attachment is associated with and where it propagates, which netgen cannot know before it is declared: the
warning does not count them. netgen's security-group rules name CIDRs on every path, so they do not change; the
warning says so where a peer would be reached across a gateway peering, which a group reference cannot cross.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network

from netgen.diagnostics import Reporter
from netgen.model import Estate, TgwAttachment, TransitGateway, Vpc
from netgen.transit import PathChooser

SHOWN_NAMES = 3  # peers named in a list before "and N more"


@dataclass
class Move:
    """What attaching one VPC to one gateway would do to the pairs its peerings join (peer VPC names)."""

    gateway: TransitGateway
    attached: bool  # the VPC is attached to it already
    dropped: list[str] = field(default_factory=list)  # netgen's peerings it would no longer request
    left: list[str] = field(default_factory=list)  # existing peerings flows would no longer use
    across: set[str] = field(default_factory=set)  # gateway peerings the moved pairs would cross
    unreached: list[str] = field(default_factory=list)  # attached to no gateway this one reaches
    by_path: list[str] = field(default_factory=list)  # a VpcPath says peering
    by_preference: list[str] = field(default_factory=list)  # Settings.pathPreference is peering
    unused: list[str] = field(default_factory=list)  # existing peerings no flow uses

    @property
    def moved(self) -> list[str]:
        return sorted(self.dropped + self.left)


def advise_transit(estate: Estate, peers_of: dict[str, set[str]],
                   routes: dict[tuple[str, str], tuple[IPv4Network, ...]], reporter: Reporter) -> None:
    """NG215 at each VPC whose peerings (peers_of: by VPC name, the peer VPCs, existing peerings included) near its
    quota, or that has the most of a mesh past Settings.meshWarningVpcs. routes: the peering routes of the plan,
    {(vpc, peer): prefixes}, written in every listed route table of vpc."""
    settings = estate.settings
    vpcs = {v.name: v for v in estate.vpcs}
    mesh = len(peers_of)
    # the busiest VPCs within their quota (those over it get NG203, and the mesh warning goes to the next ones)
    most = max((len(p) for n, p in peers_of.items() if len(p) <= vpcs[n].peering_quota), default=0)
    for name, peers in sorted(peers_of.items()):
        vpc, count = vpcs[name], len(peers)
        if count > vpc.peering_quota:
            continue  # NG203
        why = []
        if count * 100 >= settings.peering_warning_percent * vpc.peering_quota:
            why.append(f"{count * 100 // vpc.peering_quota}% of its quota of {vpc.peering_quota} "
                       f"(Settings.peeringWarningPercent: {settings.peering_warning_percent})")
        if mesh > settings.mesh_warning_vpcs and count == most:
            why.append(f"the most of the {mesh} VPCs that peerings join (Settings.meshWarningVpcs: "
                       f"{settings.mesh_warning_vpcs})")
        if why:
            reporter.add(vpc.loc, "NG215", f"VPC '{name}' has {_count(count, 'peering')}, {', '.join(why)}; "
                                           f"{_advice(estate, vpc, sorted(peers), routes, vpcs)}")


def _advice(estate: Estate, vpc: Vpc, peers: list[str], routes, vpcs: dict[str, Vpc]) -> str:
    gateways = sorted((g for g in estate.transit_gateways if g.region == vpc.region), key=lambda g: g.name)
    if not gateways:
        return (f"no transit gateway is declared in {vpc.region} to attach it to (declare the one your network "
                "team runs, with its attachments: netgen discover writes them)")
    moves = [_move(estate, vpc, gateway, peers, routes) for gateway in gateways]
    move = max(moves, key=lambda m: len(m.moved))  # the first of the best, by gateway name
    gateway = move.gateway.name
    parts = []
    if move.dropped:
        parts.append(f"it would need {len(move.dropped)} fewer: netgen's {_plural(move.dropped, 'peering')} to "
                     f"{_names(move.dropped)} would go")
    if move.left:
        parts.append(f"it would stop routing over its existing {_plural(move.left, 'peering')} to "
                     f"{_names(move.left)} (VpcPeering: counted against the quota until deleted outside netgen)")
    if move.moved:
        mine = sum(len(routes.get((vpc.name, peer), ())) for peer in move.moved)
        theirs = sum(len(routes.get((peer, vpc.name), ())) * len(vpcs[peer].route_tables) for peer in move.moved)
        tables = len(vpc.route_tables)
        there = "that VPC" if len(move.moved) == 1 else f"those {len(move.moved)} VPCs"
        parts.append(f"its {_count(mine * tables, 'route')} to {there} ({_count(mine, 'prefix')} in each of its "
                     f"{_count(tables, 'route table')}) and the {theirs} back would name a transit gateway instead "
                     "of a peering, for the same prefixes (plus static routes in the gateways' route tables where "
                     "propagation does not carry them)")
    if move.across:
        parts.append(f"netgen's security-group rules stay as they are: they name CIDRs, and a group reference "
                     f"would not cross the gateway peering ({', '.join(sorted(move.across))})")
    stays = []
    if move.unreached:
        stays.append(f"to {_names(move.unreached)} (attached to no gateway '{gateway}' reaches)")
    if move.by_path:
        stays.append(f"to {_names(move.by_path)} (a VpcPath says peering)")
    if move.by_preference:
        stays.append(f"to {_names(move.by_preference)} (Settings.pathPreference: peering)")
    if move.unused:
        stays.append(f"to {_names(move.unused)} (existing, and no flow uses {_plural(move.unused, 'it', 'them')})")
    kept = len(move.unreached) + len(move.by_path) + len(move.by_preference) + len(move.unused)
    if stays:
        parts.append(f"{kept} {'stay' if move.attached else 'would stay'}: {', '.join(stays)}")
    head = (f"it is attached to transit gateway '{gateway}' already" if move.attached
            else f"attached to transit gateway '{gateway}'")
    return f"{head}, " + "; ".join(parts)


def _move(estate: Estate, vpc: Vpc, gateway: TransitGateway, peers: list[str], routes) -> Move:
    """What attaching vpc to gateway would do to its peerings, as PathChooser would choose then."""
    attached = any(a.vpc is vpc for a in gateway.attachments)
    gateways = estate.transit_gateways
    if not attached:  # the new attachment: its route table and propagation play no part in choosing paths
        new = replace(gateway, attachments=(*gateway.attachments,
                                            TgwAttachment(vpc, "", gateway.route_tables[0], (), vpc.loc)))
        gateways = tuple(new if g is gateway else g for g in gateways)
    chooser = PathChooser(estate.settings, estate.peerings, gateways, estate.gateway_peerings, estate.vpc_paths)
    existing = {p.pair for p in estate.peerings}
    move = Move(gateway, attached)
    for peer in peers:
        pair = frozenset((vpc.name, peer))
        flows = (vpc.name, peer) in routes  # flows use the peering
        through = chooser.through_gateway(vpc.name, peer)
        if pair in existing and not flows:
            move.unused.append(peer)
        elif through is not None:
            (move.left if pair in existing else move.dropped).append(peer)
            if through.peering is not None:
                move.across.add(through.peering.name)
        elif chooser.gateways_between(vpc.name, peer) is None:
            move.unreached.append(peer)
        elif pair in chooser.overrides:
            move.by_path.append(peer)
        else:
            move.by_preference.append(peer)
    return move


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("x") else f"{n} {noun}s"


def _plural(names: list[str], one: str, many: str = "") -> str:
    return one if len(names) == 1 else many or f"{one}s"


def _names(names: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c', 'a, b, c and 4 more'."""
    names = list(names)
    if len(names) > SHOWN_NAMES:
        return f"{', '.join(names[:SHOWN_NAMES])} and {len(names) - SHOWN_NAMES} more"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
