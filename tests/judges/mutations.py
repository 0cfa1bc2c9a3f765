"""Deliberately wrong variants of netgen's Kubernetes output, to prove the judge notices them.

Each mutation takes the compiled files ({path: bytes}, as compile_kubernetes returns them) and the estate, and
returns a changed copy, or None when the output has nothing it could change. Targets are chosen by structure
(the first policy with a /32 peer, ...), never by name.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from ipaddress import IPv4Network

import yaml

from netgen.model import Estate

Files = dict[str, bytes]
Mutation = Callable[[Files, Estate], Files | None]


def _policies(files: Files) -> list[tuple[str, dict]]:
    return [(name, yaml.safe_load(content)) for name, content in sorted(files.items())
            if not name.endswith("/kustomization.yaml")]


def _direction(policy: dict) -> str:
    return "ingress" if "ingress" in policy["spec"] else "egress"


def _replace(files: Files, name: str, policy: dict) -> Files:
    return {**files, name: yaml.safe_dump(policy, sort_keys=True).encode()}


def _first(files: Files, test) -> tuple[str, dict] | None:
    for name, policy in _policies(files):
        if test(policy):
            return name, copy.deepcopy(policy)
    return None


def _peers(policy: dict):
    key = "from" if _direction(policy) == "ingress" else "to"
    for rule in policy["spec"][_direction(policy)]:
        yield rule, rule[key]


def widen_cidr(files: Files, estate: Estate) -> Files | None:
    """An ipBlock widened to its /16: the first /32 there is, else the first narrower than /16."""
    for prefixes in ((32,), range(17, 32)):
        for name, policy in _policies(files):
            for _, peers in _peers(policy):
                for peer in peers:
                    net = IPv4Network(peer["ipBlock"]["cidr"])
                    if net.prefixlen in prefixes:
                        peer["ipBlock"]["cidr"] = str(net.supernet(new_prefix=16))
                        return _replace(files, name, policy)
    return None


def wrong_port(files: Files, estate: Estate) -> Files | None:
    """The first port of a policy moved up by one."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, policy = found
    port = policy["spec"][_direction(policy)][0]["ports"][0]
    shift = 1 if port.get("endPort", port["port"]) < 65535 else -1
    port["port"] += shift
    if "endPort" in port:
        port["endPort"] += shift
    return _replace(files, name, policy)


def wrong_protocol(files: Files, estate: Estate) -> Files | None:
    """TCP and UDP swapped on the first port of a policy."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, policy = found
    port = policy["spec"][_direction(policy)][0]["ports"][0]
    port["protocol"] = "UDP" if port["protocol"] == "TCP" else "TCP"
    return _replace(files, name, policy)


def select_all_pods(files: Files, estate: Estate) -> Files | None:
    """A podSelector widened to every pod of the namespace."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, policy = found
    policy["spec"]["podSelector"] = {}
    return _replace(files, name, policy)


def select_other_pods(files: Files, estate: Estate) -> Files | None:
    """A podSelector pointing at other pods: every selector value changed."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, policy = found
    labels = policy["spec"]["podSelector"]["matchLabels"]
    policy["spec"]["podSelector"]["matchLabels"] = {k: f"{v}-other"[-63:] for k, v in labels.items()}
    return _replace(files, name, policy)


def drop_rule(files: Files, estate: Estate) -> Files | None:
    """The last rule of a policy removed."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, policy = found
    policy["spec"][_direction(policy)].pop()
    return _replace(files, name, policy)


def drop_peer(files: Files, estate: Estate) -> Files | None:
    """One ipBlock removed from a rule that has several."""
    found = _first(files, lambda p: any(len(peers) > 1 for _, peers in _peers(p)))
    if found is None:
        return None
    name, policy = found
    for _, peers in _peers(policy):
        if len(peers) > 1:
            peers.pop(0)
            return _replace(files, name, policy)
    return None


def drop_policy(files: Files, estate: Estate) -> Files | None:
    """A policy file deleted and unlisted from its kustomization."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, _ = found
    cluster_dir = name.split("/", 2)[:2]
    kustomization = "/".join(cluster_dir) + "/kustomization.yaml"
    listing = yaml.safe_load(files[kustomization])
    relative = name.split("/", 2)[2]
    listing["resources"] = [r for r in listing["resources"] if r != relative]
    result = {n: c for n, c in files.items() if n != name}
    result[kustomization] = yaml.safe_dump(listing, sort_keys=True).encode()
    return result


def unlisted_policy(files: Files, estate: Estate) -> Files | None:
    """A policy file kept but left out of its kustomization (so it would never be applied)."""
    found = _first(files, lambda p: True)
    if found is None:
        return None
    name, _ = found
    kustomization = "/".join(name.split("/", 2)[:2]) + "/kustomization.yaml"
    listing = yaml.safe_load(files[kustomization])
    listing["resources"] = [r for r in listing["resources"] if r != name.split("/", 2)[2]]
    return {**files, kustomization: yaml.safe_dump(listing, sort_keys=True).encode()}


def isolate_other_direction(files: Files, estate: Estate) -> Files | None:
    """A policy also declaring the other direction, in a namespace that runs that direction 'open'."""
    modes = {(c.name, ns): m for c in estate.clusters for ns, m in c.namespaces.items()}

    def candidate(name: str, policy: dict) -> bool:
        other = "egress" if _direction(policy) == "ingress" else "ingress"
        return getattr(modes[(name.split("/")[1], policy["metadata"]["namespace"])], other) == "open"

    for name, policy in _policies(files):
        if candidate(name, policy):
            policy = copy.deepcopy(policy)
            other = "Egress" if _direction(policy) == "ingress" else "Ingress"
            policy["spec"]["policyTypes"].append(other)
            return _replace(files, name, policy)
    return None


def policy_in_open_namespace(files: Files, estate: Estate) -> Files | None:
    """An allow policy like netgen's, written into a namespace that runs ingress 'open' (it would cut traffic)."""
    for cluster in estate.clusters:
        for ns, modes in sorted(cluster.namespaces.items()):
            if modes.ingress != "open":
                continue
            kustomization = f"kubernetes/{cluster.name}/kustomization.yaml"
            listing = yaml.safe_load(files[kustomization]) if kustomization in files else {
                "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []}
            relative = f"{ns}/netgen-ingress-mutant.yaml"
            listing["resources"] = sorted([*listing["resources"], relative])
            policy = {
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "netgen-ingress-mutant", "namespace": ns},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"ipBlock": {"cidr": "10.255.0.1/32"}}],
                                      "ports": [{"protocol": "TCP", "port": 443}]}]},
            }
            return {**files, kustomization: yaml.safe_dump(listing, sort_keys=True).encode(),
                    f"kubernetes/{cluster.name}/{relative}": yaml.safe_dump(policy, sort_keys=True).encode()}
    return None


# mutation -> a word every report of it must contain
MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "widen-cidr": (widen_cidr, "unintended"),
    "wrong-port": (wrong_port, "missing"),
    "wrong-protocol": (wrong_protocol, "missing"),
    "select-all-pods": (select_all_pods, "unintended"),
    "select-other-pods": (select_other_pods, "missing"),
    "drop-rule": (drop_rule, "missing"),
    "drop-peer": (drop_peer, "missing"),
    "drop-policy": (drop_policy, "missing"),
    "unlisted-policy": (unlisted_policy, "never applied"),
    "isolate-other-direction": (isolate_other_direction, "cut in open namespace"),
    "policy-in-open-namespace": (policy_in_open_namespace, "cut in open namespace"),
}
