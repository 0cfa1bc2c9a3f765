"""`netgen discover`: inventory spec files from what exists in an account, so a platform team can start specs/.

Reads VPCs (all their CIDRs), route tables, subnets, security groups, running instances (names and tags), VPC
peerings and transit gateways (netgen.aws.discover_transit) in one account and the given regions, and writes:

- <out>/<account>.yaml: the Account, one HostGroup per value of an instance tag `Role`/`role`
  (selector role=<value>), unless a HostGroup of that name is already in another file under <out>, and one
  VpcPeering per active peering that netgen does not own (no tag managed-by=netgen) between two discovered
  VPCs, or between a discovered VPC and a VPC that another file under <out> holds (an account discovered
  before): same region, across regions when both are read, across accounts. Requester and accepter are as AWS
  has them. A peering already declared in another file under <out> is left to it; one whose other VPC is in
  no inventory is listed in a comment;
- <out>/<account>-<region>.yaml: Vpc (name from its Name tag), SecurityGroup (restrictsEgress when the group
  has no allow-all egress rule), LegacyHost (name from the Name tag, labels from the other tags).

Names follow netgen's rules (lowercase letters, digits and '-', at most 63, unique per kind): a name is
lowercased, other characters become '-', and a clash gets the resource id's tail appended. Subnets are read
to place hosts but are not written (netgen has no subnet kind). The Account's peeringAcceptRoleArn is the
conventional role name in that account, marked in a comment: check it exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from netgen.aws.session import Clients

API_VERSION = "netgen.dev/v1alpha1"
_BAD = re.compile(r"[^a-z0-9-]+")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE_BAD = re.compile(r"[^-A-Za-z0-9_.]+")


def sanitize(text: str, fallback: str = "x") -> str:
    """A netgen name from any text: lowercase, [a-z0-9-], no leading/trailing '-', at most 63 characters."""
    name = _BAD.sub("-", text.lower()).strip("-")
    name = re.sub("-{2,}", "-", name)[:63].strip("-")
    return name or fallback


class Names:
    """Unique names per kind: a clash appends the resource id's tail."""

    def __init__(self, taken: Iterable[str] = ()):
        self.taken = set(taken)

    def take(self, wanted: str, resource_id: str) -> str:
        name = sanitize(wanted, sanitize(resource_id))
        if name in self.taken:
            tail = sanitize(resource_id.split("-")[-1])[-8:]
            name = f"{name[:63 - len(tail) - 1].rstrip('-')}-{tail}"
            n = 2
            base = name
            while name in self.taken:
                name = f"{base[:60]}-{n}"
                n += 1
        self.taken.add(name)
        return name


def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in resource.get("Tags", []) or []}


def labels_from_tags(tags: dict[str, str]) -> dict[str, str]:
    labels = {}
    for key, value in sorted(tags.items()):
        if key == "Name" or key.startswith("aws:"):
            continue
        label = key.lower() if key.lower() == "role" else key
        if not _LABEL_KEY.match(label) or len(label) > 316:
            label = sanitize(label)
        text = _LABEL_VALUE_BAD.sub("-", value).strip("-_.")[:63].strip("-_.")
        labels[label] = text
    return labels


def _doc(kind: str, name: str, spec: dict, labels: dict | None = None) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _dump(docs: list[dict], header: str) -> str:
    parts = [yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs]
    return header + "---\n".join(parts)


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


def _existing_docs(out: Path, skip: set[Path]) -> list[dict]:
    """The documents of the other spec files directly under out (those that parse)."""
    docs = []
    for path in sorted(out.glob("*.y*ml")) if out.is_dir() else []:
        if path in skip:
            continue
        try:
            docs.extend(d for d in yaml.safe_load_all(path.read_text("utf-8")) if isinstance(d, dict))
        except (OSError, yaml.YAMLError):
            continue
    return docs


def _named(docs: list[dict], kind: str) -> list[tuple[str, dict]]:
    """(metadata.name, spec) of the documents of a kind."""
    return [(str((d.get("metadata") or {}).get("name")), d.get("spec") if isinstance(d.get("spec"), dict) else {})
            for d in docs if d.get("kind") == kind]


