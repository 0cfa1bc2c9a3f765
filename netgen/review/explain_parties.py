"""`netgen explain`, the two ends of the question: a legacy host (by name or address), a service or a workload
([cluster/]namespace/name), found in the estate or refused with a UsageError that says what was meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address

from netgen.diagnostics import did_you_mean
from netgen.model import Estate, Host, Service, Workload
from netgen.review import UsageError


@dataclass(frozen=True)
class Party:
    kind: str  # host | service | workload
    obj: Host | Service | Workload

    @property
    def label(self) -> str:
        if isinstance(self.obj, Host):
            return f"host/{self.obj.name} ({self.obj.address})"
        return f"{self.kind}/{self.obj.ref}"


def _by_ref(items, text: str):
    if text.count("/") == 2:
        return [i for i in items if i.ref == text]
    return [i for i in items if f"{i.namespace}/{i.name}" == text]


def find_party(estate: Estate, text: str, role: str) -> Party:
    """A legacy host (name or address), a service or a workload ([cluster/]namespace/name)."""
    try:
        address = IPv4Address(text)
    except (AddressValueError, ValueError):
        address = None
    if address is not None:
        for host in estate.hosts:
            if host.address == address:
                return Party("host", host)
        raise UsageError(f"no legacy host has the address {text}")
    if "/" in text:
        if text.count("/") > 2:
            raise UsageError(f"'{text}' is not [cluster/]namespace/name")
        kinds = [("workload", estate.workloads), ("service", estate.services)]
        if role == "destination":
            kinds.reverse()
        for kind, items in kinds:
            found = _by_ref(items, text)
            if len(found) > 1:
                raise UsageError(f"'{text}' is ambiguous: qualify it with the cluster "
                                 f"({', '.join(sorted(i.ref for i in found))})")
            if found:
                return Party(kind, found[0])
        names = [i.ref for i in (*estate.services, *estate.workloads)]
        names += [f"{i.namespace}/{i.name}" for i in (*estate.services, *estate.workloads)]
        raise UsageError(f"unknown service or workload '{text}'{did_you_mean(text, names)}")
    for host in estate.hosts:
        if host.name == text:
            return Party("host", host)
    for group in estate.host_groups:
        if group.name == text:
            members = ", ".join(h.name for h in group.hosts)
            raise UsageError(f"'{text}' is a host group: ask about one of its hosts ({members})")
    raise UsageError(f"unknown legacy host '{text}'{did_you_mean(text, [h.name for h in estate.hosts])}")
