"""moto as a stand-in AWS for `make bench-deploy` and the tests: a server in a process of its own, clients in any
account, and an estate's inventory seeded into it.

- netgen/bench/moto_server.py: `moto_process`, a threaded moto server on 127.0.0.1 (a free port) in a child
  process (`python -m netgen.bench.moto serve`), optionally with the time CloudFormation takes modelled.
- `MotoCloud`: boto3 clients of one moto server, in any account (moto's `x-moto-account-id` header), plus
  moto's reset and its request recorder (/moto-api/recorder/...).
- `seed_estate`: create an estate's VPCs, route tables, subnets, security groups, transit gateways (their route
  tables, attachments, associations, propagations and peerings) and, optionally, one instance per legacy host in
  moto; `rewrite_spec_ids`: a copy of the specs with the inventory's ids replaced by moto's.
- netgen/bench/moto_transit.py: seeding transit gateways, and `faithful_transit_gateway_routes` (moto keeps a
  static transit gateway route's attachment but answers it in a shape boto3 reads as an empty list; the servers
  of the bench and the tests store it as AWS answers it).

tests/judges/aws.py (the AWS judge) and tests/test_aws_deploy.py use these too; the judge keeps its own
in-process server fixture (`moto_server`), which needs pytest.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from netgen.bench.moto_server import RAISED_RULE_QUOTA


class MotoCloud:
    """boto3 clients for one moto server, in any account.

    Multi-account in server mode: moto takes the account of a request from the `x-moto-account-id` header (when
    the MOTO_ACCOUNT_ID environment variable is unset), so each client sends its account's id. The accounts are
    therefore really separate: a VPC of one account is invisible to describe calls of the other.
    """

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str, str], Any] = {}

    def _post(self, path: str, timeout: float = 60) -> bytes:
        request = urllib.request.Request(f"{self.endpoint_url}{path}", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            assert answer.status == 200, (path, answer.status)
            return answer.read()

    def reset(self) -> None:
        """Forget every resource of every account (the recording is kept: see reset_recording)."""
        self._post("/moto-api/reset")
        self._clients.clear()

    # moto's request recorder: every request the server answers while recording is one JSON object
    # (headers, method, url, body) in its recording file.
    def reset_recording(self) -> None:
        self._post("/moto-api/recorder/reset-recording")

    def start_recording(self) -> None:
        self._post("/moto-api/recorder/start-recording")

    def stop_recording(self) -> None:
        self._post("/moto-api/recorder/stop-recording")

    def recording(self) -> list[dict]:
        """The recorded requests. moto appends each one with two writes (the object, then a newline), and its
        server threads append concurrently, so objects are read one after another rather than line by line."""
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/recorder/download-recording", timeout=300) as a:
            text = a.read().decode("utf-8")
        decoder, entries, at = json.JSONDecoder(), [], 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                return entries
            entry, at = decoder.raw_decode(text, at)
            entries.append(entry)

    def client(self, service: str, account: str, region: str) -> Any:
        key = (service, account, region)
        if key not in self._clients:
            import boto3

            client = boto3.session.Session().client(
                service, region_name=region, endpoint_url=self.endpoint_url, aws_access_key_id="testing",
                aws_secret_access_key="testing", aws_session_token="testing")

            def as_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account

            client.meta.events.register("before-sign.*.*", as_account)
            self._clients[key] = client
        return self._clients[key]

    def ec2(self, account: str, region: str) -> Any:
        return self.client("ec2", account, region)

    def view(self, places: Iterable[tuple[str, str]]) -> Any:
        """An Ec2View (netgen/aws/reachability.py) of the given (account, region) places."""
        from netgen.aws.reachability import describe_estate

        return describe_estate(self.ec2(a, r) for a, r in sorted(set(places)))


_SCOPE = re.compile(r"Credential=[^/]*/[^/]*/([^/]*)/([^/]*)/")


def request_facts(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(service, action, account, region) of one recorded request. The service and region come from the SigV4
    credential scope of its Authorization header, the account from moto's x-moto-account-id header (empty when
    the client sent none), the action from X-Amz-Target (JSON protocols) or the Action parameter (query
    protocol: form body or URL; REST calls such as S3's have none: their method and path are returned)."""
    headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
    scope = _SCOPE.search(headers.get("authorization", ""))
    region, service = scope.groups() if scope else ("", "")
    account = headers.get("x-moto-account-id", "")
    action = headers.get("x-amz-target", "").rpartition(".")[2]
    if not action:
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        found = re.search(r"(?:^|&)Action=([A-Za-z0-9]+)", body) or re.search(r"[?&]Action=([A-Za-z0-9]+)",
                                                                               entry.get("url", ""))
        action = found.group(1) if found else f"{entry.get('method', '')} {entry.get('url', '').split('?')[0]}"
    return service, action, account, region


