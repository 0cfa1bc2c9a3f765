"""Validate stage: well-formed documents -> the immutable Estate model, with every semantic check reported.

Documents are built kind by kind, in reference order. A document that failed the schema is remembered by
name, so references to it do not cause a cascade of 'unknown reference' errors; so are the names that text
which failed to load seems to define (Reporter.unloaded_names).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError

from netgen.addresses import network
from netgen.diagnostics import Location, Reporter, did_you_mean
from netgen.document import Document
from netgen.hints import unknown_host_group
from netgen.model import (
    DEFAULT_STACK_QUOTA,
    Account,
    Estate,
    ExistingPeering,
    Grant,
    Host,
    HostGroup,
    SecurityGroup,
    Service,
    ServicePort,
    Settings,
    Vpc,
)
from netgen.schema import check_document, kinds
from netgen.validate_common import BROKEN
from netgen.validate_grants import GrantKinds
from netgen.validate_kubernetes import KubernetesKinds
from netgen.validate_transit import TransitKinds
from netgen.yamlload import ANY_NAME


def same_name(a: Document, b: Document) -> bool:
    """Whether two documents have the same name (and namespace): one written twice, which named() reports."""
    return (a.data["metadata"]["name"], a.data["metadata"].get("namespace")) == \
        (b.data["metadata"]["name"], b.data["metadata"].get("namespace"))


class EstateBuilder(KubernetesKinds, GrantKinds, TransitKinds):
    """Builds the estate kind by kind, in reference order: inventory(), then grants(), which takes grant
    documents in file order (all at once, or file by file as they load: see netgen.pipeline)."""

    def __init__(self, docs: list[Document], reporter: Reporter, as_of: date):
        self.r = reporter
        self.as_of = as_of
        self.by_kind: dict[str, list[Document]] = defaultdict(list)
        self.broken: dict[str, set[str]] = defaultdict(set)
        self.wrong_cidrs: set[str] = set()  # VPCs with a CIDR reported wrong: nothing is judged outside them
        self.nameless: set[str] = set()  # kinds of documents that failed their checks without a name (see admit)
        self.admit(docs)
        self.tables: dict[str, dict[str, object]] = defaultdict(dict)
        self.host_docs: dict[str, Document] = {}
        self.seen: dict[str, dict[str, Location]] = defaultdict(dict)  # per kind: each name so far, where first
        self.seen_access: dict[tuple, Grant] = {}  # the access each grant so far allows: its first grant
        # Problems that a name in reporter.unloaded_names explains (None: any name), decided in estate(), when
        # every file is loaded: grants may be validated before the last file is (see netgen.pipeline).
        self.unless_unloaded: list[tuple[str | None, Location, str, str]] = []
        self.ports_of: dict[Service, dict[str, ServicePort]] = {}  # a service's ports by name (hash by id)

    def admit(self, docs: list[Document], keep: bool = True) -> list[Document]:
        """Sort docs by kind (with keep; else the caller gives them to grants() itself); those that failed the
        schema are remembered by name. Returns the docs admitted."""
        admitted = []
        for doc in docs:
            if doc.shape_ok if doc.shape_ok is not None else check_document(doc, self.r):
                if keep:
                    self.by_kind[doc.data["kind"]].append(doc)
                admitted.append(doc)
            else:
                meta = doc.data.get("metadata", {}) if isinstance(doc.data.get("metadata"), dict) else {}
                if isinstance(meta.get("name"), str):
                    name = meta["name"]
                    if isinstance(meta.get("namespace"), str):  # Service and Workload: referenced as ns/name
                        name = f"{meta['namespace']}/{name}"
                    kind = doc.data.get("kind")
                    for meant in [kind] if kind in kinds() else kinds():  # a misspelled kind: whichever was meant
                        self.broken[meant].add(name)
                else:  # no name to read: an unknown name of its kind may be its, and is not reported
                    self.nameless.update([doc.data.get("kind")] if doc.data.get("kind") in kinds() else kinds())
        return admitted

    # ---- helpers -------------------------------------------------------------------------------------------
    def named(self, kind: str, docs: list[Document] | None = None) -> list[tuple[Document, str]]:
        """Documents of a kind (docs, or all of them) whose names are unique among all named so far; duplicates
        are reported and dropped."""
        seen = self.seen[kind]
        result = []
        for doc in self.by_kind[kind] if docs is None else docs:
            meta = doc.data["metadata"]
            key = f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]
            scope = doc.data["spec"].get("cluster", "") if kind in ("Service", "Workload") else ""
            full = f"{scope}/{key}" if scope else key
            if full in seen:
                self.r.add(doc.at(("metadata", "name")), "NG101", f"{kind} '{key}' is already defined at {seen[full]}")
                continue
            seen[full] = doc.at(("metadata", "name"))
            result.append((doc, meta["name"]))
        return result

    def ref(self, doc: Document, path: tuple, kind: str, name: str):
        table = self.tables[kind]
        if name in table:
            return table[name]
        if name not in self.broken[kind] and kind not in self.nameless and name not in self.r.unloaded_names:
            message = (unknown_host_group(name, table, self.tables["LegacyHost"].values()) if kind == "HostGroup"
                       else f"unknown {kind} '{name}'{did_you_mean(name, table)}")
            self.unless_unloaded.append((name, doc.at(path), "NG104", message))
        return BROKEN

    def cidr(self, doc: Document, path: tuple, text: str) -> IPv4Network | None:
        try:
            return IPv4Network(text)
        except (AddressValueError, NetmaskValueError, ValueError) as exc:
            hint = ""
            try:
                hint = f" (did you mean '{IPv4Network(text, strict=False)}'?)"
            except ValueError:
                pass
            reason = "host bits are set" if hint else str(exc)
            self.r.add(doc.at(path), "NG103", f"'{text}' is not a canonical IPv4 CIDR: {reason}{hint}")
            return None

    def cidrs(self, doc: Document, path: tuple, texts: list[str]) -> tuple[IPv4Network, ...]:
        nets = [self.cidr(doc, (*path, i), t) for i, t in enumerate(texts)]
        return tuple(n for n in nets if n is not None)

    def inside(self, doc: Document, path: tuple, nets, vpc, what: str) -> None:
        if vpc is BROKEN or vpc.name in self.wrong_cidrs:
            return
        for i, net in enumerate(nets):
            if not vpc.contains(net):
                self.r.add(doc.at((*path, i)), "NG106",
                           f"{what} {net} is outside VPC '{vpc.name}' ({', '.join(map(str, vpc.cidrs))})")

    def same_vpc(self, doc: Document, path: tuple, group, vpc) -> None:
        if group is not BROKEN and vpc is not BROKEN and group.vpc is not vpc:
            self.r.add(doc.at(path), "NG118",
                       f"security group '{group.name}' is in VPC '{group.vpc.name}', not '{vpc.name}'")

    def unique_ids(self, kind: str, field_name: str, label: str) -> None:
        seen: dict[str, Document] = {}
        for doc in self.by_kind[kind]:
            value = doc.data["spec"][field_name]
            if value in seen and not same_name(doc, seen[value]):  # (a document written twice is NG101 once)
                self.r.add(doc.at(("spec", field_name)), "NG101",
                           f"{label} {value} is already used at {seen[value].at(('spec', field_name))}")
            else:
                seen[value] = doc

    # ---- kinds ---------------------------------------------------------------------------------------------
    def settings(self) -> Settings:
        docs = self.by_kind["Settings"]
        for extra in docs[1:]:
            self.r.add(extra.at(), "NG119", f"only one Settings document is allowed; first at {docs[0].at()}")
        if not docs:
            return Settings()
        spec = docs[0].data["spec"]
        base = Settings()
        return Settings(
            broadest_prefix=spec.get("broadestPrefix", base.broadest_prefix),
            expiry_warning_days=spec.get("expiryWarningDays", base.expiry_warning_days),
            default_rule_quota=spec.get("defaultRuleQuota", base.default_rule_quota),
            default_route_quota=spec.get("defaultRouteQuota", base.default_route_quota),
            max_collateral_addresses=spec.get("maxCollateralAddresses"),
            path_preference=spec.get("pathPreference", base.path_preference),
            peering_warning_percent=spec.get("peeringWarningPercent", base.peering_warning_percent),
            mesh_warning_vpcs=spec.get("meshWarningVpcs", base.mesh_warning_vpcs),
        )

    def accounts(self) -> None:
        self.unique_ids("Account", "accountId", "account id")
        for doc, name in self.named("Account"):
            s = doc.data["spec"]
            role_account = s["peeringAcceptRoleArn"].split(":")[4]
            if role_account != s["accountId"]:
                self.r.add(doc.at(("spec", "peeringAcceptRoleArn")), "NG014",
                           f"peeringAcceptRoleArn is a role in account {role_account}, not in this account "
                           f"({s['accountId']}); peering acceptance would fail to stabilize")
            self.tables["Account"][name] = Account(name, s["accountId"], s["peeringAcceptRoleArn"],
                                                   s.get("profile"), doc.at(),
                                                   s.get("stackQuota", DEFAULT_STACK_QUOTA))

    def vpcs(self, settings: Settings) -> None:
        self.unique_ids("Vpc", "vpcId", "VPC id")
        tables: dict[str, Document] = {}
        for doc, name in self.named("Vpc"):
            s = doc.data["spec"]
            for i, table in enumerate(s["routeTables"]):
                if table in tables and tables[table] is not doc:
                    self.r.add(doc.at(("spec", "routeTables", i)), "NG101",
                               f"route table {table} is already listed at {tables[table].at(('metadata', 'name'))}")
                tables.setdefault(table, doc)
            account = self.ref(doc, ("spec", "account"), "Account", s["account"])
            cidrs = self.cidrs(doc, ("spec", "cidrs"), s["cidrs"])
            if len(cidrs) < len(s["cidrs"]):
                self.wrong_cidrs.add(name)
            for i, a in enumerate(cidrs):
                for b in cidrs[i + 1:]:
                    if a.overlaps(b):
                        self.r.add(doc.at(("spec", "cidrs")), "NG116", f"VPC CIDRs {a} and {b} overlap")
            if account is BROKEN:
                self.broken["Vpc"].add(name)
                continue
            self.tables["Vpc"][name] = Vpc(
                name, account, s["region"], s["vpcId"], cidrs, tuple(s["routeTables"]),
                s.get("routeQuota", settings.default_route_quota), s.get("peeringQuota", 50),
                s.get("routeScope", "exact"), doc.at())

    def vpc_peerings(self) -> None:
        """VpcPeering: peerings that exist outside netgen, one per pair of VPCs, between VPCs that can peer."""
        ids: dict[str, Document] = {}
        pairs: dict[frozenset[str], Document] = {}
        for doc, name in self.named("VpcPeering"):
            s = doc.data["spec"]
            connection = s["connectionId"]
            if connection in ids:
                self.r.add(doc.at(("spec", "connectionId")), "NG101", f"peering connection {connection} is "
                           f"already declared at {ids[connection].at(('spec', 'connectionId'))}")
                continue
            ids[connection] = doc
            requester = self.ref(doc, ("spec", "requesterVpc"), "Vpc", s["requesterVpc"])
            accepter = self.ref(doc, ("spec", "accepterVpc"), "Vpc", s["accepterVpc"])
            if s["requesterVpc"] == s["accepterVpc"]:
                self.r.add(doc.at(("spec", "accepterVpc")), "NG101", f"requesterVpc and accepterVpc both name "
                           f"'{s['accepterVpc']}': a peering joins two different VPCs")
                continue
            if BROKEN in (requester, accepter):
                continue
            pair = frozenset((requester.name, accepter.name))
            if pair in pairs:
                self.r.add(doc.at(("spec", "requesterVpc")), "NG101",
                           f"VPCs '{requester.name}' and '{accepter.name}' already have a peering declared at "
                           f"{pairs[pair].at(('metadata', 'name'))}; AWS allows one active peering per pair")
                continue
            pairs[pair] = doc
            overlaps = [f"{x} ~ {y}" for x in requester.cidrs for y in accepter.cidrs if x.overlaps(y)]
            if overlaps:
                self.r.add(doc.at(("spec", "accepterVpc")), "NG107",
                           f"VPCs '{requester.name}' and '{accepter.name}' have overlapping CIDRs "
                           f"({', '.join(overlaps)}): AWS cannot peer them, so {connection} cannot join them")
                continue
            self.tables["VpcPeering"][name] = ExistingPeering(name, requester, accepter, connection, doc.at())

    def security_groups(self, settings: Settings) -> None:
        self.unique_ids("SecurityGroup", "groupId", "security group id")
        seen = {doc.data["spec"]["groupId"]: doc for doc in self.by_kind["SecurityGroup"]}
        for doc in self.by_kind["SecurityGroup"]:
            for i, group_id in enumerate(doc.data["spec"].get("overflowGroupIds", [])):
                if group_id in seen and not same_name(doc, seen[group_id]):
                    self.r.add(doc.at(("spec", "overflowGroupIds", i)), "NG101",
                               f"security group id {group_id} is already used at "
                               f"{seen[group_id].at(('metadata', 'name'))}")
                seen.setdefault(group_id, doc)
        for doc, name in self.named("SecurityGroup"):
            s = doc.data["spec"]
            vpc = self.ref(doc, ("spec", "vpc"), "Vpc", s["vpc"])
            if vpc is BROKEN:
                self.broken["SecurityGroup"].add(name)
                continue
            self.tables["SecurityGroup"][name] = SecurityGroup(
                name, vpc, s["groupId"], s.get("restrictsEgress", False),
                s.get("ruleQuota", settings.default_rule_quota), doc.at(), tuple(s.get("overflowGroupIds", ())))

    def hosts(self) -> None:
        seen_addr: dict[tuple[str, IPv4Address], Document] = {}
        for doc, name in self.named("LegacyHost"):
            s = doc.data["spec"]
            vpc = self.ref(doc, ("spec", "vpc"), "Vpc", s["vpc"])
            group = self.ref(doc, ("spec", "securityGroup"), "SecurityGroup", s["securityGroup"])
            self.same_vpc(doc, ("spec", "securityGroup"), group, vpc)
            try:
                address = IPv4Address(s["address"])
            except (AddressValueError, ValueError):
                self.r.add(doc.at(("spec", "address")), "NG103", f"'{s['address']}' is not an IPv4 address")
                address = None
            if address is not None and vpc is not BROKEN:
                self.inside(doc, ("spec", "address"), [network(int(address), 32)], vpc, "address")
                key = (vpc.name, address)
                if key in seen_addr:
                    self.r.add(doc.at(("spec", "address")), "NG101",
                               f"address {address} is already used at {seen_addr[key].at(('spec', 'address'))}")
                seen_addr[key] = doc
            if address is None or BROKEN in (vpc, group):
                self.broken["LegacyHost"].add(name)
                continue
            labels = tuple(sorted(doc.data["metadata"].get("labels", {}).items()))
            self.host_docs[name] = doc
            self.tables["LegacyHost"][name] = Host(name, vpc, address, group, labels, doc.at(), s.get("owner"))

    def host_groups(self) -> None:
        by_label: dict[tuple[str, str], set[str]] = defaultdict(set)  # selectors are intersections of these
        for host in self.tables["LegacyHost"].values():
            for label in host.labels:
                by_label[label].add(host.name)
        for doc, name in self.named("HostGroup"):
            s = doc.data["spec"]
            members: dict[str, Host] = {}
            broken = False
            for i, member in enumerate(s.get("members", [])):
                host = self.ref(doc, ("spec", "members", i), "LegacyHost", member)
                if host is BROKEN:
                    broken = True
                else:
                    members[host.name] = host
            wanted = s.get("selector", {}).get("matchLabels", {})
            if wanted:
                matched = set.intersection(*(by_label.get(label, set()) for label in wanted.items()))
                for host_name in matched:
                    members[host_name] = self.tables["LegacyHost"][host_name]
            # A host that failed validation (or to load) might have matched the selector: stay quiet rather
            # than cascade.
            if not members and not broken and not (wanted and (self.broken["LegacyHost"] or self.r.unloaded_names)):
                problem = (doc.at(("spec",)), "NG115", f"host group '{name}' matches no host")
                if wanted:
                    self.unless_unloaded.append((None, *problem))
                else:
                    self.r.add(*problem)
            if broken or not members:
                self.broken["HostGroup"].add(name)
                continue
            hosts = tuple(members[n] for n in sorted(members))
            self.tables["HostGroup"][name] = HostGroup(name, hosts, doc.at(), s.get("owner"))

    def inventory(self) -> None:
        """Every kind but grants, in reference order."""
        self.settings_ = self.settings()
        self.accounts()
        self.vpcs(self.settings_)
        self.vpc_peerings()
        self.transit_gateways()
        self.transit_gateway_peerings()
        self.vpc_paths()
        self.security_groups(self.settings_)
        self.clusters()
        self.hosts()
        self.host_groups()
        self.services()
        self.hosts_outside_kubernetes()
        self.workloads()

    def unexplained(self) -> list[tuple[Location, str, str]]:
        """(location, code, message) of the problems kept for estate() that no name that failed to load, so
        far, explains."""
        unloaded = self.r.unloaded_names
        return [problem for name, *problem in self.unless_unloaded
                if not (name in unloaded or ANY_NAME in unloaded if name is not None else unloaded)]

    def estate(self) -> Estate:
        """The estate of everything validated; reports what no name that failed to load explains."""
        for problem in self.unexplained():
            self.r.add(*problem)
        self.unless_unloaded.clear()
        t = self.tables

        def ordered(kind):
            return tuple(sorted(t[kind].values(), key=lambda o: o.name))

        services = sorted({id(v[0]): v[0] for k, v in t["Service"].items() if k.count("/") == 2}.values(),
                          key=lambda s: s.ref)
        workloads = sorted({id(v[0]): v[0] for k, v in t["Workload"].items() if k.count("/") == 2}.values(),
                           key=lambda w: w.ref)
        return Estate(self.settings_, ordered("Account"), ordered("Vpc"), ordered("SecurityGroup"),
                      ordered("Cluster"), ordered("LegacyHost"), ordered("HostGroup"), tuple(services),
                      tuple(workloads), ordered("Grant"), ordered("VpcPeering"), ordered("TransitGateway"),
                      ordered("TransitGatewayPeering"), ordered("VpcPath"))


def build_estate(documents: list[Document], reporter: Reporter, as_of: date) -> Estate:
    """Check every document and build the estate from those that pass; all problems go to reporter."""
    builder = EstateBuilder(documents, reporter, as_of)
    builder.inventory()
    builder.grants()
    return builder.estate()
