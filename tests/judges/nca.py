"""An independent judge of netgen's NetworkPolicies, built on IBM's network-config-analyzer (nca).

The expectation comes from the flow list (netgen.resolve); the observed truth comes from nca, which reads the
generated NetworkPolicies together with a synthetic cluster derived from the estate:

- a Namespace per declared namespace, labelled kubernetes.io/metadata.name;
- a Pod per Service and Workload (labels = its podSelector), with an address inside the cluster's pod CIDR;
- one bystander Pod per namespace whose labels no selector matches;
- a default-deny NetworkPolicy per namespace and direction the inventory declares 'default-deny'. netgen does
  not generate those: Cluster.spec.namespaces claims they already exist in the cluster, so the judge adds
  them (see default_deny_policies) to reproduce what the cluster really enforces.

nca models ipBlock peers as address ranges distinct from pods: it partitions the whole IPv4 space into the
ranges the policies mention (e.g. 10.10.20.21-10.10.20.23 and 0.0.0.0-10.10.20.20) and reports connectivity
between those ranges and pods; it does not match pod addresses against ipBlocks. The judge therefore compares
address-interval sets, never strings, and models pod-to-pod traffic by labels only.

nca is run with `-o txt_no_fw_rules --output_endpoints pods`: one line per (source, destination) pair with the
ranges and pod names spelled out. The JSON (fw-rules) output groups pods into label expressions such as
`app in (a,b)` or `!has(app)`, which cannot be mapped back to pods without re-implementing nca's minimiser.

Checks, per cluster (see judge and judge_cluster):
0. the policies fed to nca are those kubernetes/<cluster>/kustomization.yaml lists (what `kubectl apply -k`
   applies); a listed file that is missing, or a policy file it does not list, is a problem, and so is any
   warning nca prints about a policy (e.g. a podSelector that selects no pod);
1. every flow into pods of a default-deny-ingress namespace is reported, from every source address, on its
   protocol and ports (likewise flows out of pods of a default-deny-egress namespace, to every destination);
2. nothing more: any connection nca reports into a default-deny-ingress pod (from an address range or a pod),
   or out of a default-deny-egress pod, must be covered by some flow (address, protocol, port);
3. directions run 'open' are not cut: such pods reach / are reachable from every address and every pod whose
   own side is open, on all connections;
4. independently of the flows, from the estate: pods behind an NLB admit its health checks (TCP, from the NLB
   subnets, to the health-check port) where their namespace runs default-deny ingress.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml

from netgen.model import Cluster, Estate
from netgen.resolve import Flow, Pods

PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_PORT = 65535
MAX_IP = int(IPv4Address("255.255.255.255"))
BYSTANDER_NAME = "judge-bystander"
BYSTANDER_LABELS = {"netgen.dev/judge-bystander": "true"}
DEFAULT_DENY_NAME = "judge-default-deny-{direction}"


class NcaError(RuntimeError):
    """nca failed, or printed something the judge cannot interpret."""


def nca_binary() -> str | None:
    """The nca executable: $NETGEN_NCA (set by the Makefile in CI), else nca on PATH."""
    configured = os.environ.get("NETGEN_NCA")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("nca")


# ---- interval sets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalSet:
    """A set of integers as sorted, disjoint, non-adjacent closed intervals."""

    spans: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def of(spans: Iterable[tuple[int, int]]) -> IntervalSet:
        merged: list[list[int]] = []
        for lo, hi in sorted(spans):
            if lo > hi:
                raise ValueError(f"empty interval {lo}-{hi}")
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return IntervalSet(tuple((lo, hi) for lo, hi in merged))

    def __bool__(self) -> bool:
        return bool(self.spans)

    def __or__(self, other: IntervalSet) -> IntervalSet:
        return IntervalSet.of(self.spans + other.spans)

    def __sub__(self, other: IntervalSet) -> IntervalSet:
        result = []
        for lo, hi in self.spans:
            start = lo
            for olo, ohi in other.spans:
                if ohi < start or olo > hi:
                    continue
                if olo > start:
                    result.append((start, olo - 1))
                start = max(start, ohi + 1)
                if start > hi:
                    break
            if start <= hi:
                result.append((start, hi))
        return IntervalSet.of(result)

    def __and__(self, other: IntervalSet) -> IntervalSet:
        return self - (self - other)

    def issubset(self, other: IntervalSet) -> bool:
        return not (self - other)


def ports_text(ports: IntervalSet) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports.spans)


def ip_text(lo: int, hi: int) -> str:
    return str(IPv4Address(lo)) if lo == hi else f"{IPv4Address(lo)}-{IPv4Address(hi)}"


def net_span(net: IPv4Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


# ---- connection sets -----------------------------------------------------------------------------------------

ALL_PORTS = IntervalSet(((1, MAX_PORT),))


@dataclass(frozen=True)
class ConnSet:
    """Allowed connections: ports per port protocol (TCP/UDP/SCTP), plus the other IP protocols by name.

    others_complement=True means "every other protocol except others"; False means "exactly others".
    """

    ports: tuple[tuple[str, IntervalSet], ...] = ()
    others: frozenset[str] = frozenset()
    others_complement: bool = False

    @staticmethod
    def make(ports: Mapping[str, IntervalSet], others: Iterable[str] = (), complement: bool = False) -> ConnSet:
        return ConnSet(tuple((p, ports[p]) for p in PORT_PROTOCOLS if ports.get(p)),
                       frozenset(others), complement)

    @staticmethod
    def everything() -> ConnSet:
        return ConnSet.make({p: ALL_PORTS for p in PORT_PROTOCOLS}, (), True)

    @staticmethod
    def single(protocol: str, first: int, last: int) -> ConnSet:
        return ConnSet.make({protocol: IntervalSet(((first, last),))})

    def port_set(self, protocol: str) -> IntervalSet:
        return dict(self.ports).get(protocol, IntervalSet())

    def has_others(self) -> bool:
        return self.others_complement or bool(self.others)

    def __bool__(self) -> bool:
        return bool(self.ports) or self.has_others()

    def __or__(self, other: ConnSet) -> ConnSet:
        ports = {p: self.port_set(p) | other.port_set(p) for p in PORT_PROTOCOLS}
        if self.others_complement and other.others_complement:
            names, complement = self.others & other.others, True
        elif self.others_complement:
            names, complement = self.others - other.others, True
        elif other.others_complement:
            names, complement = other.others - self.others, True
        else:
            names, complement = self.others | other.others, False
        return ConnSet.make(ports, names, complement)

    def complement(self) -> ConnSet:
        ports = {p: ALL_PORTS - self.port_set(p) for p in PORT_PROTOCOLS}
        return ConnSet.make(ports, self.others, not self.others_complement)

    def __sub__(self, other: ConnSet) -> ConnSet:
        return (self.complement() | other).complement()

    def issubset(self, other: ConnSet) -> bool:
        return not (self - other)

    def is_all(self) -> bool:
        return self == ConnSet.everything()

    def __str__(self) -> str:
        if self.is_all():
            return "all connections"
        parts = [f"{p.lower()}/{ports_text(ports)}" for p, ports in self.ports]
        if self.others_complement:
            parts.append("every other protocol" + (f" but {','.join(sorted(self.others))}" if self.others else ""))
        elif self.others:
            parts.append(",".join(sorted(self.others)))
        return " ".join(parts) if parts else "nothing"


# ---- nca's txt_no_fw_rules output ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class IpRange:
    first: int
    last: int

    def __str__(self) -> str:
        return ip_text(self.first, self.last)


Node = PodRef | IpRange


@dataclass(frozen=True)
class Edge:
    source: Node
    destination: Node
    conns: ConnSet


_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
_RANGE = re.compile(rf"^({_IP})(?:-({_IP}))?$")
_CIDR = re.compile(rf"^{_IP}/\d{{1,2}}$")
_POD = re.compile(r"^([a-z0-9][-a-z0-9]*)/([a-z0-9][-a-z0-9.]*)(?:\[Pod\])?$")
_LINE = re.compile(r"^(\S+) => (\S+) : (.+)$")
_CUBE = re.compile(r"\{([^{}]*)\}")
_CUBE_ITEM = re.compile(r"(?:^|,)([a-z_]+):")


def parse_node(text: str) -> Node:
    m = _RANGE.match(text)
    if m:
        first = IPv4Address(m.group(1))
        last = IPv4Address(m.group(2)) if m.group(2) else first
        return IpRange(int(first), int(last))
    if _CIDR.match(text):
        lo, hi = net_span(IPv4Network(text))
        return IpRange(lo, hi)
    m = _POD.match(text)
    if m:
        return PodRef(m.group(1), m.group(2))
    raise NcaError(f"cannot read nca peer '{text}'")


def parse_protocols(text: str) -> tuple[bool, frozenset[str]]:
    """(complement, names) for nca's ProtocolSet text: '*', 'TCP, UDP' or 'all but ICMP, TCP'."""
    text = text.strip()
    if text == "*":
        return True, frozenset()
    complement = text.startswith("all but ")
    if complement:
        text = text[len("all but "):]
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise NcaError(f"cannot read nca protocols '{text}'")
    return complement, names


