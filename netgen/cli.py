"""The netgen command line. Exit codes: 0 ok, 1 spec errors or stale output, 2 usage error."""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from netgen.diagnostics import Reporter, SpecError, render

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile access specs into VPC peering, security-group rules and NetworkPolicies.")


class Format(StrEnum):
    text = "text"
    json = "json"
    github = "github"


SpecsOpt = Annotated[Path, typer.Option("--specs", help="Folder of spec files (*.yaml, *.yml), read recursively.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Judge grant expiry on this date (YYYY-MM-DD); "
                                                             "default today.", metavar="DATE")]
FormatOpt = Annotated[Format, typer.Option("--format", help="How to print diagnostics.")]


def _as_of(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a date (YYYY-MM-DD)", param_hint="--as-of") from None


def _specs_dir(specs: Path) -> Path:
    if not specs.is_dir():
        raise typer.BadParameter(f"'{specs}' is not a folder", param_hint="--specs")
    return specs


def _report(reporter: Reporter, fmt: Format) -> None:
    diagnostics = reporter.sorted()
    if diagnostics:
        typer.echo(render(diagnostics, fmt.value), err=fmt is Format.text)


def _resolve(specs: Path, as_of: str | None, fmt: Format, reporter: Reporter | None = None):
    """Resolve the specs. On errors print every diagnostic and exit 1; warnings are printed here unless the
    caller passed its own reporter (it then prints them with its own, once, at the end)."""
    from netgen.pipeline import resolve_specs

    own = reporter is None
    reporter = reporter or Reporter()
    day, folder = _as_of(as_of), _specs_dir(specs)
    try:
        resolved = resolve_specs(folder, day, reporter)
    except SpecError:
        _report(reporter, fmt)
        raise typer.Exit(1) from None
    if own:
        _report(reporter, fmt)
    return resolved


@app.command()
def validate(specs: SpecsOpt = Path("specs"), as_of: AsOfOpt = None, fmt: FormatOpt = Format.text) -> None:
    """Check every spec file: YAML, schema and semantics. Reports all problems at once."""
    resolved = _resolve(specs, as_of, fmt)
    if fmt is Format.text:
        e = resolved.estate
        typer.echo(f"ok: {len(e.grants)} grants, {len(e.hosts)} hosts, {len(e.services)} services, "
                   f"{len(resolved.flows)} flows", err=True)


@app.command()
def schema() -> None:
    """Print the JSON Schema of spec documents (for yaml-language-server and other editors)."""
    from netgen.schema import schema_text

    sys.stdout.write(schema_text())


@app.command()
def flows(specs: SpecsOpt = Path("specs"), as_of: AsOfOpt = None, fmt: FormatOpt = Format.text) -> None:
    """Print the resolved flows, sorted, one per line, with the grants and spec lines behind each."""
    from netgen.targets.report import flow_report

    resolved = _resolve(specs, as_of, fmt)
    sys.stdout.write(flow_report(resolved.flows))


@app.command()
def build(
    specs: SpecsOpt = Path("specs"),
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("generated"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the output is stale.")] = False,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.text,
) -> None:
    """Compile the specs into CloudFormation templates, NetworkPolicies and the flow report."""
    from netgen.render import OutputError, check_tree, write_tree
    from netgen.targets import compile_outputs

    reporter = Reporter()
    resolved = _resolve(specs, as_of, fmt, reporter)
    try:
        files = compile_outputs(resolved, reporter)
    except SpecError:
        _report(reporter, fmt)
        raise typer.Exit(1) from None
    _report(reporter, fmt)  # warnings
    try:  # the output folder is checked before the first write; any I/O problem is an exit-2 one-liner
        if check:
            stale = check_tree(out, files)
        else:
            changed = write_tree(out, files)
    except (OutputError, OSError) as exc:
        message = str(exc) if isinstance(exc, OutputError) else f"{exc.filename or out}: {exc.strerror or exc}"
        typer.echo(f"netgen: error: {message}", err=True)
        raise typer.Exit(2) from None
    if check:
        for line in stale:
            typer.echo(line, err=True)
        if stale:
            typer.echo(f"{out} is stale: run 'netgen build' and commit the result", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date ({len(files)} files)", err=True)
        return
    typer.echo(f"wrote {out}: {len(files)} files, {changed} written or deleted", err=True)


# --- reviewer and engineer tools (netgen/review/) ---------------------------------------------------------------

class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


def _usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def diff(
    base: Annotated[str | None, typer.Option("--base", metavar="REV", help="Git revision to compare with; "
                                             "default: merge-base of HEAD with origin/HEAD, main or master, "
                                             "else HEAD.")] = None,
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
    fmt: Annotated[DiffFormat, typer.Option("--format", help="Report format (markdown fits a PR comment).")]
    = DiffFormat.text,
) -> None:
    """Access added and removed since a git revision, by grant and owner, and the infrastructure it changes.

    Exit 0 (a report, whatever it says), 1 on spec errors on either side, 2 on usage errors."""
    from netgen.review import UsageError
    from netgen.review.diff import RENDERERS, SpecErrors, run

    day = _as_of(as_of)
    try:
        report = run(specs, base, day)
    except UsageError as exc:
        raise _usage_error(str(exc)) from None
    except SpecErrors as exc:
        if exc.base:
            typer.echo("spec errors at the base revision:", err=True)
            typer.echo(render(exc.base, "text"), err=True)
        if exc.head:
            typer.echo("spec errors in the working tree:", err=True)
            typer.echo(render(exc.head, "text"), err=True)
        raise typer.Exit(1) from None
    sys.stdout.write(RENDERERS[fmt.value](report))


@app.command()
def explain(
    source: Annotated[str, typer.Argument(help="Legacy host (name or IP address) or workload "
                                               "([cluster/]namespace/name).")],
    destination: Annotated[str, typer.Argument(help="Service ([cluster/]namespace/name) or legacy host.")],
    port: Annotated[str | None, typer.Option("--port", help="Port number or service port name; default: any.")]
    = None,
    protocol: Annotated[str, typer.Option("--protocol", help="tcp, udp or sctp.")] = "tcp",
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
) -> None:
    """Can SOURCE reach DESTINATION, and why: grants, peering, routes, security-group rules, NetworkPolicy.

    Exit 0 yes, 1 no (or spec errors), 2 unknown names or usage errors."""
    from netgen.review import UsageError
    from netgen.review.explain import explain as answer

    resolved = _resolve(specs, as_of, Format.text)
    try:
        result = answer(resolved, source, destination, port, protocol)
    except UsageError as exc:
        raise _usage_error(str(exc)) from None
    sys.stdout.write("\n".join(result.lines) + "\n")
    if not result.allowed:
        raise typer.Exit(1)


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="mermaid, Graphviz dot, or SVG (pure Python).")]
    = GraphFormat.mermaid,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
) -> None:
    """Draw the estate: accounts, regions, VPCs, clusters, peerings and the flows between them."""
    from netgen.review.graph import render as draw

    resolved = _resolve(specs, as_of, Format.text)
    text = draw(resolved, fmt.value)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise _usage_error(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"wrote {out}", err=True)


