"""The validated estate: typed, immutable, references already resolved to objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network

from netgen.addresses import interval, network
from netgen.diagnostics import Location

API_VERSION = "netgen.dev/v1alpha1"
DEFAULT_STACK_QUOTA = 2000  # CloudFormation stacks per account and region, unless raised through Service Quotas


@dataclass(frozen=True)
class Settings:
    broadest_prefix: int = 16
    expiry_warning_days: int = 14
    default_rule_quota: int = 60
    default_route_quota: int = 50
    max_collateral_addresses: int | None = None  # NG124 (netgen.blast); None: no limit
    path_preference: str = "transit-gateway"  # transit-gateway | peering: see netgen.transit
    peering_warning_percent: int = 80  # NG215 when a VPC's peerings reach this share of its peering quota
    mesh_warning_vpcs: int = 30  # NG215 at the VPCs with the most peerings when peerings join more VPCs than this


@dataclass(frozen=True, eq=False)
class Account:
    name: str
    account_id: str
    accept_role_arn: str
    profile: str | None
    loc: Location
    stack_quota: int = DEFAULT_STACK_QUOTA  # in each region of the account (Account.spec.stackQuota)


@dataclass(frozen=True, eq=False)
class Vpc:
    name: str
    account: Account
    region: str
    vpc_id: str
    cidrs: tuple[IPv4Network, ...]
    route_tables: tuple[str, ...]
    route_quota: int
    peering_quota: int
    route_scope: str  # exact | vpc-cidrs
    loc: Location

    @cached_property
    def spans(self) -> tuple[tuple[int, int], ...]:
        """The CIDRs as inclusive integer ranges."""
        return tuple(map(interval, self.cidrs))

    def contains(self, net: IPv4Network) -> bool:
        first, last = interval(net)
        return any(a <= first and last <= b for a, b in self.spans)


@dataclass(frozen=True, eq=False)
class ExistingPeering:
    """A VPC peering that exists outside netgen (VpcPeering): routes use it, netgen never creates, changes or
    deletes it. requester and accepter are as AWS has them, maybe the other way round from netgen's choice."""

    name: str
    requester: Vpc
    accepter: Vpc
    connection_id: str
    loc: Location

    @property
    def pair(self) -> frozenset[str]:
        return frozenset((self.requester.name, self.accepter.name))


@dataclass(frozen=True, eq=False)
class TgwAttachment:
    """A VPC attachment of a transit gateway (TransitGateway.spec.attachments): traffic from the VPC is routed by
    the gateway route table the attachment is associated with; its VPC's CIDRs propagate to propagates_to."""

    vpc: Vpc
    attachment_id: str
    route_table: str
    propagates_to: tuple[str, ...]
    loc: Location


@dataclass(frozen=True, eq=False)
class TransitGateway:
    """A transit gateway that exists outside netgen (TransitGateway); netgen writes routes, never the gateway."""

    name: str
    account: Account  # the owner: static routes in its route tables are deployed in this account
    region: str
    gateway_id: str
    route_tables: tuple[str, ...]
    attachments: tuple[TgwAttachment, ...]
    route_quota: int  # routes across all its route tables, static and propagated (AWS default 10,000)
    loc: Location
    route_scope: str = "exact"  # netgen's static routes: to the flows' prefixes (exact) or the VPCs' CIDRs


@dataclass(frozen=True, eq=False)
class TgwPeering:
    """A peering attachment between two transit gateways (TransitGatewayPeering): static routes only."""

    name: str
    requester: TransitGateway
    accepter: TransitGateway
    attachment_id: str
    route_tables: tuple[str, str]  # the route table it is associated with on the requester, then the accepter
    loc: Location

    def table_on(self, gateway: TransitGateway) -> str:
        return self.route_tables[0] if gateway is self.requester else self.route_tables[1]


@dataclass(frozen=True, eq=False)
class VpcPath:
    """How one pair of VPCs reaches each other (VpcPath), overriding Settings.path_preference."""

    name: str
    vpcs: frozenset[str]
    via: str  # transit-gateway | peering
    loc: Location


@dataclass(frozen=True, eq=False)
class SecurityGroup:
    name: str
    vpc: Vpc
    group_id: str
    restricts_egress: bool
    rule_quota: int
    loc: Location
    overflow_group_ids: tuple[str, ...] = ()  # netgen-managed groups on the same interfaces, for rules over quota

    @property
    def group_ids(self) -> tuple[str, ...]:
        return (self.group_id, *self.overflow_group_ids)


@dataclass(frozen=True)
class NamespaceModes:
    """How NetworkPolicy is run in a namespace, per direction: 'default-deny' or 'open'."""

    ingress: str
    egress: str


@dataclass(frozen=True)
class Enforcer:
    """What enforces NetworkPolicy in a cluster (Cluster.spec.networkPolicy): netgen checks its policies against
    that enforcer's limits (netgen.targets.enforcers)."""

    type: str  # aws-vpc-cni (the Amazon VPC CNI's network policy agent) | cilium | calico
    version: tuple[int, int] | None = None  # (major, minor), when the cluster states it
    cidr_matches_nodes: bool = False  # cilium: policy-cidr-match-mode includes nodes


