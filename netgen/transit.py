"""Transit gateways: which pairs of VPCs reach each other through one, and by which gateways and attachments.

A pair of VPCs that exchanges traffic is joined through a transit gateway when both are attached to one (or to
two gateways that a TransitGatewayPeering joins), by VPC peering otherwise (a VpcPeering, or one netgen
requests). Settings.pathPreference (transit-gateway by default, or peering) chooses between the two when both
are possible, and a VpcPath document overrides that for one pair. One gateway is preferred to two peered ones;
among equals, the first by gateway name.

Facts relied on (AWS documentation; moto 5.2's source, .venv/lib/python3.11/site-packages/moto/ec2/models/
transit_gateway*.py, and what a moto server answers):

- Each VPC attachment is associated with exactly one gateway route table, and "that route table decides the
  next hop for the traffic coming from that resource attachment" (Transit gateways,
  docs.aws.amazon.com/vpc/latest/tgw/tgw-transit-gateways.html). An attachment may propagate its VPC's CIDRs to
  any number of route tables (Enable route propagation, .../tgw/enable-tgw-route-propagation.html).
- Overlapping CIDRs are not propagated: "If you attach a VPC with a CIDR range that overlaps the CIDR range of a
  VPC that is already attached, the new VPC CIDR range is not propagated" (CreateTransitGatewayVpcAttachment,
  EC2 API reference; AWS::EC2::TransitGatewayAttachment), and a gateway does not route between VPCs with
  identical or overlapping CIDRs (Amazon VPC attachments, .../tgw/tgw-vpc-attachments.html). So netgen counts
  on a propagated CIDR only when no other attachment propagating to the same table has an overlapping one, and
  writes a static route otherwise; a path through a gateway between overlapping VPCs is NG107.
- Longest prefix first; for the same prefix "static routes take precedence over propagated routes" (AWS re:Post
  knowledge center, transit-gateway-monitor-routes; CDK's TransitGatewayRoute). A static route for exactly the
  prefixes a flow needs therefore wins over whatever is propagated for a wider one.
- Peering attachments carry static routes only: "To route traffic between the transit gateways, add a static
  route to the transit gateway route table that points to the transit gateway peering attachment" (Transit
  gateway peering attachments, .../tgw/tgw-peering.html). Intra- and inter-region, same or other account.
- Quotas (Transit gateway quotas, .../tgw/transit-gateway-quotas.html): 5 gateways per account (adjustable); 20
  route tables per gateway (adjustable); 10,000 routes, dynamic and static combined, across all the route tables
  of one gateway (adjustable); 1 static route for a prefix to a single attachment; 5,000 attachments per gateway;
  5 gateways per VPC and one attachment per VPC per gateway; 50 peering attachments per gateway; 1 peering
  attachment between two gateways. netgen checks the combined routes at build time (NG213: TransitGateway.spec.
  routeQuota, default 10,000) and one attachment per VPC per gateway and one peering per pair of gateways when
  it validates (NG101).
- Security-group references across a gateway work inbound only, in one region, when enabled on the gateway and
  the attachment, and never across a gateway peering; netgen writes CIDR rules on every path anyway.
- Only the gateway's owner account sees and changes its route tables (re:Post, transit-gateway-monitor-routes):
  static routes (AWS::EC2::TransitGatewayRoute: TransitGatewayRouteTableId, DestinationCidrBlock,
  TransitGatewayAttachmentId; every property replaces the route) go in the owner's network stack, and routes in
  a VPC's route tables (AWS::EC2::Route with TransitGatewayId) in the VPC's, which works for a gateway shared
  with the VPC's account through AWS RAM.

moto 5.2 (what the tests' AWS can show; docs/deploy.md lists the gaps): transit gateways, route tables, VPC and
peering attachments (accepted in the peer region), associations, propagations and static routes exist;
SearchTransitGatewayRoutes returns static routes only (propagation is recorded, no propagated route appears) and
answers an empty TransitGatewayAttachments list for every route; an attachment reports its gateway's default
route table as its association even after AssociateTransitGatewayRouteTable; CloudFormation has no
AWS::EC2::TransitGatewayRoute (it skips the resource); a VPC route to a gateway of another account loses its
target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netgen.flows import NetworkPath
from netgen.model import Estate, ExistingPeering, Settings, TgwAttachment, TgwPeering, TransitGateway, VpcPath

DEFAULT_GATEWAY_ROUTE_QUOTA = 10_000  # routes across a gateway's route tables, static and propagated combined


@dataclass(frozen=True)
class GatewayPath:
    """How traffic from one VPC gets to another through transit gateways: the source VPC's attachment (and its
    gateway), the peering between the two gateways (None on one gateway), the destination VPC's attachment."""

    source_gateway: TransitGateway
    source: TgwAttachment
    peering: TgwPeering | None
    destination_gateway: TransitGateway
    destination: TgwAttachment

    @property
    def gateway_ids(self) -> tuple[str, ...]:
        if self.peering is None:
            return (self.source_gateway.gateway_id,)
        return (self.source_gateway.gateway_id, self.destination_gateway.gateway_id)

    def reversed(self) -> GatewayPath:
        return GatewayPath(self.destination_gateway, self.destination, self.peering, self.source_gateway, self.source)

    def hops(self) -> list[tuple[TransitGateway, str, str, str]]:
        """(gateway, route table, attachment the table must send to, what that attachment leads to) for each
        gateway route table a packet from source to destination is routed by, in order."""
        first, last = self.source_gateway, self.destination_gateway
        if self.peering is None:
            return [(first, self.source.route_table, self.destination.attachment_id, self.destination.vpc.name)]
        across = self.peering.attachment_id
        return [(first, self.source.route_table, across, f"transit gateway {last.name}"),
                (last, self.peering.table_on(last), self.destination.attachment_id, self.destination.vpc.name)]


