"""What each NetworkPolicy enforcer really enforces of netgen's policies (Cluster.spec.networkPolicy).

netgen writes standard NetworkPolicies whose peers are ipBlocks without `except`, with numeric ports (ranges as
`endPort`), TCP and UDP only (NG121 refuses SCTP). Each enforcer's documented limits that such policies can
reach are checked here with stable codes, and compiled around where that can be done exactly. The limits, with
where each is documented or coded, and what netgen does about it:

Amazon VPC CNI network policy agent (`aws-vpc-cni`; github.com/aws/aws-network-policy-agent, and its controller
github.com/aws/amazon-network-policy-controller-k8s):
- NG210. At most 24 port/protocol entries per CIDR per pod, across all the policies that select the pod: the
  eBPF maps are LPM tries keyed by CIDR whose value holds `struct lpm_trie_val[MAX_PORT_PROTOCOL]`, with
  `#define MAX_PORT_PROTOCOL 24` (pkg/ebpf/c/tc.v4ingress.bpf.c, tc.v4egress.bpf.c); pkg/utils/utils.go
  ComputeTrieValue stops at 24 and logs "No.of unique port/protocol combinations supported for a single
  endpoint exceeded the supported maximum of 24", so the rest are dropped, silently for traffic. A packet is
  judged by the longest matching CIDR alone, so the agent copies into each CIDR the entries of every wider
  (non-/32) CIDR containing it (pkg/fwruleprocessor/fw_rule_processor.go,
  checkAndDeriveL4InfoFromAnyMatchingCIDRsTrie) and drops only exact duplicates (mergeDuplicateL4Info); EKS's
  user guide (cni-network-policy.html, "Considerations"): "the maximum number of combinations of ports and
  protocols for a single IP address range (CIDR) is 24 across all of your network policies". netgen counts
  as the agent does, over netgen's policies. Compiled around as far as exactness allows: a policy's rules are
  one per set of ports (a port being a protocol and a number), so its CIDRs are disjoint and each carries its
  ports merged into ranges, the fewest entries an address can have. Splitting a pod's entries over several
  policies would not help (the count is across policies), nor would splitting a CIDR (each part keeps them).
- Named ports with an ipBlock are resolved on ingress only (the controller's pkg/resolvers/endpoints.go,
  computeEgressEndpoints: "named ports excluded since there's no specific destination to resolve them
  against"): netgen writes numeric ports only.
- An `except` becomes a deny-all entry for that CIDR (fw_rule_processor.go, addDenyAllL4Entry), which can
  override another rule's allow of the same addresses: netgen never writes `except`.
- Pods without metadata.ownerReferences (pods no controller owns) get no policy (EKS user guide, ibid.): netgen
  cannot see pods; a Workload or Service must be pods of a Deployment, StatefulSet, DaemonSet or Job.
- A default-deny egress policy also cuts DNS and the instance metadata service (169.254.169.254) unless they
  are allowed: netgen writes egress policies only where Cluster.spec.namespaces says the namespace already runs
  default-deny egress, so nothing netgen writes cuts them; whoever runs that default-deny allows them.

Cilium (`cilium`; github.com/cilium/cilium):
- NG211. "By default, CIDR-based selectors do not match in-cluster entities (pods or nodes)" unless Cilium runs
  with --policy-cidr-match-mode=nodes, from 1.15 (Documentation/security/policy/layer3.rst, "Selecting nodes
  with CIDR / ipBlock"; Documentation/network/kubernetes/policy.rst): an ipBlock of the node subnets, which
  netgen writes where pods see a node's address (node-port, externalTrafficPolicy Cluster), matches nothing.
  Declare policyCidrMatchMode: [nodes] once Cilium runs so.
- Port ranges (endPort) are enforced from 1.16 (cilium/cilium#32389, docs #33389); before, Cilium accepted
  them and enforced `port` alone (cilium/cilium#28684; policy.rst lists "Port ranges (endPort)" among the
  missing NetworkPolicy features). Compiled around, exactly: for a Cilium cluster older than 1.16, or whose
  version is not stated, each port of a range is written as an entry of its own (pkg/k8s/network_policy.go
  parsePorts makes one PortRule per entry, so the 40 ports per PortRule of pkg/policy/api/rule_validation.go
  do not apply).
- NG212. The policy map holds 16k "allowed identity + port + protocol pairs for specific endpoint"
  (Documentation/network/ebpf/maps.rst); every CIDR of a policy is at least one identity, and a port range
  takes one entry per aligned power-of-two block of ports (pkg/policy/l4.go, masked port prefixes), a
  written-out range one per port. netgen counts that lower bound over its policies. Compiled around as far as
  it goes: a Cilium cluster's rules hold the fewest (CIDR, port range) pairs (policy_shape), CIDRs of different
  rules overlapping where that takes fewer (a /28 allowed 9 and one of its hosts 8-10: 2 pairs, not 5).
- SCTP is not supported (policy.rst): netgen writes none.

Calico (`calico`; github.com/projectcalico/calico): endPort becomes a Calico port range and an ipBlock a `nets`
match of any address, nodes included (libcalico-go/lib/backend/k8s/conversion/conversion.go, k8sPortToCalico,
k8sPeerToCalicoSelectors), with no per-CIDR entry limit: none of the above applies, and its rules hold the
fewest (CIDR, port range) pairs as Cilium's do.

Which pods a policy's limits concern: netgen cannot see pods, so for each distinct selector it counts the pods
carrying exactly those labels, which every netgen policy whose selector is within it also selects. Pods that
carry more labels may collect more policies: the counts are lower bounds, and a diagnostic is never wrong.
"""