def parse_port_list(text: str) -> IntervalSet:
    spans = []
    for item in text.split(","):
        lo, _, hi = item.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise NcaError(f"cannot read nca ports '{text}'")
        spans.append((int(lo), int(hi or lo)))
    return IntervalSet.of(spans)


def parse_cube(text: str) -> ConnSet:
    """One nca cube such as 'protocols:TCP, UDP,dst_ports:80-90,443' (omitted dimensions are unrestricted)."""
    keys = list(_CUBE_ITEM.finditer(text))
    if (keys and keys[0].start() != 0) or (not keys and text.strip()):
        raise NcaError(f"cannot read nca connection '{{{text}}}'")
    values: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        values[m.group(1)] = text[m.end():end]
    unknown = set(values) - {"protocols", "dst_ports"}
    if unknown:
        raise NcaError(f"nca restricts {', '.join(sorted(unknown))}, which the judge does not model: {{{text}}}")
    complement, names = parse_protocols(values.get("protocols", "*"))
    port_protocols = [p for p in PORT_PROTOCOLS if (p in names) != complement]
    others = names - set(PORT_PROTOCOLS)
    if "dst_ports" in values:
        ports = parse_port_list(values["dst_ports"])
        # a port restriction only concerns port protocols; nca never pairs it with others
        if others or complement:
            raise NcaError(f"nca pairs ports with protocols without ports: {{{text}}}")
        return ConnSet.make({p: ports for p in port_protocols})
    return ConnSet.make({p: ALL_PORTS for p in port_protocols}, others, complement)