class PathChooser:
    """Decides, per pair of VPCs, how flows between them travel: path(a, b) is a NetworkPath decorated with the
    peering that exists outside netgen (connection) or the transit gateways (transit) it takes."""

    def __init__(self, settings: Settings, peerings: tuple[ExistingPeering, ...] = (),
                 gateways: tuple[TransitGateway, ...] = (), gateway_peerings: tuple[TgwPeering, ...] = (),
                 vpc_paths: tuple[VpcPath, ...] = ()):
        self.prefer = settings.path_preference
        self.existing = {(a.name, b.name): p.connection_id for p in peerings
                         for a, b in ((p.requester, p.accepter), (p.accepter, p.requester))}
        self.attached: dict[str, list[tuple[TransitGateway, TgwAttachment]]] = {}
        for gateway in sorted(gateways, key=lambda g: g.name):
            for attachment in gateway.attachments:
                self.attached.setdefault(attachment.vpc.name, []).append((gateway, attachment))
        self.peered = {frozenset((p.requester.name, p.accepter.name)): p for p in gateway_peerings}
        self.overrides = {p.vpcs: p.via for p in vpc_paths}
        self.memo: dict[tuple[str, str], GatewayPath | None] = {}
        self.decorated: dict[NetworkPath, NetworkPath] = {}

    @classmethod
    def of(cls, estate: Estate) -> PathChooser:
        return cls(estate.settings, estate.peerings, estate.transit_gateways, estate.gateway_peerings,
                   estate.vpc_paths)

    def gateways_between(self, a: str, b: str) -> GatewayPath | None:
        """The transit gateway path from VPC a to VPC b, whether or not flows take it: one gateway both are
        attached to, else two peered gateways (first by gateway names), else None."""
        key = (a, b)
        if key not in self.memo:
            found = None
            ends_a, ends_b = self.attached.get(a, ()), self.attached.get(b, ())
            for ga, att_a in ends_a:
                for gb, att_b in ends_b:
                    if ga is gb:
                        found = GatewayPath(ga, att_a, None, gb, att_b)
                        break
                if found:
                    break
            if found is None:
                for ga, att_a in ends_a:
                    for gb, att_b in ends_b:
                        peering = self.peered.get(frozenset((ga.name, gb.name)))
                        if peering is not None and ga is not gb:
                            found = GatewayPath(ga, att_a, peering, gb, att_b)
                            break
                    if found:
                        break
            self.memo[key] = found
        return self.memo[key]

    def through_gateway(self, a: str, b: str) -> GatewayPath | None:
        """The gateway path flows between VPCs a and b take, or None when they take a peering."""
        via = self.overrides.get(frozenset((a, b)))
        if via == "peering" or (via is None and self.prefer == "peering"):
            return None
        return self.gateways_between(a, b)

    def __call__(self, path: NetworkPath) -> NetworkPath:
        """path (between two VPCs) as flows take it: through gateways, over an existing peering, or as it is
        (a peering netgen requests)."""
        found = self.decorated.get(path)
        if found is None:
            a, b = path.source_vpc, path.destination_vpc
            gateways = self.through_gateway(a, b)
            if gateways is not None:
                found = replace(path, transit=gateways.gateway_ids)
            elif (a, b) in self.existing:
                found = replace(path, connection=self.existing[(a, b)])
            else:
                found = path
            self.decorated[path] = found
        return found
