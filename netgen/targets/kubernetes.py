"""Kubernetes target: flows -> NetworkPolicy manifests per cluster and namespace, plus a kustomization.

Isolation rule: a policy that selects a pod isolates it for that direction. netgen only writes a policy for
a direction the namespace already runs default-deny (Cluster.spec.namespaces), where adding an allow can
never cut traffic. In an 'open' namespace the traffic is already allowed and netgen writes nothing that could
isolate a pod; the flow report still lists the flow.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import yaml

from netgen.addresses import interval_by_ports
from netgen.model import Estate
from netgen.resolve import Flow, Pods

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper

MANAGED_BY = {"app.kubernetes.io/managed-by": "netgen"}


def dns_label(*parts: str) -> str:
    """A stable DNS label of at most 63 characters (longer names get a hash in place of their tail)."""
    name = "-".join(parts)
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def dump(document: dict) -> bytes:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False).encode()


def _rules(entries: dict[str, list[tuple[int, int, int, int]]], peer_key: str) -> list[dict]:
    """Policy rules allowing exactly the entries, {protocol: [(first address, last address, first port, last
    port)]}: one rule per port set."""
    rules = []
    for protocol, items in sorted(entries.items()):
        for ports, nets in interval_by_ports(items).items():
            port_list = []
            for first, last in ports:
                port = {"protocol": protocol, "port": first}
                if last != first:
                    port["endPort"] = last
                port_list.append(port)
            rules.append({peer_key: [{"ipBlock": {"cidr": str(n)}} for n in nets], "ports": port_list})
    return rules


def compile_kubernetes(estate: Estate, flows: list[Flow]) -> dict[str, bytes]:
    """{path: bytes}: kubernetes/<cluster>/<namespace>/<policy>.yaml and kubernetes/<cluster>/kustomization.yaml."""
    clusters = {c.name: c for c in estate.clusters}
    # (pods, direction, owner name) -> {protocol: address and port intervals}, grants
    wanted: dict[tuple[Pods, str, str], dict[str, list[tuple[int, int, int, int]]]] = {}
    grants: dict[tuple[Pods, str, str], set[str]] = defaultdict(set)
    for flow in flows:
        p = flow.ports
        for direction, end, peers in (("ingress", flow.destination, flow.source),
                                      ("egress", flow.source, flow.destination)):
            if end.pods is None:
                continue
            modes = clusters[end.pods.cluster].namespaces[end.pods.namespace]
            if getattr(modes, direction) != "default-deny":
                continue
            key = (end.pods, direction, end.name.rsplit("/", 1)[1])
            entries = wanted.setdefault(key, {}).setdefault(p.protocol, [])
            entries.extend((first, last, p.first, p.last) for first, last in peers.intervals)
            grants[key].update(g.name for g in flow.grants)
    files: dict[str, bytes] = {}
    resources: dict[str, list[str]] = defaultdict(list)
    for key in sorted(wanted):
        pods, direction, owner = key
        name = dns_label("netgen", direction, owner)
        peer_key = "from" if direction == "ingress" else "to"
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {
                "name": name,
                "namespace": pods.namespace,
                "labels": dict(MANAGED_BY),
                "annotations": {"netgen.dev/grants": ",".join(sorted(grants[key]))},
            },
            "spec": {
                "podSelector": {"matchLabels": dict(pods.selector)},
                "policyTypes": [direction.capitalize()],
                direction: _rules(wanted[key], peer_key),
            },
        }
        relative = f"{pods.namespace}/{name}.yaml"
        files[f"kubernetes/{pods.cluster}/{relative}"] = dump(policy)
        resources[pods.cluster].append(relative)
    for cluster, listed in sorted(resources.items()):
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(listed),
        }
        files[f"kubernetes/{cluster}/kustomization.yaml"] = dump(kustomization)
    return files