# --- talking to AWS (netgen/aws/; boto3 is imported only inside these commands) ------------------------------------

class ReportFormat(StrEnum):
    text = "text"
    json = "json"


EndpointOpt = Annotated[str | None, typer.Option("--endpoint-url", metavar="URL",
                                                 help="Send every AWS request here (moto, LocalStack, a VPC "
                                                      "endpoint).")]
OutOpt = Annotated[Path, typer.Option("--out", help="The generated folder (netgen build's output).")]


def _aws_clients(resolved, endpoint_url: str | None):
    from netgen.aws.session import Clients

    profiles = {a.account_id: a.profile for a in resolved.estate.accounts} if resolved else {}
    return Clients.from_environment(profiles, endpoint_url)


@app.command()
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
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text, or json: one event per line.")]
    = ReportFormat.text,
    ec2_peering: Annotated[bool, typer.Option("--ec2-peering", help="Create cross-region and cross-account "
                                                                    "peerings through the EC2 API instead of "
                                                                    "CloudFormation (moto cannot).")] = False,
    template_bucket: Annotated[str | None, typer.Option(
        "--template-bucket", metavar="BUCKET",
        help="S3 bucket for templates over CloudFormation's 51,200-byte inline limit; {account} and {region} "
             "stand for the stack's, e.g. netgen-templates-{account}-{region}. It must exist.")] = None,
    endpoint_url: EndpointOpt = None,
    out: OutOpt = Path("generated"),
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
) -> None:
    """Deploy generated/aws with CloudFormation change sets, stacks side by side in the plan's dependency order.

    Checks credentials, quotas and what exists first; skips stacks whose template and parameters are deployed;
    shows each change set before executing it; accepts pending peerings; checks every deployed stack against
    EC2; deletes netgen stacks the plan no longer has. Exit 0 ok, 1 a check or a stack failed (a rerun
    resumes)."""
    from netgen.aws.deploy import Console, Options, template_bucket_for
    from netgen.aws.deploy import deploy as run
    from netgen.aws.generated import PlanError

    if template_bucket is not None:
        try:
            template_bucket_for(template_bucket, "123456789012", "us-east-1")
        except ValueError as exc:
            raise _usage_error(f"--template-bucket: {exc}") from None
    resolved = _resolve(specs, as_of, Format.text)
    clients = _aws_clients(resolved, endpoint_url)
    console = Console.for_terminal(fmt.value, typer.echo)
    options = Options(dry_run=dry_run, ec2_peering=ec2_peering, template_bucket=template_bucket,
                      concurrency=concurrency, full=full, skip_preflight=skip_preflight)
    try:
        report = run(out, clients, console, options, account=account, region=region)
    except PlanError as exc:
        raise _usage_error(str(exc)) from None
    console.summary(dry_run)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def verify(
    endpoint_url: EndpointOpt = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text or json.")] = ReportFormat.text,
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
) -> None:
    """Check the live AWS state: every intended flow reachable, no netgen rule granting more than the flows.

    Reads only EC2 answers (peerings, routes, security groups). Exit 0 clean, 1 on any finding."""
    from netgen.aws.verify import render_verify
    from netgen.aws.verify import verify as run

    resolved = _resolve(specs, as_of, Format.text)
    result = _aws_call(lambda: run(resolved, _aws_clients(resolved, endpoint_url)))
    sys.stdout.write(render_verify(result, fmt.value))
    if result.findings:
        raise typer.Exit(1)


