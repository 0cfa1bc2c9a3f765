"""Scale: the synthetic estates `make bench` builds, and the shortcuts that make large builds fast are exact."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from buildhelpers import AS_OF_DATE, REPO, tree

import netgen.loader
from netgen.bench.synth import generate, write
from netgen.diagnostics import Reporter
from netgen.loader import spec_files
from netgen.parallel import deal
from netgen.pipeline import Resolved, resolve_specs
from netgen.render import OWNED, OutputError, write_tree
from netgen.targets.aws import _RuleEntries
from netgen.targets.aws_rules import plan_rules


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    """A small synthetic estate: 1,000 grants over 2 regions."""
    specs = tmp_path_factory.mktemp("synthetic") / "specs"
    write(specs, generate(hosts=200, services=40, grants=1000, regions=2))
    return specs


def test_synthetic_estate_is_valid(synthetic):
    reporter = Reporter()
    resolved = resolve_specs(synthetic, AS_OF_DATE, reporter)
    assert not reporter.has_errors
    assert len(resolved.flows) > 1000
    assert {d.code for d in reporter.sorted()} <= {"NG112", "NG120"}  # repeats and expiring grants only


# ---- synth --transit-gateway ------------------------------------------------------------------------------------

def test_without_transit_gateways_the_estate_has_none_and_is_otherwise_the_same():
    """The flag adds the gateways and their network account and changes nothing else, and without it there is no
    trace of them (the estate `make bench` has always measured)."""
    shape = {"hosts": 200, "services": 40, "grants": 1000, "regions": 3}
    plain, gateways = generate(**shape), generate(**shape, transit_gateway=True)
    assert not any("kind: TransitGateway" in text or "acct-network" in text for text in plain.values())
    assert set(gateways) - set(plain) == {"inventory/transit-gateways.yaml"}
    assert gateways["inventory/accounts.yaml"].startswith(plain["inventory/accounts.yaml"] + "---\n")
    assert {path: text for path, text in gateways.items() if path in plain and path != "inventory/accounts.yaml"} \
        == {path: text for path, text in plain.items() if path != "inventory/accounts.yaml"}
    assert generate(**shape, transit_gateway=True) == gateways  # deterministic


@dataclass
class Built:
    """A build in memory, as test_transit_gateways.walk reads one."""

    resolved: Resolved
    files: dict

    def template(self, path: str) -> dict:
        return json.loads(self.files[path])

    def resources(self, kind: str) -> list[dict]:
        return [r["Properties"] for path in self.files if path.startswith("aws/") and path.endswith(".json")
                and not path.endswith("deploy-plan.json")
                for r in self.template(path)["Resources"].values() if r["Type"] == kind]


@pytest.fixture(scope="module")
def through_gateways(tmp_path_factory) -> Built:
    """A small synthetic estate over 3 regions, its VPCs joined through transit gateways, built."""
    from netgen.targets import compile_outputs

    specs = tmp_path_factory.mktemp("transit") / "specs"
    write(specs, generate(hosts=100, services=20, grants=400, regions=3, transit_gateway=True))
    reporter = Reporter()
    resolved = resolve_specs(specs, AS_OF_DATE, reporter)
    files = compile_outputs(resolved, reporter)
    assert not reporter.has_errors
    assert {d.code for d in reporter.sorted()} <= {"NG112", "NG120"}
    return Built(resolved, files)


def test_a_transit_gateway_estate_routes_every_pair_of_vpcs_through_the_gateways(through_gateways):
    from test_transit_gateways import walk

    built = through_gateways
    estate = built.resolved.estate
    gateway_of = {g.region: g.gateway_id for g in estate.transit_gateways}
    region = {v.name: v.region for v in estate.vpcs}
    between = [f for f in built.resolved.flows if f.path.peered]
    assert len({frozenset((f.path.source_vpc, f.path.destination_vpc)) for f in between}) > 20
    assert len(estate.gateway_peerings) == 3  # every two of the 3 regions
    for flow in between:
        a, b = flow.path.source_vpc, flow.path.destination_vpc
        assert flow.path.transit == tuple(dict.fromkeys((gateway_of[region[a]], gateway_of[region[b]]))), \
            flow.line()
        src, dst = flow.source.addresses[0][0], flow.destination.addresses[-1][-1]
        there, back = walk(built, a, src, b, dst), walk(built, b, dst, a, src)
        assert there[-1] == b and back[-1] == a, (flow.line(), there, back)
        assert len(there) == (3 if flow.path.cross_region else 2) + 1, there  # one gateway table per gateway
    assert not built.resources("AWS::EC2::VPCPeeringConnection")
    assert all("TransitGatewayId" in r for r in built.resources("AWS::EC2::Route"))
    plan = json.loads(built.files["aws/deploy-plan.json"])
    assert not any(stack["peerings"] for stack in plan["stacks"])
    assert {g["name"] for g in plan["transitGateways"]} == {g.name for g in estate.transit_gateways}


def test_a_transit_gateway_estate_has_static_routes_across_peerings_and_to_vpcs_not_propagating(through_gateways):
    """Pairs in one region are propagated; traffic to another region takes a static route to the peering
    attachment, and, on the far gateway, to the one VPC per region that does not propagate to the peerings' table
    (synth.transit_gateways), in the stacks of the network account, which owns no VPC."""
    built = through_gateways
    estate = built.resolved.estate
    assert "acct-network" not in {v.account.name for v in estate.vpcs}
    peering_attachments = {p.attachment_id for p in estate.gateway_peerings}
    kept_off = {a.attachment_id for g in estate.transit_gateways for a in g.attachments
                if a.vpc.name == f"legacy-{g.region}-1"}
    for gateway in estate.transit_gateways:
        to_vpcs, to_peerings = gateway.route_tables
        stack = built.template(f"aws/acct-network/{gateway.region}/network.json")["Resources"].values()
        targets: dict[str, set[str]] = {}
        for route in stack:
            assert route["Type"] == "AWS::EC2::TransitGatewayRoute"
            properties = route["Properties"]
            targets.setdefault(properties["TransitGatewayRouteTableId"], set()).add(
                properties["TransitGatewayAttachmentId"])
        its_peerings = {p.attachment_id for p in estate.gateway_peerings if gateway in (p.requester, p.accepter)}
        assert targets.get(to_vpcs) == its_peerings
        assert targets.get(to_peerings) == kept_off & {a.attachment_id for a in gateway.attachments}
    assert {r["TransitGatewayAttachmentId"] for r in built.resources("AWS::EC2::TransitGatewayRoute")} \
        == peering_attachments | kept_off


@pytest.mark.parametrize("estate", ["example", "synthetic"])
def test_copied_rule_entries_equal_what_troposphere_builds(estate, synthetic):
    """Rules copy a troposphere-built prototype per (direction, group, protocol); every copy must be the text
    template_json writes for the entry troposphere builds and validates for that rule itself."""
    specs = REPO / "specs" if estate == "example" else synthetic
    resolved: Resolved = resolve_specs(specs, AS_OF_DATE, Reporter())
    rules = plan_rules(resolved.estate, list(resolved.flows), Reporter())
    entries = _RuleEntries()
    for rule in rules:
        resource = _RuleEntries.resource(rule)
        title, text = entries.entry(rule)
        assert (title, text) == (resource.title, json.dumps(resource.to_dict(), sort_keys=True))
        assert json.loads(text) == resource.to_dict()
    assert {r.direction for r in rules} == {"ingress", "egress"}
    assert len(rules) > 2 * len(entries.prototypes)  # most entries were copies


# ---- two cores ------------------------------------------------------------------------------------------------

def _build(specs: Path) -> tuple[dict[str, bytes], list]:
    from netgen.targets import compile_outputs

    reporter = Reporter()
    files = compile_outputs(resolve_specs(specs, AS_OF_DATE, reporter), reporter)
    return files, reporter.sorted()


def test_two_core_build_equals_the_serial_build(synthetic, forks, monkeypatch):
    theirs: list[int] = []  # the files the child reads

    class Recorded(netgen.loader.EachBeside):
        def __init__(self, function, items, fork):
            theirs.extend(items)
            super().__init__(function, items, fork)

    monkeypatch.setattr(netgen.loader, "EachBeside", Recorded)
    parallel = _build(synthetic)
    assert len(forks) == 2  # children: most of the files; Kubernetes, the report and a share of the rule stacks
    monkeypatch.setenv("NETGEN_JOBS", "1")
    serial = _build(synthetic)
    assert len(forks) == 2
    assert parallel == serial
    assert parallel[1]  # with its warnings, which the files the child read produced too
    paths = spec_files(synthetic)
    assert {d.location.file for d in parallel[1]} & {str(paths[i]) for i in theirs}


@pytest.mark.parametrize("two_cores", [False, True])
def test_a_build_that_fails_its_rules_says_so_before_anything_else_fails(tmp_path, monkeypatch, request, two_cores):
    import shutil

    import netgen.targets.kubernetes
    from netgen.diagnostics import SpecError
    from netgen.targets import compile_outputs

    if two_cores:
        request.getfixturevalue("forks")
    specs = shutil.copytree(REPO / "specs", tmp_path / "specs")
    security_groups = specs / "inventory" / "security-groups.yaml"
    security_groups.write_text(security_groups.read_text().replace(
        "groupId: sg-0c3000000000000c1", "groupId: sg-0c3000000000000c1\n  ruleQuota: 1", 1))
    called: list[str] = []

    def failing(estate, flows):
        called.append("kubernetes")  # (seen only when it runs in this process)
        raise RuntimeError("the other targets fail too")

    monkeypatch.setattr(netgen.targets.kubernetes, "compile_kubernetes", failing)
    with pytest.raises(SpecError) as failed:
        compile_outputs(resolve_specs(specs, AS_OF_DATE, Reporter()), Reporter())
    assert {d.code for d in failed.value.diagnostics} == {"NG201"}
    if not two_cores:  # (in the child, the other targets run in parallel; what fails first above is the point)
        assert called == [], "a build that fails its rules never reaches the other targets"
    security_groups.write_text(security_groups.read_text().replace("\n  ruleQuota: 1", "", 1))
    with pytest.raises(RuntimeError, match="the other targets fail too"):  # raised here, from either process
        compile_outputs(resolve_specs(specs, AS_OF_DATE, Reporter()), Reporter())


FILES = {f"aws/acct-{i % 3}/f{i}.json": b"{}\n" * i for i in range(40)}


def test_a_two_core_write_equals_the_serial_write(tmp_path, forks, monkeypatch):
    assert write_tree(tmp_path / "two", FILES) == len(FILES) + 1  # and the list of owned files
    assert len(forks) == 1
    monkeypatch.setenv("NETGEN_JOBS", "1")
    write_tree(tmp_path / "one", FILES)
    assert len(forks) == 1
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    assert {name: tree(tmp_path / "two")[name] for name in FILES} == FILES


def test_a_write_error_in_the_child_names_the_file_and_leaves_the_owned_list_unwritten(tmp_path, forks,
                                                                                      monkeypatch):
    names = list(FILES)
    _, theirs = deal([1] * len(names))
    victim = names[theirs[-1]]
    write = netgen.render._write
    parent = os.getpid()

    def failing(base, out, name, content):
        if name == victim and os.getpid() != parent:  # in the child only: its error must reach the parent
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(base, out, name, content)

    monkeypatch.setattr(netgen.render, "_write", failing)
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'out' / victim}: No space left on device"):
        write_tree(tmp_path / "out", FILES)
    assert len(forks) == 1
    assert not (tmp_path / "out" / OWNED).exists()  # written last, by this process, once every file is in place


def test_a_failed_write_leaves_no_temporary_file_behind(tmp_path, forks, monkeypatch):
    """When this process fails first, the child finishes its files (each whole) rather than being stopped
    halfway through one, which would leave a temporary file nothing owns."""
    names = list(FILES)
    mine, _ = deal([1] * len(names))
    victim = names[mine[2]]
    write = netgen.render._write
    parent = os.getpid()

    replace = os.replace

    def failing_here(base, out, name, content):
        if name == victim and os.getpid() == parent:
            time.sleep(0.3)  # the child is halfway through a file by now
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write(base, out, name, content)

    def slow_in_the_child(source, target):  # the child holds a temporary file most of the time
        if os.getpid() != parent:
            time.sleep(0.05)
        replace(source, target)

    monkeypatch.setattr(netgen.render, "_write", failing_here)
    monkeypatch.setattr(netgen.render.os, "replace", slow_in_the_child)
    with pytest.raises(OutputError, match="No space left on device"):
        write_tree(tmp_path / "out", FILES)
    left = [p.name for p in (tmp_path / "out").rglob(".*")]
    assert left == []


def test_errors_in_files_the_child_reads_are_reported_with_their_location(tmp_path, forks):
    from netgen.loader import load_tree

    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "b.yaml").write_text("b: 1\nb: 2\n")
    reporter = Reporter()
    documents = load_tree(tmp_path, reporter)
    assert len(forks) == 1
    assert [d.data for d in documents] == [{"a": 1}, {"b": 1}]
    [diagnostic] = reporter.sorted()
    assert (diagnostic.code, diagnostic.location.file, diagnostic.location.line) == ("NG003",
                                                                                     str(tmp_path / "b.yaml"), 2)
    assert documents[1].at(("b",)).line == 1  # positions still work in the parent


def test_names_lost_in_files_the_child_reads_reach_the_parent(tmp_path, forks):
    from netgen.loader import load_tree

    (tmp_path / "a.yaml").write_text("a: 1\n")
    (tmp_path / "b.yaml").write_text("metadata: {name: lost}\nspec: [unclosed\n")
    reporter = Reporter()
    load_tree(tmp_path, reporter)
    assert len(forks) == 1
    assert [d.code for d in reporter.diagnostics] == ["NG002"] and reporter.unloaded_names == {"lost"}


def test_the_shape_check_runs_where_each_file_is_loaded(tmp_path, forks):
    from netgen.loader import load_tree
    from netgen.schema import check_document

    (tmp_path / "a.yaml").write_text("apiVersion: netgen.dev/v1alpha1\nkind: Account\nmetadata: {name: a}\n"
                                     "spec: {accountId: '123456789012', peeringAcceptRoleArn: "
                                     "'arn:aws:iam::123456789012:role/accepter'}\n")
    (tmp_path / "b.yaml").write_text("apiVersion: netgen.dev/v1alpha1\nkind: Acount\n")
    reporter = Reporter()
    documents = load_tree(tmp_path, reporter, check=check_document)
    assert len(forks) == 1
    assert [d.shape_ok for d in documents] == [True, False]
    [diagnostic] = reporter.sorted()
    assert (diagnostic.code, diagnostic.location.file, diagnostic.location.line, diagnostic.location.column) == (
        "NG011", str(tmp_path / "b.yaml"), 2, 7)


def test_each_result_comes_back_once_as_the_child_computes_it(tmp_path):
    """The child sends each result as it is done: ready() hands out those already sent without waiting (here,
    while the child is still busy with its last item, which waits for this process), rest() the others."""
    from netgen.parallel import EachBeside

    go = tmp_path / "go"

    def tenfold(n: int) -> int:
        if n == 3:  # the last item waits until this process has taken the others
            deadline = time.monotonic() + 30
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return n * 10

    with EachBeside(tenfold, range(4), fork=True) as child:
        assert child.pid
        early: list = []
        deadline = time.monotonic() + 30
        while len(early) < 3 and time.monotonic() < deadline:
            early += child.ready()  # a ready() that waited for the child would also return item 3, 30 s later
            time.sleep(0.01)
        go.touch()
        late = list(child.rest())
    assert early == [(0, 0), (1, 10), (2, 20)]
    assert late == [(3, 30)]
    assert child.pid == 0  # reaped


def test_a_result_is_handed_out_once_even_by_a_ready_left_unfinished(tmp_path):
    from netgen.parallel import EachBeside

    sent, go = tmp_path / "sent", tmp_path / "go"

    def tenfold(n: int) -> int:
        if n == 3:  # items 0 to 2 are in the pipe by now
            sent.touch()
            deadline = time.monotonic() + 30
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return n * 10

    with EachBeside(tenfold, range(4), fork=True) as child:
        deadline = time.monotonic() + 30
        while not sent.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # (the child wrote its results before it touched the file)
        first = child.ready()
        taken = [next(first)]  # and the caller keeps the unfinished generator
        taken += child.ready()
        go.touch()
        taken += child.rest()
    assert sorted(taken) == [(0, 0), (1, 10), (2, 20), (3, 30)]


def test_results_a_dying_child_never_sent_are_computed_here():
    from netgen.parallel import EachBeside

    parent = os.getpid()
    computed_here = []

    def square(n: int) -> int:
        if os.getpid() != parent and n == 3:
            os._exit(3)  # the child dies after sending 0, 1 and 2
        if os.getpid() == parent:
            computed_here.append(n)
        return n * n

    with EachBeside(square, range(6), fork=True) as child:
        results = dict(child.rest())
    assert results == {n: n * n for n in range(6)}
    assert computed_here == [3, 4, 5]


def test_an_exception_in_the_child_is_raised_here_in_its_turn():
    from netgen.parallel import EachBeside

    with EachBeside(lambda n: 10 // n, [5, 2, 0, 1], fork=True) as child:
        results = []
        with pytest.raises(ZeroDivisionError):
            for item in child.rest():
                results.append(item)
    assert results == [(0, 2), (1, 5)]


def test_child_failures_reach_the_parent():
    from netgen.parallel import Beside

    with pytest.raises(ZeroDivisionError), Beside(lambda: 1 // 0, fork=True) as child:
        child.result()
    parent = os.getpid()

    def dies_in_the_child() -> int:
        if os.getpid() != parent:
            os._exit(3)
        return 42

    with Beside(dies_in_the_child, fork=True) as child:
        assert child.pid and child.result() == 42  # redone here


def test_an_unpicklable_result_is_computed_again_here():
    from netgen.parallel import Beside

    parent = os.getpid()
    with Beside(lambda: (lambda: os.getpid()) if os.getpid() != parent else "here", fork=True) as child:
        assert child.result() == "here"


def test_a_child_is_stopped_when_the_parent_fails_first():
    from netgen.parallel import Beside

    with pytest.raises(RuntimeError), Beside(lambda: time.sleep(60), fork=True) as child:
        pid = child.pid
        raise RuntimeError("the parent's share failed")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind


def test_a_child_dies_with_its_parent():
    """SIGTERM to netgen alone (not to its process group) must not leave a child finishing its share."""
    import signal

    probe = ("import os, sys, time\n"
             "from netgen.parallel import Beside\n"
             "with Beside(lambda: time.sleep(60), fork=True) as child:\n"
             "    print(child.pid, flush=True)\n"
             "    time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, text=True) as parent:
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def test_an_interrupted_parent_stops_its_child_at_once():
    """Ctrl-C while netgen waits for a child's result: the parent exits now, and the child with it."""
    import signal

    probe = ("import time\n"
             "from netgen.parallel import Beside\n"
             "with Beside(lambda: time.sleep(60), fork=True) as child:\n"
             "    print(child.pid, flush=True)\n"
             "    child.result()\n")
    with subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as parent:
        child = int(parent.stdout.readline())
        time.sleep(0.3)  # into result(), waiting on the pipe
        started = time.monotonic()
        parent.send_signal(signal.SIGINT)
        _, stderr = parent.communicate(timeout=30)
    assert time.monotonic() - started < 10 and "KeyboardInterrupt" in stderr
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has finished
    except FileNotFoundError:
        return False