from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Network

from netgen.addresses import interval, merge_ports
from netgen.diagnostics import Location, Reporter
from netgen.model import Cluster, Enforcer, Estate
from netgen.resolve import Flow
from netgen.targets.policies import PolicyKey, policy_entries, policy_rules

AWS_PORT_PROTOCOLS = 24  # MAX_PORT_PROTOCOL of the agent's eBPF programs
CILIUM_POLICY_MAP = 16_384  # policy map entries per endpoint (Cilium's default)
CILIUM_PORT_RANGES = (1, 16)  # the first Cilium that enforces endPort
CHECKED = ("aws-vpc-cni", "cilium")  # the enforcers with limits netgen's policies can reach


def expands_port_ranges(enforcer: Enforcer | None) -> bool:
    """Whether the cluster's policies write each port of a range as an entry of its own (Cilium before 1.16)."""
    return (enforcer is not None and enforcer.type == "cilium"
            and (enforcer.version is None or enforcer.version < CILIUM_PORT_RANGES))


def policy_shape(enforcer: Enforcer | None) -> dict[str, bool]:
    """How policy_rules writes a cluster's rules (its keyword arguments): ranges port by port where endPort is
    ignored; the fewest (CIDR, port range) pairs, CIDRs overlapping, where the enforcer keeps no count per CIDR
    (Cilium, Calico), else disjoint CIDRs (the VPC CNI's agent, or an enforcer not declared)."""
    return {"single_ports": expands_port_ranges(enforcer),
            "fewest_pairs": enforcer is not None and enforcer.type in ("cilium", "calico")}


def check_enforcers(estate: Estate, flows: list[Flow], reporter: Reporter) -> None:
    """Report what the clusters' enforcers would not enforce of netgen's policies (NG210-NG212)."""
    clusters = {c.name: c for c in estate.clusters if c.enforcer is not None and c.enforcer.type in CHECKED}
    if not clusters:
        return
    # (computed again beside the Kubernetes target's own pass, in this process: only for these clusters)
    wanted, _ = policy_entries(estate, flows, set(clusters))
    rules = {key: policy_rules(entries, "peers", **policy_shape(clusters[key[0].cluster].enforcer))
             for key, entries in wanted.items()}
    owners = _owners(estate)
    for group, keys in _pod_groups(rules).items():
        cluster = clusters[group[0]]
        first = keys[0]
        where = owners[(first[0].cluster, first[0].namespace, first[2], first[1])]
        names = ", ".join(sorted({f"{key[2]} ({key[1]})" for key in keys}))
        pods = f"pods of {group[1]}/{{{', '.join(f'{k}={v}' for k, v in group[2])}}} in cluster '{cluster.name}'"
        if cluster.enforcer.type == "aws-vpc-cni":
            for direction in ("ingress", "egress"):
                worst = _agent_entries([rules[key] for key in keys if key[1] == direction])
                if worst and worst[0] > AWS_PORT_PROTOCOLS:
                    count, cidr = worst
                    reporter.add(where, "NG210",
                                 f"{pods} (policies {names}) would need {count} {direction} port/protocol entries "
                                 f"for {cidr}; the Amazon VPC CNI's network policy agent keeps {AWS_PORT_PROTOCOLS} "
                                 "per CIDR per pod across all policies and drops the rest: grant fewer ports, or "
                                 "adjacent ones (a range is one entry)")
        else:
            single_ports = expands_port_ranges(cluster.enforcer)
            count = _cilium_entries([(key[1], rules[key]) for key in keys], single_ports)
            if count > CILIUM_POLICY_MAP:
                hint = (" (ranges are written port by port: declare networkPolicy.version once Cilium is 1.16 or "
                        "later, which enforces them as ranges)" if single_ports else "")
                reporter.add(where, "NG212",
                             f"{pods} (policies {names}) would need at least {count} entries in Cilium's policy "
                             f"map, over its {CILIUM_POLICY_MAP} per endpoint{hint}: grant fewer addresses or "
                             "ports")
    _cilium_nodes(estate, flows, clusters, reporter)


