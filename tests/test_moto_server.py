"""netgen/bench/moto_server.py's changes to moto, in the server of the tests (the bench's runs the same code):
lighter_moto answers DescribeSecurityGroupRules by group id and parses JSON templates as moto itself does."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

ACCOUNT, REGION = "111111111111", "eu-west-1"


def _rules(ec2, **kwargs) -> list[dict]:
    return sorted(ec2.describe_security_group_rules(**kwargs)["SecurityGroupRules"],
                  key=lambda r: r["SecurityGroupRuleId"])


def test_rules_by_group_id_are_moto_s_own_answer_filtered(cloud):
    ec2 = cloud.ec2(ACCOUNT, REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    groups = [ec2.create_security_group(GroupName=f"g{i}", Description="d", VpcId=vpc)["GroupId"] for i in range(3)]
    for i, group in enumerate(groups):
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80 + i, "ToPort": 80 + i, "IpRanges": [{"CidrIp": f"10.1.{i}.0/24"}]},
            {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "UserIdGroupPairs": [{"GroupId": groups[0]}]}])
    everything = _rules(ec2)  # no group-id filter: moto's own code
    for wanted in ([groups[1]], groups[:2], [groups[2], groups[0]]):
        found = _rules(ec2, Filters=[{"Name": "group-id", "Values": wanted}])
        assert found == [r for r in everything if r["GroupId"] in wanted]
        assert {r["IsEgress"] for r in found} == {True, False}  # the default egress rule (port -1) too
        assert all(r["FromPort"] == -1 for r in found if r["IpProtocol"] == "-1")
    one = everything[0]["SecurityGroupRuleId"]
    assert _rules(ec2, SecurityGroupRuleIds=[one]) == everything[:1]
    with pytest.raises(ClientError, match="InvalidGroupId.Malformed"):
        ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": ["nonsense"]}])


def test_json_templates_make_the_same_stacks(cloud):
    cfn = cloud.client("cloudformation", ACCOUNT, REGION)
    template = {"Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}}},
                "Outputs": {"Id": {"Value": {"Ref": "Vpc"}}}}
    cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="CREATE", TemplateBody=json.dumps(template))
    cfn.execute_change_set(StackName="s", ChangeSetName="c")
    yaml_body = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties: {CidrBlock: 10.8.0.0/16}\n"
    cfn.create_stack(StackName="y", TemplateBody=yaml_body)  # YAML still parsed by moto's own loader
    cidrs = {v["CidrBlock"] for v in cloud.ec2(ACCOUNT, REGION).describe_vpcs()["Vpcs"]}
    assert {"10.9.0.0/16", "10.8.0.0/16"} <= cidrs
    assert [r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName="s")["StackResources"]] == ["Vpc"]