def _peering_docs(peerings: dict[str, dict], discovered: dict[str, str], others: list[dict]
                  ) -> tuple[list[dict], list[str]]:
    """VpcPeering documents for the active peerings netgen does not own (no tag managed-by=netgen) that join a
    discovered VPC (discovered: VPC id -> name) to another VPC of the inventory, and a comment line for each one
    whose other VPC is in no inventory file. others are the documents of the other files under out."""
    known = {str(spec.get("vpcId")): name for name, spec in _named(others, "Vpc")}
    known.update(discovered)
    declared = {str(spec.get("connectionId")) for _, spec in _named(others, "VpcPeering")}
    names = Names(name for name, _ in _named(others, "VpcPeering"))
    docs, notes = [], []
    for pcx_id, pcx in sorted(peerings.items()):
        if pcx.get("Status", {}).get("Code") != "active" or _tags(pcx).get("managed-by") == "netgen":
            continue
        requester, accepter = pcx["RequesterVpcInfo"], pcx["AccepterVpcInfo"]
        ends = (requester["VpcId"], accepter["VpcId"])
        if pcx_id in declared or not any(end in discovered for end in ends):
            continue
        if all(end in known for end in ends):
            name = names.take(_tags(pcx).get("Name") or f"{known[ends[0]]}-{known[ends[1]]}", pcx_id)
            docs.append(_doc("VpcPeering", name, {"requesterVpc": known[ends[0]], "accepterVpc": known[ends[1]],
                                                  "connectionId": pcx_id}))
        else:
            where = [f"{info['VpcId']} (account {info.get('OwnerId', '?')}, {info.get('Region', '?')})"
                     for info in (requester, accepter)]
            notes.append(f"# {pcx_id}: {where[0]} -> {where[1]} is active, but one of its VPCs is in no inventory "
                         "file here: declare it as a VpcPeering once both are.\n")
    return docs, notes


