"""Validation of transit gateways (TransitGateway, TransitGatewayPeering) and of the per-pair path overrides
(VpcPath). A mixin of validate.EstateBuilder, whose helpers (ref, named, unique_ids, ...) it uses.

What AWS enforces and netgen checks here (see netgen.transit for the sources): a gateway and its VPC attachments
are in one region (NG126); one attachment per VPC per gateway, one peering attachment between two gateways
(NG101); an attachment's association, its propagations and a peering's association name route tables of their
gateway (NG125). A VpcPath through a transit gateway needs one that joins the pair (NG127).
"""

from __future__ import annotations

from netgen.document import Document
from netgen.model import TgwAttachment, TgwPeering, TransitGateway, VpcPath
from netgen.transit import DEFAULT_GATEWAY_ROUTE_QUOTA
from netgen.validate_common import BROKEN


class TransitKinds:
    """EstateBuilder's checks of TransitGateway, TransitGatewayPeering and VpcPath documents."""

    def _gateway_table(self, doc: Document, path: tuple, table: str, gateway: str, tables: tuple[str, ...]) -> bool:
        if table in tables:
            return True
        self.r.add(doc.at(path), "NG125", f"route table {table} is not a route table of transit gateway "
                                          f"'{gateway}' (its routeTables: {', '.join(tables)})")
        return False

    def transit_gateways(self) -> None:
        self.unique_ids("TransitGateway", "transitGatewayId", "transit gateway id")
        tables: dict[str, Document] = {}
        attachment_ids: dict[str, Document] = {}
        for doc, name in self.named("TransitGateway"):
            s = doc.data["spec"]
            ok = True
            for i, table in enumerate(s["routeTables"]):
                if table in tables and tables[table] is not doc:
                    self.r.add(doc.at(("spec", "routeTables", i)), "NG101", f"route table {table} is already "
                               f"listed at {tables[table].at(('metadata', 'name'))}")
                tables.setdefault(table, doc)
            account = self.ref(doc, ("spec", "account"), "Account", s["account"])
            owned = tuple(s["routeTables"])
            attachments: list[TgwAttachment] = []
            attached: dict[str, int] = {}
            for i, entry in enumerate(s["attachments"]):
                at = ("spec", "attachments", i)
                if entry["attachmentId"] in attachment_ids:
                    self.r.add(doc.at((*at, "attachmentId")), "NG101", f"attachment {entry['attachmentId']} is "
                               f"already declared at {attachment_ids[entry['attachmentId']].at(('metadata', 'name'))}")
                    ok = False
                attachment_ids.setdefault(entry["attachmentId"], doc)
                vpc = self.ref(doc, (*at, "vpc"), "Vpc", entry["vpc"])
                good = self._gateway_table(doc, (*at, "routeTable"), entry["routeTable"], name, owned)
                for j, table in enumerate(entry.get("propagatesTo", [])):
                    good = self._gateway_table(doc, (*at, "propagatesTo", j), table, name, owned) and good
                if entry["vpc"] in attached:
                    self.r.add(doc.at((*at, "vpc")), "NG101", f"VPC '{entry['vpc']}' is already attached to "
                               f"transit gateway '{name}' (attachments[{attached[entry['vpc']]}]); AWS allows one "
                               "attachment per VPC and gateway")
                    good = False
                attached.setdefault(entry["vpc"], i)
                if vpc is not BROKEN and vpc.region != s["region"]:
                    self.r.add(doc.at((*at, "vpc")), "NG126", f"VPC '{vpc.name}' is in {vpc.region}, transit gateway "
                               f"'{name}' in {s['region']}: a VPC attachment joins a gateway and a VPC of its region "
                               "(declare the VPC's own region's gateway, peered with this one)")
                    good = False
                if vpc is BROKEN or not good:
                    ok = False
                    continue
                attachments.append(TgwAttachment(vpc, entry["attachmentId"], entry["routeTable"],
                                                 tuple(entry.get("propagatesTo", ())), doc.at(at)))
            if account is BROKEN or not ok:
                self.broken["TransitGateway"].add(name)
                continue
            self.tables["TransitGateway"][name] = TransitGateway(
                name, account, s["region"], s["transitGatewayId"], owned, tuple(attachments),
                s.get("routeQuota", DEFAULT_GATEWAY_ROUTE_QUOTA), doc.at(), s.get("routeScope", "exact"))

    def transit_gateway_peerings(self) -> None:
        ids: dict[str, Document] = {}
        pairs: dict[frozenset[str], Document] = {}
        for doc, name in self.named("TransitGatewayPeering"):
            s = doc.data["spec"]
            attachment = s["attachmentId"]
            if attachment in ids:
                self.r.add(doc.at(("spec", "attachmentId")), "NG101", f"peering attachment {attachment} is already "
                           f"declared at {ids[attachment].at(('spec', 'attachmentId'))}")
                continue
            ids[attachment] = doc
            sides = []
            for side in ("requester", "accepter"):
                gateway = self.ref(doc, ("spec", side, "transitGateway"), "TransitGateway", s[side]["transitGateway"])
                if gateway is not BROKEN and not self._gateway_table(doc, ("spec", side, "routeTable"),
                                                                     s[side]["routeTable"], gateway.name,
                                                                     gateway.route_tables):
                    gateway = BROKEN
                sides.append(gateway)
            if s["requester"]["transitGateway"] == s["accepter"]["transitGateway"]:
                self.r.add(doc.at(("spec", "accepter", "transitGateway")), "NG101", "requester and accepter both "
                           f"name '{s['accepter']['transitGateway']}': a peering joins two different gateways")
                continue
            if BROKEN in sides:
                continue
            requester, accepter = sides
            pair = frozenset((requester.name, accepter.name))
            if pair in pairs:
                self.r.add(doc.at(("spec", "requester", "transitGateway")), "NG101",
                           f"transit gateways '{requester.name}' and '{accepter.name}' already have a peering "
                           f"declared at {pairs[pair].at(('metadata', 'name'))}; AWS allows one peering attachment "
                           "between two gateways")
                continue
            pairs[pair] = doc
            self.tables["TransitGatewayPeering"][name] = TgwPeering(
                name, requester, accepter, attachment, (s["requester"]["routeTable"], s["accepter"]["routeTable"]),
                doc.at())

    def vpc_paths(self) -> None:
        from netgen.transit import PathChooser  # (the gateways and peerings validated so far decide)

        gateways = tuple(self.tables["TransitGateway"].values())
        chooser = PathChooser(self.settings_, (), gateways, tuple(self.tables["TransitGatewayPeering"].values()))
        pairs: dict[frozenset[str], Document] = {}
        for doc, name in self.named("VpcPath"):
            s = doc.data["spec"]
            ends = [self.ref(doc, ("spec", "vpcs", i), "Vpc", vpc) for i, vpc in enumerate(s["vpcs"])]
            if s["vpcs"][0] == s["vpcs"][1]:
                self.r.add(doc.at(("spec", "vpcs", 1)), "NG101", f"vpcs names '{s['vpcs'][1]}' twice: a path joins "
                           "two different VPCs")
                continue
            if BROKEN in ends:
                continue
            pair = frozenset(s["vpcs"])
            if pair in pairs:
                self.r.add(doc.at(("spec", "vpcs")), "NG101", f"VPCs '{s['vpcs'][0]}' and '{s['vpcs'][1]}' already "
                           f"have a VpcPath at {pairs[pair].at(('metadata', 'name'))}")
                continue
            pairs[pair] = doc
            if s["via"] == "transit-gateway" and chooser.gateways_between(*s["vpcs"]) is None:
                if not self.broken["TransitGateway"] and not self.broken["TransitGatewayPeering"]:
                    attached = sorted(f"'{a.vpc.name}' to '{g.name}'" for g in gateways
                                      for a in g.attachments if a.vpc.name in s["vpcs"])
                    known = f" (attached: {', '.join(attached)})" if attached else " (neither is attached to one)"
                    self.r.add(doc.at(("spec", "via")), "NG127", f"no transit gateway joins VPCs '{s['vpcs'][0]}' "
                               f"and '{s['vpcs'][1]}'{known}: attach both to one gateway, or to two gateways a "
                               "TransitGatewayPeering joins")
                continue
            self.tables["VpcPath"][name] = VpcPath(name, pair, s["via"], doc.at())
