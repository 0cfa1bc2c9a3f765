"""A hypothesis strategy for small, valid netgen estates, as spec files ({relative path: YAML text}).

Bounded on purpose (1-2 clusters, a few namespaces, services, workloads, hosts and grants) so that every example
is cheap to analyse with nca. Selectors are drawn from a small pool of labels, so selectors of different
services and workloads often coincide or contain one another; namespace modes, exposures, protocols and port
ranges are all drawn, and so are health-check ports of load balancers (UDP behind an NLB among them).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import strategies as st

API = "netgen.dev/v1alpha1"
NAMESPACES = ("alpha", "beta", "gamma")
MODES = ("default-deny", "open")
SELECTOR_KEYS = ("app", "tier", "app.kubernetes.io/part-of")
SELECTOR_VALUES = ("a", "b")
SERVICE_PORTS = (80, 443, 8080, 8443, 9090, 5353)
REGIONS = ("us-east-1", "eu-west-1", "us-west-2")


def _doc(kind: str, name: str, spec: dict, namespace: str | None = None, labels: dict | None = None) -> dict:
    metadata: dict = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API, "kind": kind, "metadata": metadata, "spec": spec}


def _selector(draw) -> dict[str, str]:
    keys = draw(st.lists(st.sampled_from(SELECTOR_KEYS), min_size=1, max_size=2, unique=True))
    return {k: draw(st.sampled_from(SELECTOR_VALUES)) for k in keys}


def _port_item(draw):
    first = draw(st.sampled_from((22, 873, 5432, 8443, 9000, 9100)))
    kind = draw(st.sampled_from(("int", "range", "udp")))
    if kind == "int":
        return first
    if kind == "range":
        return f"{first}-{first + draw(st.integers(1, 5))}"
    return f"{first}/udp"


@st.composite
def estates(draw) -> dict[str, str]:
    """Spec files of a valid estate with at least one grant."""
    docs: list[dict] = [
        _doc("Account", "acme", {"accountId": "111111111111",
                                 "peeringAcceptRoleArn": "arn:aws:iam::111111111111:role/accepter"}),
    ]
    legacy = []
    for i in range(draw(st.integers(1, 2))):
        vpc = f"legacy-{i}"
        docs.append(_doc("Vpc", vpc, {"account": "acme", "region": draw(st.sampled_from(REGIONS)),
                                      "vpcId": f"vpc-{i + 1:08x}", "cidrs": [f"10.{1 + i}.0.0/16"],
                                      "routeTables": [f"rtb-{i + 1:08x}"]}))
        docs.append(_doc("SecurityGroup", f"{vpc}-sg", {"vpc": vpc, "groupId": f"sg-{i + 1:08x}",
                                                         "restrictsEgress": draw(st.booleans())}))
        legacy.append(i)

    # hosts: distinct addresses, a role label each
    hosts: list[tuple[str, str]] = []  # (name, role)
    addresses = draw(st.lists(st.tuples(st.sampled_from(legacy), st.integers(0, 3), st.integers(1, 254)),
                              min_size=1, max_size=4, unique=True))
    for j, (v, third, fourth) in enumerate(addresses):
        role = draw(st.sampled_from(("db", "web")))
        docs.append(_doc("LegacyHost", f"host-{j}", {"vpc": f"legacy-{v}", "address": f"10.{1 + v}.{third}.{fourth}",
                                                      "securityGroup": f"legacy-{v}-sg"}, labels={"role": role}))
        hosts.append((f"host-{j}", role))
    groups = sorted({role for _, role in hosts})
    for role in groups:
        docs.append(_doc("HostGroup", f"role-{role}", {"selector": {"matchLabels": {"role": role}}}))

    services: list[tuple[str, list[str]]] = []  # (ref, port names)
    workloads: list[str] = []
    for c in range(draw(st.integers(1, 2))):
        vpc, cluster, second = f"k8s-{c}", f"cluster-{c}", 40 + c
        docs.append(_doc("Vpc", vpc, {"account": "acme", "region": draw(st.sampled_from(REGIONS)),
                                      "vpcId": f"vpc-{c + 101:08x}", "cidrs": [f"10.{second}.0.0/16"],
                                      "routeTables": [f"rtb-{c + 101:08x}"]}))
        docs.append(_doc("SecurityGroup", f"{cluster}-nodes", {"vpc": vpc, "groupId": f"sg-{c + 101:08x}"}))
        names = draw(st.lists(st.sampled_from(NAMESPACES), min_size=1, max_size=3, unique=True))
        namespaces = {ns: {"ingress": draw(st.sampled_from(MODES)), "egress": draw(st.sampled_from(MODES))}
                      for ns in names}
        snat: dict = {"enabled": draw(st.booleans())}
        if draw(st.booleans()):
            snat["excludedCidrs"] = ["10.1.0.0/16"]
        node_cidrs = [f"10.{second}.0.0/20"] + ([f"10.{second}.16.0/20"] if draw(st.booleans()) else [])
        docs.append(_doc("Cluster", cluster, {"vpc": vpc, "podCidrs": [f"10.{second}.64.0/18"],
                                              "nodeSubnetCidrs": node_cidrs, "securityGroup": f"{cluster}-nodes",
                                              "sourceNat": snat, "namespaces": namespaces}))
        for k in range(draw(st.integers(0, 3))):
            name, ns = f"svc-{c}-{k}", draw(st.sampled_from(names))
            exposure_type = draw(st.sampled_from(("pod-ip", "load-balancer", "node-port")))
            ports = []
            numbers = draw(st.lists(st.sampled_from(SERVICE_PORTS), min_size=1, max_size=2, unique=True))
            for n, number in enumerate(numbers):
                port: dict = {"name": f"p{n}", "port": number, "protocol": draw(st.sampled_from(("TCP", "UDP")))}
                if draw(st.booleans()):
                    port["targetPort"] = draw(st.sampled_from(SERVICE_PORTS))
                if exposure_type == "node-port":
                    port["nodePort"] = 30000 + 10 * k + n
                ports.append(port)
            exposure: dict = {"type": exposure_type}
            if exposure_type == "load-balancer":
                exposure["subnetCidrs"] = [f"10.{second}.{32 + k}.0/24"]
                exposure["preserveClientIp"] = draw(st.booleans())
                if draw(st.booleans()):  # the health checks' own port (TCP, whatever the traffic's protocol)
                    exposure["healthCheckPort"] = draw(st.sampled_from((*SERVICE_PORTS, 10254)))
            elif exposure_type == "node-port":
                exposure["externalTrafficPolicy"] = draw(st.sampled_from(("Cluster", "Local")))
            docs.append(_doc("Service", name, {"cluster": cluster, "podSelector": _selector(draw), "ports": ports,
                                               "exposure": exposure}, namespace=ns))
            services.append((f"{cluster}/{ns}/{name}", [p["name"] for p in ports]))
        for k in range(draw(st.integers(0, 3))):
            name, ns = f"wl-{c}-{k}", draw(st.sampled_from(names))
            docs.append(_doc("Workload", name, {"cluster": cluster, "podSelector": _selector(draw)}, namespace=ns))
            workloads.append(f"{cluster}/{ns}/{name}")

    sides = (["service"] if services else []) + (["workload"] if workloads else [])
    if not sides:  # every estate gets something to judge
        docs.append(_doc("Workload", "wl-0-x", {"cluster": "cluster-0", "podSelector": {"app": "a"}},
                         namespace=_first_namespace(docs)))
        workloads.append(f"cluster-0/{_first_namespace(docs)}/wl-0-x")
        sides = ["workload"]
    for g in range(draw(st.integers(1, 5))):
        legacy_side = (draw(st.sampled_from([{"host": h} for h, _ in hosts]
                                            + [{"hostGroup": f"role-{r}"} for r in groups])))
        if draw(st.sampled_from(sides)) == "service":
            ref, port_names = draw(st.sampled_from(services))
            to: dict = {"service": ref}
            if draw(st.booleans()):
                to["ports"] = draw(st.lists(st.sampled_from(port_names), min_size=1, unique=True))
            spec = {"from": legacy_side, "to": to}
        else:
            ports = list(dict.fromkeys(_port_item(draw) for _ in range(draw(st.integers(1, 2)))))
            spec = {"from": {"workload": draw(st.sampled_from(workloads))}, "to": {**legacy_side, "ports": ports}}
        docs.append(_doc("Grant", f"grant-{g}", {"owner": "team", "reason": "generated by hypothesis", **spec}))
    return {"specs.yaml": yaml.safe_dump_all(docs, sort_keys=False)}


def _first_namespace(docs: list[dict]) -> str:
    cluster = next(d for d in docs if d["kind"] == "Cluster" and d["metadata"]["name"] == "cluster-0")
    return next(iter(cluster["spec"]["namespaces"]))


def write_specs(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root
