"""Generate a synthetic estate in the real spec format, realistic in shape, for benchmarks and scale tests.

python -m netgen.bench.synth --hosts 20000 --services 4000 --grants 100000 --regions 10 [--transit-gateway] --out DIR

Shape: per region two legacy VPCs and two cluster VPCs (one cluster each); accounts hold a few regions each.
Legacy hosts sit in one /20 block per role and VPC, allocated in sequence host groups are of varied sizes
(by role and VPC, by role across the estate, and hand-picked teams); a few hot services take most grants
(Zipf-like), from a few roles each. Services sit behind internal NLBs with their own security group, as
large estates do to keep groups under quota.
With --transit-gateway, the VPCs reach each other through transit gateways rather than a mesh of peerings (see
transit_gateways). The generator is deterministic for a given --seed, and the rest of the estate is the same
with or without gateways.
"""

from __future__ import annotations

import argparse
import random
from ipaddress import IPv4Network
from pathlib import Path

ROLES = ["database", "billing", "batch", "web", "cache", "queue", "search", "reporting", "auth", "files"]
HEADER = "apiVersion: netgen.dev/v1alpha1\n"


def _hexid(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.getrandbits(68):017x}"[: len(prefix) + 18]


def _doc(kind: str, name: str, body: str, namespace: str | None = None, labels: str = "") -> str:
    meta = f"metadata:\n  name: {name}\n"
    if namespace:
        meta += f"  namespace: {namespace}\n"
    if labels:
        meta += f"  labels: {labels}\n"
    return f"---\n{HEADER}kind: {kind}\n{meta}spec:\n{body}"


def transit_gateways(region_names: list[str], vpcs: list[tuple[str, str]], account: str, seed: int) -> list[str]:
    """The documents of one transit gateway per region, owned by account (a network account), with every VPC of
    its region attached, and a TransitGatewayPeering between the gateways of every two regions. vpcs: (name,
    region), in order. Two route tables per gateway, as a network team often has them: "vpcs", which every VPC
    attachment is associated with and propagates to (so pairs in one region need no static route), and
    "peerings", which every peering attachment of the gateway is associated with and the VPC attachments
    propagate to, all but the second legacy VPC of each region (kept off it, so traffic from other regions to it
    needs static routes on the far gateway too). Across a peering, routes are static (netgen writes them), to
    the destination VPCs' CIDR blocks (routeScope vpc-cidrs, as large estates write them; with exact routes, a
    gateway of the 100k estate would need some 600, over one stack's 500 resources).
    Ids come from a generator of their own, seeded from seed, so that the rest of the estate is unchanged."""
    rng = random.Random(f"transit-gateways-{seed}")
    docs, tables = [], {}
    for region in region_names:
        gateway, to_vpcs, to_peerings = _hexid(rng, "tgw"), _hexid(rng, "tgw-rtb"), _hexid(rng, "tgw-rtb")
        tables[region] = to_peerings
        attachments = ""
        for vpc in (name for name, vpc_region in vpcs if vpc_region == region):
            kept_off = vpc == f"legacy-{region}-1"  # the second legacy VPC of the region
            attachments += (f"    - vpc: {vpc}\n      attachmentId: {_hexid(rng, 'tgw-attach')}\n"
                            f"      routeTable: {to_vpcs}\n"
                            f"      propagatesTo: [{to_vpcs if kept_off else f'{to_vpcs}, {to_peerings}'}]\n")
        docs.append(_doc("TransitGateway", f"tgw-{region}", f"  account: {account}\n  region: {region}\n"
                         f"  transitGatewayId: {gateway}\n  routeScope: vpc-cidrs\n"
                         f"  routeTables: [{to_vpcs}, {to_peerings}]\n"
                         f"  attachments:\n{attachments}"))
    for i, requester in enumerate(region_names):
        for accepter in region_names[i + 1:]:
            docs.append(_doc("TransitGatewayPeering", f"{requester}-{accepter}",
                             f"  attachmentId: {_hexid(rng, 'tgw-attach')}\n"
                             f"  requester: {{transitGateway: tgw-{requester}, routeTable: {tables[requester]}}}\n"
                             f"  accepter: {{transitGateway: tgw-{accepter}, routeTable: {tables[accepter]}}}\n"))
    return docs


def _account(index: int, name: str) -> str:
    account_id = f"{100000000000 + index * 7919:012d}"
    return _doc("Account", name, f"  accountId: \"{account_id}\"\n"
                f"  peeringAcceptRoleArn: arn:aws:iam::{account_id}:role/netgen-peering-accepter\n")


