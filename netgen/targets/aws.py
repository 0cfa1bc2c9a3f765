"""AWS target: flows -> CloudFormation templates and the deploy plan.

Stacks: per (account, region), one network stack (peerings and routes) and one stack per security group
(its rules). CloudFormation allows 500 resources per stack; splitting by group keeps large estates within
that, never moves a rule between stacks when grants change, and limits a rule change to its group's stack.

Rules the output follows (see docs/generated.md):
- One VPC peering per pair of VPCs that exchange traffic. The requester is the VPC whose stack sorts first by
  (account id, region), then by VPC name, so stack dependencies only point forward and never form a cycle.
- A pair with a peering that exists outside netgen (a VpcPeering document) gets none: its routes name that
  connection's id, so no template, output or parameter has it, and deploy-plan.json lists it apart.
- Routes over the peering in every listed route table of both VPCs, to the minimal prefixes covering the
  peer addresses that flows use (never whole VPC CIDRs unless the flows need them).
- Standalone AWS::EC2::SecurityGroupIngress on the destination's group, and SecurityGroupEgress on the
  source's group when it restricts egress, always with CIDRs (a group cannot be referenced across regions).
- Logical ids hash what a resource is (route table + prefix, group + rule), so unrelated resources keep
  their ids when grants come and go.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import TypeVar

from troposphere import Output, Parameter, Ref, Tags, Template
from troposphere.ec2 import Route, SecurityGroupEgress, SecurityGroupIngress, VPCPeeringConnection

from netgen.diagnostics import Reporter
from netgen.model import DEFAULT_STACK_QUOTA, Estate, SecurityGroup
from netgen.parallel import Beside, deal, worth_forking
from netgen.resolve import Flow
from netgen.targets.aws_names import (
    StackKey,
    description,
    gateway_stack_of,
    logical_id,
    rules_stack_of,
    stack_of,
)
from netgen.targets.aws_network import Peering, plan_peerings_and_routes
from netgen.targets.aws_rules import Rule, _rule_weights, group_rules, ruled_flows
from netgen.targets.aws_transit import plan_entries, plan_transit, transit_resources

T = TypeVar("T")

_PROTOCOLS = {"TCP": "tcp", "UDP": "udp"}
MANAGED_TAG = {"managed-by": "netgen"}
MAX_RESOURCES = 500  # per CloudFormation stack
# Address ranges to cover (_rule_weights) above which part of the groups' rules are planned on a second core.
PARALLEL_RULE_ENTRIES = 5_000
# What planning a group's rules in the child costs against planning them here: below 1, as this process also
# plans the peerings and builds the network stacks (at 100k grants the child, given 1/0.8 of the parent's
# share, finished half a second after it).
CHILD_RULES_HANDICAP = 0.9


def _tags(**extra: str) -> Tags:
    return Tags(**MANAGED_TAG, **extra)


class Encoded(str):
    """A template value already encoded as JSON, written as it is by template_json."""


class _RuleEntries:
    """Security-group rules as template entries, {logical id: JSON text}, at a fraction of troposphere's cost.

    troposphere builds and validates, in full, the first rule of each (direction, group id, protocol): its
    entry is the prototype, encoded once with markers in place of the ports, CIDR and description. Every rule's
    entry is that text with its own values in place of the markers: values whose types and ranges netgen fixes
    itself (validated ports, canonical CIDRs, descriptions of legal characters), encoded as json encodes them.
    Building 100k troposphere objects took half the AWS stage, and encoding their dicts a sixth;
    tests/test_scale.py checks that each entry is the text template_json writes for the object troposphere
    builds for that rule.
    """

    def __init__(self) -> None:
        self.prototypes: dict[tuple[str, str, str], str] = {}  # shape: str.format() text of its entries

    @staticmethod
    def resource(rule: Rule):
        """The troposphere object of a rule."""
        kind = SecurityGroupIngress if rule.direction == "ingress" else SecurityGroupEgress
        cidr = str(rule.cidr)
        return kind(_rule_id(rule, cidr), GroupId=rule.group_id, IpProtocol=_PROTOCOLS[rule.protocol],
                    FromPort=rule.first, ToPort=rule.last, CidrIp=cidr, Description=description(rule.grants))

    def entry(self, rule: Rule) -> tuple[str, Encoded]:
        shape = (rule.direction, rule.group_id, rule.protocol)
        if shape not in self.prototypes:
            self.prototypes[shape] = _entry_format(self.resource(rule).to_dict())
        cidr = str(rule.cidr)
        text = self.prototypes[shape].format(_encode_text(cidr), _encode_text(description(rule.grants)),
                                             rule.first, rule.last)
        return _rule_id(rule, cidr), Encoded(text)


_VARYING = ("CidrIp", "Description", "FromPort", "ToPort")  # the properties a rule's entry sets itself, in order


def _entry_format(prototype: dict) -> str:
    """The prototype's JSON text as a str.format() text taking the _VARYING values, encoded, in order."""
    marked = {**prototype, "Properties": {**prototype["Properties"], **{name: f"\0{name}" for name in _VARYING}}}
    text = _SORTED_JSON(marked).replace("{", "{{").replace("}", "}}")
    for i, name in enumerate(_VARYING):
        marker = _SORTED_JSON(f"\0{name}")
        assert text.count(marker) == 1, (marker, text)
        text = text.replace(marker, f"{{{i}}}")
    return text


