"""The moto server of `make bench-deploy`, the deploy tests and `python -m netgen.bench.moto serve`: a threaded
moto server on 127.0.0.1 in a process of its own (so that a client that deploys into it and the server do not
share one GIL), with AWS's raised rule quota, transit gateway routes read as AWS answers them and, optionally,
the time CloudFormation takes modelled.

moto applies a stack's changes before it answers, where CloudFormation takes tens of seconds a stack. Against
moto, a deploy is therefore bound by moto's own CPU (one Python process) and a deploy's schedule cannot show:
`stack_latency` makes every request that starts CloudFormation work (STACK_WORK) wait that long before moto
handles it, as a stack operation on AWS keeps its caller waiting. The deploy's polling is not modelled.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_SECURITY_TOKEN": "testing"}


def moto_environment(config_file: str = os.devnull) -> dict[str, str]:
    """This process's environment with dummy credentials and no real AWS configuration: what a client of moto
    (netgen deploy, the seeding clients) and the server run with. Multi-account needs the `x-moto-account-id`
    header, so MOTO_ACCOUNT_ID (which overrides it) and AWS_PROFILE are dropped."""
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "MOTO_ACCOUNT_ID")}
    env.update(DUMMY_CREDENTIALS, AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=config_file,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


# AWS's default of 60 rules per security group and direction (Service Quotas L-0EA8095F) can be raised, up to
# 1,000 (rules x groups per network interface <= 1,000). Estates that set a group's `ruleQuota` above 60 (the
# synthetic ones say 480) assume a raised quota, which moto cannot be given: its EC2 hard-codes 60 and its
# Service Quotas (which deploy's preflight reads) answers the default. The bench's server has 500 in both.
RAISED_RULE_QUOTA = 500
RULES_QUOTA_CODE = "L-0EA8095F"


@dataclass(frozen=True)
class MotoServer:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far, all its threads (Linux: /proc; elsewhere NaN)."""
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, ValueError, IndexError):
            return math.nan


