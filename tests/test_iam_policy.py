"""The IAM policies in docs/iam/ cover every AWS call netgen makes, and grant nothing the code cannot explain.

Every netgen/aws/**/*.py file is parsed (never imported): an attribute named like an API operation of a
service netgen uses (botocore's service models, in boto3's snake_case: `ec2.describe_vpcs(...)`), or a string
naming one (paginators, `getattr(client, operation)`, tables of calls) or one of its waiters, is an operation
netgen performs. Each
needs its IAM action in docs/iam/netgen-deploy.json; those of the modules `netgen verify`, `drift` and
`discover` run (and the netgen.aws modules they import) in docs/iam/netgen-readonly.json too.

netgen passes no service role to CloudFormation, so CloudFormation creates the templates' resources with the
deployer's permissions: the deploy policy also needs what CloudFormation's handlers for those resource types
call (cfn-lint ships their registry schemas, with the permissions of each handler).
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AWS_CODE = REPO / "netgen" / "aws"
DEPLOY_POLICY = REPO / "docs" / "iam" / "netgen-deploy.json"
READONLY_POLICY = REPO / "docs" / "iam" / "netgen-readonly.json"
IAM_DOC = REPO / "docs" / "iam.md"
READONLY_COMMANDS = ("verify", "drift", "discover")  # netgen/aws/<name>.py, with what each imports

# botocore service name -> IAM service prefix
SERVICES = {"cloudformation": "cloudformation", "ec2": "ec2", "s3": "s3", "sts": "sts",
            "service-quotas": "servicequotas"}
# Operations whose IAM action is not named after them (S3's HEAD requests and listings).
ACTION_OF = {("s3", "head_bucket"): "s3:ListBucket", ("s3", "list_objects"): "s3:ListBucket",
             ("s3", "list_objects_v2"): "s3:ListBucket", ("s3", "head_object"): "s3:GetObject"}
# Granted for what AWS does with the deployer's credentials, beyond the calls and the resource handlers:
# CloudFormation reads a template given as TemplateURL with them, and authorizes the stack tags given at
# creation (managed-by=netgen) as TagResource.
EXPLAINED = {"s3:GetObject", "cloudformation:TagResource"}
READ_VERBS = ("Describe", "Get", "List", "Search")  # SearchTransitGatewayRoutes: a read (access level List)


@cache
def _operations() -> dict[str, set[str]]:
    """snake_case operation or waiter name -> the IAM actions it needs (one per service that has it)."""
    import botocore.session
    from botocore import xform_name

    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        model = session.get_service_model(service)
        for operation in model.operation_names:
            snake = xform_name(operation)
            found.setdefault(snake, set()).add(ACTION_OF.get((service, snake), f"{prefix}:{operation}"))
        try:
            waiters = session.get_waiter_model(service)
        except Exception:  # noqa: BLE001 - botocore raises its own errors for services without waiters
            continue
        for name in waiters.waiter_names:  # get_waiter("stack_create_complete") polls DescribeStacks
            operation = waiters.get_waiter(name).operation
            snake = xform_name(operation)
            found.setdefault(xform_name(name), set()).add(ACTION_OF.get((service, snake), f"{prefix}:{operation}"))
    return found


def operations_in(source: str) -> set[str]:
    """The operations a module's code performs: attributes named like one (ec2.describe_vpcs(...), or
    `call = ec2.revoke_security_group_ingress if ingress else ...`) and strings naming one
    (get_paginator("describe_security_group_rules"), _pages(ec2, "describe_vpcs", ...))."""
    known = _operations()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in known:  # called, or kept to call later
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            found.add(node.value)
    return found


def _module_path(module: str) -> Path | None:
    """netgen.aws.x -> its file, when it is one of netgen/aws's."""
    if module != "netgen.aws" and not module.startswith("netgen.aws."):
        return None
    base = REPO.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> set[Path]:
    """The netgen/aws files a file imports, at module level or inside functions, absolute or relative."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]  # a name may be a submodule
        found.update(p for p in map(_module_path, names) if p is not None)
    return found


def readonly_files() -> set[Path]:
    """The files of the read-only commands and every netgen/aws file they import, transitively."""
    todo = [AWS_CODE / f"{command}.py" for command in READONLY_COMMANDS]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path) - seen)
    return seen


def aws_files() -> list[Path]:
    return sorted(AWS_CODE.rglob("*.py"))


@cache
def _operations_of(path: Path) -> frozenset[str]:
    return frozenset(operations_in(path.read_text("utf-8")))


def needed(files) -> dict[str, set[str]]:
    """IAM action -> the files whose operations need it."""
    known = _operations()
    actions: dict[str, set[str]] = {}
    for path in files:
        for operation in _operations_of(path):
            for action in known[operation]:  # an operation name two services share needs both (none today)
                actions.setdefault(action, set()).add(path.relative_to(REPO).as_posix())
    return actions


def allowed(policy: Path) -> set[str]:
    document = json.loads(policy.read_text("utf-8"))
    assert document["Version"] == "2012-10-17"
    actions = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in listed), f"wildcard action in {policy.name}: {listed}"
        actions.update(listed)
    return actions


def missing(policy: Path, files) -> dict[str, list[str]]:
    return {action: sorted(where) for action, where in sorted(needed(files).items())
            if action not in allowed(policy)}


@cache
def handler_permissions() -> set[str]:
    """What CloudFormation's handlers (create, read, update, delete) of the templates' resource types call."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    from netgen.targets import aws, aws_transit

    types = {cls.resource_type for module in (aws, aws_transit) for cls in vars(module).values()
             if isinstance(cls, type) and str(getattr(cls, "resource_type", "")).startswith("AWS::")}
    assert types >= {"AWS::EC2::VPCPeeringConnection", "AWS::EC2::Route", "AWS::EC2::SecurityGroupIngress"}
    permissions = set()
    for resource_type in types:
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema["handlers"]
        for handler in ("create", "read", "update", "delete"):
            permissions.update(handlers.get(handler, {}).get("permissions", []))
    return permissions