def _template(key: StackKey, owner) -> Template:
    what = "VPC peerings and routes" if key.part == "network" else f"rules of security group {owner.name}"
    return Template(Description=f"netgen: {what} in account {key.account_name} ({key.account_id}), "
                                f"{key.region}. Generated; do not edit.")


def _rule_stacks(groups: list[SecurityGroup], ruled: dict[str, list[tuple[str, Flow]]]):
    """Plan the rules of groups (a share of the estate's) and render their stacks.

    Returns (files, diagnostics, parts): parts lists (stack key, group name, number of rules) per (group, part)
    in rule order, for compile_aws to check the stacks of all shares together."""
    reporter = Reporter()
    of_part: dict[tuple[str, int], list[Rule]] = defaultdict(list)  # (group name, part): a stack key per part
    for group in groups:
        for rule in group_rules(group, ruled[group.name], reporter):
            of_part[(group.name, rule.part)].append(rule)
    by_stack: dict[StackKey, list[Rule]] = defaultdict(list)
    parts = []
    for (name, part), rules in of_part.items():
        key = rules_stack_of(rules[0].group, part)
        by_stack[key].extend(rules)
        parts.append((key, name, len(rules)))
    entries = _RuleEntries()
    files = {}
    for key, rules in by_stack.items():
        body = _template(key, rules[0].group).to_dict()
        body["Resources"].update(entries.entry(rule) for rule in rules)
        files[key.path] = template_json(body)
    return files, reporter.diagnostics, parts


def _rule_id(rule: Rule, cidr: str) -> str:
    return logical_id("Ingress" if rule.direction == "ingress" else "Egress", rule.group.name, rule.group_id,
                      rule.protocol, rule.first, rule.last, cidr)


