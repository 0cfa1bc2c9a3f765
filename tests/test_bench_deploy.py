"""`make bench-deploy`'s core (netgen/bench/deploy.py) on the example estate, one run: the three deploys run
against a moto server in a process of its own, their requests are counted from moto's recording, and the table
comes out. Timings are not asserted (the bench measures them); counts are."""

from __future__ import annotations

import io
from pathlib import Path

from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS

from netgen.bench.deploy import SCENARIOS, SETTINGS, Bench, Measurement, PlanShape, report
from netgen.bench.moto import MotoCloud
from netgen.bench.moto_server import STACK_WORK, moto_process, with_stack_latency


def test_bench_deploy_on_the_example_estate(tmp_path: Path) -> None:
    with moto_process(recording=tmp_path / "recording.jsonl", log=tmp_path / "moto.log") as server:
        # one concurrency (deploy's default) keeps the test to a few seconds
        bench = Bench(MotoCloud(server.url), tmp_path, EXAMPLE_AS_OF.isoformat(), settings=SETTINGS[-1:],
                      server_cpu=server.cpu_seconds)
        results, shape = bench.estate("example", EXAMPLE_SPECS, runs=1)
    assert [m.scenario for m in results] == list(SCENARIOS)
    scratch, unchanged, changed = results
    committed = PlanShape.read(EXAMPLE_SPECS.parent / "generated")  # the example's plan, with its own ids
    assert (shape.stacks, shape.places, shape.chain) == (committed.stacks, committed.places, committed.chain)
    assert shape.places > 1 and shape.chain >= 2
    assert shape.rounds(10_000) == shape.chain and shape.rounds(1) >= shape.most_per_place
    for m in results:
        assert m.cloudformation > 0 and m.places == shape.places, m.as_json()
        assert m.seconds > 0 and m.netgen_cpu > 0 and m.moto_cpu >= 0, m.as_json()
        assert set(m.requests) <= {"cloudformation", "ec2", "sts", "s3", "servicequotas", "iam"}, m.requests
    assert scratch.ec2 > 0 and scratch.change_sets > 0
    assert (scratch.stacks_changed, unchanged.stacks_changed) == (shape.stacks, 0)
    assert changed.stacks_changed >= 1  # the edited grant's rules live in at least one group's stack
    # incremental: an unchanged rerun creates no change set, and one changed grant creates change sets only for
    # stacks whose template changed
    assert unchanged.change_sets == 0, unchanged.as_json()
    assert 0 < changed.change_sets <= changed.stacks_changed, changed.as_json()
    table = report(results, {"example": shape}, 30.0, {"example": 1})
    assert table.startswith("| grants | concurrency | deploy | s | CloudFormation requests | EC2 requests |")
    assert sum(line.startswith("| example |") for line in table.splitlines()) == len(SCENARIOS)
    assert f"example: {shape.stacks} stacks in {shape.places} accounts and regions" in table


def _cloudformation_request(action: str, service: str = "cloudformation") -> dict:
    body = f"Action={action}&Version=2010-05-15&StackName=s".encode()
    return {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=testing/20261206/eu-west-1/{service}/aws4_request, "
                                  "SignedHeaders=host, Signature=0"}


def test_stack_latency_delays_only_requests_that_start_a_stacks_work() -> None:
    seen: list[bytes] = []

    def app(environ: dict, start_response: object) -> list[bytes]:
        seen.append(environ["wsgi.input"].read())
        return [b"ok"]

    slept: list[float] = []
    slowed = with_stack_latency(app, 2.5, sleep=slept.append)
    for action in sorted(STACK_WORK):
        assert slowed(_cloudformation_request(action), None) == [b"ok"]
    assert slept == [2.5] * len(STACK_WORK)
    slept.clear()
    for environ in (_cloudformation_request("DescribeStacks"), _cloudformation_request("DescribeChangeSet"),
                    _cloudformation_request("CreateStack", service="ec2")):
        slowed(environ, None)
    assert slept == []
    assert all(body.startswith(b"Action=") and body.endswith(b"StackName=s") for body in seen)  # body intact
    assert with_stack_latency(app, 0) is app


def test_report_gives_the_gain_of_the_default_concurrency_from_scratch() -> None:
    (serial, _), (default, _) = SETTINGS
    results = [Measurement("10,000", setting, SCENARIOS[0], run, seconds, stack_latency=latency)
               for latency, times in ((0.0, {serial: 40.0, default: 38.0}), (1.0, {serial: 120.0, default: 30.0}))
               for setting, seconds in times.items() for run in (1, 2, 3)]
    table = report(results, {}, 30.0, {"10,000": 3})
    assert f"- 10,000, from scratch: concurrency {default} is 1.1x as fast as concurrency 1." in table
    assert (f"- 10,000, from scratch, CloudFormation 1 s per request: concurrency {default} is 4.0x as fast as "
            "concurrency 1.") in table
    assert "| 10,000 | 1 | from scratch, CloudFormation 1 s per request | 120.0 |" in table
