"""Messages that say what to write instead: a service port named by number, a namespace the cluster does not
declare, an unknown host group. Used by netgen.validate; each returns the text of one diagnostic."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable

from netgen.diagnostics import did_you_mean
from netgen.model import Cluster, Host, Service, ServicePort

_NUMBER = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
_FIELDS = (("port", "port"), ("target_port", "target port"), ("node_port", "node port"))
SHOWN_HOSTS = 5  # hosts named per label in a message; the rest are counted


def port_label(port: ServicePort) -> str:
    """'https (tcp/443 -> 8443, nodePort 30443)': a service port as messages name it."""
    text = f"{port.name} ({port.protocol.lower()}/{port.port}"
    if port.target_port != port.port:
        text += f" -> {port.target_port}"
    if port.node_port:
        text += f", nodePort {port.node_port}"
    return text + ")"


def service_port(service: Service, item: object, by_name: dict[str, ServicePort]) -> tuple[ServicePort | None, str]:
    """The port of service that a grant's `ports` item names: by name, or by number (its port, target port or
    node port; "53/udp" for another protocol than TCP). (port, "") when exactly one port answers; (None, message)
    otherwise, the message saying which names to use."""
    if isinstance(item, str) and item in by_name:
        return by_name[item], ""
    ports = "; name one of its ports: " + ", ".join(port_label(p) for p in service.ports)
    found = _NUMBER.fullmatch(str(item)) if isinstance(item, int | str) and not isinstance(item, bool) else None
    if found is None:
        return None, f"service '{service.ref}' has no port '{item}'{did_you_mean(str(item), by_name)}{ports}"
    number, protocol = int(found[1]), (found[2] or "tcp").upper()
    answers = [(p, next(what for field, what in _FIELDS if getattr(p, field) == number)) for p in service.ports
               if number in (p.port, p.target_port, p.node_port)]  # each port once, by its first field that answers
    same = [(p, what) for p, what in answers if p.protocol == protocol]
    if len({p.name for p, _ in same}) == 1:
        return same[0][0], ""
    if same:
        roles = " and ".join(f"the {what} of '{p.name}'" for p, what in same)
        return None, (f"port {number} is ambiguous on service '{service.ref}': it is {roles}; name the one you "
                      "mean")
    other = sorted({p.protocol.lower() for p, _ in answers})
    written = f"{number}" if other[:1] == ["tcp"] else f"{number}/{other[0]}" if other else ""
    elsewhere = f" (its {number} is {' and '.join(other)}: write '{written}')" if other else ""
    return None, f"service '{service.ref}' has no {protocol.lower()} port {number}{elsewhere}{ports}"


def undeclared_namespace(namespace: str, cluster: Cluster, documents: Iterable) -> str:
    """NG114: the namespace a Service or Workload names is not declared on its cluster; how to declare it, and
    what each mode means. documents: the Cluster documents, to point at the cluster's namespaces."""
    where = next((d.at(("spec", "namespaces")) for d in documents if d.data["metadata"]["name"] == cluster.name),
                 cluster.loc)
    return (f"namespace '{namespace}' is not declared on cluster '{cluster.name}'"
            f"{did_you_mean(namespace, cluster.namespaces)}. To add it, declare it in the cluster's namespaces "
            f"({where}) with how NetworkPolicy is run there in each direction, e.g. "
            f"'{namespace}: {{ingress: default-deny, egress: open}}'. default-deny: a default-deny policy already "
            "isolates its pods in that direction, and netgen writes allow policies for the granted flows; open: "
            "nothing isolates them, traffic is already allowed, and netgen writes no policy (one would cut their "
            "other callers, or their DNS)")


def unknown_host_group(name: str, groups: Iterable[str], hosts: Iterable[Host]) -> str:
    """NG104 for a host group: the closest host groups, and the hosts that carry a label matching the name (a
    selector would make them a group)."""
    close = difflib.get_close_matches(name, sorted(set(groups)), n=3, cutoff=0.6)
    text = f"unknown HostGroup '{name}'"
    if close:
        quoted = [f"'{c}'" for c in close]
        options = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        text += f" (did you mean {options}?)"
    labelled: dict[tuple[str, str], list[str]] = defaultdict(list)
    for host in hosts:
        for key, value in host.labels:
            if name in (key, value):
                labelled[(key, value)].append(host.name)
    for (key, value), names in sorted(labelled.items()):
        shown = ", ".join(sorted(names)[:SHOWN_HOSTS])
        more = f" and {len(names) - SHOWN_HOSTS} more" if len(names) > SHOWN_HOSTS else ""
        text += (f"; hosts labelled {key}={value}: {shown}{more} (a HostGroup with selector.matchLabels "
                 f"{{{key}: {value}}} holds them)")
    return text
