"""Validate stage: well-formed documents -> the immutable Estate model, with every semantic check reported.

Documents are built kind by kind, in reference order. A document that failed the schema is remembered by
name, so references to it do not cause a cascade of 'unknown reference' errors; so are the names that text
which failed to load seems to define (Reporter.unloaded_names).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, timedelta
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError

from netgen.addresses import network
from netgen.diagnostics import Location, Reporter, did_you_mean
from netgen.document import Document
from netgen.model import (
    DEFAULT_STACK_QUOTA,
    Account,
    Cluster,
    Estate,
    ExistingPeering,
    Exposure,
    Grant,
    Host,
    HostGroup,
    NamespaceModes,
    PortRange,
    SecurityGroup,
    Service,
    ServicePort,
    Settings,
    Vpc,
    Workload,
)
from netgen.schema import check_document

_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


class _Broken:
    """Placeholder for a document that exists but failed the schema: references to it stay quiet."""


BROKEN = _Broken()


class EstateBuilder:
    """Builds the estate kind by kind, in reference order: inventory(), then grants(), which takes grant
    documents in file order (all at once, or file by file as they load: see netgen.pipeline)."""

    def __init__(self, docs: list[Document], reporter: Reporter, as_of: date):
        self.r = reporter
        self.as_of = as_of
        self.by_kind: dict[str, list[Document]] = defaultdict(list)
        self.broken: dict[str, set[str]] = defaultdict(set)
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
                    self.broken[str(doc.data.get("kind"))].add(name)
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
        if name not in self.broken[kind] and name not in self.r.unloaded_names:  # (that set only grows)
            self.unless_unloaded.append((name, doc.at(path), "NG104",
                                         f"unknown {kind} '{name}'{did_you_mean(name, table)}"))
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
        if vpc is BROKEN:
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
            if value in seen:
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
                if group_id in seen:
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

    def clusters(self) -> None:
        for doc, name in self.named("Cluster"):
            s = doc.data["spec"]
            vpc = self.ref(doc, ("spec", "vpc"), "Vpc", s["vpc"])
            pods = self.cidrs(doc, ("spec", "podCidrs"), s["podCidrs"])
            nodes = self.cidrs(doc, ("spec", "nodeSubnetCidrs"), s["nodeSubnetCidrs"])
            self.inside(doc, ("spec", "podCidrs"), pods, vpc, "pod CIDR")
            self.inside(doc, ("spec", "nodeSubnetCidrs"), nodes, vpc, "node subnet")
            group = self.ref(doc, ("spec", "securityGroup"), "SecurityGroup", s["securityGroup"])
            self.same_vpc(doc, ("spec", "securityGroup"), group, vpc)
            snat = s.get("sourceNat", {})
            excluded = self.cidrs(doc, ("spec", "sourceNat", "excludedCidrs"), snat.get("excludedCidrs", []))
            if BROKEN in (vpc, group):
                self.broken["Cluster"].add(name)
                continue
            namespaces = {ns: NamespaceModes(m["ingress"], m["egress"]) for ns, m in s["namespaces"].items()}
            self.tables["Cluster"][name] = Cluster(name, vpc, pods, nodes, group, snat.get("enabled", True),
                                                   excluded, namespaces, doc.at())

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
            self.tables["LegacyHost"][name] = Host(name, vpc, address, group, labels, doc.at())

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
            self.tables["HostGroup"][name] = HostGroup(name, hosts, doc.at())

    def _pod_owner(self, doc: Document):
        """Cluster of a Service or Workload, after checking its namespace is declared there."""
        s = doc.data["spec"]
        cluster = self.ref(doc, ("spec", "cluster"), "Cluster", s["cluster"])
        namespace = doc.data["metadata"]["namespace"]
        if cluster is not BROKEN and namespace not in cluster.namespaces:
            self.r.add(doc.at(("metadata", "namespace")), "NG114",
                       f"namespace '{namespace}' is not declared on cluster '{cluster.name}'"
                       f"{did_you_mean(namespace, cluster.namespaces)}")
            return BROKEN
        return cluster

    def _register_namespaced(self, kind: str, obj) -> None:
        by_short = self.tables[kind].setdefault(f"{obj.namespace}/{obj.name}", [])
        by_short.append(obj)
        self.tables[kind][obj.ref] = [obj]

    def services(self) -> None:
        for doc, name in self.named("Service"):
            s = doc.data["spec"]
            cluster = self._pod_owner(doc)
            exp = s["exposure"]
            ports = []
            for i, p in enumerate(s["ports"]):
                node_port = p.get("nodePort")
                if exp["type"] == "node-port" and node_port is None:
                    self.r.add(doc.at(("spec", "ports", i)), "NG117",
                               f"port '{p['name']}' needs a nodePort: the service is exposed as node-port")
                if exp["type"] != "node-port" and node_port is not None:
                    self.r.add(doc.at(("spec", "ports", i, "nodePort")), "NG117",
                               f"nodePort is set but the exposure is {exp['type']}")
                ports.append(ServicePort(p["name"], p["port"], p.get("targetPort", p["port"]), node_port,
                                         p.get("protocol", "TCP")))
            seen_ports: dict[tuple, str] = {}
            for i, port in enumerate(ports):
                for key, field, what in (((port.name,), "name", f"port name '{port.name}'"),
                                         ((port.port, port.protocol), "port", f"port {port.port}/{port.protocol}"),
                                         ((port.node_port,), "nodePort", f"nodePort {port.node_port}")):
                    if key == (None,):
                        continue
                    key = (field, *key)
                    if key in seen_ports:
                        self.r.add(doc.at(("spec", "ports", i, field)), "NG101",
                                   f"{what} repeats (port '{seen_ports[key]}' has it)")
                    seen_ports.setdefault(key, port.name)
            exposure = Exposure(exp["type"])
            lb_group = None
            if exp["type"] == "load-balancer":
                subnets = self.cidrs(doc, ("spec", "exposure", "subnetCidrs"), exp["subnetCidrs"])
                if cluster is not BROKEN:
                    self.inside(doc, ("spec", "exposure", "subnetCidrs"), subnets, cluster.vpc, "NLB subnet")
                if "securityGroup" in exp:
                    lb_group = self.ref(doc, ("spec", "exposure", "securityGroup"), "SecurityGroup",
                                        exp["securityGroup"])
                    if cluster is not BROKEN:
                        self.same_vpc(doc, ("spec", "exposure", "securityGroup"), lb_group, cluster.vpc)
                exposure = Exposure("load-balancer", subnets, exp.get("preserveClientIp", False),
                                    None if lb_group is BROKEN else lb_group)
            elif exp["type"] == "node-port":
                exposure = Exposure("node-port", external_traffic_policy=exp.get("externalTrafficPolicy",
                                                                                 "Cluster"))
            if BROKEN in (cluster, lb_group):
                self.broken["Service"].add(f"{doc.data['metadata']['namespace']}/{name}")
                continue
            selector = tuple(sorted(s["podSelector"].items()))
            self._register_namespaced("Service", Service(name, doc.data["metadata"]["namespace"], cluster,
                                                         selector, tuple(ports), exposure, doc.at()))

    def workloads(self) -> None:
        for doc, name in self.named("Workload"):
            cluster = self._pod_owner(doc)
            if cluster is BROKEN:
                self.broken["Workload"].add(f"{doc.data['metadata']['namespace']}/{name}")
                continue
            selector = tuple(sorted(doc.data["spec"]["podSelector"].items()))
            self._register_namespaced("Workload", Workload(name, doc.data["metadata"]["namespace"], cluster,
                                                           selector, doc.at()))

    def namespaced_ref(self, doc: Document, path: tuple, kind: str, text: str):
        candidates = self.tables[kind].get(text)
        if candidates is None:
            short = text.split("/", 1)[1] if text.count("/") == 2 else text
            if (short not in self.broken[kind] and text not in self.broken[kind]
                    and text.rsplit("/", 1)[-1] not in self.r.unloaded_names):
                known = [k for k in self.tables[kind]]
                self.unless_unloaded.append((text.rsplit("/", 1)[-1], doc.at(path), "NG104",
                                             f"unknown {kind} '{text}'{did_you_mean(text, known)}"))
            return BROKEN
        if len(candidates) > 1:
            options = ", ".join(sorted(c.ref for c in candidates))
            self.r.add(doc.at(path), "NG105", f"{kind} '{text}' exists in several clusters; write one of {options}")
            return BROKEN
        return candidates[0]

    def port_ranges(self, doc: Document, path: tuple, items: list) -> tuple[PortRange, ...] | None:
        """The distinct port ranges of items, or None when any item is invalid (reported)."""
        ranges = []
        valid = True
        for i, item in enumerate(items):
            m = _PORT.fullmatch(str(item)) if not isinstance(item, bool) else None
            if m is None:
                self.r.add(doc.at((*path, i)), "NG108",
                           f"'{item}' is not a port: write 5432, \"8000-8010\" or \"514/udp\"")
                valid = False
                continue
            first = int(m.group(1))
            last = int(m.group(2) or first)
            if not (1 <= first <= last <= 65535):
                self.r.add(doc.at((*path, i)), "NG108",
                           f"'{item}': ports must be within 1-65535 and a range must run low-high")
                valid = False
                continue
            ranges.append(PortRange((m.group(3) or "tcp").upper(), first, last))
        return tuple(sorted(set(ranges))) if valid else None

    def grants(self, docs: list[Document] | None = None) -> list[Grant]:
        """The grants of grant documents (docs, admitted, or all of them), after inventory() and in file order:
        a grant that allows the same access as an earlier one is reported as its duplicate."""
        built = []
        for doc, name in self.named("Grant", docs):
            s = doc.data["spec"]
            src, dst = s["from"], s["to"]
            legacy_side = src if ("host" in src or "hostGroup" in src) else dst
            legacy_path = ("spec", "from") if legacy_side is src else ("spec", "to")
            k8s_side = dst if legacy_side is src else src
            k8s_key = "service" if legacy_side is src else "workload"
            if k8s_key not in k8s_side or ("host" not in legacy_side and "hostGroup" not in legacy_side):
                self.r.add(doc.at(("spec", "to")), "NG113",
                           "a grant goes from host/hostGroup to a service, or from a workload to host/hostGroup")
                continue
            if "host" in legacy_side and "hostGroup" in legacy_side:
                self.r.add(doc.at(legacy_path), "NG113", "name either host or hostGroup, not both")
                continue
            if k8s_key == "service" and ("host" in dst or "hostGroup" in dst):
                self.r.add(doc.at(("spec", "to")), "NG113", "name either a service or hosts in 'to', not both")
                continue
            hosts: tuple = BROKEN
            if "host" in legacy_side:
                host = self.ref(doc, (*legacy_path, "host"), "LegacyHost", legacy_side["host"])
                hosts = BROKEN if host is BROKEN else (host,)
                legacy_ref = f"host {legacy_side['host']}"
            else:
                group = self.ref(doc, (*legacy_path, "hostGroup"), "HostGroup", legacy_side["hostGroup"])
                hosts = BROKEN if group is BROKEN else group.hosts
                legacy_ref = f"hostGroup {legacy_side['hostGroup']}"
            expires = None
            if "expires" in s:
                try:
                    expires = date.fromisoformat(s["expires"])
                except ValueError:
                    self.r.add(doc.at(("spec", "expires")), "NG012", f"expires: '{s['expires']}' is not a date")
                    continue
                if expires < self.as_of:
                    self.r.add(doc.at(("spec", "expires")), "NG111",
                               f"grant '{name}' expired on {expires} (as of {self.as_of}); "
                               "renew it with a new date or delete it")
                elif expires - self.as_of <= timedelta(days=self.settings_.expiry_warning_days):
                    self.r.add(doc.at(("spec", "expires")), "NG120",
                               f"grant '{name}' expires on {expires}")
            service, service_ports, workload, host_ports = None, (), None, ()
            if k8s_key == "service":
                service = self.namespaced_ref(doc, ("spec", "to", "service"), "Service", dst["service"])
                if service is BROKEN:
                    continue
                by_name = self.ports_of.get(service)
                if by_name is None:
                    by_name = self.ports_of[service] = {p.name: p for p in service.ports}
                wanted = dst.get("ports", list(by_name))
                chosen: dict[str, ServicePort] = {}  # by name
                unknown = False
                for i, port in enumerate(wanted):
                    if port not in by_name:
                        self.r.add(doc.at(("spec", "to", "ports", i)), "NG109",
                                   f"service '{service.ref}' has no port '{port}'"
                                   f"{did_you_mean(str(port), by_name)}; ports: {', '.join(by_name)}")
                        unknown = True
                    else:
                        chosen[port] = by_name[port]
                if unknown:
                    continue
                service_ports = tuple([chosen[port_name] for port_name in sorted(chosen)])
            else:
                workload = self.namespaced_ref(doc, ("spec", "from", "workload"), "Workload", src["workload"])
                if "ports" not in dst:
                    self.r.add(doc.at(("spec", "to")), "NG108", "grants to legacy hosts must list ports")
                    continue
                host_ports = self.port_ranges(doc, ("spec", "to", "ports"), dst["ports"])
                if workload is BROKEN or host_ports is None:
                    continue
            if hosts is BROKEN:
                continue
            grant = Grant(name, s["owner"], s["reason"], expires, tuple(hosts), service, service_ports,
                          workload, host_ports, doc.at(), legacy_ref)
            # Services and workloads are one object per ref (they compare and hash by identity).
            key = (legacy_ref, service, tuple([p.name for p in service_ports]), workload, host_ports)
            first = self.seen_access.setdefault(key, grant)
            if first is not grant:
                self.r.add(doc.at(("metadata", "name")), "NG112",
                           f"grant '{name}' allows the same access as grant '{first.name}' ({first.loc})")
            self.tables["Grant"][name] = grant
            built.append(grant)
        return built

    def hosts_outside_kubernetes(self) -> None:
        """A legacy host may not sit in a cluster's pod, node or load-balancer ranges: rules and ipBlocks
        for it would admit whatever pod or node holds that address."""
        ranges: dict[str, list[tuple[IPv4Network, str]]] = defaultdict(list)
        for cluster in self.tables["Cluster"].values():
            ranges[cluster.vpc.name] += [(n, f"pod CIDR of cluster '{cluster.name}'") for n in cluster.pod_cidrs]
            ranges[cluster.vpc.name] += [(n, f"node subnet of cluster '{cluster.name}'")
                                         for n in cluster.node_cidrs]
        for key, services in self.tables["Service"].items():
            if key.count("/") == 2:
                service = services[0]
                ranges[service.cluster.vpc.name] += [(n, f"load-balancer subnet of service '{service.ref}'")
                                                     for n in service.exposure.subnet_cidrs]
        for name, host in self.tables["LegacyHost"].items():
            doc = self.host_docs[name]
            for net, what in ranges.get(host.vpc.name, ()):
                if host.address in net:
                    self.r.add(doc.at(("spec", "address")), "NG122",
                               f"host '{name}' address {host.address} lies in the {what} ({net})")
                    break

    def inventory(self) -> None:
        """Every kind but grants, in reference order."""
        self.settings_ = self.settings()
        self.accounts()
        self.vpcs(self.settings_)
        self.vpc_peerings()
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
                if not (name in unloaded if name is not None else unloaded)]

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
                      tuple(workloads), ordered("Grant"), ordered("VpcPeering"))


def build_estate(documents: list[Document], reporter: Reporter, as_of: date) -> Estate:
    """Check every document and build the estate from those that pass; all problems go to reporter."""
    builder = EstateBuilder(documents, reporter, as_of)
    builder.inventory()
    builder.grants()
    return builder.estate()