def parse_conns(text: str) -> ConnSet:
    text = text.strip()
    if text == "All connections":
        return ConnSet.everything()
    if text == "No connections":
        return ConnSet()
    negate = text.startswith("All but ")
    if negate:
        text = text[len("All but "):]
    cubes = _CUBE.findall(text)
    if not cubes or ",".join("{" + c + "}" for c in cubes) != text:
        raise NcaError(f"cannot read nca connections '{text}'")
    result = ConnSet()
    for cube in cubes:
        result = result | parse_cube(cube)
    return result.complement() if negate else result


def parse_connectivity(text: str) -> list[Edge]:
    """Edges of nca's `--connectivity -o txt_no_fw_rules` output."""
    edges = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.endswith("Connections:"):
            continue
        m = _LINE.match(line)
        if not m:
            raise NcaError(f"cannot read nca line '{line}'")
        edges.append(Edge(parse_node(m.group(1)), parse_node(m.group(2)), parse_conns(m.group(3))))
    return edges


# ---- the synthetic cluster -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgePod:
    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    address: IPv4Address
    owner: str  # what the pod stands for: service/..., workload/... or the bystander

    @property
    def ref(self) -> PodRef:
        return PodRef(self.namespace, self.name)

    def selected_by(self, pods: Pods) -> bool:
        return set(pods.selector) <= set(self.labels)


