"""An independent judge of netgen's AWS output: deploy it into moto, then decide reachability from EC2 answers.

Three parts, in the order a reader needs them:

1. The evaluator (`Ec2View`, `reachable`, `groups_at`) and 2. `describe_estate` (collect EC2 answers from any
   number of (account, region) clients) live in netgen/aws/reachability.py, which `netgen verify` runs too: the
   judge and the command are one code. It reads nothing but boto3 EC2 API answers and imports nothing from
   netgen's model, so it judges what AWS would enforce rather than what netgen meant. What it models and what
   it does not is written there.
3. The moto harness: `MotoCloud` (one moto server, many accounts), `seed_estate` (create the inventory's
   VPCs, subnets, route tables, groups and hosts) and `rewrite_spec_ids` (point a copy of the specs at moto's
   ids) live in netgen/bench/moto.py, which `make bench-deploy` uses too; here, for the tests only,
   `moto_server` (an in-process server), `deploy` (run the deploy plan through CloudFormation) and
   `build_lab` (all of it, with `netgen build` in between, for any spec folder).
4. Probes, used by the tests only: concrete packets derived from a resolved estate's flow list (`flow_probes`,
   `unintended_probes`), asked of the evaluator (`judge`). Shared by tests/test_judge_aws.py (the example
   estate) and tests/test_judge_aws_generated.py (hypothesis estates). The flow list (netgen.resolve) is where
   the expectations come from; the verdicts never see netgen's model.

moto gaps found while building the harness (moto 5.2; see `deploy` for how each is handled):
- CloudFormation's AWS::EC2::VPCPeeringConnection looks PeerVpcId up in the stack's own account and region and
  ignores PeerRegion and PeerOwnerId: CreateStack fails with InvalidVpcID.NotFound for every cross-region or
  cross-account peering. The EC2 API (CreateVpcPeeringConnection) does honour both.
- CloudFormation never auto-accepts a peering, even inside one account and region: it stays
  pending-acceptance. The deploy plan already says to accept pending peerings through the EC2 API.
- CloudFormation has no model for AWS::EC2::SecurityGroupEgress: the resource is skipped with a warning, the
  stack still reaches CREATE_COMPLETE and no egress rule exists. Likewise AWS::EC2::TransitGatewayRoute: `deploy`
  creates those with CreateTransitGatewayRoute. Transit gateways' other gaps are listed in netgen/transit.py
  (a static route's attachment is made readable by the servers here: netgen/bench/moto_transit.py).
- PeerRoleArn is ignored (moto has no cross-account authorisation); acceptance is done as the accepter account.
- Per the project's design notes (not re-checked here): moto drops descriptions of inline security-group rules
  (netgen emits standalone rules, whose descriptions moto keeps).
- Found while building `netgen deploy` (netgen/aws/deploy/, whose moto.py works around them; tests/test_aws_*.py):
  a stack update that removes or modifies a SecurityGroupIngress or a Route leaves the old one in EC2 (and does
  not create the modified one); delete_stack leaves rules, routes and peerings behind; the template's Tags of
  a peering are replaced by the aws:cloudformation:* tags; a change set whose execution fails (a GroupId that
  does not exist) raises from ExecuteChangeSet and leaves the stack in REVIEW_IN_PROGRESS with no FAILED event
  (AWS rolls back to ROLLBACK_COMPLETE and records the reason in the stack events); IpProtocol 'bogus' is
  accepted. This harness resets moto through /moto-api/reset instead of deleting stacks.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from netgen.aws.reachability import (  # noqa: F401  (re-exported: the judge's tests import them from here)
    Ec2View,
    Verdict,
    describe_estate,
    groups_at,
    reachable,
)
from netgen.bench.moto import (  # noqa: F401  (re-exported: the tests import the harness from here)
    MotoCloud,
    Seeded,
    SeededVpc,
    rewrite_spec_ids,
    seed_estate,
    subnet_cidrs,
)

# ---------------------------------------------------------------------------------------------------------------
# 3. The moto harness (tests only; MotoCloud, seed_estate and rewrite_spec_ids are in netgen/bench/moto.py).
# ---------------------------------------------------------------------------------------------------------------


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (any free port) with dummy credentials and no AWS config; yields its URL.

    Multi-account needs the `x-moto-account-id` header, so MOTO_ACCOUNT_ID (which overrides it) is unset."""
    import pytest
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.setenv(key, "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.delenv("AWS_PROFILE", raising=False)
        env.delenv("MOTO_ACCOUNT_ID", raising=False)
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # hosts use a made-up image id; skip loading AMIs
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from netgen.bench.moto_server import lighter_moto
        from netgen.bench.moto_transit import faithful_transit_gateway_routes

        faithful_transit_gateway_routes()  # (static routes' attachments readable, as on AWS)
        lighter_moto()  # (the same answers for less CPU)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def _replace_refs(node: Any, ids: Mapping[str, str]) -> Any:
    """Replace {"Ref": logical} by the physical id for the logical ids in `ids`."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in ids:
            return ids[node["Ref"]]
        return {k: _replace_refs(v, ids) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, ids) for v in node]
    return node


@dataclass
class Deployment:
    stacks: list[str] = field(default_factory=list)  # stack names, in the order they were created
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> output -> value
    peerings: dict[str, str] = field(default_factory=dict)  # peering logical id -> pcx id
    peerings_created_outside_cloudformation: list[str] = field(default_factory=list)
    egress_rules_applied_outside_cloudformation: int = 0
    gateway_routes_created_outside_cloudformation: int = 0
    workarounds: dict[str, list[str]] = field(default_factory=dict)  # stack -> logical ids moved out of its template


def deploy(cloud: MotoCloud, out_dir: Path, mutate_template: Callable[[str, dict], None] | None = None,
           mutate_plan: Callable[[dict], None] | None = None) -> Deployment:
    """Deploy `netgen build` output (out_dir/aws) into moto the way a deploy command would: the stacks in the
    plan's order, each with the parameters the plan takes from earlier stacks' outputs, then every peering the
    stack requests made active (pending ones accepted in the accepter account and region through EC2).

    mutate_template(stack name, template) and mutate_plan(plan) may alter the compiled output first (mutation
    tests). Two moto workarounds, both applied to the already-mutated template and both visible in the result:

    - A peering whose accepter is in another region or account cannot be created by moto's CloudFormation
      (PeerRegion and PeerOwnerId are ignored). It is created through CreateVpcPeeringConnection in the
      stack's account and region with the template's own properties (VpcId, PeerVpcId, PeerRegion,
      PeerOwnerId), removed from the template, and every Ref to it (routes, outputs) replaced by its id. Real
      CloudFormation creates it from the template; only the creation step moves, the id flows the same way.
    - AWS::EC2::SecurityGroupEgress resources, which moto's CloudFormation silently skips, are removed from the
      template and applied with AuthorizeSecurityGroupEgress (same group, protocol, ports, CIDR, description)
      once the stack is CREATE_COMPLETE; so are AWS::EC2::TransitGatewayRoute resources, with
      CreateTransitGatewayRoute (same route table, destination and attachment).

    The plan is read generically: any number of stacks, in its order. netgen emits a network stack (peerings,
    routes) and one stack per security group (its rules) per account and region, so the peering workaround
    applies to network stacks and the egress one to group stacks; `Deployment.workarounds` records which stack
    each moved resource came from. A template left with no resource (a group stack holding only egress rules)
    is deployed with a placeholder resource, as CloudFormation needs at least one.
    """
    aws = out_dir / "aws"
    plan = json.loads((aws / "deploy-plan.json").read_text("utf-8"))
    if mutate_plan:
        mutate_plan(plan)
    result = Deployment()
    for stack in plan["stacks"]:
        name, account, region = stack["stack"], stack["account"], stack["region"]
        template = json.loads((out_dir / stack["template"]).read_text("utf-8"))
        if mutate_template:
            mutate_template(name, template)
        template = copy.deepcopy(template)
        ec2 = cloud.ec2(account, region)
        parameters = {key: result.outputs[src["stack"]][src["output"]] for key, src in stack["parameters"].items()}
        resources = template["Resources"]
        direct: dict[str, str] = {}
        for logical, resource in list(resources.items()):
            if resource["Type"] != "AWS::EC2::VPCPeeringConnection":
                continue
            props = resource["Properties"]
            peer_region, peer_owner = props.get("PeerRegion", region), props.get("PeerOwnerId", account)
            if peer_region == region and peer_owner == account:
                continue
            request = {"VpcId": props["VpcId"], "PeerVpcId": props["PeerVpcId"], "PeerRegion": peer_region,
                       "PeerOwnerId": peer_owner}
            pcx = ec2.create_vpc_peering_connection(**request)["VpcPeeringConnection"]
            direct[logical] = pcx["VpcPeeringConnectionId"]
            result.peerings_created_outside_cloudformation.append(logical)
            result.workarounds.setdefault(name, []).append(logical)
            del resources[logical]
        template = _replace_refs(template, direct)
        egress = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::SecurityGroupEgress"}
        gateway_routes = {k: r for k, r in template["Resources"].items()
                          if r["Type"] == "AWS::EC2::TransitGatewayRoute"}
        for logical in [*egress, *gateway_routes]:
            del template["Resources"][logical]
            result.workarounds.setdefault(name, []).append(logical)
        if not template["Resources"]:
            template["Resources"] = {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
        cfn = cloud.client("cloudformation", account, region)
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())])
        described = cfn.describe_stacks(StackName=name)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE", (name, described["StackStatus"])
        result.stacks.append(name)
        result.outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        for resource in egress.values():
            props = _replace_refs(resource["Properties"], parameters)
            ec2.authorize_security_group_egress(GroupId=props["GroupId"], IpPermissions=[{
                "IpProtocol": props["IpProtocol"], "FromPort": props["FromPort"], "ToPort": props["ToPort"],
                "IpRanges": [{"CidrIp": props["CidrIp"], "Description": props.get("Description", "")}]}])
            result.egress_rules_applied_outside_cloudformation += 1
        for resource in gateway_routes.values():
            props = _replace_refs(resource["Properties"], parameters)
            ec2.create_transit_gateway_route(**{k: props[k] for k in (
                "TransitGatewayRouteTableId", "DestinationCidrBlock", "TransitGatewayAttachmentId") if k in props})
            result.gateway_routes_created_outside_cloudformation += 1
        for request in stack["peerings"]:
            logical = request["peering"]
            pcx_id = direct.get(logical) or cfn.describe_stack_resource(
                StackName=name, LogicalResourceId=logical)["StackResourceDetail"]["PhysicalResourceId"]
            result.peerings[logical] = pcx_id
            accepter = cloud.ec2(request["accepterAccount"], request["accepterRegion"])
            status = accepter.describe_vpc_peering_connections(
                VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"][0]["Status"]["Code"]
            if status == "pending-acceptance":
                accepter.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    return result


@dataclass
class Lab:
    seeded: Seeded
    out: Path
    deployment: Deployment
    view: Ec2View


Mutation = Callable[[Seeded, str, dict], None]
NETGEN = Path(sys.executable).parent / "netgen"


def build_lab(cloud: MotoCloud, specs: Path, estate: Any, workdir: Path, as_of: date,
              mutate_template: Mutation | None = None, mutate_plan: Callable[[dict], None] | None = None) -> Lab:
    """Seed the estate (netgen's validated Estate of `specs`) into moto, rewrite a copy of `specs` with moto's ids
    (under workdir/specs), `netgen build` it (into workdir/generated), deploy the plan and snapshot EC2.
    mutate_template(seeded, stack, template) may damage a template first."""
    seeded = seed_estate(cloud, estate)
    rewritten = rewrite_spec_ids(specs, workdir / "specs", seeded.substitutions)
    out = workdir / "generated"
    build = subprocess.run([str(NETGEN), "build", "--specs", str(rewritten), "--out", str(out),
                            "--as-of", as_of.isoformat()], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr

    def mutate(stack: str, template: dict) -> None:
        if mutate_template is not None:
            mutate_template(seeded, stack, template)

    deployment = deploy(cloud, out, mutate, mutate_plan)
    return Lab(seeded, out, deployment, cloud.view(judged_places(seeded, estate)))


def judged_places(seeded: Seeded, estate: Any) -> list[tuple[str, str]]:
    """The (account, region) places the judge reads: the seeded VPCs' and the transit gateways' (a gateway's
    owner, a network account, may own no VPC; only the owner sees its route tables)."""
    gateways = {(g.account.account_id, g.region) for g in getattr(estate, "transit_gateways", ())}
    return sorted(set(seeded.places) | gateways)


# ---------------------------------------------------------------------------------------------------------------
# 4. Probes (tests only): concrete packets, with the expectation taken from the flow list.
#
# `resolved` below is netgen's Resolved (its .estate and .flows); only names, addresses and ports are read.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    kind: str  # flow | health-check | other-source | other-destination | other-port | other-service | reverse |
    # nlb-udp
    about: str  # the flow or grant it was derived from
    src_ip: IPv4Address
    src_vpc: str  # VPC names (inventory)
    dst_ip: IPv4Address
    dst_vpc: str
    protocol: str
    port: int
    src_groups: tuple[str, ...] | None  # group names; None: no security group on that side
    dst_groups: tuple[str, ...] | None

    def __str__(self) -> str:
        return (f"[{self.kind}] {self.src_ip} ({self.src_vpc}) -> {self.dst_ip}:{self.port}/{self.protocol} "
                f"({self.dst_vpc}) from {self.about}")


def representative(net: IPv4Network) -> IPv4Address:
    """A concrete address of a CIDR: the address itself for a /32, else the first one AWS assigns (.4)."""
    if net.prefixlen == 32:
        return net.network_address
    return net.network_address + (4 if net.prefixlen <= 28 else 1)


def groups_of(endpoint: Any) -> tuple[str, ...] | None:
    return (endpoint.security_group,) if endpoint.security_group else None


def sender_groups(estate: Any, flow: Any) -> tuple[str, ...] | None:
    """Groups of the interface that actually sends the flow's packets.

    When the packet's source address is not in the VPC it is sent in (client IP preserved through an NLB, or a
    NodePort with externalTrafficPolicy Local), the sender is the service's front inside the cluster VPC: the
    NLB's interface or the node.
    """
    if flow.source.vpc == flow.path.source_vpc:
        return groups_of(flow.source)
    service = next(s for s in estate.services if s.ref == flow.destination.name)
    if service.exposure.type == "load-balancer":
        group = service.exposure.security_group
        return (group.name,) if group else None
    return (service.cluster.security_group.name,)


@dataclass(frozen=True)
class Place:
    """Something with an address in the estate: a host, or a representative of a node, pod or NLB subnet."""

    ip: IPv4Address
    vpc: str
    groups: tuple[str, ...] | None
    what: str


def places(estate: Any) -> tuple[Place, ...]:
    found = [Place(h.address, h.vpc.name, (h.security_group.name,), f"host/{h.name}") for h in estate.hosts]
    for cluster in estate.clusters:
        group = (cluster.security_group.name,)
        found += [Place(representative(n), cluster.vpc.name, group, f"nodes/{cluster.name}")
                  for n in cluster.node_cidrs]
        found += [Place(representative(n), cluster.vpc.name, group, f"pods/{cluster.name}")
                  for n in cluster.pod_cidrs]
    for service in estate.services:
        if service.exposure.type == "load-balancer":
            sg = service.exposure.security_group
            found += [Place(representative(n), service.cluster.vpc.name, (sg.name,) if sg else None,
                            f"nlb/{service.ref}") for n in service.exposure.subnet_cidrs]
    return tuple(found)


def flow_probes(estate: Any, flow: Any) -> list[Probe]:
    """The flow itself, at a representative address of every source and destination CIDR, first and last port."""
    ports = sorted({flow.ports.first, flow.ports.last})
    return [Probe("flow", flow.line(), representative(s), flow.path.source_vpc, representative(d),
                  flow.path.destination_vpc, flow.ports.protocol.lower(), port, sender_groups(estate, flow),
                  groups_of(flow.destination))
            for s in flow.source.addresses for d in flow.destination.addresses for port in ports]


def unintended_probes(resolved: Any) -> list[Probe]:
    """Packets close to the granted ones that no flow allows (filtered by `granted` and `indistinguishable`)."""
    estate, flows = resolved.estate, resolved.flows
    around = places(estate)
    probes: list[Probe] = []
    for flow in flows:
        base = flow_probes(estate, flow)
        forwarded = flow.source.vpc != flow.path.source_vpc
        # Other sources in the source's own VPC: other hosts, nodes, pods, NLB subnets.
        for place in around:
            if place.vpc != flow.source.vpc or any(place.ip in n for n in flow.source.addresses):
                continue
            if forwarded and not place.what.startswith("host/"):
                continue
            for p in base:
                probes.append(Probe("other-source", f"{place.what} instead of: {flow.line()}", place.ip, p.src_vpc,
                                    p.dst_ip, p.dst_vpc, p.protocol, p.port,
                                    p.src_groups if forwarded else place.groups, p.dst_groups))
        # Other destinations in the destination's VPC, on the same port.
        for place in around:
            if place.vpc != flow.destination.vpc or any(place.ip in n for n in flow.destination.addresses):
                continue
            for p in base:
                probes.append(Probe("other-destination", f"{place.what} instead of: {flow.line()}", p.src_ip,
                                    p.src_vpc, place.ip, flow.destination.vpc, p.protocol, p.port, p.src_groups,
                                    place.groups))
        # Other ports: just outside the range, and one random port.
        chance = random.Random(flow.line())
        for p in base[:1] + base[-1:]:
            for port in (flow.ports.first - 1, flow.ports.last + 1, chance.randint(1, 65535)):
                if 1 <= port <= 65535 and not flow.ports.first <= port <= flow.ports.last:
                    probes.append(Probe("other-port", flow.line(), p.src_ip, p.src_vpc, p.dst_ip, p.dst_vpc,
                                        p.protocol, port, p.src_groups, p.dst_groups))
        # The reverse direction, each side sending from its own VPC.
        for p in base:
            probes.append(Probe("reverse", flow.line(), p.dst_ip, flow.destination.vpc, p.src_ip, flow.source.vpc,
                                p.protocol, p.port, groups_of(flow.destination), groups_of(flow.source)))
    probes += nlb_udp_probes(estate)
    # Every host to every service front it could dial, on the front's port.
    for host in estate.hosts:
        for service in estate.services:
            exposure, cluster = service.exposure, service.cluster
            for port in service.ports:
                if exposure.type == "load-balancer":
                    sg = exposure.security_group
                    fronts, number, groups = exposure.subnet_cidrs, port.port, (sg.name,) if sg else None
                elif exposure.type == "node-port":
                    fronts, number, groups = cluster.node_cidrs, port.node_port, (cluster.security_group.name,)
                else:
                    fronts, number, groups = cluster.pod_cidrs, port.target_port, (cluster.security_group.name,)
                assert number is not None
                for net in fronts:
                    probes.append(Probe("other-service", f"host/{host.name} -> {service.ref} {port.name}",
                                        host.address, host.vpc.name, representative(net), cluster.vpc.name,
                                        port.protocol.lower(), number, (host.security_group.name,), groups))
    return probes


def health_check_probes(estate: Any) -> list[Probe]:
    """What an NLB really sends its targets, taken from the estate, not from the flows: for every port a grant
    opens on a service behind an NLB, health checks over TCP (never UDP, whatever the port carries) from every
    NLB subnet to the pods, on the service's healthCheckPort (default: the port's target port)."""
    probes = []
    for grant in estate.grants:
        service = grant.service
        if service is None or service.exposure.type != "load-balancer":
            continue
        exposure, cluster = service.exposure, service.cluster
        sg = (exposure.security_group.name,) if exposure.security_group else None
        for port in grant.service_ports:
            number = exposure.health_check_port or port.target_port
            probes += [Probe("health-check", f"{service.ref} {port.name} ({grant.name})", representative(net),
                             cluster.vpc.name, representative(pods), cluster.vpc.name, "tcp", number, sg,
                             (cluster.security_group.name,))
                       for net in exposure.subnet_cidrs for pods in cluster.pod_cidrs]
    return probes


def nlb_udp_probes(estate: Any) -> list[Probe]:
    """UDP from an NLB's own addresses to its targets: never needed (UDP keeps the client's address, and health
    checks are TCP), so never open unless a flow grants it."""
    probes = []
    for service in estate.services:
        exposure, cluster = service.exposure, service.cluster
        if exposure.type != "load-balancer":
            continue
        sg = (exposure.security_group.name,) if exposure.security_group else None
        probes += [Probe("nlb-udp", f"{service.ref} {port.name}", representative(net), cluster.vpc.name,
                         representative(pods), cluster.vpc.name, "udp", port.target_port, sg,
                         (cluster.security_group.name,))
                   for port in service.ports if port.protocol == "UDP"
                   for net in exposure.subnet_cidrs for pods in cluster.pod_cidrs]
    return probes


def granted(flows: Iterable[Any], probe: Probe) -> bool:
    """Some flow allows exactly this packet: same VPCs, addresses inside its CIDRs, protocol and port."""
    return any(f.ports.protocol.lower() == probe.protocol and f.ports.first <= probe.port <= f.ports.last
               and f.path.source_vpc == probe.src_vpc and f.path.destination_vpc == probe.dst_vpc
               and any(probe.src_ip in n for n in f.source.addresses)
               and any(probe.dst_ip in n for n in f.destination.addresses) for f in flows)


def indistinguishable(flows: Iterable[Any], probe: Probe) -> str | None:
    """Why AWS cannot tell this packet from a granted one, if it cannot.

    - The destination has no security group (an NLB created without one): nothing at the AWS layer filters
      by source or port there; only routes do.
    - The destination shares its security group with a granted destination of the same source and port
      (e.g. settlement-to-pgbouncer-temp opens 6432 on legacy-db-use1, which db-use1-02 also carries): a
      group's rules cannot name a destination address.
    - The packet goes directly into a group to which a load balancer relays the client's packets with the
      client's address preserved (so the group admits the client's address on that port, for every member:
      the pods and the nodes of a cluster share one group), and the route from the client's VPC to the
      destination is one another flow needs (to it, or back from it for replies): neither a security group nor
      a route can tell the direct packet from the relayed one. Found by the generated estates
      (tests/test_judge_aws_generated.py): an NLB with UDP (always client-preserving) or preserveClientIp, and
      in the client's VPC a route to the pods (replies to a workload dialling a host from pod addresses) or to
      the nodes (a NodePort grant of another host).
    - The packet goes to a load balancer's address inside one VPC (whose local route always carries it), and the
      balancer's group admits the source address on that port for a granted flow from another VPC: a group's
      rules cannot tell where a source address sends from. Found by the generated estates: an NLB preserving
      client IPs, whose listener port is also a target port, "relays" the client's address to another address
      of its own subnets (the listener rule admits it). A balancer sends only to its targets, and is never one.
    """
    if probe.dst_groups is None:
        return "destination has no security group"
    flows = tuple(flows)
    for f in flows:
        if (f.ports.protocol.lower() == probe.protocol and f.ports.first <= probe.port <= f.ports.last
                and f.path.source_vpc == probe.src_vpc and f.path.destination_vpc == probe.dst_vpc
                and groups_of(f.destination) == probe.dst_groups
                and any(probe.src_ip in n for n in f.source.addresses)):
            return f"destination shares group {probe.dst_groups} with a granted destination"
    relayed = any(f.ports.protocol.lower() == probe.protocol and f.ports.first <= probe.port <= f.ports.last
                  and f.path.source_vpc == f.path.destination_vpc == probe.dst_vpc != probe.src_vpc
                  and groups_of(f.destination) == probe.dst_groups
                  and any(probe.src_ip in n for n in f.source.addresses) for f in flows)
    routed = any((f.path.source_vpc, f.path.destination_vpc) == (probe.src_vpc, probe.dst_vpc)
                 and any(probe.dst_ip in n for n in f.destination.addresses)
                 or (f.path.source_vpc, f.path.destination_vpc) == (probe.dst_vpc, probe.src_vpc)
                 and any(probe.dst_ip in n for n in f.source.addresses) for f in flows)
    if relayed and routed:
        return "destination group admits a relayed client address, on a route another flow needs"
    if probe.src_vpc == probe.dst_vpc and any(
            f.destination.kind == "load-balancer" and any(probe.dst_ip in n for n in f.destination.addresses)
            and f.ports.protocol.lower() == probe.protocol and f.ports.first <= probe.port <= f.ports.last
            and f.path.source_vpc != probe.src_vpc and f.path.destination_vpc == probe.dst_vpc
            and groups_of(f.destination) == probe.dst_groups
            and any(probe.src_ip in n for n in f.source.addresses) for f in flows):
        return "balancer's group admits the source address from another VPC; the local route carries it"
    return None


def evaluate(lab: Lab, probe: Probe) -> Verdict:
    seeded = lab.seeded

    def ids(names: tuple[str, ...] | None) -> list[str] | None:
        return None if names is None else [seeded.groups[n] for n in names]

    return reachable(lab.view, str(probe.src_ip), seeded.vpcs[probe.src_vpc].vpc_id, str(probe.dst_ip),
                     seeded.vpcs[probe.dst_vpc].vpc_id, probe.protocol, probe.port, ids(probe.src_groups),
                     ids(probe.dst_groups))


@dataclass
class Judgement:
    failures: list[str]
    checked_allowed: int
    checked_denied: int
    skipped: dict[str, int]


def judge(lab: Lab, resolved: Any) -> Judgement:
    """Every flow must be reachable; every unintended probe AWS can tell apart must not be."""
    flows = resolved.flows
    failures: list[str] = []
    allowed = denied = 0
    skipped: dict[str, int] = {}
    for flow in flows:
        for probe in flow_probes(resolved.estate, flow):
            verdict = evaluate(lab, probe)
            allowed += 1
            if not verdict:
                failures.append(f"DENIED {probe}: {verdict.reason}")
    for probe in health_check_probes(resolved.estate):  # (expected from the estate, whatever the flows say)
        verdict = evaluate(lab, probe)
        allowed += 1
        if not verdict:
            failures.append(f"DENIED {probe}: {verdict.reason}")
    seen: set[Probe] = set()
    for probe in unintended_probes(resolved):
        key = replace(probe, kind="", about="")
        if key in seen or granted(flows, probe):
            continue
        seen.add(key)
        why = indistinguishable(flows, probe)
        if why:
            category = why.split(" (")[0]
            skipped[category] = skipped.get(category, 0) + 1
            continue
        denied += 1
        if evaluate(lab, probe):
            failures.append(f"REACHABLE {probe}")
    return Judgement(failures, allowed, denied, skipped)