def test_a_parent_started_with_sigchld_ignored_still_gets_the_result():
    """Children are then reaped by the kernel, and waiting for one fails with ECHILD."""
    import signal

    from netgen.parallel import Beside

    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with Beside(lambda: 6 * 7, fork=True) as child:
            assert child.pid and child.result() == 42
        with pytest.raises(RuntimeError), Beside(lambda: time.sleep(60), fork=True):
            raise RuntimeError("the parent's share failed")
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_failed_fork_runs_the_work_here_and_leaks_no_descriptor(monkeypatch):
    import netgen.parallel
    from netgen.parallel import Beside

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(netgen.parallel.os, "fork", no_fork)
    before = len(os.listdir("/proc/self/fd"))
    with Beside(lambda: "here", fork=True) as child:
        assert child.pid == 0 and child.result() == "here"
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(("weights", "handicap", "mine", "theirs"), [
    ([], 1.0, [], []),
    ([5], 1.0, [0], []),
    ([1, 1, 1, 1], 1.0, [0, 2], [1, 3]),
    ([9, 1, 1], 1.0, [0], [1, 2]),
    ([1, 1, 9], 1.0, [0, 2], [1]),
    ([4, 4, 4, 4, 4, 4], 1.5, [0, 2, 4, 5], [1, 3]),  # the child's items count 6 each
])
def test_deal_shares_the_weight_in_turn(weights, handicap, mine, theirs):
    assert deal(weights, handicap) == (mine, theirs)