def cluster_pods(estate: Estate, cluster: Cluster) -> list[JudgePod]:
    """A pod per Service and Workload of the cluster (labels = its selector), and a bystander per namespace."""
    network = cluster.pod_cidrs[0]
    pods: list[JudgePod] = []

    def add(namespace: str, name: str, labels: Iterable[tuple[str, str]], owner: str) -> None:
        address = network.network_address + 10 + len(pods)
        if address not in network:
            raise ValueError(f"pod CIDR {network} is too small for the judge's pods")
        pods.append(JudgePod(namespace, name, tuple(sorted(labels)), address, owner))

    for service in estate.services:
        if service.cluster is cluster:
            add(service.namespace, f"svc-{service.name}", service.pod_selector, f"service/{service.ref}")
    for workload in estate.workloads:
        if workload.cluster is cluster:
            add(workload.namespace, f"wl-{workload.name}", workload.pod_selector, f"workload/{workload.ref}")
    for namespace in sorted(cluster.namespaces):
        add(namespace, BYSTANDER_NAME, BYSTANDER_LABELS.items(), "bystander")
    names = [p.ref for p in pods]
    if len(set(names)) != len(names):
        raise ValueError("the judge would create two pods with one name")
    return pods


def resources(cluster: Cluster, pods: Sequence[JudgePod]) -> list[dict]:
    """Namespace and Pod resources for nca (nca reads labels; it ignores pod addresses, kept for realism)."""
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}}
        for ns in sorted(cluster.namespaces)
    ]
    for pod in pods:
        docs.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
            "spec": {"containers": [{"name": "main", "image": "registry.invalid/judge:1"}]},
            "status": {"phase": "Running", "podIP": str(pod.address), "podIPs": [{"ip": str(pod.address)}]},
        })
    return docs


def default_deny_policies(cluster: Cluster) -> dict[str, dict]:
    """The default-deny policies the inventory says each 'default-deny' namespace already runs.

    netgen does not generate these; Cluster.spec.namespaces claims they exist. Without them nca would see pods
    that no policy selects for a direction as open, which is not what the cluster enforces.
    """
    policies = {}
    for ns, modes in sorted(cluster.namespaces.items()):
        for direction in ("ingress", "egress"):
            if getattr(modes, direction) != "default-deny":
                continue
            name = DEFAULT_DENY_NAME.format(direction=direction)
            policies[f"{ns}/{name}.yaml"] = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"podSelector": {}, "policyTypes": [direction.capitalize()]},
            }
    return policies


# ---- running nca ---------------------------------------------------------------------------------------------

# nca chatter that is expected for this input; anything else it says on stderr/stdout is treated as an error
_NCA_NOISE = (
    re.compile(r"^Warning: policies will be taken from the provided networkPolicy list key"),
    re.compile(r"^\S+: cluster has \d+ unique endpoints, \d+ namespaces$"),
    re.compile(r"^wrote query output to: "),
    re.compile(r"^Total run time: "),
    re.compile(r"^\s*$"),
)
_WARNING = re.compile(r"^\S+:\d+:\d+: Warning: ")


