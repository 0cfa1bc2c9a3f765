"""moto and transit gateways: seeding an estate's gateways (seed_estate calls seed_transit_gateways) and making
moto answer a static route's attachment (faithful_transit_gateway_routes). netgen.transit lists what moto 5.2
implements of transit gateways and what it does not; docs/deploy.md the gaps that matter to a deploy.
"""

from __future__ import annotations

from typing import Any

from netgen.bench.moto import MotoCloud, Seeded


def faithful_transit_gateway_routes() -> None:
    """moto 5.2 stores a static transit gateway route's attachment as a mapping where AWS answers a list
    (TransitGatewayRoute.TransitGatewayAttachments), so SearchTransitGatewayRoutes answers an empty list and the
    route's target cannot be read. This stores it as the one-element list AWS answers: the data is moto's own,
    only its shape changes. Idempotent; applied in the server process (moto_process, the tests' moto_server)."""
    from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend

    if getattr(TransitGatewayRouteTableBackend, "netgen_faithful", False):
        return
    create = TransitGatewayRouteTableBackend.create_transit_gateway_route

    def create_route(self: Any, *args: Any, **kwargs: Any) -> Any:
        route = create(self, *args, **kwargs)
        if isinstance(route.get("transitGatewayAttachments"), dict):
            route["transitGatewayAttachments"] = [route["transitGatewayAttachments"]]
        return route

    TransitGatewayRouteTableBackend.create_transit_gateway_route = create_route  # type: ignore[method-assign]
    TransitGatewayRouteTableBackend.netgen_faithful = True  # type: ignore[attr-defined]



def seed_transit_gateways(cloud: MotoCloud, estate: Any, seeded: Seeded) -> None:
    """The estate's transit gateways (in their owner's account and region; their first route table is moto's
    default one), VPC attachments (on one subnet of the VPC), associations, propagations, and peering
    attachments (requested by the requester, accepted in the accepter's account and region, associated on each
    side). moto associates a new VPC attachment with the gateway's default table and cannot disassociate what
    it associated by itself: associating it there again first lets it (this is moto-only code)."""
    ids = seeded.substitutions
    for gateway in getattr(estate, "transit_gateways", ()):
        ec2 = cloud.ec2(gateway.account.account_id, gateway.region)
        made = ec2.create_transit_gateway(Description=f"inventory gateway {gateway.name}", TagSpecifications=[
            {"ResourceType": "transit-gateway", "Tags": [{"Key": "Name", "Value": gateway.name}]}])["TransitGateway"]
        ids[gateway.gateway_id] = made["TransitGatewayId"]
        default = made["Options"]["AssociationDefaultRouteTableId"]
        ids[gateway.route_tables[0]] = default
        for table in gateway.route_tables[1:]:
            ids[table] = ec2.create_transit_gateway_route_table(TransitGatewayId=made["TransitGatewayId"])[
                "TransitGatewayRouteTable"]["TransitGatewayRouteTableId"]
        for attachment in gateway.attachments:
            vpc = seeded.vpcs[attachment.vpc.name]
            vpc_ec2 = cloud.ec2(vpc.account, vpc.region)
            subnet = next(iter(vpc.subnets.values()), (None, ""))[0] or vpc_ec2.create_subnet(
                VpcId=vpc.vpc_id, CidrBlock=str(next(attachment.vpc.cidrs[0].subnets(new_prefix=28))))["Subnet"][
                "SubnetId"]
            attachment_id = ec2.create_transit_gateway_vpc_attachment(
                TransitGatewayId=made["TransitGatewayId"], VpcId=vpc.vpc_id, SubnetIds=[subnet])[
                "TransitGatewayVpcAttachment"]["TransitGatewayAttachmentId"]
            ids[attachment.attachment_id] = attachment_id
            if ids[attachment.route_table] != default:
                for call, table in ((ec2.associate_transit_gateway_route_table, default),
                                    (ec2.disassociate_transit_gateway_route_table, default),
                                    (ec2.associate_transit_gateway_route_table, ids[attachment.route_table])):
                    call(TransitGatewayAttachmentId=attachment_id, TransitGatewayRouteTableId=table)
            for table in attachment.propagates_to:
                ec2.enable_transit_gateway_route_table_propagation(TransitGatewayAttachmentId=attachment_id,
                                                                  TransitGatewayRouteTableId=ids[table])
    for peering in getattr(estate, "gateway_peerings", ()):
        requester, accepter = peering.requester, peering.accepter
        ec2 = cloud.ec2(requester.account.account_id, requester.region)
        peer = cloud.ec2(accepter.account.account_id, accepter.region)
        attachment_id = ec2.create_transit_gateway_peering_attachment(
            TransitGatewayId=ids[requester.gateway_id], PeerTransitGatewayId=ids[accepter.gateway_id],
            PeerAccountId=accepter.account.account_id, PeerRegion=accepter.region)[
            "TransitGatewayPeeringAttachment"]["TransitGatewayAttachmentId"]
        peer.accept_transit_gateway_peering_attachment(TransitGatewayAttachmentId=attachment_id)
        ids[peering.attachment_id] = attachment_id
        for client, table in ((ec2, peering.route_tables[0]), (peer, peering.route_tables[1])):
            client.associate_transit_gateway_route_table(TransitGatewayAttachmentId=attachment_id,
                                                         TransitGatewayRouteTableId=ids[table])