@dataclass
class SeededVpc:
    name: str
    account: str
    region: str
    vpc_id: str
    route_tables: dict[str, str]  # inventory id -> moto id, in the inventory's order
    subnets: dict[IPv4Network, tuple[str, str]]  # CIDR -> (subnet id, moto route table id)


@dataclass
class Seeded:
    """What seed_estate created, by inventory name, and the inventory-id -> moto-id substitutions."""

    vpcs: dict[str, SeededVpc]
    groups: dict[str, str]  # group name -> moto id
    hosts: dict[str, str]  # host name -> instance id
    substitutions: dict[str, str]  # inventory id -> moto id (VPCs, groups, route tables, transit gateways' ids)

    @property
    def places(self) -> list[tuple[str, str]]:
        return sorted({(v.account, v.region) for v in self.vpcs.values()})

    def route_table_for(self, vpc_name: str, ip: IPv4Address) -> str:
        """The moto route table the seeded subnet holding ip is associated with."""
        for cidr, (_, table) in self.vpcs[vpc_name].subnets.items():
            if ip in cidr:
                return table
        raise KeyError(f"{ip} is in no seeded subnet of {vpc_name}")


def subnet_cidrs(estate: Any, vpc: Any) -> list[IPv4Network]:
    """Subnets the estate implies for a VPC: node, pod and load-balancer subnets, and a /24 around each host."""
    explicit: set[IPv4Network] = set()
    for cluster in estate.clusters:
        if cluster.vpc.name == vpc.name:
            explicit.update(cluster.node_cidrs)
            explicit.update(cluster.pod_cidrs)
    for service in estate.services:
        if service.cluster.vpc.name == vpc.name:
            explicit.update(service.exposure.subnet_cidrs)
    chosen = sorted(explicit)
    for host in sorted(estate.hosts, key=lambda h: h.address):
        if host.vpc.name != vpc.name or any(host.address in net for net in chosen):
            continue
        around = IPv4Network(f"{host.address}/24", strict=False)
        if any(around.overlaps(net) for net in chosen):
            around = IPv4Network(f"{host.address}/28", strict=False)
        chosen.append(around)
    return sorted(chosen)


def seed_estate(cloud: MotoCloud, estate: Any, hosts: bool = True) -> Seeded:
    """Create the estate's inventory in moto: VPCs with all their CIDRs, the listed route tables, subnets (each
    explicitly associated with one listed table, round-robin, so that every table governs some subnet),
    security groups (restrictsEgress ones lose the default allow-all egress rule) and, with `hosts`, one
    instance per legacy host at its address, in its group. `estate` is netgen's validated Estate (inventory
    facts only)."""
    seeded = Seeded({}, {}, {}, {})
    for vpc in estate.vpcs:
        ec2 = cloud.ec2(vpc.account.account_id, vpc.region)
        cidrs = [str(c) for c in vpc.cidrs]
        vpc_id = ec2.create_vpc(CidrBlock=cidrs[0])["Vpc"]["VpcId"]
        for extra in cidrs[1:]:
            ec2.associate_vpc_cidr_block(VpcId=vpc_id, CidrBlock=extra)
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "Name", "Value": vpc.name}])
        tables = {old: ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
                  for old in vpc.route_tables}
        subnets: dict[IPv4Network, tuple[str, str]] = {}
        table_ids = list(tables.values())
        for i, cidr in enumerate(subnet_cidrs(estate, vpc)):
            subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=str(cidr))["Subnet"]["SubnetId"]
            table = table_ids[i % len(table_ids)]
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
            subnets[cidr] = (subnet_id, table)
        seeded.vpcs[vpc.name] = SeededVpc(vpc.name, vpc.account.account_id, vpc.region, vpc_id, tables, subnets)
        seeded.substitutions[vpc.vpc_id] = vpc_id
        seeded.substitutions.update(tables)
    for group in estate.security_groups:
        vpc = seeded.vpcs[group.vpc.name]
        ec2 = cloud.ec2(vpc.account, vpc.region)
        group_id = ec2.create_security_group(GroupName=group.name, Description=f"inventory group {group.name}",
                                             VpcId=vpc.vpc_id)["GroupId"]
        if group.restricts_egress:
            ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        seeded.groups[group.name] = group_id
        seeded.substitutions[group.group_id] = group_id
    from netgen.bench.moto_transit import seed_transit_gateways  # (it imports this module)

    seed_transit_gateways(cloud, estate, seeded)
    for host in estate.hosts if hosts else ():
        vpc = seeded.vpcs[host.vpc.name]
        subnet_id = next(s for cidr, (s, _) in vpc.subnets.items() if host.address in cidr)
        answer = cloud.ec2(vpc.account, vpc.region).run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet_id,
            PrivateIpAddress=str(host.address), SecurityGroupIds=[seeded.groups[host.security_group.name]],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": host.name}] + [
                {"Key": key, "Value": value} for key, value in host.labels]}])
        seeded.hosts[host.name] = answer["Instances"][0]["InstanceId"]
    return seeded