def run_nca(binary: str, policies: Mapping[str, bytes], resource_docs: Sequence[dict], timeout: float = 120
            ) -> tuple[list[Edge], list[str]]:
    """nca's connectivity map for the policies (relative path -> YAML bytes) over the resources, and the
    warnings nca printed about them (such as a podSelector that selects no pod)."""
    if not policies:
        raise NcaError("no policies to analyse")  # nca would then read policies from a live cluster
    with tempfile.TemporaryDirectory(prefix="netgen-judge-") as tmp:
        root = Path(tmp)
        policy_dir = root / "policies"
        for relative, content in policies.items():
            target = policy_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        resource_file = root / "resources.yaml"
        resource_file.write_text(yaml.safe_dump_all(resource_docs, sort_keys=True))
        out = root / "connectivity.txt"
        cmd = [binary, "--connectivity", str(policy_dir), "--resource_list", str(resource_file),
               "--output_format", "txt_no_fw_rules", "--output_endpoints", "pods", "--file_out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        chatter = [line.replace(f"{policy_dir}/", "") for line in (proc.stdout + proc.stderr).splitlines()
                   if not any(p.match(line) for p in _NCA_NOISE)]
        warnings = [line for line in chatter if _WARNING.match(line)]
        if proc.returncode != 0 or len(warnings) < len(chatter) or not out.exists():
            raise NcaError(f"nca exited {proc.returncode}: " + "\n".join(chatter or [proc.stdout + proc.stderr]))
        return parse_connectivity(out.read_text()), warnings


# ---- the comparison ------------------------------------------------------------------------------------------

Rect = tuple[int, int, ConnSet]  # addresses first..last, allowed connections


def partition(first: int, last: int, rects: Iterable[Rect]) -> list[Rect]:
    """first..last cut at every rectangle boundary, each piece with the union of the rectangles covering it."""
    rects = [r for r in rects if r[0] <= last and r[1] >= first]
    cuts = {first}
    for lo, hi, _ in rects:
        if first < lo <= last:
            cuts.add(lo)
        if first <= hi < last:
            cuts.add(hi + 1)
    points = sorted(cuts) + [last + 1]
    pieces = []
    for a, b in zip(points, points[1:], strict=False):
        conns = ConnSet()
        for lo, hi, c in rects:
            if lo <= a and b - 1 <= hi:
                conns = conns | c
        pieces.append((a, b - 1, conns))
    return pieces


@dataclass
class Intent:
    """What the flows allow for one pod, per direction: address rectangles (peer addresses x connections)."""

    ingress: list[Rect] = field(default_factory=list)
    egress: list[Rect] = field(default_factory=list)
    ingress_flows: list[Flow] = field(default_factory=list)
    egress_flows: list[Flow] = field(default_factory=list)


def intents(cluster: Cluster, pods: Sequence[JudgePod], flows: Iterable[Flow]) -> dict[PodRef, Intent]:
    result = {pod.ref: Intent() for pod in pods}
    for flow in flows:
        if flow.source.pods is not None and flow.destination.pods is not None:
            raise NotImplementedError(f"flow with pods at both ends, which the judge does not model: {flow.line()}")
        conns = ConnSet.single(flow.ports.protocol, flow.ports.first, flow.ports.last)
        for direction, end, peers in (("ingress", flow.destination, flow.source.addresses),
                                      ("egress", flow.source, flow.destination.addresses)):
            if end.pods is None or end.pods.cluster != cluster.name:
                continue
            for pod in pods:
                if pod.namespace == end.pods.namespace and pod.selected_by(end.pods):
                    intent = result[pod.ref]
                    getattr(intent, direction).extend((*net_span(n), conns) for n in peers)
                    getattr(intent, f"{direction}_flows").append(flow)
    return result