def test_make_bench_prints_its_table(tmp_path):
    """`make bench` on a tiny size: every mode runs in its own interpreter and the table comes out filled in; the
    same estate through transit gateways writes no peering and routes to the gateways instead."""
    result = subprocess.run([sys.executable, "-m", "netgen.bench.run", "--sizes", "300", "--transit-gateway", "300",
                             "--runs", "1", "--work", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    row, bounds = [line for line in result.stdout.splitlines() if line.startswith("| 300 |") and "(" not in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 12 and cells[9].endswith("x")
    assert int(cells[10].replace(",", "")) < int(cells[11].replace(",", ""))  # minimal rules below the naive count
    sets, rules, bound, ratio = [cell.strip() for cell in bounds.strip("|").split("|")][1:5]
    assert int(sets) > 0 and rules == cells[10] == bound and ratio == "1.000"  # the fewest, proven
    mesh, gateways = ([int(cell.strip().split()[0].replace(",", "")) for cell in line.strip("|").split("|")[1:7]]
                      for line in result.stdout.splitlines() if line.startswith("| 300") and "(" in line)
    stacks, peering_stacks, peerings, peering_routes, gateway_routes, static_routes = range(6)
    assert mesh[peerings] and mesh[peering_stacks] and mesh[peering_routes] and not mesh[gateway_routes]
    assert not gateways[peerings] and not gateways[peering_stacks] and not gateways[peering_routes]
    assert gateways[gateway_routes] == mesh[peering_routes] and gateways[static_routes]
    assert gateways[stacks] == mesh[stacks] + 4  # the network account's stacks, one per region
    assert "netgen build --check on the example estate:" in result.stdout
