"""Small parts of netgen/aws without a server: sessions, discover's names, verify's coverage check, the plan."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from netgen.aws.discover import Names, labels_from_tags, sanitize
from netgen.aws.generated import RuleSpec, live_rule, route_peer_pairs
from netgen.aws.session import RETRIES, Clients, error_text
from netgen.aws.verify import excess


def test_clients_retry_adaptively_and_send_the_account_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    clients = Clients({}, "http://127.0.0.1:9", account_header="x-moto-account-id")
    ec2 = clients.ec2("210987654321", "us-west-2")
    assert RETRIES == {"mode": "adaptive", "max_attempts": 10}
    assert ec2.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}  # botocore: 10 retries
    assert ec2.meta.endpoint_url == "http://127.0.0.1:9" and ec2.meta.region_name == "us-west-2"
    assert clients.ec2("210987654321", "us-west-2") is ec2
    seen = {}

    def stop(request, **_):  # runs after the header hook; never lets the request leave
        seen.update(request.headers)
        raise RuntimeError("stop")

    ec2.meta.events.register_last("before-sign.ec2.*", stop)
    with pytest.raises(RuntimeError):
        ec2.describe_vpcs()
    assert seen["x-moto-account-id"] == "210987654321"


def test_clients_use_the_account_profile(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("[profile acme]\naws_access_key_id = AKIDACME\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    clients = Clients({"123456789012": "acme"})
    assert clients.session("123456789012").get_credentials().access_key == "AKIDACME"
    from botocore.exceptions import ProfileNotFound

    with pytest.raises(ProfileNotFound) as raised:
        Clients({"1": "nope"}).session("1")
    assert "nope" in error_text(raised.value)


def test_discover_names_follow_netgen_rules() -> None:
    assert sanitize("Billing Host #1 (EU)") == "billing-host-1-eu"
    assert sanitize("___") == "x" and len(sanitize("a" * 100)) == 63
    names = Names()
    assert names.take("DB", "i-0abc") == "db"
    second = names.take("db", "i-0def123")
    assert second != "db" and second.startswith("db-") and sanitize(second) == second
    assert labels_from_tags({"Name": "x", "Role": "billing", "aws:cloudformation:stack": "s",
                             "Cost Center": "A&B"}) == {"role": "billing", "cost-center": "A-B"}


@pytest.mark.parametrize(("rule", "allowed", "why"), [
    (("tcp", 443, 443, "10.1.0.0/24"), [("10.1.0.0/25", 443, 443), ("10.1.0.128/25", 443, 443)], None),
    (("tcp", 443, 444, "10.1.0.0/24"), [("10.1.0.0/24", 443, 443)], "no flow allows 10.1.0.0/24 on tcp/444"),
    (("tcp", 80, 90, "10.1.0.5/32"), [("10.1.0.0/24", 80, 85), ("10.1.0.0/28", 86, 90)], None),
    (("tcp", 80, 90, "10.1.0.0/24"), [("10.1.0.0/24", 80, 85), ("10.1.0.0/28", 86, 90)],
     "no flow allows 10.1.0.0/24 on tcp/86-90"),
    (("-1", -1, -1, "10.1.0.5/32"), [("10.1.0.0/24", 0, 65535)], "all protocols and ports"),
    (("tcp", 443, 443, "sg-123"), [], "not a CIDR"),
])
def test_verify_rule_coverage(rule, allowed, why) -> None:
    found = excess(*rule, [(ip_network(n), a, b) for n, a, b in allowed])
    assert (found is None) if why is None else (found is not None and why in found)


def test_rules_and_routes_read_back() -> None:
    rule = live_rule({"GroupId": "sg-1", "IsEgress": True, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                      "CidrIpv4": "10.0.0.0/8", "Description": "netgen: g", "SecurityGroupRuleId": "sgr-1"})
    assert rule == RuleSpec("sg-1", "egress", "tcp", 5432, 5432, "10.0.0.0/8")
    assert rule.rule_id == "sgr-1" and str(rule) == "sg-1 egress tcp/5432 to 10.0.0.0/8"
    from netgen.aws.generated import StackPlan

    requester = StackPlan("a", "1", "one", "eu-west-1", "t", {
        "Resources": {"P": {"Type": "AWS::EC2::VPCPeeringConnection", "Properties": {"VpcId": "vpc-a",
                                                                                     "PeerVpcId": "vpc-b"}},
                      "R": {"Type": "AWS::EC2::Route", "Properties": {
                          "RouteTableId": "rtb-a", "DestinationCidrBlock": "10.2.0.0/24",
                          "VpcPeeringConnectionId": {"Ref": "P"}}}},
        "Outputs": {"PId": {"Value": {"Ref": "P"}}}}, {}, [])
    accepter = StackPlan("b", "1", "one", "us-east-1", "t", {"Resources": {"R": {
        "Type": "AWS::EC2::Route", "Properties": {"RouteTableId": "rtb-b", "DestinationCidrBlock": "10.1.0.0/24",
                                                  "VpcPeeringConnectionId": {"Ref": "PId"}}}}},
        {"PId": {"stack": "a", "output": "PId"}}, [])
    assert route_peer_pairs([requester, accepter]) == {("rtb-a", "10.2.0.0/24"): ("vpc-a", "vpc-b"),
                                                      ("rtb-b", "10.1.0.0/24"): ("vpc-a", "vpc-b")}