def judge_cluster(cluster: Cluster, pods: Sequence[JudgePod], flows: Iterable[Flow], edges: Iterable[Edge]
                  ) -> list[str]:
    """Every difference between what the flows intend and what nca reports, for one cluster."""
    problems: list[str] = []
    by_ref = {pod.ref: pod for pod in pods}
    modes = cluster.namespaces
    wanted = intents(cluster, pods, flows)
    from_ips: dict[PodRef, list[Rect]] = defaultdict(list)  # pod -> (source range, conns)
    to_ips: dict[PodRef, list[Rect]] = defaultdict(list)
    between: dict[tuple[PodRef, PodRef], ConnSet] = defaultdict(ConnSet)
    for edge in edges:
        src, dst = edge.source, edge.destination
        for end in (src, dst):
            if isinstance(end, PodRef) and end not in by_ref:
                problems.append(f"nca reports a pod the judge did not create: {end}")
        if isinstance(src, IpRange) and isinstance(dst, PodRef):
            from_ips[dst].append((src.first, src.last, edge.conns))
        elif isinstance(src, PodRef) and isinstance(dst, IpRange):
            to_ips[src].append((dst.first, dst.last, edge.conns))
        elif isinstance(src, PodRef) and isinstance(dst, PodRef):
            between[(src, dst)] = between[(src, dst)] | edge.conns
        else:
            problems.append(f"nca reports address-to-address connectivity: {src} => {dst}")
    if problems:
        return problems

    def where(ref: PodRef) -> str:
        return f"{cluster.name}/{ref} ({by_ref[ref].owner})"

    for pod in pods:
        ref = pod.ref
        intent = wanted[ref]
        for direction, observed, peer_word in (("ingress", from_ips[ref], "from"), ("egress", to_ips[ref], "to")):
            arrow = (lambda peer, r=ref: f"{peer} -> {r}") if direction == "ingress" else \
                (lambda peer, r=ref: f"{r} -> {peer}")
            if getattr(modes[pod.namespace], direction) == "default-deny":
                # 1. every intended flow is reported, from/to every one of its addresses
                for flow in getattr(intent, f"{direction}_flows"):
                    need = ConnSet.single(flow.ports.protocol, flow.ports.first, flow.ports.last)
                    peers = flow.source.addresses if direction == "ingress" else flow.destination.addresses
                    for net in peers:
                        for lo, hi, got in partition(*net_span(net), observed):
                            if not need.issubset(got):
                                problems.append(
                                    f"missing {direction}: {where(ref)} {peer_word} {ip_text(lo, hi)} on "
                                    f"{need - got} (flow: {flow.line()}); nca allows {got}")
                # 2. and nothing more, from/to addresses ...
                for first, last, got in observed:
                    for lo, hi, allowed in partition(first, last, getattr(intent, direction)):
                        extra = got - allowed
                        if extra:
                            problems.append(f"unintended {direction}: {arrow(ip_text(lo, hi))} on {extra} "
                                            f"({by_ref[ref].owner}); flows allow {allowed}")
                # ... and from/to pods (no flow has pods at both ends)
                for (a, b), got in sorted(between.items()):
                    if got and (b if direction == "ingress" else a) == ref:
                        other = a if direction == "ingress" else b
                        problems.append(f"unintended {direction}: {arrow(other)} on {got} in {cluster.name} "
                                        f"({by_ref[ref].owner})")
            else:
                # 3. an open direction is not cut: every address, and every pod whose own side is open
                for lo, hi, got in partition(0, MAX_IP, observed):
                    if not got.is_all():
                        problems.append(f"{direction} cut in open namespace: {arrow(ip_text(lo, hi))} only on "
                                        f"{got} ({where(ref)})")
                for other in pods:
                    if other.ref == ref:
                        continue
                    other_direction = "egress" if direction == "ingress" else "ingress"
                    if getattr(modes[other.namespace], other_direction) != "open":
                        continue
                    pair = (other.ref, ref) if direction == "ingress" else (ref, other.ref)
                    got = between.get(pair, ConnSet())
                    if not got.is_all():
                        problems.append(f"{direction} cut in open namespace: {arrow(other.ref)} only on {got} "
                                        f"in {cluster.name}")
    return problems