def _owners(estate: Estate) -> dict[tuple[str, str, str, str], Location]:
    """Where to report a policy, by (cluster, namespace, owner, direction): its service (ingress) or its workload
    (egress)."""
    found = {(s.cluster.name, s.namespace, s.name, "ingress"): s.loc for s in estate.services}
    found.update({(w.cluster.name, w.namespace, w.name, "egress"): w.loc for w in estate.workloads})
    return found


def _pod_groups(rules: dict[PolicyKey, list[dict]]) -> dict[tuple, list[PolicyKey]]:
    """{(cluster, namespace, selector): the policies that select the pods carrying exactly those labels}."""
    selectors: dict[tuple[str, str], set[tuple]] = defaultdict(set)
    for pods, _, _ in rules:
        selectors[(pods.cluster, pods.namespace)].add(pods.selector)
    groups: dict[tuple, list[PolicyKey]] = {}
    for (cluster, namespace), found in selectors.items():
        for selector in sorted(found):
            labels = set(selector)
            groups[(cluster, namespace, selector)] = sorted(
                key for key in rules if key[0].cluster == cluster and key[0].namespace == namespace
                and set(key[0].selector) <= labels)
    return groups


def _entries_of(rule: dict) -> set[tuple[str, int, int]]:
    return {(p["protocol"], p["port"], p.get("endPort", 0)) for p in rule["ports"]}


def _agent_entries(policies: list[list[dict]]) -> tuple[int, str] | None:
    """(the most port/protocol entries a CIDR key gets, that CIDR) as the VPC CNI's agent computes them for a pod
    that the policies (their rules) select: a key's own entries, from every rule naming it, and those of every
    wider, non-/32 key containing it (fw_rule_processor.go)."""
    own: dict[IPv4Network, set] = defaultdict(set)
    for rules in policies:
        for rule in rules:
            entries = _entries_of(rule)
            for peer in rule["peers"]:
                own[IPv4Network(peer["ipBlock"]["cidr"])] |= entries
    if not own:
        return None
    wide = [(net, interval(net), entries) for net, entries in own.items() if net.prefixlen < 32]
    worst: tuple[int, str] | None = None
    for net, entries in own.items():
        first, last = interval(net)
        derived = set(entries)
        for other, (a, b), more in wide:
            if other.prefixlen < net.prefixlen and a <= first and last <= b:
                derived |= more
        if worst is None or (len(derived), str(net)) > worst:
            worst = (len(derived), str(net))
    return worst


def _port_blocks(first: int, last: int) -> int:
    """How many aligned power-of-two blocks of ports cover first..last exactly (a masked port prefix each)."""
    count = 0
    while first <= last:
        size = (first & -first).bit_length() - 1 if first else 16
        span = (last - first + 1).bit_length() - 1
        first += 1 << min(size, span)
        count += 1
    return count


def _cilium_entries(policies: list[tuple[str, list[dict]]], single_ports: bool) -> int:
    """A lower bound of the policy-map entries of a pod that the policies ((direction, rules)) select: per
    direction and CIDR (one identity at least), the entries of the ports allowed it, merged."""
    ports: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for direction, rules in policies:
        for rule in rules:
            entries = _entries_of(rule)
            for peer in rule["peers"]:
                for protocol, first, last in entries:
                    ports[(direction, peer["ipBlock"]["cidr"], protocol)].append((first, last or first))
    total = 0
    for ranges in ports.values():
        for first, last in merge_ports(ranges):
            total += last - first + 1 if single_ports else _port_blocks(first, last)
    return total


def _cilium_nodes(estate: Estate, flows: list[Flow], clusters: dict[str, Cluster], reporter: Reporter) -> None:
    """NG211: pods that must admit node addresses, on a Cilium whose ipBlocks do not select nodes."""
    services = {s.ref: s for s in estate.services}
    reported: set[str] = set()
    for flow in flows:
        pods = flow.destination.pods
        if flow.source.kind != "nodes" or pods is None or pods.cluster not in clusters:
            continue
        cluster = clusters[pods.cluster]
        if (cluster.enforcer.type != "cilium" or cluster.enforcer.cidr_matches_nodes
                or cluster.namespaces[pods.namespace].ingress != "default-deny" or flow.destination.name in reported):
            continue
        reported.add(flow.destination.name)
        service = services[flow.destination.name]
        reporter.add(service.loc, "NG211",
                     f"service '{service.ref}' is reached from the nodes of cluster '{cluster.name}' (node-port, "
                     f"externalTrafficPolicy Cluster: pods see a node's address), and Cilium's ipBlock peers do not "
                     f"select node addresses unless it runs with --policy-cidr-match-mode=nodes (Cilium 1.15 or "
                     f"later): set it and declare networkPolicy.policyCidrMatchMode: [nodes] on the cluster, or "
                     f"use externalTrafficPolicy Local")