def compile_aws(estate: Estate, flows: list[Flow], reporter: Reporter, beside: Callable[[], T] = lambda: None,
                beside_share: float = 0.0) -> tuple[dict[str, bytes], T]:
    """({path: bytes} for every stack template and the deploy plan (aws/deploy-plan.json), beside()).

    Rule stacks hold nearly all of the output: for large estates a second core plans and renders the rules of
    part of the security groups (dealt by the address ranges each must cover) while this process plans the
    peerings, does the other groups and builds the network stacks. beside is other work for that core (the
    other targets), worth beside_share of the work of all the rules: the same child does it, after its rules,
    so that one fork (and one copy of the pages both processes write) serves both."""
    groups = {g.name: g for g in estate.security_groups}
    ruled = ruled_flows(estate, flows)
    weights = _rule_weights(ruled)
    names = sorted(weights)
    total = sum(weights.values())
    fork = worth_forking(int(total * (1 + beside_share)), PARALLEL_RULE_ENTRIES)
    mine, theirs = (deal([weights[name] for name in names], CHILD_RULES_HANDICAP, total * beside_share) if fork
                    else (range(len(names)), []))
    vpcs = {v.name: v for v in estate.vpcs}
    templates: dict[StackKey, Template] = {}

    def template(key: StackKey, owner) -> Template:
        if key not in templates:
            templates[key] = _template(key, owner)
        return templates[key]

    full: set[StackKey] = set()
    routed_by: dict[str, set[str]] = defaultdict(set)  # an existing peering's id: the stacks routing over it
    overfull = Reporter()  # NG205 of network stacks, reported with the rule stacks' NG205 and NG206

    def add(key: StackKey, owner, resource) -> None:
        t = template(key, owner)
        if len(t.resources) < MAX_RESOURCES:
            t.add_resource(resource)
        elif key not in full:
            full.add(key)
            overfull.add(owner.loc, "NG205", f"stack {key.name} would exceed CloudFormation's "
                                             f"{MAX_RESOURCES} resources per stack")

    def network_stacks(peerings: dict[frozenset, Peering], routes: dict) -> tuple[dict, dict]:
        """Peerings and routes (transit gateways' too) into the network stacks; (cross-stack parameters,
        peerings to accept)."""
        for key, owner, resource in transit_resources(transit, estate, logical_id, stack_of, gateway_stack_of):
            add(key, owner, resource)
        parameters: dict[StackKey, dict[str, dict[str, str]]] = defaultdict(dict)
        accepts: dict[StackKey, list[dict]] = defaultdict(list)
        for pair in sorted(peerings.values(), key=lambda p: p.logical_id):
            if pair.existing:  # (routes use its id; nothing else of it is deployed)
                continue
            req, acc = pair.requester, pair.accepter
            props: dict = {"VpcId": req.vpc_id, "PeerVpcId": acc.vpc_id,
                           "Tags": _tags(Name=f"netgen-{req.name}-{acc.name}")}
            if req.account.account_id != acc.account.account_id:
                props["PeerOwnerId"] = acc.account.account_id
                props["PeerRoleArn"] = acc.account.accept_role_arn
            if req.region != acc.region:
                props["PeerRegion"] = acc.region
            add(stack_of(req), req, VPCPeeringConnection(pair.logical_id, **props))
            t = templates[stack_of(req)]
            if pair.crosses_stacks:
                t.add_output(Output(pair.parameter, Value=Ref(pair.logical_id),
                                    Description=f"Peering {req.name} <-> {acc.name}, for stack "
                                                f"{stack_of(acc).name}"))
                parameters[stack_of(acc)][pair.parameter] = {"stack": stack_of(req).name, "output": pair.parameter}
            accepts[stack_of(req)].append({"peering": pair.logical_id, "requesterVpc": req.vpc_id,
                                           "accepterVpc": acc.vpc_id, "accepterRegion": acc.region,
                                           "accepterAccount": acc.account.account_id})
        for (vpc_name, peer_name), nets in routes.items():
            vpc = vpcs[vpc_name]
            pair = peerings[frozenset((vpc_name, peer_name))]
            key = stack_of(vpc)
            t = template(key, vpc)
            if pair.existing:
                target = pair.connection_id
                routed_by[pair.connection_id].add(key.name)
            elif pair.crosses_stacks and vpc is pair.accepter:
                if pair.parameter not in t.parameters:
                    t.add_parameter(Parameter(pair.parameter, Type="String", AllowedPattern="^pcx-[0-9a-f]+$",
                                              Description=f"Id of peering {pair.requester.name} <-> "
                                                          f"{pair.accepter.name} (output of "
                                                          f"{stack_of(pair.requester).name})"))
                target = Ref(pair.parameter)
            else:
                target = Ref(pair.logical_id)
            for table in vpc.route_tables:
                for net in nets:
                    add(key, vpc, Route(logical_id("Route", vpc_name, table, net), RouteTableId=table,
                                        DestinationCidrBlock=str(net), VpcPeeringConnectionId=target))
        return parameters, accepts

    def their_share():
        """Their rules; then, in a child, beside()'s result or what it raised: raised below, after the checks of
        every rule, as a build that fails those never reaches the other targets (which run here, last, without
        a child)."""
        share = _rule_stacks([groups[names[i]] for i in theirs], ruled)
        if not fork:
            return share, None, None
        try:
            return share, beside(), None
        except Exception as exc:  # noqa: BLE001 - raised in this process, in its turn
            return share, None, exc

    with Beside(their_share, fork=fork) as later:
        transit = plan_transit(estate, flows, reporter)
        peerings, routes = plan_peerings_and_routes(estate, flows, reporter, transit)
        rule_files, found, parts = _rule_stacks([groups[names[i]] for i in mine], ruled)
        if not reporter.has_errors:  # (a failed plan, e.g. two routes to one prefix, is never built)
            parameters, accepts = network_stacks(peerings, routes)
        (more_files, more_found, more_parts), others, failure = later.result()
    rule_files.update(more_files)
    reporter.diagnostics.extend(found + more_found)
    reporter.raise_if_errors()  # NG201-NG204
    reporter.diagnostics.extend(overfull.diagnostics)
    by_stack: dict[StackKey, list[tuple[str, int]]] = defaultdict(list)  # (group name, rules) in rule order
    for key, name, count in sorted(parts + more_parts, key=lambda part: part[1]):  # (each share is in rule order)
        by_stack[key].append((name, count))
    for key, owners in by_stack.items():
        template(key, groups[owners[0][0]])
        held = 0
        for owner, count in owners:  # named after the group of the first rule that does not fit
            held += count
            if held > MAX_RESOURCES:
                reporter.add(groups[owner].loc, "NG205",
                             f"stack {key.name} would exceed CloudFormation's {MAX_RESOURCES} resources per stack")
                break
        clash = next((name for name, _ in owners if name != owners[0][0]), None)
        if clash is not None:  # group 'web' spilling into overflow part 1, and a group named 'web-overflow-1'
            reporter.add(groups[clash].loc, "NG206", f"rules of security groups '{owners[0][0]}' and "
                                                     f"'{clash}' would share stack {key.name}; rename one of "
                                                     "the groups")
    names_seen: dict[str, StackKey] = {}
    for key in sorted(templates):
        other = names_seen.setdefault(key.name, key)
        if other != key:
            owner = next(a for a in estate.accounts if a.account_id == key.account_id)
            reporter.add(owner.loc, "NG206", f"stacks for {key.path} and {other.path} would both be named "
                                             f"{key.name}; rename the account or the security group")
    _check_stack_quotas(estate, templates, reporter)
    reporter.raise_if_errors()  # NG205, NG206, NG207
    files = {key.path: template_json(t.to_dict()) for key, t in templates.items() if key not in by_stack}
    files.update(rule_files)
    files["aws/deploy-plan.json"] = _deploy_plan(templates, parameters, accepts, _existing(estate, routed_by),
                                                 plan_entries(transit, estate, stack_of, gateway_stack_of))
    if failure is not None:
        raise failure
    return files, others if fork else beside()