def health_check_problems(estate: Estate, cluster: Cluster, pods: Sequence[JudgePod], edges: Iterable[Edge]
                          ) -> list[str]:
    """What an NLB really sends its targets, taken from the estate, not from the flows: for every port a grant
    opens on a service behind an NLB whose namespace runs default-deny ingress, its pods must admit TCP (never
    only UDP, whatever the port carries) from every NLB subnet on the health-check port (default: the target
    port)."""
    problems = []
    by_owner = {pod.owner: pod for pod in pods}
    observed: dict[PodRef, list[Rect]] = defaultdict(list)
    for edge in edges:
        if isinstance(edge.source, IpRange) and isinstance(edge.destination, PodRef):
            observed[edge.destination].append((edge.source.first, edge.source.last, edge.conns))
    for grant in estate.grants:
        service = grant.service
        if (service is None or service.cluster is not cluster or service.exposure.type != "load-balancer"
                or cluster.namespaces[service.namespace].ingress != "default-deny"):
            continue
        pod = by_owner[f"service/{service.ref}"]
        for port in grant.service_ports:
            need = ConnSet.single("TCP", *(2 * (service.exposure.health_check_port or port.target_port,)))
            for net in service.exposure.subnet_cidrs:
                for lo, hi, got in partition(*net_span(net), observed[pod.ref]):
                    if not need.issubset(got):
                        problems.append(f"missing health checks: {ip_text(lo, hi)} -> {cluster.name}/{pod.ref} "
                                        f"on {need} ({grant.name}, port {port.name}); nca allows {got}")
    return problems


def policies_for(files: Mapping[str, bytes], cluster: str) -> tuple[dict[str, bytes], list[str]]:
    """The policy files deployed to one cluster: those its kustomization.yaml lists (what `kubectl apply -k`
    applies), relative to kubernetes/<cluster>/; plus problems with the listing."""
    prefix = f"kubernetes/{cluster}/"
    kustomization = f"{prefix}kustomization.yaml"
    present = {name[len(prefix):] for name in files if name.startswith(prefix) and name != kustomization}
    if kustomization not in files:
        return {}, [f"policy files without a kustomization: {prefix}{n}" for n in sorted(present)]
    listed = yaml.safe_load(files[kustomization]).get("resources") or []
    problems = [f"{kustomization} lists a missing file: {n}" for n in listed if n not in present]
    problems += [f"{kustomization} does not list {prefix}{n}, so it is never applied"
                 for n in sorted(present - set(listed))]
    return {n: files[prefix + n] for n in listed if n in present}, problems


def files_from_dir(out: Path) -> dict[str, bytes]:
    """{relative path: bytes} for every file under out/kubernetes, as compile_kubernetes returns them."""
    root = out / "kubernetes"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.yaml")) if p.is_file()}


def judge(estate: Estate, flows: Sequence[Flow], files: Mapping[str, bytes], binary: str) -> list[str]:
    """All problems of netgen's Kubernetes output (files as compile_kubernetes returns them) for the estate."""
    problems: list[str] = []
    known = {f"kubernetes/{c.name}/" for c in estate.clusters}
    for name in sorted(files):
        if name.startswith("kubernetes/") and not any(name.startswith(k) for k in known):
            problems.append(f"policy file for an unknown cluster: {name}")
    jobs = []
    for cluster in estate.clusters:
        pods = cluster_pods(estate, cluster)
        policies, listing = policies_for(files, cluster.name)
        problems.extend(listing)
        for relative, doc in default_deny_policies(cluster).items():
            policies[f"judge-default-deny/{relative}"] = yaml.safe_dump(doc, sort_keys=True).encode()
        if not policies:
            # nca needs at least one policy (else it reads a live cluster): give it one that changes nothing
            policies["judge-noop/allow-all.yaml"] = yaml.safe_dump(_allow_all(cluster)).encode()
        jobs.append((cluster, pods, policies))
    # one nca process per cluster, run side by side
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        runs = [pool.submit(run_nca, binary, policies, resources(cluster, pods)) for cluster, pods, policies in jobs]
        for (cluster, pods, _), run in zip(jobs, runs, strict=True):
            edges, warnings = run.result()
            problems.extend(f"nca warns about {cluster.name}: {w}" for w in warnings)
            problems.extend(judge_cluster(cluster, pods, flows, edges))
            problems.extend(health_check_problems(estate, cluster, pods, edges))
    return problems


def _allow_all(cluster: Cluster) -> dict:
    """A policy that isolates the bystander of one namespace and allows it everything: a no-op."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "judge-allow-all", "namespace": sorted(cluster.namespaces)[0]},
        "spec": {"podSelector": {"matchLabels": dict(BYSTANDER_LABELS)}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{}], "egress": [{}]},
    }
