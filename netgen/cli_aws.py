"""The commands that talk to AWS (netgen/aws/; boto3 is imported only inside them): deploy, verify, drift,
import-grants, discover. netgen.cli registers them."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from netgen.cli_common import (
    AsOfOpt,
    Diagnostics,
    QuietCodeOpt,
    QuietOpt,
    ResultFormat,
    SpecsOpt,
    as_of_date,
    find_specs,
    locate_specs,
    resolve,
    usage_error,
)
from netgen.diagnostics import SpecError, render

EndpointOpt = Annotated[str | None, typer.Option("--endpoint-url", metavar="URL",
                                                 help="Send every AWS request here (moto, LocalStack, a VPC "
                                                      "endpoint).")]
OutOpt = Annotated[Path | None, typer.Option("--out", metavar="DIR", show_default=False,
                                             help="The generated folder (netgen build's output); default: "
                                                  "generated/ beside the spec folder.")]


def _aws_clients(resolved, endpoint_url: str | None):
    from netgen.aws.session import Clients

    profiles = {a.account_id: a.profile for a in resolved.estate.accounts} if resolved else {}
    return Clients.from_environment(profiles, endpoint_url)


def _aws_call(work):
    """Run work(); an AWS or credentials error is printed as one line and exits 1 (no traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from netgen.aws.session import error_text

    try:
        return work()
    except (ClientError, BotoCoreError) as exc:
        typer.echo(f"error: {error_text(exc)}", err=True)
        raise typer.Exit(1) from None


def deploy(
    account: Annotated[str | None, typer.Option("--account", help="Only stacks of this account (name or id).")]
    = None,
    region: Annotated[str | None, typer.Option("--region", help="Only stacks in this region.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Create and describe change sets only; execute "
                                                            "nothing.")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64, metavar="N",
                                             help="Stacks deployed at once per account and region.")]
    = 4,
    full: Annotated[bool, typer.Option("--full", help="A change set for every stack, even those whose template "
                                                      "and parameters are what is deployed.")] = False,
    skip_preflight: Annotated[bool, typer.Option("--skip-preflight", help="Do not check credentials, quotas, "
                                                                          "buckets and existing peerings and "
                                                                          "routes before changing anything.")]
    = False,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="text, or json: one event per line.")]
    = ResultFormat.text,
    ec2_peering: Annotated[bool, typer.Option("--ec2-peering", help="Create cross-region and cross-account "
                                                                    "peerings through the EC2 API instead of "
                                                                    "CloudFormation (moto cannot).")] = False,
    template_bucket: Annotated[str | None, typer.Option(
        "--template-bucket", metavar="BUCKET",
        help="S3 bucket for templates over CloudFormation's 51,200-byte inline limit; {account} and {region} "
             "stand for the stack's, e.g. netgen-templates-{account}-{region}. It must exist.")] = None,
    endpoint_url: EndpointOpt = None,
    out: OutOpt = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Deploy generated/aws with CloudFormation change sets, stacks side by side in the plan's dependency order.

    Checks credentials, quotas and what exists first; skips stacks whose template and parameters are deployed;
    shows each change set before executing it; accepts pending peerings; checks every deployed stack against
    EC2; deletes netgen stacks the plan no longer has. Exit 0 ok, 1 a check or a stack failed (a rerun
    resumes)."""
    from netgen.aws.deploy import Console, Options, template_bucket_for
    from netgen.aws.deploy import deploy as run
    from netgen.aws.generated import PlanError, inventory_places

    if template_bucket is not None:
        try:
            template_bucket_for(template_bucket, "123456789012", "us-east-1")
        except ValueError as exc:
            raise usage_error(f"--template-bucket: {exc}") from None
    where = locate_specs(specs)
    resolved = resolve(where, as_of, Diagnostics.of("text", quiet_all, quiet))
    clients = _aws_clients(resolved, endpoint_url)
    console = Console.for_terminal(fmt.value, typer.echo)
    options = Options(dry_run=dry_run, ec2_peering=ec2_peering, template_bucket=template_bucket,
                      concurrency=concurrency, full=full, skip_preflight=skip_preflight)
    try:
        report = run(out or where.beside("generated"), clients, console, options, account=account, region=region,
                     places=inventory_places(resolved.estate))
    except PlanError as exc:
        raise usage_error(str(exc)) from None
    console.summary(dry_run)
    if not report.ok:
        raise typer.Exit(1)


def verify(
    endpoint_url: EndpointOpt = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="text or json.")] = ResultFormat.text,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Check the live AWS state: every intended flow reachable, no netgen rule granting more than the flows.

    Reads only EC2 answers (peerings, routes, security groups). Exit 0 clean, 1 on any finding."""
    from netgen.aws.verify import render_verify
    from netgen.aws.verify import verify as run

    resolved = resolve(locate_specs(specs), as_of, Diagnostics.of("text", quiet_all, quiet))
    result = _aws_call(lambda: run(resolved, _aws_clients(resolved, endpoint_url)))
    sys.stdout.write(render_verify(result, fmt.value))
    if result.findings:
        raise typer.Exit(1)


