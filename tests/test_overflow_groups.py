"""Quota strategy: a group whose minimal exact rules exceed its quota spills into the netgen-managed overflow
groups the inventory names (attached to the same interfaces), each within the quota, allowing exactly the same
traffic; with no room left the build fails naming the group and the count."""

import json
from collections import Counter
from ipaddress import IPv4Network

import pytest
from buildhelpers import build, build_ok, copy_specs, replace_once
from conftest import EXAMPLE_AS_OF

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.targets.aws_rules import Rule, _spread

GROUP = "  name: prod-use1-nodes\nspec:\n  vpc: k8s-use1\n  groupId: sg-0c3000000000000c1\n"
OVERFLOW = ("  ruleQuota: 6\n  overflowGroupIds: [sg-0c30000000000f001, sg-0c30000000000f002, "
            "sg-0c30000000000f003]\n")


def rules_in(out):
    """{GroupId: [(protocol, from, to, cidr)]} over every template."""
    found: dict[str, list] = {}
    for path in (out / "aws").rglob("*.json"):
        if path.name == "deploy-plan.json":
            continue
        for resource in json.loads(path.read_text())["Resources"].values():
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                p = resource["Properties"]
                found.setdefault(p["GroupId"], []).append((p["IpProtocol"], p["FromPort"], p["ToPort"],
                                                           IPv4Network(p["CidrIp"])))
    return found


def test_rules_over_quota_spread_over_overflow_groups_and_allow_exactly_the_same(tmp_path):
    baseline = build_ok(tmp_path / "before")
    assert baseline.exit_code == 0
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", GROUP, GROUP + OVERFLOW)
    result = build(tmp_path / "after", cwd=tmp_path)
    assert result.exit_code == 0, result.stderr
    before, after = rules_in(tmp_path / "before"), rules_in(tmp_path / "after")
    primary = "sg-0c3000000000000c1"
    spread = {g: r for g, r in after.items() if g == primary or g.startswith("sg-0c30000000000f")}
    assert len(before[primary]) > 6  # the example needs more than the quota
    assert all(len(r) <= 6 for r in spread.values())  # every group within its quota
    assert len(spread) > 1
    # the union over the group and its overflow groups is exactly the rule set of the group alone
    assert Counter(r for rules in spread.values() for r in rules) == Counter(before[primary])
    # every other group is untouched
    assert {g: sorted(r) for g, r in after.items() if g not in spread} == \
        {g: sorted(r) for g, r in before.items() if g != primary}
    plan = json.loads((tmp_path / "after/aws/deploy-plan.json").read_text())
    stacks = {s["stack"] for s in plan["stacks"]}
    assert any(name.endswith("-sg-prod-use1-nodes-overflow-1") for name in stacks)


def test_spreading_is_stable_when_a_rule_is_added(tmp_path):
    """Placement hashes what a rule is: a new rule that sorts first moves at most a couple of others."""
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", GROUP,
                 GROUP + OVERFLOW)
    estate = resolve_specs(specs, EXAMPLE_AS_OF, Reporter()).estate
    group = next(g for g in estate.security_groups if g.name == "prod-use1-nodes")
    rules = [Rule(group, "ingress", "TCP", 443, 443, IPv4Network(f"10.10.{i}.0/24"), ("g",)) for i in range(1, 19)]
    before = {r.identity: r.group_id for r in _spread(rules, group)}
    assert len(set(before.values())) == 4  # really spread over the group and its three overflow groups
    first = Rule(group, "ingress", "TCP", 443, 443, IPv4Network("10.10.0.0/24"), ("g",))
    after = {r.identity: r.group_id for r in _spread([first, *rules], group)}
    moved = [k for k, gid in before.items() if after[k] != gid]
    assert len(moved) <= 2, moved


def test_no_room_left_is_ng201_naming_group_and_count(tmp_path):
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", GROUP,
                 GROUP + OVERFLOW.replace("ruleQuota: 6", "ruleQuota: 1"))
    result = build(tmp_path / "out", cwd=tmp_path)
    assert result.exit_code == 1
    assert "error[NG201]: security group 'prod-use1-nodes' (sg-0c3000000000000c1) would need" in result.stderr
    assert "over the room of 4 in it and its 3 overflow group(s)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_overflow_group_id_may_not_be_another_groups_id(tmp_path):
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", GROUP,
                 GROUP + "  overflowGroupIds: [sg-0c3000000000000c2]\n")
    result = build(tmp_path / "out", cwd=tmp_path)
    assert result.exit_code == 1 and "error[NG101]" in result.stderr


@pytest.mark.parametrize("cores", ["one", "two"])
def test_an_overflow_stack_and_a_group_of_the_same_name_are_ng206(tmp_path, cores, request):
    """prod-use1-nodes spills into overflow part 1, whose stack is sg-prod-use1-nodes-overflow-1; the NLB group
    in the same VPC, renamed prod-use1-nodes-overflow-1, would share that stack: an error, never a merged file.
    On two cores the two groups' rules are planned in different processes; the stacks are checked together."""
    forks = request.getfixturevalue("forks") if cores == "two" else None
    specs = copy_specs(tmp_path)
    replace_once(specs / "inventory/security-groups.yaml", GROUP, GROUP + OVERFLOW)
    twin = "prod-use1-nodes-overflow-1"
    replace_once(specs / "inventory/security-groups.yaml", "  name: payments-api-nlb\n", f"  name: {twin}\n")
    replace_once(specs / "inventory/services.yaml", "securityGroup: payments-api-nlb", f"securityGroup: {twin}")
    if forks is not None:  # the two groups' rules are planned in different processes
        _plan_apart(request.getfixturevalue("monkeypatch"), twin)
    result = build(tmp_path / "out", cwd=tmp_path)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"specs/inventory/security-groups.yaml:86:1: error[NG206]: rules of security groups 'prod-use1-nodes' and "
        f"'{twin}' would share stack netgen-acme-legacy-us-east-1-sg-{twin}; rename one of the groups")
    if forks is not None:
        assert len(forks) == 2, "children: files to load; Kubernetes, the report and the twin's rules"


def _plan_apart(monkeypatch, group: str) -> None:
    """Have compile_aws plan the rules of group in the child process and every other group's here."""
    import netgen.targets.aws as aws

    names: list[str] = []
    real = aws._rule_weights

    def rule_weights(ruled):
        weights = real(ruled)
        names[:] = sorted(weights)
        return weights

    def deal(weights, handicap=1.0, theirs_already=0.0):
        assert len(weights) == len(names)
        return [i for i, name in enumerate(names) if name != group], [names.index(group)]

    monkeypatch.setattr(aws, "_rule_weights", rule_weights)
    monkeypatch.setattr(aws, "deal", deal)