@app.command()
def drift(
    endpoint_url: EndpointOpt = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text or json.")] = ReportFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Also exit 1 when a hand-made rule or route is covered "
                                                          "by no grant.")] = False,
    out: OutOpt = Path("generated"),
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
) -> None:
    """Name every live rule and peering route of the inventory (managed, adopted, hand-made and covered by the
    grants, hand-made and covered by none) and compare netgen's own with generated/: missing, extra, changed.

    Exit 0 no drift of netgen's rules, routes and peerings (hand-made ones are a report), 1 drift (with
    --strict, also any hand rule or route covered by no grant), 2 no generated/ to compare with."""
    from netgen.aws.drift import drift as run
    from netgen.aws.drift import render_drift
    from netgen.aws.generated import PlanError

    resolved = _resolve(specs, as_of, Format.text)
    try:
        result = _aws_call(lambda: run(resolved, out, _aws_clients(resolved, endpoint_url)))
    except PlanError as exc:
        raise _usage_error(str(exc)) from None
    sys.stdout.write(render_drift(result, fmt.value))
    if result.drift or (strict and result.uncovered):
        raise typer.Exit(1)


@app.command("import-grants")
def import_grants(
    out: Annotated[Path, typer.Option("--out", help="Grants file to write.")] = Path("specs/access/imported.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists; its grants are then imported "
                                                        "again, not counted as existing.")] = False,
    flow_logs: Annotated[list[Path] | None, typer.Option(
        "--flow-logs", metavar="FILE", help="VPC Flow Logs records in the default format (version 2); "
                                            "repeatable.")] = None,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Read the live rules of the inventory's "
                                                                   "security groups (--no-rules: flow logs "
                                                                   "only, no AWS call).")] = True,
    endpoint_url: EndpointOpt = None,
    specs: SpecsOpt = Path("specs"),
    as_of: AsOfOpt = None,
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
        raise _usage_error("nothing to import from: give --flow-logs FILE, or leave out --no-rules")
    if out.exists() and not force:
        raise _usage_error(f"{out} exists: pass --force to replace it (edits made to it are lost), or another --out")
    resolved = _resolve(specs, as_of, Format.text)
    live = _aws_call(lambda: inventory_rules(resolved.estate, _aws_clients(resolved, endpoint_url))) if rules else None
    try:
        result = run(_specs_dir(specs), out, _as_of(as_of), live, logs)
    except FlowLogError as exc:
        raise _usage_error(str(exc)) from None
    except SpecError as exc:
        typer.echo(render(exc.diagnostics, "text"), err=True)
        raise typer.Exit(1) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.text, "utf-8")
    except OSError as exc:
        raise _usage_error(f"cannot write {out}: {exc.strerror}") from None
    for item in result.unmatched:
        typer.echo(f"not imported: {item.what}: {item.why}")
        if item.hint:
            typer.echo(f"  grant to write: {item.hint}")
    skipped = ", ".join(f"{n} {c}" for c, n in sorted(result.skipped.items())) or "none"
    flows = f", {result.flow_records} flow-log record(s) between known endpoints" if logs else ""
    typer.echo(f"import-grants: wrote {out}: {len(result.grants)} grant(s) covering {result.imported_rules} hand "
               f"rule(s){flows}; {len(result.unmatched)} not imported; skipped rules: {skipped}")