def _check_stack_quotas(estate: Estate, stacks, reporter: Reporter) -> None:
    """NG207: CloudFormation allows an account a number of stacks per region (2,000 unless raised); netgen's
    stacks of each account and region must fit in the quota its Account document states. Stacks that netgen
    does not manage count against the same quota: only a deploy can see those (its preflight)."""
    counts = Counter((key.account_id, key.region) for key in stacks)
    accounts = {a.account_id: a for a in estate.accounts}
    for (account_id, region), count in sorted(counts.items()):
        account = accounts[account_id]
        if count > account.stack_quota:
            reporter.add(account.loc, "NG207",
                         f"account '{account.name}' ({account_id}) would hold {count} netgen stacks in {region}, "
                         f"over its stack quota of {account.stack_quota}: raise CloudFormation's stack quota "
                         f"there through Service Quotas (AWS's default: {DEFAULT_STACK_QUOTA} per account and "
                         "region), then set spec.stackQuota on the Account")


_SORTED_JSON = json.JSONEncoder(sort_keys=True).encode  # json.dumps(sort_keys=True) builds an encoder per call
_encode_text = encode_basestring_ascii  # how _SORTED_JSON encodes a string


def template_json(template: dict) -> bytes:
    """Template JSON with one resource (parameter, output) per line: a changed rule is a one-line diff.

    It is plain JSON, sorted at every level, and far faster to write than indented json.dumps."""
    lines = ["{"]
    sections = sorted(template.items())
    for i, (section, value) in enumerate(sections):
        comma = "," if i < len(sections) - 1 else ""
        if isinstance(value, dict) and value:
            lines.append(f"  {_SORTED_JSON(section)}: {{")
            entries = sorted(value.items())
            for j, (name, entry) in enumerate(entries):
                tail = "," if j < len(entries) - 1 else ""
                encoded = entry if type(entry) is Encoded else _SORTED_JSON(entry)
                lines.append(f"    {_SORTED_JSON(name)}: {encoded}{tail}")
            lines.append(f"  }}{comma}")
        else:
            lines.append(f"  {_SORTED_JSON(section)}: {_SORTED_JSON(value)}{comma}")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def _existing(estate: Estate, routed_by: dict[str, set[str]]) -> list[dict]:
    """The deploy plan's entries of the peerings that exist outside netgen (VpcPeering), by connection id."""
    return [{"connectionId": p.connection_id, "name": p.name,
             "requesterVpc": p.requester.vpc_id, "requesterAccount": p.requester.account.account_id,
             "requesterRegion": p.requester.region,
             "accepterVpc": p.accepter.vpc_id, "accepterAccount": p.accepter.account.account_id,
             "accepterRegion": p.accepter.region,
             "routedBy": sorted(routed_by.get(p.connection_id, ()))}
            for p in sorted(estate.peerings, key=lambda p: p.connection_id)]


