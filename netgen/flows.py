"""What the resolve stage produces: flows, their endpoints and paths. Every output target and every judge reads
these; netgen.hops builds them from the estate, netgen.resolve merges and orders them.

A flow is one hop that packets take: from the addresses they carry at the source, to the addresses they are
sent to, on one protocol and port range, over a network path, with the grants that need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from ipaddress import IPv4Network

from netgen.addresses import interval
from netgen.model import PortRange


@dataclass(frozen=True, order=True)
class Pods:
    """Pods a NetworkPolicy selects."""

    cluster: str
    namespace: str
    selector: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Endpoint:
    kind: str  # host | hostGroup | service | load-balancer | nodes | workload
    name: str
    vpc: str
    addresses: tuple[IPv4Network, ...]  # what packets carry (as a source) or are sent to (as a destination)
    security_group: str | None  # the group guarding it, by name
    pods: Pods | None = None  # set when a NetworkPolicy can select it

    @cached_property
    def sort_key(self) -> tuple:
        pods = (self.pods.cluster, self.pods.namespace, self.pods.selector) if self.pods else ()
        return self.kind, self.name, self.vpc, self.addresses, self.security_group or "", pods

    def __lt__(self, other: Endpoint) -> bool:
        return self.sort_key < other.sort_key

    def __hash__(self) -> int:
        """Cached: endpoints key the flow merge, and hashing their addresses each time is costly. The cache is
        not a field, so dataclasses.replace() builds a fresh endpoint without it."""
        try:
            return self.__dict__["_hash"]
        except KeyError:
            value = hash((self.kind, self.name, self.vpc, self.addresses, self.security_group, self.pods))
            object.__setattr__(self, "_hash", value)
            return value

    @cached_property
    def intervals(self) -> tuple[tuple[int, int], ...]:
        """The addresses as inclusive integer ranges."""
        return tuple(map(interval, self.addresses))

    @cached_property
    def text(self) -> str:
        """The endpoint and its addresses as the flow report prints them; endpoints are shared by many flows."""
        return f"{self} {','.join(map(str, self.addresses))}"

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def scope_text(cross_region: bool, cross_account: bool) -> str:
    """Where a path or a peering goes, as reports name it: 'same-region' or 'cross-region', ', cross-account'."""
    return ("cross-region" if cross_region else "same-region") + (", cross-account" if cross_account else "")


def gateways_text(ids: tuple[str, ...]) -> str:
    """The transit gateways a path takes, in order, as reports name them."""
    return f"transit gateway {ids[0]}" if len(ids) == 1 else f"transit gateways {' -> '.join(ids)}"


@dataclass(frozen=True, order=True)
class NetworkPath:
    source_vpc: str
    destination_vpc: str
    cross_region: bool
    cross_account: bool
    connection: str = ""  # the id of the existing peering the path takes (VpcPeering); "" for netgen's own
    transit: tuple[str, ...] = ()  # the transit gateways it takes, by id, in order (netgen.transit); () if none

    @property
    def peered(self) -> bool:
        return self.source_vpc != self.destination_vpc

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """str(self), computed once: paths are shared by many flows."""
        if not self.peered:
            return f"{self.source_vpc} (same VPC)"
        scope = scope_text(self.cross_region, self.cross_account)
        if self.transit:
            return f"{self.source_vpc} -> {self.destination_vpc} ({gateways_text(self.transit)}, {scope})"
        if self.connection:
            return f"{self.source_vpc} -> {self.destination_vpc} (peering {self.connection}, existing, {scope})"
        return f"{self.source_vpc} -> {self.destination_vpc} (peering, {scope})"


@dataclass(frozen=True, order=True)
class GrantRef:
    name: str
    owner: str
    location: str


@dataclass(frozen=True)
class Flow:
    source: Endpoint
    destination: Endpoint
    ports: PortRange
    path: NetworkPath
    note: str
    grants: tuple[GrantRef, ...]

    def sort_key(self) -> tuple:
        return self.source.sort_key, self.destination.sort_key, self.ports, self.path, self.note, self.grants

    def __lt__(self, other: Flow) -> bool:
        return self.sort_key() < other.sort_key()

    def line(self) -> str:
        grants = " ".join([f"{g.name}@{g.location}" for g in self.grants])
        note = f" [{self.note}]" if self.note else ""
        return (f"{self.source.text} -> {self.destination.text} {self.ports.text} via {self.path.text}{note} "
                f"grant: {grants}")


