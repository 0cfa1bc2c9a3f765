"""Validation of Grant documents, after the inventory: references, ports, expiry and duplicates. A mixin of
validate.EstateBuilder, whose helpers (ref, named, tables, ...) it uses."""

from __future__ import annotations

import re
from datetime import date, timedelta

from netgen.diagnostics import did_you_mean
from netgen.document import Document
from netgen.hints import service_port
from netgen.model import Grant, PortRange, ServicePort
from netgen.validate_common import BROKEN

_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)
# Entries in a grant's list of host ports: separate ports become separate rules, of which AWS allows at most 1,000
# per network interface; a hostile list of tens of thousands is refused here, before any rule is planned.
MAX_PORTS_PER_GRANT = 1_000


class GrantKinds:
    """EstateBuilder's checks of Grant documents."""

    def namespaced_ref(self, doc: Document, path: tuple, kind: str, text: str):
        candidates = self.tables[kind].get(text)
        if candidates is None:
            short = text.split("/", 1)[1] if text.count("/") == 2 else text
            name = text.rsplit("/", 1)[-1]  # (a broken document without its namespace is known by its name)
            if (short not in self.broken[kind] and text not in self.broken[kind] and name not in self.broken[kind]
                    and kind not in self.nameless and name not in self.r.unloaded_names):
                known = [k for k in self.tables[kind]]
                self.unless_unloaded.append((name, doc.at(path), "NG104",
                                             f"unknown {kind} '{text}'{did_you_mean(text, known)}"))
            return BROKEN
        if len(candidates) > 1:
            options = ", ".join(sorted(c.ref for c in candidates))
            self.r.add(doc.at(path), "NG105", f"{kind} '{text}' exists in several clusters; write one of {options}")
            return BROKEN
        return candidates[0]

    def port_ranges(self, doc: Document, path: tuple, items: list) -> tuple[PortRange, ...] | None:
        """The distinct port ranges of items, or None when any item is invalid (reported)."""
        if len(items) > MAX_PORTS_PER_GRANT:
            self.r.add(doc.at((*path, MAX_PORTS_PER_GRANT)), "NG108", f"a grant lists at most "
                       f"{MAX_PORTS_PER_GRANT:,} ports, and this one {len(items):,}: write ranges (\"8000-8999\") "
                       "or split it")
            return None
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
                    if port in by_name:
                        chosen[port] = by_name[port]
                        continue
                    found, problem = service_port(service, port, by_name)  # by number, or what to write
                    if found is None:
                        self.r.add(doc.at(("spec", "to", "ports", i)), "NG109", problem)
                        unknown = True
                    else:
                        chosen[found.name] = found
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
