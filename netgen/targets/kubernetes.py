"""Kubernetes target: flows -> NetworkPolicy manifests per cluster and namespace, plus a kustomization.

Isolation rule: a policy that selects a pod isolates it for that direction. netgen only writes a policy for
a direction the namespace already runs default-deny (Cluster.spec.namespaces), where adding an allow can
never cut traffic. In an 'open' namespace the traffic is already allowed and netgen writes nothing that could
isolate a pod; the flow report still lists the flow.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from functools import lru_cache

import yaml

from netgen.model import Estate
from netgen.resolve import Flow
from netgen.targets.enforcers import policy_shape
from netgen.targets.policies import policy_entries, policy_rules

try:
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper

MANAGED_BY = {"app.kubernetes.io/managed-by": "netgen"}
_STRING = "tag:yaml.org,2002:str"


def dns_label(*parts: str) -> str:
    """A stable DNS label of at most 63 characters (longer names get a hash in place of their tail)."""
    name = "-".join(parts)
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def dump(document: dict) -> bytes:
    """The document as yaml.dump(sort_keys=True, default_flow_style=False) writes it.

    pyyaml's representer is pure Python and took two thirds of this target's time. Manifests are block mappings
    and sequences of space-free strings and integers, whose layout never depends on their position: _block
    writes those, and each distinct string is styled (quoted or not) by pyyaml itself, once. Anything else (a
    string with a space or outside printable ASCII, a long key, a sequence in a sequence, a container that
    appears twice and would get an anchor, keys that do not sort, another type) goes to yaml.dump."""
    lines: list[str] = []
    try:
        if type(document) is not dict or not document:
            raise _Unusual
        _block(document, 0, "", lines, set())
    except (_Unusual, TypeError):  # TypeError: keys of types that do not sort, which pyyaml leaves unsorted
        return yaml.dump(document, Dumper=_Dumper, sort_keys=True, default_flow_style=False).encode()
    return "".join(lines).encode()


class _Unusual(Exception):
    """A value _block leaves to yaml.dump."""


_POSITION_FREE = re.compile(r"[!-~]+")  # plain or single-quoted, no space to fold at, nothing to escape
_PLAIN_IF_STRING = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")  # no indicator anywhere: plain unless typed
_LONGEST_KEY = 100  # pyyaml writes a key of 128 characters or more as an explicit '? key' entry
_resolve_plain = yaml.resolver.Resolver().resolve


@lru_cache(maxsize=65536)
def _styled(text: str) -> str | None:
    """text as pyyaml writes it as a scalar in block context, or None where that may depend on its position."""
    if _PLAIN_IF_STRING.fullmatch(text) and _resolve_plain(yaml.ScalarNode, text, (True, False)) == _STRING:
        return text  # names, CIDRs: pyyaml quotes these only when they would read back as a number, date...
    if not _POSITION_FREE.fullmatch(text):
        return None
    line = yaml.dump([text], Dumper=_Dumper, default_flow_style=False)  # '- <scalar>\n'
    return line[2:-1] if line.startswith("- ") and line.count("\n") == 1 else None


def _key(value) -> str:
    text = _scalar(value, set())
    if len(text) > _LONGEST_KEY:
        raise _Unusual
    return text


def _scalar(value, seen: set[int]) -> str:
    kind = type(value)
    if kind is str:
        styled = _styled(value)
        if styled is not None:
            return styled
    elif kind is int:
        return str(value)
    elif (kind is dict or kind is list) and not value and id(value) not in seen:
        seen.add(id(value))
        return "{}" if kind is dict else "[]"
    raise _Unusual


def _block(value: dict, indent: int, lead: str, lines: list[str], seen: set[int]) -> None:
    """Lines of a non-empty mapping whose keys sit at column indent; the first line starts with lead (the indent
    itself, or a sequence item's '- '). As pyyaml, a sequence under a key is not indented. seen: the ids of the
    containers written so far (pyyaml would write a second appearance as an alias)."""
    if id(value) in seen:
        raise _Unusual
    seen.add(id(value))
    for key in sorted(value):
        item = value[key]
        kind = type(item)
        if kind is dict and item:
            lines.append(f"{lead}{_key(key)}:\n")
            _block(item, indent + 2, " " * (indent + 2), lines, seen)
        elif kind is list and item:
            if id(item) in seen:
                raise _Unusual
            seen.add(id(item))
            lines.append(f"{lead}{_key(key)}:\n")
            for element in item:
                if type(element) is dict and element:
                    _block(element, indent + 2, " " * indent + "- ", lines, seen)
                elif type(element) is list and element:
                    raise _Unusual
                else:
                    lines.append(f"{' ' * indent}- {_scalar(element, seen)}\n")
        else:
            lines.append(f"{lead}{_key(key)}: {_scalar(item, seen)}\n")
        lead = " " * indent


def compile_kubernetes(estate: Estate, flows: list[Flow]) -> dict[str, bytes]:
    """{path: bytes}: kubernetes/<cluster>/<namespace>/<policy>.yaml and kubernetes/<cluster>/kustomization.yaml."""
    clusters = {c.name: c for c in estate.clusters}
    wanted, grants = policy_entries(estate, flows)
    files: dict[str, bytes] = {}
    resources: dict[str, list[str]] = defaultdict(list)
    for key in sorted(wanted):
        pods, direction, owner = key
        name = dns_label("netgen", direction, owner)
        peer_key = "from" if direction == "ingress" else "to"
        shape = policy_shape(clusters[pods.cluster].enforcer)
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
                direction: policy_rules(wanted[key], peer_key, **shape),
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