def rewrite_spec_ids(source: Path, target: Path, substitutions: Mapping[str, str]) -> Path:
    """Copy a spec folder, replacing every inventory id (vpcId, groupId, routeTables) by moto's id, in one pass
    per file (a replacement is never replaced again)."""
    shutil.copytree(source, target)
    if not substitutions:
        return target
    pattern = re.compile("|".join(re.escape(old) for old in sorted(substitutions, key=len, reverse=True)))
    for path in sorted(target.rglob("*.y*ml")):
        text = path.read_text("utf-8")
        path.write_text(pattern.sub(lambda m: substitutions[m.group(0)], text), "utf-8")
    return target


def seed_specs(endpoint_url: str, specs: Path, out: Path, as_of: date, aws_config: Path | None) -> Seeded:
    """`seed`: the inventory of a spec folder created in the moto server at endpoint_url, and a copy of the specs
    with moto's ids written to out; with aws_config, an AWS config file with a profile (dummy keys) for every
    profile the inventory's accounts name, so that netgen's per-account clients find them."""
    from netgen.diagnostics import Reporter, SpecError
    from netgen.pipeline import resolve_specs

    for _ in range(50):  # a server started just before (`serve ... &`) may not listen yet
        try:
            urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    reporter = Reporter()
    try:
        resolved = resolve_specs(specs, as_of, reporter)
    except SpecError:
        raise SystemExit("\n".join(str(d) for d in reporter.sorted())) from None
    seeded = seed_estate(MotoCloud(endpoint_url), resolved.estate, hosts=True)
    rewrite_spec_ids(specs, out, seeded.substitutions)
    if aws_config is not None:
        profiles = sorted({a.profile for a in resolved.estate.accounts if a.profile})
        aws_config.write_text("".join(f"[profile {name}]\naws_access_key_id = testing\n"
                                      "aws_secret_access_key = testing\nregion = us-east-1\n\n" for name in profiles))
    return seeded


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m netgen.bench.moto",
                                     description="moto as a local stand-in for AWS (see docs/deploy.md)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a moto server on 127.0.0.1 (a free port, its URL printed)")
    serve.add_argument("--rule-quota", type=int, default=RAISED_RULE_QUOTA,
                       help="rules per security group and direction, in EC2 and in Service Quotas")
    serve.add_argument("--port", type=int, default=0, help="default: a free port")
    serve.add_argument("--stack-latency", type=float, default=0.0, metavar="SECONDS",
                       help="each CloudFormation request that starts a stack's work waits this long, as on AWS")
    seed = commands.add_parser("seed", help="create a spec folder's inventory in moto; write the specs with "
                                            "moto's ids")
    seed.add_argument("--endpoint-url", required=True)
    seed.add_argument("--specs", type=Path, default=Path("specs"))
    seed.add_argument("--out", type=Path, required=True, help="folder for the copy of the specs (must not exist)")
    seed.add_argument("--as-of", type=date.fromisoformat, default=date.today())
    seed.add_argument("--aws-config", type=Path, help="write an AWS config file with the inventory's profiles")
    args = parser.parse_args(argv)
    if args.command == "serve":
        from netgen.bench.moto_server import serve

        serve(args.rule_quota, args.port, args.stack_latency)
        return
    seeded = seed_specs(args.endpoint_url, args.specs, args.out, args.as_of, args.aws_config)
    print(f"seeded {len(seeded.vpcs)} VPCs, {len(seeded.groups)} security groups and {len(seeded.hosts)} hosts; "
          f"specs with moto's ids in {args.out}")


if __name__ == "__main__":
    main()