def discover(clients: Clients, *, regions: list[str], vpc_ids: list[str], out: Path,
             account_name: str | None = None, account_id: str | None = None,
             profile: str | None = None) -> list[Path]:
    """Write the inventory files; returns their paths."""
    from netgen.aws.discover_transit import read_transit_gateways, transit_docs  # (it imports this module)

    if not regions:
        raise ValueError("give at least one --region")
    identity = clients.client("sts", account_id or "", regions[0]).get_caller_identity()
    actual = identity["Account"]
    if account_id and actual != account_id:
        raise ValueError(f"the credentials belong to account {actual}, not {account_id}")
    account_id = actual
    account = sanitize(account_name or f"aws-{account_id}")
    vpc_names, group_names, host_names = Names(), Names(), Names()
    roles: set[str] = set()
    per_region: dict[str, list[dict]] = {}
    wanted = set(vpc_ids)
    discovered: dict[str, str] = {}  # VPC id -> name, in every region read
    peerings: dict[str, dict] = {}  # by id: a cross-region peering is reported in both regions
    transit_raw: list[dict] = []  # each region's transit gateway answers (netgen.aws.discover_transit)
    for region in regions:
        ec2 = clients.ec2(account_id, region)
        docs: list[dict] = []
        vpcs = sorted(_pages(ec2, "describe_vpcs", "Vpcs"), key=lambda v: v["VpcId"])
        if wanted:
            vpcs = [v for v in vpcs if v["VpcId"] in wanted]
        vpc_name_of: dict[str, str] = {}
        tables = _pages(ec2, "describe_route_tables", "RouteTables")
        groups = sorted(_pages(ec2, "describe_security_groups", "SecurityGroups"), key=lambda g: g["GroupId"])
        for vpc in vpcs:
            name = vpc_names.take(_tags(vpc).get("Name", vpc["VpcId"]), vpc["VpcId"])
            vpc_name_of[vpc["VpcId"]] = name
            discovered[vpc["VpcId"]] = name
            cidrs = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])
                     if a.get("CidrBlockState", {}).get("State", "associated") == "associated"] or [vpc["CidrBlock"]]
            own_tables = sorted(t["RouteTableId"] for t in tables if t["VpcId"] == vpc["VpcId"])
            docs.append(_doc("Vpc", name, {"account": account, "region": region, "vpcId": vpc["VpcId"],
                                           "cidrs": cidrs, "routeTables": own_tables}))
        group_name_of: dict[str, str] = {}
        for group in groups:
            if group.get("VpcId") not in vpc_name_of:
                continue
            wanted_name = group["GroupName"]
            if wanted_name == "default":
                wanted_name = f"default-{vpc_name_of[group['VpcId']]}"
            name = group_names.take(_tags(group).get("Name") or wanted_name, group["GroupId"])
            group_name_of[group["GroupId"]] = name
            allows_all = any(p.get("IpProtocol") == "-1" and any(r.get("CidrIp") == "0.0.0.0/0"
                                                                  for r in p.get("IpRanges", []))
                             for p in group.get("IpPermissionsEgress", []))
            spec: dict[str, Any] = {"vpc": vpc_name_of[group["VpcId"]], "groupId": group["GroupId"]}
            if not allows_all:
                spec["restrictsEgress"] = True
            docs.append(_doc("SecurityGroup", name, spec))
        instances = [i for r in _pages(ec2, "describe_instances", "Reservations") for i in r.get("Instances", [])]
        for instance in sorted(instances, key=lambda i: i["InstanceId"]):
            if instance.get("State", {}).get("Name") in ("terminated", "shutting-down"):
                continue
            if instance.get("VpcId") not in vpc_name_of or not instance.get("PrivateIpAddress"):
                continue
            groups_here = sorted(g["GroupId"] for g in instance.get("SecurityGroups", [])
                                 if g["GroupId"] in group_name_of)
            if not groups_here:
                continue
            tags = _tags(instance)
            labels = labels_from_tags(tags)
            if labels.get("role"):
                roles.add(labels["role"])
            name = host_names.take(tags.get("Name", instance["InstanceId"]), instance["InstanceId"])
            docs.append(_doc("LegacyHost", name, {"vpc": vpc_name_of[instance["VpcId"]],
                                                  "address": instance["PrivateIpAddress"],
                                                  "securityGroup": group_name_of[groups_here[0]]}, labels))
        per_region[region] = docs
        for pcx in _pages(ec2, "describe_vpc_peering_connections", "VpcPeeringConnections"):
            peerings.setdefault(pcx["VpcPeeringConnectionId"], pcx)
        transit_raw.append(read_transit_gateways(ec2, account_id, region))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    account_file = out / f"{account}.yaml"
    region_files = {region: out / f"{account}-{region}.yaml" for region in regions}
    others = _existing_docs(out, {account_file, *region_files.values()})
    taken = {name for name, _ in _named(others, "HostGroup")}
    account_spec: dict[str, Any] = {"accountId": account_id,
                                    "peeringAcceptRoleArn": f"arn:aws:iam::{account_id}:role/netgen-peering-accepter"}
    if profile:
        account_spec["profile"] = profile
    docs = [_doc("Account", account, account_spec)]
    for role in sorted(roles):
        name = sanitize(role)
        if name not in taken:
            docs.append(_doc("HostGroup", name, {"selector": {"matchLabels": {"role": role}}}))
    peering_docs, notes = _peering_docs(peerings, discovered, others)
    docs += peering_docs
    gateway_docs, gateway_peerings, gateway_notes = transit_docs(transit_raw, account, account_id, discovered, others)
    docs += gateway_peerings
    notes += gateway_notes
    for region, found in gateway_docs.items():
        per_region[region] += found
    header = (f"# Discovered by `netgen discover` in account {account_id}. Check peeringAcceptRoleArn: it is the "
              "conventional\n# role name, not read from AWS. Host groups: one per instance tag Role. VPC "
              "peerings: the active ones\n# netgen does not own (made by hand or another tool); netgen routes over "
              "them and never changes them.\n" + "".join(notes))
    account_file.write_text(_dump(docs, header), "utf-8")
    written.append(account_file)
    for region, docs in per_region.items():
        path = region_files[region]
        path.write_text(_dump(docs, f"# Discovered by `netgen discover` in account {account_id}, {region}.\n"),
                        "utf-8")
        written.append(path)
    return written