@contextmanager
def moto_process(recording: Path | None = None, log: Path | None = None, rule_quota: int = RAISED_RULE_QUOTA,
                 stack_latency: float = 0.0) -> Iterator[MotoServer]:
    """A threaded moto server on 127.0.0.1 in a child process (its URL and pid); stopped afterwards.

    With `recording`, moto's request recorder is available and writes there (MOTO_RECORDER_FILEPATH); it starts
    switched off (MOTO_ENABLE_RECORDING unset): MotoCloud.start_recording switches it on. The server's own log
    (errors only) goes to `log`, else nowhere. `rule_quota` replaces moto's fixed 60 rules per group and
    direction, in EC2 and in Service Quotas (see RAISED_RULE_QUOTA); `stack_latency` seconds are what each
    request of STACK_WORK waits (see with_stack_latency)."""
    env = moto_environment()
    env["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # instances use a made-up image id; loading AMIs takes seconds
    env.pop("MOTO_ENABLE_RECORDING", None)
    if recording is not None:
        env["MOTO_RECORDER_FILEPATH"] = str(recording)
    sink = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115  (closed below)
    command = [sys.executable, "-m", "netgen.bench.moto", "serve", "--rule-quota", str(rule_quota),
               "--stack-latency", str(stack_latency)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=sink, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("http://"):
            proc.wait(timeout=10)
            raise RuntimeError(f"the moto server did not start (exit {proc.returncode}); see {log or 'its log'}")
        yield MotoServer(line.strip(), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if log:
            sink.close()  # type: ignore[union-attr]


def serve(rule_quota: int, port: int = 0, stack_latency: float = 0.0) -> None:
    """The child of moto_process: what moto's ThreadedMotoServer runs, in this process's main thread, on a free
    port that it prints (its URL) once it listens; with `rule_quota` rules per group and direction, and
    `stack_latency` seconds of CloudFormation work per request of STACK_WORK."""
    import logging
    import threading

    from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.servicequotas.resources.default_quotas.vpc import VPC_DEFAULT_QUOTAS
    from werkzeug.serving import make_server

    def within_quota(self: Any, group: Any, current: int, ip_ranges: list[str],
                     source_groups: list[dict[str, str]] | None = None, egress: bool = False) -> None:
        if current + len(ip_ranges or ()) + len(source_groups or ()) > rule_quota:
            raise RulesPerSecurityGroupLimitExceededError

    SecurityGroupBackend._verify_group_will_respect_rule_count_limit = within_quota  # type: ignore[method-assign]
    from netgen.bench.moto_transit import faithful_transit_gateway_routes

    faithful_transit_gateway_routes()
    lighter_moto()
    for quota in VPC_DEFAULT_QUOTAS:  # what moto's GetServiceQuota answers in every account
        if quota["QuotaCode"] == RULES_QUOTA_CODE:
            quota["Value"] = float(rule_quota)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    parent = os.getppid()

    def orphaned() -> None:  # the bench was killed without stopping its server: stop too
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    app = with_stack_latency(DomainDispatcherApplication(create_backend_app), stack_latency)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def lighter_moto() -> None:
    """Two of moto's costs that grow with the estate, where AWS answers at once: DescribeSecurityGroupRules copies
    every rule of every group of the account before it filters them by group id, and a template is parsed by
    PyYAML's pure-Python loader even when it is JSON (netgen's are). Patched here to the same answers for less
    CPU, so that the bench's deploys measure netgen rather than moto (half of moto's CPU at 10k grants).
    Idempotent; applied in the server process (moto_process, the tests' moto_server)."""
    import copy
    import itertools
    import json

    from moto.cloudformation.models import ChangeSet, Stack
    from moto.ec2.models.security_groups import SecurityGroupBackend

    if getattr(SecurityGroupBackend, "netgen_lighter", False):
        return
    describe_rules = SecurityGroupBackend.describe_security_group_rules

    def rules_of_groups(self: Any, sg_rule_ids: list[str], filters: dict[str, list[str]]) -> list:
        wanted = set(filters.get("group-id") or ())
        if sg_rule_ids or not wanted or not all(i.startswith("sg-") for i in wanted):
            return describe_rules(self, sg_rule_ids, filters)  # (and its errors)
        rules = [copy.copy(rule) for groups in self.groups.values() for group in groups.values()
                 if group.id in wanted for rule in itertools.chain(group.egress_rules, group.ingress_rules)]
        for rule in rules:  # as moto's own: no port is -1, as AWS answers
            rule.from_port = -1 if rule.from_port is None else rule.from_port
            rule.to_port = -1 if rule.to_port is None else rule.to_port
        return [rule for rule in rules if rule.matches_filters(filters)]

    parse_stack_template = Stack.parse_template
    parse_change_set_template = ChangeSet._parse_template

    def json_first(template: str) -> dict[str, Any]:
        try:
            return json.loads(template)
        except ValueError:
            return parse_stack_template(template)

    def change_set_json_first(self: Any) -> None:
        try:
            self.template_dict = json.loads(self.template)
        except ValueError:
            parse_change_set_template(self)

    SecurityGroupBackend.describe_security_group_rules = rules_of_groups  # type: ignore[method-assign]
    Stack.parse_template = staticmethod(json_first)  # type: ignore[method-assign]
    ChangeSet._parse_template = change_set_json_first  # type: ignore[method-assign]
    SecurityGroupBackend.netgen_lighter = True  # type: ignore[attr-defined]


# CloudFormation requests that start the work of a stack: on AWS the stack takes tens of seconds to settle.
STACK_WORK = frozenset({"CreateChangeSet", "ExecuteChangeSet", "CreateStack", "UpdateStack", "DeleteStack"})
_ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z]+)")
_SCOPE_SERVICE = re.compile(r"Credential=[^/]*/[^/]*/[^/]*/([^/]*)/")


def with_stack_latency(app: Callable, seconds: float, sleep: Callable[[float], None] = time.sleep) -> Callable:
    """The WSGI app `app`, where each CloudFormation request of STACK_WORK (query protocol: the action is in the
    form body) waits `seconds` before it is handled. A waiting request holds one server thread and no CPU, so
    requests of other stacks go on meanwhile, as on AWS."""
    if seconds <= 0:
        return app

    def slowed(environ: dict, start_response: Callable) -> Iterable[bytes]:
        scope = _SCOPE_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if environ.get("REQUEST_METHOD") == "POST" and scope and scope.group(1) == "cloudformation":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
            action = _ACTION.search(body)
            if action and action.group(1).decode() in STACK_WORK:
                sleep(seconds)
        return app(environ, start_response)

    return slowed
