"""generated/aws read back: the deploy plan, its templates, and the rules, routes and peerings they declare."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANAGED_KEY, MANAGED_VALUE = "managed-by", "netgen"
STACK_PREFIX = "netgen-"
OWNED_DESCRIPTION = "netgen:"


class PlanError(Exception):
    """generated/aws is missing or unreadable."""


@dataclass
class StackPlan:
    name: str
    account: str
    account_name: str
    region: str
    template_path: str
    template: dict
    parameters: dict[str, dict[str, str]]  # parameter -> {"stack": ..., "output": ...}
    peerings: list[dict]  # the peerings this stack requests (deploy-plan.json)
    depends_on: list[str] = field(default_factory=list)

    @property
    def place(self) -> tuple[str, str]:
        return self.account, self.region


def _read_plan(out: Path) -> dict:
    path = out / "aws" / "deploy-plan.json"
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanError(f"cannot read {path}: {exc} (run 'netgen build' first)") from None


def existing_peerings(out: Path) -> list[dict]:
    """The plan's peerings that exist outside netgen (VpcPeering documents): connectionId, requesterVpc,
    requesterAccount, requesterRegion, accepterVpc, accepterAccount, accepterRegion, routedBy (stack names)."""
    return list(_read_plan(out).get("existingPeerings", []))


def plan_gateways(out: Path) -> list[dict]:
    """The plan's transit gateways that stacks route over (TransitGateway documents): transitGatewayId, name,
    account, region, attachments [{attachmentId, vpc, routeTable, propagatesTo}], peerings [{attachmentId,
    routeTable, peer}], routedBy (stack names)."""
    return list(_read_plan(out).get("transitGateways", []))


def load_plan(out: Path) -> list[StackPlan]:
    plan = _read_plan(out)
    stacks = []
    for entry in plan.get("stacks", []):
        template_file = out / entry["template"]
        try:
            template = json.loads(template_file.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise PlanError(f"cannot read {template_file}: {exc}") from None
        stacks.append(StackPlan(entry["stack"], entry["account"], entry.get("accountName", entry["account"]),
                                entry["region"], entry["template"], template, entry.get("parameters", {}),
                                entry.get("peerings", []), entry.get("dependsOn", [])))
    return stacks


@dataclass(frozen=True, order=True)
class RuleSpec:
    """One security-group rule as netgen writes it (CIDR rules only)."""

    group_id: str
    direction: str  # ingress | egress
    protocol: str
    first: int
    last: int
    cidr: str
    description: str = field(default="", compare=False)
    rule_id: str = field(default="", compare=False)  # set on rules read from EC2

    @property
    def key(self) -> tuple:
        return self.group_id, self.direction, self.protocol, self.first, self.last, self.cidr

    def permission(self) -> dict:
        return {"IpProtocol": self.protocol, "FromPort": self.first, "ToPort": self.last,
                "IpRanges": [{"CidrIp": self.cidr, "Description": self.description}]}

    def __str__(self) -> str:
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        side = "from" if self.direction == "ingress" else "to"
        return f"{self.group_id} {self.direction} {self.protocol}/{ports} {side} {self.cidr}"


def live_rule(rule: Mapping[str, Any]) -> RuleSpec:
    """A describe_security_group_rules entry as a RuleSpec (the peer as CIDR, prefix list or group id)."""
    peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId") or "?")
    return RuleSpec(rule["GroupId"], "egress" if rule.get("IsEgress") else "ingress", str(rule.get("IpProtocol")),
                    int(rule.get("FromPort", -1)), int(rule.get("ToPort", -1)), peer, rule.get("Description", ""),
                    rule.get("SecurityGroupRuleId", ""))


def live_rules(ec2: Any, group_ids: list[str]) -> list[RuleSpec]:
    """Every rule EC2 reports for these groups (one region's client)."""
    rules: list[RuleSpec] = []
    for page in ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": sorted(group_ids)}]):
        rules.extend(live_rule(r) for r in page.get("SecurityGroupRules", []))
    return rules


def inventory_rules(estate: Any, clients: Any) -> list[RuleSpec]:
    """Every live rule of the inventory's security groups, across accounts and regions."""
    by_place: dict[tuple[str, str], list[str]] = {}
    for group in estate.security_groups:
        by_place.setdefault((group.vpc.account.account_id, group.vpc.region), []).extend(group.group_ids)
    return [rule for (account, region), group_ids in sorted(by_place.items())
            for rule in live_rules(clients.ec2(account, region), group_ids)]


def inventory_places(estate: Any) -> list[tuple[str, str, str]]:
    """(account id, account name, region) of every VPC and transit gateway of the inventory: the places netgen
    reads and writes. A gateway's owner (often a network account) may own no VPC of the inventory."""
    return sorted({(v.account.account_id, v.account.name, v.region) for v in estate.vpcs}
                  | {(g.account.account_id, g.account.name, g.region) for g in estate.transit_gateways})


def deployed_template(cfn: Any, name: str) -> dict | None:
    """The template a stack was deployed from (GetTemplate), None when it cannot be read as JSON. Raises
    botocore's ClientError for a stack that does not exist."""
    body = cfn.get_template(StackName=name).get("TemplateBody")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def is_owned(rule: RuleSpec) -> bool:
    return rule.description.startswith(OWNED_DESCRIPTION)


def rules_of(template: Mapping[str, Any]) -> list[RuleSpec]:
    rules = []
    for resource in template.get("Resources", {}).values():
        kind = resource.get("Type")
        if kind not in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            continue
        p = resource.get("Properties", {})
        rules.append(RuleSpec(str(p.get("GroupId")), "ingress" if kind.endswith("Ingress") else "egress",
                              str(p.get("IpProtocol")), int(p.get("FromPort", -1)), int(p.get("ToPort", -1)),
                              str(p.get("CidrIp") or p.get("DestinationPrefixListId") or p.get("SourceSecurityGroupId")
                                  or p.get("DestinationSecurityGroupId") or "?"),
                              str(p.get("Description", ""))))
    return sorted(rules)


@dataclass(frozen=True)
class RouteSpec:
    logical: str
    table: str
    cidr: str
    target: Any  # {"Ref": logical id or parameter} as in the template, or a literal pcx (or tgw) id once resolved
    via: str = "VpcPeeringConnectionId"  # the property naming the target: or TransitGatewayId


def target_key(props: Mapping[str, Any]) -> str:
    """The property of an AWS::EC2::Route that names its target: a transit gateway, else a peering."""
    return "TransitGatewayId" if props.get("TransitGatewayId") else "VpcPeeringConnectionId"


def routes_of(template: Mapping[str, Any]) -> list[RouteSpec]:
    return sorted((RouteSpec(logical, r["Properties"]["RouteTableId"], r["Properties"]["DestinationCidrBlock"],
                             r["Properties"].get(target_key(r["Properties"])), target_key(r["Properties"]))
                   for logical, r in template.get("Resources", {}).items() if r.get("Type") == "AWS::EC2::Route"),
                  key=lambda r: (r.table, r.cidr))


@dataclass(frozen=True)
class GatewayRouteSpec:
    """A static route of a transit gateway route table (AWS::EC2::TransitGatewayRoute)."""

    logical: str
    table: str
    cidr: str
    attachment: str


def gateway_routes_of(template: Mapping[str, Any]) -> list[GatewayRouteSpec]:
    return sorted((GatewayRouteSpec(logical, str(p.get("TransitGatewayRouteTableId")),
                                    str(p.get("DestinationCidrBlock")), str(p.get("TransitGatewayAttachmentId")))
                   for logical, r in template.get("Resources", {}).items()
                   if r.get("Type") == "AWS::EC2::TransitGatewayRoute" for p in [r.get("Properties", {})]),
                  key=lambda r: (r.table, r.cidr))


def peerings_of(template: Mapping[str, Any]) -> dict[str, dict]:
    """{logical id: properties} of the template's VPC peerings."""
    return {logical: r.get("Properties", {}) for logical, r in template.get("Resources", {}).items()
            if r.get("Type") == "AWS::EC2::VPCPeeringConnection"}


def replace_refs(node: Any, ids: Mapping[str, str]) -> Any:
    """Replace {"Ref": name} by ids[name] for the names in `ids`."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in ids:
            return ids[node["Ref"]]
        return {k: replace_refs(v, ids) for k, v in node.items()}
    if isinstance(node, list):
        return [replace_refs(v, ids) for v in node]
    return node


def peering_pairs(stacks: list[StackPlan]) -> dict[tuple[str, str], tuple[StackPlan, str]]:
    """Every peering of the plan by (requester VPC id, accepter VPC id): (requesting stack, logical id)."""
    pairs = {}
    for stack in stacks:
        for logical, props in peerings_of(stack.template).items():
            pairs[(str(props.get("VpcId")), str(props.get("PeerVpcId")))] = (stack, logical)
    return pairs


def route_peer_pairs(stacks: list[StackPlan]) -> dict[tuple[str, str], tuple[str, str]]:
    """{(route table, destination CIDR): (requester VPC id, accepter VPC id) of the peering it goes through}."""
    by_name = {s.name: s for s in stacks}
    found = {}
    for stack in stacks:
        local = peerings_of(stack.template)
        for route in routes_of(stack.template):
            target = route.target.get("Ref") if isinstance(route.target, dict) else None
            props = None
            if target in local:
                props = local[target]
            elif target in stack.parameters:
                source = by_name.get(stack.parameters[target]["stack"])
                output = (source.template.get("Outputs", {}).get(stack.parameters[target]["output"], {})
                          if source else {})
                ref = output.get("Value", {}).get("Ref") if isinstance(output.get("Value"), dict) else None
                props = peerings_of(source.template).get(ref) if source and ref else None
            if props is not None:
                found[(route.table, route.cidr)] = (str(props.get("VpcId")), str(props.get("PeerVpcId")))
    return found


def tag_value(resource: Mapping[str, Any], key: str) -> str | None:
    return next((t.get("Value") for t in resource.get("Tags", []) or [] if t.get("Key") == key), None)


def is_managed(resource: Mapping[str, Any]) -> bool:
    return tag_value(resource, MANAGED_KEY) == MANAGED_VALUE
