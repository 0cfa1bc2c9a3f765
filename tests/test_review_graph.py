"""`netgen graph`: Mermaid names every VPC and every peering, dot is accepted by Graphviz, and the pure-Python
SVG is well-formed and draws every VPC, peering and flow edge."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, run_cli

from netgen.diagnostics import Reporter
from netgen.pipeline import resolve_specs
from netgen.targets.aws_network import plan_peerings_and_routes

AS_OF = EXAMPLE_AS_OF.isoformat()
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def resolved():
    return resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter())


@pytest.fixture(scope="module")
def peerings(resolved) -> set[frozenset[str]]:
    pairs, _ = plan_peerings_and_routes(resolved.estate, list(resolved.flows), Reporter())
    return {frozenset((p.requester.name, p.accepter.name)) for p in pairs.values()}


def graph(fmt: str, *args: str) -> str:
    result = run_cli("graph", "--format", fmt, "--specs", str(EXAMPLE_SPECS), "--as-of", AS_OF, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_mermaid_has_every_vpc_and_every_peering(resolved, peerings):
    text = graph("mermaid")
    assert text.startswith("flowchart LR\n")
    # VPC nodes: id[("VPC name vpc-id cidrs")]
    vpc_ids = dict(re.findall(r'^\s*(\w+)\[\("VPC ([a-z0-9-]+) ', text, re.MULTILINE))
    assert set(vpc_ids.values()) == {v.name for v in resolved.estate.vpcs}
    for vpc in resolved.estate.vpcs:
        assert vpc.vpc_id in text
    drawn = {frozenset((vpc_ids[a], vpc_ids[b]))
             for a, b in re.findall(r"^\s*(\w+) -\.-\|[^|]*\| (\w+)$", text, re.MULTILINE)}
    assert drawn == peerings
    through = {frozenset((vpc_ids[a], vpc_ids[b]))
               for a, b in re.findall(r"^\s*(\w+) <==>\|\"transit gateway[^|]*\| (\w+)$", text, re.MULTILINE)}
    assert through == {frozenset((f.path.source_vpc, f.path.destination_vpc)) for f in resolved.flows
                       if f.path.transit} == {frozenset(("k8s-use1", "loyalty-use1"))}
    for cluster in resolved.estate.clusters:
        assert f"cluster {cluster.name}" in text
    lines = [line.strip() for line in text.splitlines()]
    assert len([x for x in lines if x.startswith("subgraph ")]) == lines.count("end")


def test_mermaid_edges_connect_every_grant(resolved):
    text = graph("mermaid")
    edges = re.findall(r"^\s*(\w+) -->\|\"([^\"]*)\"\| (\w+)$", text, re.MULTILINE)
    labels = dict(re.findall(r'^\s*(\w+)(?:\[|\(\[|\[\[)"([^"]+)"', text, re.MULTILINE))
    for grant in resolved.estate.grants:
        legacy = grant.legacy_ref.split(" ", 1)[1]
        if grant.service is not None:
            target = f"service {grant.service.namespace}/{grant.service.name}"
            assert any(labels[a].startswith(legacy + " (") and labels[b] == target for a, _, b in edges), grant.name
        else:
            source = f"workload {grant.workload.namespace}/{grant.workload.name}"
            assert any(labels[a] == source and labels[b].startswith(legacy + " (") for a, _, b in edges), grant.name


def test_dot_is_accepted_by_graphviz(tmp_path: Path):
    if shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz (dot) must be installed in CI: `make graphviz`")
        pytest.skip("Graphviz (dot) is not installed")
    source = tmp_path / "estate.dot"
    source.write_text(graph("dot"), "utf-8")
    done = subprocess.run(["dot", "-Tsvg", str(source)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""  # no warnings either
    ET.fromstring(done.stdout)


def test_svg_is_well_formed_and_draws_everything(resolved, peerings, tmp_path: Path):
    out = tmp_path / "docs" / "estate.svg"
    result = run_cli("graph", "--format", "svg", "--out", str(out), "--specs", str(EXAMPLE_SPECS), "--as-of", AS_OF)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    width, height = float(root.get("width")), float(root.get("height"))
    assert width > 0 and height > 0
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for vpc in resolved.estate.vpcs:
        assert f"VPC {vpc.name}" in texts
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert len([t for t in titles if t.startswith("peering (")]) == len(peerings)
    # every element lies inside the picture
    for rect in root.iter(f"{SVG}rect"):
        if rect.get("x") is not None:
            assert 0 <= float(rect.get("x")) and float(rect.get("x")) + float(rect.get("width")) <= width + 1
            assert 0 <= float(rect.get("y")) and float(rect.get("y")) + float(rect.get("height")) <= height + 1
    # the same picture on stdout, byte for byte (deterministic)
    assert graph("svg") == out.read_text("utf-8")


def test_graph_of_an_estate_with_spec_errors_exits_1(example_specs: Path):
    path = example_specs / "access/billing.yaml"
    path.write_text(path.read_text("utf-8").replace("payments/refunds-api", "payments/refund-api"), "utf-8")
    result = run_cli("graph", "--specs", str(example_specs), "--as-of", AS_OF)
    assert result.exit_code == 1
    assert "NG104" in result.stderr


def test_legacy_nodes_sit_only_in_the_vpcs_their_hosts_live_in(resolved):
    """Hops relayed inside a cluster's VPC carry the hosts' addresses; they must not draw the hosts there."""
    from netgen.review.graph import build_graph

    host_vpcs = {h.name: h.vpc.name for h in resolved.estate.hosts}
    for column in build_graph(resolved).columns:
        for node in column.legacy:
            assert node.hosts and all(host_vpcs[h] == column.vpc.name for h in node.hosts), (column.vpc.name, node)