def _deploy_plan(templates, parameters, accepts, existing: list[dict] | None = None,
                 gateways: list[dict] | None = None) -> bytes:
    """The order to deploy stacks in, with the cross-stack parameters each one takes; and, when the estate
    declares any, the peerings that exist outside netgen, which deploy must leave as they are, and the transit
    gateways flows route through."""
    # A peering's requester stack sorts before its accepter's, so this order meets every dependency.
    order = sorted(templates)
    done: set[str] = set()
    for key in order:
        assert {p["stack"] for p in parameters[key].values()} <= done, key
        done.add(key.name)
    plan = {
        "description": "Deploy the stacks in this order. A stack's parameters come from outputs of stacks "
                       "deployed before it. 'peerings' lists the peerings a stack requests: after the stack, "
                       "each must be active; one still pending acceptance is accepted in the accepter "
                       "account and region through the EC2 API.",
        "stacks": [{
            "stack": key.name,
            "account": key.account_id,
            "accountName": key.account_name,
            "region": key.region,
            "template": key.path,
            "dependsOn": sorted({p["stack"] for p in parameters[key].values()}),
            "parameters": dict(sorted(parameters[key].items())),
            "peerings": sorted(accepts[key], key=lambda a: a["peering"]),
        } for key in order],
    }
    if existing:  # (only then: the plan of an estate without them stays as it was)
        plan["description"] += (" 'existingPeerings' lists the peerings that exist outside netgen (VpcPeering "
                                "documents): the routes of the stacks in 'routedBy' use them by id; deploy never "
                                "creates, changes or deletes them, and each must be active before those stacks.")
        plan["existingPeerings"] = existing
    if gateways:  # (likewise)
        plan["description"] += (" 'transitGateways' lists the transit gateways (TransitGateway documents) that "
                                "routes of the stacks in 'routedBy' use: their attachments and peering attachments "
                                "must exist, and be available, before those stacks; deploy never changes them.")
        plan["transitGateways"] = gateways
    return (json.dumps(plan, indent=2, sort_keys=True) + "\n").encode()