def generate(hosts: int, services: int, grants: int, regions: int, seed: int = 7,
             transit_gateway: bool = False) -> dict[str, str]:
    """{relative file name: YAML text} of a valid synthetic estate; with transit_gateway, its VPCs attached to
    transit gateways of a network account of their own (acct-network, which holds no VPC; see
    transit_gateways)."""
    rng = random.Random(seed)
    region_names = [f"{area}-{n}" for n in range(1, 10) for area in ("us-east", "eu-west", "ap-south", "us-west",
                                                                      "eu-central", "ca-central")][:regions]
    files: dict[str, list[str]] = {}

    def add(path: str, text: str) -> None:
        files.setdefault(path, []).append(text)

    n_accounts = max(2, regions // 3 + 1)
    accounts = []
    for a in range(n_accounts):
        accounts.append(f"acct-{a:02d}")
        add("inventory/accounts.yaml", _account(a, accounts[-1]))
    legacy_vpcs, cluster_vpcs, all_vpcs = [], [], []
    index = 0
    for r, region in enumerate(region_names):
        for kind in ("legacy", "legacy", "k8s", "k8s"):
            name = f"{kind}-{region}-{index % 4}"
            net = IPv4Network(f"10.{index}.0.0/16")
            account = accounts[r % n_accounts] if kind == "legacy" else accounts[(r + 1) % n_accounts]
            tables = ", ".join(_hexid(rng, "rtb") for _ in range(2))
            add("inventory/vpcs.yaml", _doc("Vpc", name, f"  account: {account}\n  region: {region}\n"
                f"  vpcId: {_hexid(rng, 'vpc')}\n  cidrs: [{net}]\n  routeTables: [{tables}]\n"
                f"  routeScope: vpc-cidrs\n"))
            (legacy_vpcs if kind == "legacy" else cluster_vpcs).append((name, net, region))
            all_vpcs.append((name, region))
            index += 1
    if transit_gateway:
        add("inventory/accounts.yaml", _account(n_accounts, "acct-network"))
        for doc in transit_gateways(region_names, all_vpcs, "acct-network", seed):
            add("inventory/transit-gateways.yaml", doc)
    # legacy hosts, one address block per role
    host_names: dict[tuple[str, str], list[str]] = {}
    all_hosts: list[tuple[str, str, str]] = []
    for vpc, _net, _region in legacy_vpcs:
        for role in ROLES:
            restricted = "  restrictsEgress: true\n" if role == "database" else ""  # locked-down database subnets
            add("inventory/security-groups.yaml", _doc("SecurityGroup", f"{vpc}-{role}",
                f"  vpc: {vpc}\n  groupId: {_hexid(rng, 'sg')}\n  ruleQuota: 480\n{restricted}"))
    per_vpc = max(1, hosts // len(legacy_vpcs))
    count = 0
    for v, (vpc, net, _) in enumerate(legacy_vpcs):
        base = int(net.network_address)
        n = per_vpc if v < len(legacy_vpcs) - 1 else hosts - count
        for i in range(n):
            role_index = min(len(ROLES) - 1, i * len(ROLES) // n)
            role = ROLES[role_index]  # one subnet block per role, hosts allocated in sequence with rare gaps
            if i == 0 or role != ROLES[min(len(ROLES) - 1, (i - 1) * len(ROLES) // n)]:
                offset = role_index * 4096 + 256
            address = base + offset
            offset += 1
            host = f"h{count:06d}"
            count += 1
            ip = f"{address >> 24 & 255}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
            add(f"inventory/hosts-{vpc}.yaml", _doc("LegacyHost", host, f"  vpc: {vpc}\n  address: {ip}\n"
                f"  securityGroup: {vpc}-{role}\n", labels=f"{{role: {role}, vpc: {vpc}}}"))
            host_names.setdefault((vpc, role), []).append(host)
            all_hosts.append((host, vpc, role))
    # host groups of varied sizes
    groups = []
    for vpc, role in sorted(host_names):
        name = f"{role}-{vpc}"
        add("inventory/host-groups.yaml", _doc("HostGroup", name,
            f"  selector:\n    matchLabels: {{role: {role}, vpc: {vpc}}}\n"))
        groups.append(name)
    for role in ROLES:
        add("inventory/host-groups.yaml", _doc("HostGroup", f"all-{role}",
            f"  selector:\n    matchLabels: {{role: {role}}}\n"))
        groups.append(f"all-{role}")
    for t in range(max(1, hosts // 20)):
        size = min(len(all_hosts), int(rng.paretovariate(1.5)) + 1)
        start = rng.randrange(len(all_hosts))
        members = sorted({all_hosts[(start + k) % len(all_hosts)][0] for k in range(size)})
        add("inventory/host-groups.yaml", _doc("HostGroup", f"team-{t:05d}", f"  members: [{', '.join(members)}]\n"))
        groups.append(f"team-{t:05d}")
    # clusters, services, workloads
    namespaces = [f"ns-{n:02d}" for n in range(20)]
    clusters = []
    for vpc, net, _ in cluster_vpcs:
        b = int(net.network_address) >> 16
        name = f"cl-{vpc[4:]}"
        prefix = f"{b >> 8}.{b & 255}"
        add("inventory/security-groups.yaml", _doc("SecurityGroup", f"{name}-nodes",
            f"  vpc: {vpc}\n  groupId: {_hexid(rng, 'sg')}\n  ruleQuota: 480\n"))
        modes = "".join(f"    {ns}: {{ingress: {'default-deny' if i % 3 else 'open'}, egress: "
                        f"{'default-deny' if i % 2 else 'open'}}}\n" for i, ns in enumerate(namespaces))
        add("inventory/clusters.yaml", _doc("Cluster", name, f"  vpc: {vpc}\n  podCidrs: [{prefix}.128.0/17]\n"
            f"  nodeSubnetCidrs: [{prefix}.0.0/20, {prefix}.16.0/20]\n  securityGroup: {name}-nodes\n"
            f"  namespaces:\n{modes}"))
        clusters.append((name, vpc, prefix))
    service_refs, workload_refs = [], []
    for s in range(services):
        cluster, vpc, prefix = clusters[s % len(clusters)]
        ns = namespaces[(s // len(clusters)) % len(namespaces)]
        name = f"svc-{s:05d}"
        ports = "".join(f"    - {{name: p{p}, port: {8000 + p}}}\n" for p in range(1 + s % 3))
        restricted = "  restrictsEgress: true\n" if s % 4 == 0 else ""  # an NLB group that may reach only its targets
        add(f"inventory/services-{cluster}.yaml", _doc("SecurityGroup", f"{name}-nlb",
            f"  vpc: {vpc}\n  groupId: {_hexid(rng, 'sg')}\n  ruleQuota: 480\n{restricted}"))
        add(f"inventory/services-{cluster}.yaml", _doc("Service", name,
            f"  cluster: {cluster}\n  podSelector: {{app: {name}}}\n  ports:\n{ports}"
            f"  exposure:\n    type: load-balancer\n    subnetCidrs: [{prefix}.{32 + s % 4}.0/24]\n"
            f"    securityGroup: {name}-nlb\n", namespace=ns))
        service_refs.append(f"{ns}/{name}")
        if s % 2 == 0:
            wname = f"wl-{s:05d}"
            add(f"inventory/workloads-{cluster}.yaml", _doc("Workload", wname,
                f"  cluster: {cluster}\n  podSelector: {{app: {wname}}}\n", namespace=ns))
            workload_refs.append(f"{ns}/{wname}")
    # grants: a few hot services take most of the traffic
    weights = [1.0 / (i + 1) ** 0.6 for i in range(len(service_refs))]
    chosen = rng.choices(range(len(service_refs)), weights=weights, k=grants)
    role_groups = [g for g in groups if not g.startswith("team-")]
    team_groups = [g for g in groups if g.startswith("team-")]
    for g in range(grants):
        team = f"team-{g % 97:02d}"
        hot = chosen[g] < max(1, len(service_refs) // 100)
        if hot:  # a hot service is called by a few roles, estate-wide or VPC by VPC
            roles = {ROLES[(chosen[g] + k) % len(ROLES)] for k in range(3)}
            group = rng.choice([r for r in role_groups if r.split("-")[1 if r.startswith("all-") else 0] in roles])
        else:
            group = rng.choice(role_groups) if rng.random() < 0.05 else rng.choice(team_groups)
        if g % 10 < 7:
            body = (f"  owner: {team}\n  reason: synthetic access {g}\n  from: {{hostGroup: {group}}}\n"
                    f"  to: {{service: {service_refs[chosen[g]]}}}\n")
        else:
            workload = workload_refs[chosen[g] % len(workload_refs)]
            port = rng.choice((22, 443, 5432, 6379, 9092, "9000-9010"))
            body = (f"  owner: {team}\n  reason: synthetic access {g}\n  from: {{workload: {workload}}}\n"
                    f"  to: {{hostGroup: {group}, ports: [{port if isinstance(port, int) else repr(port)}]}}\n")
        add(f"access/{team}.yaml", _doc("Grant", f"g{g:06d}", body))
    return {path: "".join(docs).removeprefix("---\n") for path, docs in files.items()}


def write(out: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--services", type=int, default=400)
    parser.add_argument("--grants", type=int, default=10000)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--transit-gateway", action="store_true",
                        help="join the VPCs through transit gateways (one per region, peered across regions)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write(args.out, generate(args.hosts, args.services, args.grants, args.regions, args.seed, args.transit_gateway))


if __name__ == "__main__":
    main()