@dataclass(frozen=True, eq=False)
class Cluster:
    name: str
    vpc: Vpc
    pod_cidrs: tuple[IPv4Network, ...]
    node_cidrs: tuple[IPv4Network, ...]
    security_group: SecurityGroup
    snat_enabled: bool
    snat_excluded: tuple[IPv4Network, ...]
    namespaces: dict[str, NamespaceModes]
    loc: Location
    enforcer: Enforcer | None = None  # None: not stated, and no enforcer's limits are checked

    @cached_property
    def snat_edges(self) -> tuple[tuple[int, int], ...]:
        """The VPC's CIDRs and the SNAT exclusions, as inclusive integer ranges: pod traffic to an address
        within one of them keeps the pod's address."""
        return (*self.vpc.spans, *map(interval, self.snat_excluded))

    def snat_split(self, destination: IPv4Network) -> list[tuple[IPv4Network, bool]]:
        """destination cut into parts that SNAT treats alike (a collapsed prefix may straddle an excluded
        CIDR or the VPC's edge), each with whether the CNI rewrites pod traffic to that part to the node's
        primary address."""
        first, last = interval(destination)
        edges = self.snat_edges
        if not any(a <= last and first <= b and not (a <= first and last <= b) for a, b in edges):
            return [(destination, self.snat_enabled and not any(a <= first and last <= b for a, b in edges))]
        return [part for half in destination.subnets(prefixlen_diff=1) for part in self.snat_split(half)]


@dataclass(frozen=True, eq=False)
class Host:
    name: str
    vpc: Vpc
    address: IPv4Address
    security_group: SecurityGroup
    labels: tuple[tuple[str, str], ...]
    loc: Location
    owner: str | None = None  # the team that owns it (spec.owner); None: its host groups' owners answer for it

    @cached_property
    def network(self) -> IPv4Network:
        return network(int(self.address), 32)


@dataclass(frozen=True, eq=False)
class HostGroup:
    name: str
    hosts: tuple[Host, ...]
    loc: Location
    owner: str | None = None  # the team that owns the group (spec.owner)


@dataclass(frozen=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    node_port: int | None
    protocol: str


@dataclass(frozen=True)
class Exposure:
    """pod-ip, load-balancer (internal NLB, IP targets) or node-port."""

    type: str
    subnet_cidrs: tuple[IPv4Network, ...] = ()
    preserve_client_ip: bool = False
    security_group: SecurityGroup | None = None
    external_traffic_policy: str = "Cluster"
    health_check_port: int | None = None  # the NLB's health checks (TCP) go to this pod port; None: traffic-port


@dataclass(frozen=True, eq=False)
class Service:
    name: str
    namespace: str
    cluster: Cluster
    pod_selector: tuple[tuple[str, str], ...]
    ports: tuple[ServicePort, ...]
    exposure: Exposure
    loc: Location
    owner: str | None = None  # the team that owns the service (spec.owner)

    @property
    def ref(self) -> str:
        return f"{self.cluster.name}/{self.namespace}/{self.name}"


@dataclass(frozen=True, eq=False)
class Workload:
    name: str
    namespace: str
    cluster: Cluster
    pod_selector: tuple[tuple[str, str], ...]
    loc: Location

    @property
    def ref(self) -> str:
        return f"{self.cluster.name}/{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class PortRange:
    protocol: str  # TCP, UDP or SCTP
    first: int
    last: int

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """str(self), computed once: a port range is shared by many flows."""
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.protocol.lower()}/{ports}"


@dataclass(frozen=True, eq=False)
class Grant:
    """Either hosts -> service (service set) or workload -> hosts (workload set)."""

    name: str
    owner: str
    reason: str
    expires: date | None
    hosts: tuple[Host, ...]
    service: Service | None
    service_ports: tuple[ServicePort, ...]
    workload: Workload | None
    host_ports: tuple[PortRange, ...]
    loc: Location
    legacy_ref: str  # how the spec named the legacy side: "hostGroup billing" / "host db-01"


@dataclass(frozen=True)
class Estate:
    settings: Settings
    accounts: tuple[Account, ...] = ()
    vpcs: tuple[Vpc, ...] = ()
    security_groups: tuple[SecurityGroup, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    hosts: tuple[Host, ...] = ()
    host_groups: tuple[HostGroup, ...] = ()
    services: tuple[Service, ...] = ()
    workloads: tuple[Workload, ...] = ()
    grants: tuple[Grant, ...] = ()
    peerings: tuple[ExistingPeering, ...] = ()  # VpcPeering: peerings that exist outside netgen
    transit_gateways: tuple[TransitGateway, ...] = ()  # TransitGateway
    gateway_peerings: tuple[TgwPeering, ...] = ()  # TransitGatewayPeering
    vpc_paths: tuple[VpcPath, ...] = ()  # VpcPath: per-pair overrides of Settings.path_preference
