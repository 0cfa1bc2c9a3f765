"""The AWS judge (tests/judges/aws.py) on hypothesis estates, not just the example one.

Each example: write the drawn spec documents into a temporary folder, resolve them (the flow list is the
expectation), reset moto, seed the inventory, rewrite a copy of the specs with moto's ids, `netgen build` it,
deploy the plan through CloudFormation (with the documented moto workarounds) and judge the EC2 answers with the
same probes as the example estate: every flow reachable at concrete addresses, and nothing close to it (other
sources and destinations of the same VPCs, ports just outside the range, the reverse direction, other service
fronts) unless some flow grants it or AWS cannot tell it apart from a granted packet.

Two strategies, as for the Kubernetes judge (tests/test_judge_nca.py):
- test_properties.estates: several accounts and regions, VPCs with two CIDRs, hosts inside cluster VPCs that may
  share the cluster's group, NLBs with and without a group, arbitrary ports.
- judges.estates.estates: overlapping selectors, source NAT with excluded CIDRs, port ranges, UDP, NLBs with no
  group, hosts of two legacy VPCs sharing one group per VPC.

The drawn inventory ids (vpc-..., sg-..., rtb-...) are not moto's: seeding creates the objects and the spec copy
is rewritten, exactly as for the example estate. A failure message carries the estate as YAML, ready to drop into
a specs folder for reproduction (`netgen build --as-of 2026-11-26`).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from judges.aws import Lab, MotoCloud, build_lab, flow_probes, judge, moto_server
from judges.estates import estates as judge_estates
from test_properties import estates as property_estates

from netgen.diagnostics import Reporter
from netgen.pipeline import Resolved, resolve_specs

AS_OF = date(2026, 11, 26)
# No shrinking: every step deploys into the one moto server, whose state only grows (a failing example once took
# minutes and 3.8 GB to shrink). A failure prints its whole estate instead.
JUDGED = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                  phases=(Phase.explicit, Phase.reuse, Phase.generate))
# moto warns that its CloudFormation skips AWS::EC2::SecurityGroupEgress: the gap deploy() works around
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..EC2..SecurityGroupEgress")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the module. Hypothesis runs every example inside one call of the test function, so
    each example resets moto itself (judge_estate) rather than through a function-scoped fixture."""
    with moto_server() as url:
        yield url


def judge_estate(endpoint: str, text: str) -> tuple[Resolved, Lab]:
    """Resolve, seed, build, deploy and judge one estate (a multi-document YAML); fail with the estate attached."""
    with tempfile.TemporaryDirectory(prefix="netgen-aws-judge-") as tmp:
        work = Path(tmp)
        specs = work / "drawn"
        specs.mkdir()
        (specs / "estate.yaml").write_text(text, "utf-8")
        resolved = resolve_specs(specs, AS_OF, Reporter())
        assert resolved.flows, "the strategy drew an estate without flows"
        cloud = MotoCloud(endpoint)
        cloud.reset()
        lab = build_lab(cloud, specs, resolved.estate, work, AS_OF)
        result = judge(lab, resolved)
        assert result.failures == [], ("\n".join(result.failures[:40])
                                       + f"\n\n{len(result.failures)} failures; the estate:\n{text}")
    # The judge did real work: every flow at least once; all peerings the plan asked for are active.
    assert result.checked_allowed >= len(resolved.flows)
    assert all(p["Status"]["Code"] == "active" for p in lab.view.peerings.values()), lab.view.peerings
    check_judge_notices_a_closed_group(lab, resolved, text)
    return resolved, lab


def check_judge_notices_a_closed_group(lab: Lab, resolved: Resolved, text: str) -> None:
    """Non-vacuity, on the EC2 snapshot (no redeploy): strip every ingress rule of the group guarding the first
    flow's destination, and the judge must report that flow DENIED for lack of an ingress rule."""
    flow, probe = next(((f, p) for f in resolved.flows for p in flow_probes(resolved.estate, f)
                        if p.dst_groups is not None), (None, None))
    if flow is None or probe is None:  # every destination is an NLB without a group: nothing to close
        return
    group_id = lab.seeded.groups[probe.dst_groups[0]]
    view = copy.copy(lab.view)
    view.security_groups = {**view.security_groups,
                            group_id: {**view.security_groups[group_id], "IpPermissions": []}}
    closed = judge(Lab(lab.seeded, lab.out, lab.deployment, view), resolved)
    assert any(f.startswith(f"DENIED {probe}") and "ingress" in f for f in closed.failures), (
        "\n".join(closed.failures[:20]) + f"\nthe estate:\n{text}")
    assert all(f.startswith("DENIED") for f in closed.failures), "\n".join(closed.failures[:20])


@JUDGED
@given(docs=property_estates().filter(lambda docs: any(d["kind"] == "Grant" for d in docs)))
def test_property_estates_pass_the_aws_judge(moto_endpoint: str, docs: list[dict]) -> None:
    """Several accounts and regions, two-CIDR VPCs, hosts beside clusters, arbitrary ports."""
    judge_estate(moto_endpoint, yaml.safe_dump_all(docs, sort_keys=False))


def test_an_nlb_whose_listener_port_is_its_target_port_passes_the_aws_judge(moto_endpoint: str) -> None:
    """The relayed hop's sender (the NLB, client address kept) reaches another NLB address on that port only
    through the listener rule the client needs; a generated estate once failed the judge on it."""
    judge_estate(moto_endpoint, (Path(__file__).parent / "judges" / "nlb_listener_is_target_port.yaml").read_text())


@JUDGED
@given(spec_files=judge_estates())
def test_judge_estates_pass_the_aws_judge(moto_endpoint: str, spec_files: dict[str, str]) -> None:
    """Overlapping selectors, source NAT exclusions, port ranges and UDP, NLBs without a group."""
    (text,) = spec_files.values()
    judge_estate(moto_endpoint, text)
