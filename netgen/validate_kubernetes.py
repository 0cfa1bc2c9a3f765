"""Validation of the Kubernetes side of the inventory: clusters, services, workloads, and the check that no legacy
host sits in a cluster's ranges. A mixin of validate.EstateBuilder, whose helpers (ref, cidrs, named, ...) it uses."""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network

from netgen.document import Document
from netgen.hints import undeclared_namespace
from netgen.model import Cluster, Enforcer, Exposure, NamespaceModes, Service, ServicePort, Workload
from netgen.validate_common import BROKEN


class KubernetesKinds:
    """EstateBuilder's checks of Cluster, Service and Workload documents."""

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
                                                   excluded, namespaces, doc.at(), _enforcer(s.get("networkPolicy")))

    def _pod_owner(self, doc: Document):
        """Cluster of a Service or Workload, after checking its namespace is declared there."""
        s = doc.data["spec"]
        cluster = self.ref(doc, ("spec", "cluster"), "Cluster", s["cluster"])
        namespace = doc.data["metadata"]["namespace"]
        if cluster is not BROKEN and namespace not in cluster.namespaces:
            self.r.add(doc.at(("metadata", "namespace")), "NG114",
                       undeclared_namespace(namespace, cluster, self.by_kind["Cluster"]))
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
                                    None if lb_group is BROKEN else lb_group,
                                    health_check_port=exp.get("healthCheckPort"))
            elif exp["type"] == "node-port":
                exposure = Exposure("node-port", external_traffic_policy=exp.get("externalTrafficPolicy",
                                                                                 "Cluster"))
            if BROKEN in (cluster, lb_group):
                self.broken["Service"].add(f"{doc.data['metadata']['namespace']}/{name}")
                continue
            selector = tuple(sorted(s["podSelector"].items()))
            self._register_namespaced("Service", Service(name, doc.data["metadata"]["namespace"], cluster,
                                                         selector, tuple(ports), exposure, doc.at(), s.get("owner")))

    def workloads(self) -> None:
        for doc, name in self.named("Workload"):
            cluster = self._pod_owner(doc)
            if cluster is BROKEN:
                self.broken["Workload"].add(f"{doc.data['metadata']['namespace']}/{name}")
                continue
            selector = tuple(sorted(doc.data["spec"]["podSelector"].items()))
            self._register_namespaced("Workload", Workload(name, doc.data["metadata"]["namespace"], cluster,
                                                           selector, doc.at()))

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


def _enforcer(spec: dict | None) -> Enforcer | None:
    """Cluster.spec.networkPolicy as the model has it (the schema checked its shape)."""
    if spec is None:
        return None
    version = tuple(map(int, spec["version"].split("."))) if "version" in spec else None
    return Enforcer(spec["enforcer"], version, "nodes" in spec.get("policyCidrMatchMode", ()))