def drift(
    endpoint_url: EndpointOpt = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="text or json.")] = ResultFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Also exit 1 when a hand-made rule or route is covered "
                                                          "by no grant.")] = False,
    out: OutOpt = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Name every live rule and peering route of the inventory (managed, adopted, hand-made and covered by the
    grants, hand-made and covered by none) and compare netgen's own with generated/: missing, extra, changed.

    Exit 0 no drift of netgen's rules, routes and peerings (hand-made ones are a report), 1 drift (with
    --strict, also any hand rule or route covered by no grant), 2 no generated/ to compare with."""
    from netgen.aws.drift import drift as run
    from netgen.aws.drift import render_drift
    from netgen.aws.generated import PlanError

    where = locate_specs(specs)
    resolved = resolve(where, as_of, Diagnostics.of("text", quiet_all, quiet))
    try:
        result = _aws_call(lambda: run(resolved, out or where.beside("generated"),
                                       _aws_clients(resolved, endpoint_url)))
    except PlanError as exc:
        raise usage_error(str(exc)) from None
    sys.stdout.write(render_drift(result, fmt.value))
    if result.drift or (strict and result.uncovered):
        raise typer.Exit(1)


def import_grants(
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", show_default=False,
                                             help="Grants file to write; default: access/imported.yaml in the "
                                                  "spec folder.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists; its grants are then imported "
                                                        "again, not counted as existing.")] = False,
    flow_logs: Annotated[list[Path] | None, typer.Option(
        "--flow-logs", metavar="FILE", help="VPC Flow Logs records in the default format (version 2); "
                                            "repeatable.")] = None,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Read the live rules of the inventory's "
                                                                   "security groups (--no-rules: flow logs "
                                                                   "only, no AWS call).")] = True,
    endpoint_url: EndpointOpt = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Write Grant documents that reproduce the hand-made rules (and flow-log records) between known endpoints.

    Rules netgen manages or the grants already cover are skipped; what matches no endpoint, or whose endpoint
    cannot be told from an address (a workload), is listed at the end of the file and here, never guessed.
    Exit 0 written (whatever was left unmatched), 1 spec or AWS errors, 2 usage errors."""
    from netgen.aws.flowlogs import FlowLogError
    from netgen.aws.generated import inventory_rules
    from netgen.aws.import_grants import import_grants as run

    logs = flow_logs or []
    if not rules and not logs:
        raise usage_error("nothing to import from: give --flow-logs FILE, or leave out --no-rules")
    where = locate_specs(specs)
    out = out or where.folder / "access" / "imported.yaml"
    if out.exists() and not force:
        raise usage_error(f"{out} exists: pass --force to replace it (edits made to it are lost), or another --out")
    resolved = resolve(where, as_of, Diagnostics.of("text", quiet_all, quiet))
    live = _aws_call(lambda: inventory_rules(resolved.estate, _aws_clients(resolved, endpoint_url))) if rules else None
    try:
        result = run(where.folder, out, as_of_date(as_of), live, logs)
    except FlowLogError as exc:
        raise usage_error(str(exc)) from None
    except SpecError as exc:
        typer.echo(render(exc.diagnostics, "text"), err=True)
        raise typer.Exit(1) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.text, "utf-8")
    except OSError as exc:
        raise usage_error(f"cannot write {out}: {exc.strerror}") from None
    for item in result.unmatched:
        typer.echo(f"not imported: {item.what}: {item.why}")
        if item.hint:
            typer.echo(f"  grant to write: {item.hint}")
    skipped = ", ".join(f"{n} {c}" for c, n in sorted(result.skipped.items())) or "none"
    flows = f", {result.flow_records} flow-log record(s) between known endpoints" if logs else ""
    typer.echo(f"import-grants: wrote {out}: {len(result.grants)} grant(s) covering {result.imported_rules} hand "
               f"rule(s){flows}; {len(result.unmatched)} not imported; skipped rules: {skipped}")


def discover(
    region: Annotated[list[str], typer.Option("--region", metavar="REGION", help="Region to read (repeatable).")],
    vpc: Annotated[list[str] | None, typer.Option("--vpc", metavar="ID", help="Only this VPC (repeatable); "
                                                                               "default all.")] = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", show_default=False,
                                             help="Folder to write inventory specs into; default: "
                                                  "inventory/discovered in the spec folder.")] = None,
    account_name: Annotated[str | None, typer.Option("--account-name", help="Name of the Account document; "
                                                                            "default aws-<account id>.")] = None,
    account_id: Annotated[str | None, typer.Option("--account-id", help="Expected account id; default the "
                                                                        "credentials' account.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="boto3 profile to read with.")] = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Write inventory specs (Account, Vpc, SecurityGroup, LegacyHost, HostGroup, VpcPeering, TransitGateway,
    TransitGatewayPeering) from what exists in AWS."""
    from netgen.aws.discover import discover as run
    from netgen.aws.session import Clients

    if out is None:
        found = find_specs(Path.cwd())
        out = (Path(os.path.relpath(found)) if found else Path("specs")) / "inventory" / "discovered"

    def work():
        clients = Clients.from_environment({}, endpoint_url, default_profile=profile)
        return run(clients, regions=region, vpc_ids=vpc or [], out=out, account_name=account_name,
                   account_id=account_id, profile=profile)

    try:
        written = _aws_call(work)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    for path in written:
        typer.echo(f"wrote {path}", err=True)


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.command()(verify)
    app.command()(drift)
    app.command("import-grants")(import_grants)
    app.command()(discover)