def test_the_code_makes_aws_calls_the_scan_finds():
    """The scan sees what it must: direct calls, paginators by name, operations passed as strings."""
    every = needed(aws_files())
    assert {"ec2:DescribeSecurityGroupRules", "ec2:DescribeVpcs", "sts:GetCallerIdentity",
            "ec2:AcceptVpcPeeringConnection"} <= set(every), sorted(every)
    assert any(action.startswith("cloudformation:") for action in every)
    readonly = readonly_files()
    assert AWS_CODE / "generated.py" in readonly and AWS_CODE / "reachability.py" in readonly
    assert not any("deploy" in path.relative_to(AWS_CODE).parts[0] for path in readonly), sorted(readonly)
    assert operations_in("page = c.get_paginator('describe_stacks')\nc.get_waiter('bucket_exists')\n"
                         "c.head_bucket(Bucket=b)\n") == {"describe_stacks", "bucket_exists", "head_bucket"}
    assert _operations()["head_bucket"] == {"s3:ListBucket"}
    assert _operations()["bucket_exists"] == {"s3:ListBucket"}
    assert _operations()["get_aws_default_service_quota"] == {"servicequotas:GetAWSDefaultServiceQuota"}


def test_deploy_policy_allows_every_call_netgen_makes():
    gaps = missing(DEPLOY_POLICY, aws_files())
    assert not gaps, f"actions missing from {DEPLOY_POLICY.relative_to(REPO)} (action: files): {gaps}"


def test_readonly_policy_allows_every_call_of_verify_drift_and_discover():
    gaps = missing(READONLY_POLICY, readonly_files())
    assert not gaps, f"actions missing from {READONLY_POLICY.relative_to(REPO)} (action: files): {gaps}"


def test_deploy_policy_allows_what_cloudformation_does_with_the_deployers_credentials():
    gaps = sorted(handler_permissions() - allowed(DEPLOY_POLICY))
    assert not gaps, f"CloudFormation's resource handlers need {gaps}"


def test_policies_grant_nothing_the_code_does_not_explain():
    """Least privilege: every action is one the code needs, one CloudFormation needs on the deployer's behalf,
    or one of the few explained above (a call netgen no longer makes must leave the policy too). The read-only
    policy only reads."""
    deploy_extra = allowed(DEPLOY_POLICY) - set(needed(aws_files())) - handler_permissions() - EXPLAINED
    assert not deploy_extra, f"unexplained actions in the deploy policy: {sorted(deploy_extra)}"
    readonly = allowed(READONLY_POLICY)
    readonly_extra = readonly - set(needed(readonly_files()))
    assert not readonly_extra, f"unexplained actions in the read-only policy: {sorted(readonly_extra)}"
    assert all(action.split(":")[1].startswith(READ_VERBS) for action in readonly), sorted(readonly)
    assert readonly <= allowed(DEPLOY_POLICY), "the deploy policy should let its principal verify and drift too"


def test_iam_doc_names_every_action_and_its_json_parses():
    """docs/iam.md explains each action of the policies; its JSON examples (the accept role) are valid."""
    text = IAM_DOC.read_text("utf-8")
    unexplained = sorted(a for a in allowed(DEPLOY_POLICY) | allowed(READONLY_POLICY) if a.split(":")[1] not in text)
    assert not unexplained, f"docs/iam.md does not mention {unexplained}"
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    assert blocks
    documents = [json.loads(block) for block in blocks]
    accept = [d for d in documents if "ec2:AcceptVpcPeeringConnection" in json.dumps(d)]
    assert accept, "the peering-accept role's policy"


@pytest.mark.parametrize("policy", [DEPLOY_POLICY, READONLY_POLICY], ids=lambda p: p.name)
def test_removing_an_action_is_caught(policy, tmp_path):
    """The check works: a policy without one of the actions the code needs fails it."""
    files = aws_files() if policy is DEPLOY_POLICY else readonly_files()
    document = json.loads(policy.read_text("utf-8"))
    action = "ec2:DescribeSecurityGroupRules"
    for statement in document["Statement"]:
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in listed if a != action]
    broken = tmp_path / policy.name
    broken.write_text(json.dumps(document), "utf-8")
    gaps = missing(broken, files)
    assert list(gaps) == [action] and "netgen/aws/generated.py" in gaps[action], gaps