@app.command()
def discover(
    region: Annotated[list[str], typer.Option("--region", help="Region to read (repeatable).")],
    vpc: Annotated[list[str] | None, typer.Option("--vpc", metavar="ID", help="Only this VPC (repeatable); "
                                                                               "default all.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder to write inventory specs into.")]
    = Path("specs/inventory/discovered"),
    account_name: Annotated[str | None, typer.Option("--account-name", help="Name of the Account document; "
                                                                            "default aws-<account id>.")] = None,
    account_id: Annotated[str | None, typer.Option("--account-id", help="Expected account id; default the "
                                                                        "credentials' account.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="boto3 profile to read with.")] = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Write inventory specs (Account, Vpc, SecurityGroup, LegacyHost, HostGroup, VpcPeering) from what exists in
    AWS."""
    from netgen.aws.discover import discover as run
    from netgen.aws.session import Clients

    def work():
        clients = Clients.from_environment({}, endpoint_url, default_profile=profile)
        return run(clients, regions=region, vpc_ids=vpc or [], out=out, account_name=account_name,
                   account_id=account_id, profile=profile)

    try:
        written = _aws_call(work)
    except ValueError as exc:
        raise _usage_error(str(exc)) from None
    for path in written:
        typer.echo(f"wrote {path}", err=True)


def _aws_call(work):
    """Run work(); an AWS or credentials error is printed as one line and exits 1 (no traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from netgen.aws.session import error_text

    try:
        return work()
    except (ClientError, BotoCoreError) as exc:
        typer.echo(f"error: {error_text(exc)}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    from netgen.pipeline import tune_gc

    tune_gc()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
