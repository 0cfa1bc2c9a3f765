"""What an NLB really sends its targets, at every layer of the example's output: the internal DNS resolver takes
53/UDP and 53/TCP (target 5353) behind an NLB that health-checks over TCP on port 8080 (healthCheckPort). The
cluster group admits the NLB's subnet on TCP 8080 and never on UDP, the NLB's group (it restricts egress) sends
TCP 8080 to the pods, and the NetworkPolicy admits the NLB's subnet on TCP 8080 only."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

GENERATED = Path(__file__).resolve().parent.parent / "generated"
NLB_SUBNET = "10.40.36.0/24"
PODS = "10.40.64.0/18"


def rules(template: str) -> list[dict]:
    body = json.loads((GENERATED / "aws/acme-legacy/us-east-1" / template).read_text())
    return [r["Properties"] | {"Type": r["Type"]} for r in body["Resources"].values()]


def openings(found: list[dict], kind: str, cidr: str) -> set[tuple[str, int, int]]:
    return {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in found
            if r["Type"] == kind and r["CidrIp"] == cidr}


def test_the_cluster_group_admits_the_nlb_health_checks_over_tcp_only():
    cluster = rules("sg-prod-use1-nodes.json")
    assert openings(cluster, "AWS::EC2::SecurityGroupIngress", NLB_SUBNET) == {("tcp", 8080, 8080)}
    assert not any(r["IpProtocol"] == "udp" and r["CidrIp"].startswith("10.40.3") for r in cluster)


def test_the_nlb_group_sends_the_health_checks_over_tcp():
    nlb = rules("sg-internal-dns-nlb.json")
    assert openings(nlb, "AWS::EC2::SecurityGroupEgress", PODS) == {
        ("tcp", 5353, 5353), ("udp", 5353, 5353),  # the clients' packets, their address kept
        ("tcp", 8080, 8080)}  # the health checks


def test_the_policy_admits_the_nlb_health_checks_over_tcp_only():
    policy = yaml.safe_load((GENERATED / "kubernetes/prod-use1/platform/netgen-ingress-internal-dns.yaml").read_text())
    from_nlb = [rule["ports"] for rule in policy["spec"]["ingress"]
                if [p["ipBlock"]["cidr"] for p in rule["from"]] == [NLB_SUBNET]]
    assert from_nlb == [[{"port": 8080, "protocol": "TCP"}]]
