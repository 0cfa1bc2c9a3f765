"""The netgen command line. Exit codes: 0 ok, 1 spec errors or stale output, 2 usage error.

What the commands share (options, finding specs/, printing diagnostics) is in cli_common.py; the commands that
talk to AWS are in cli_aws.py."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from netgen import __version__, cli_aws
from netgen.cli_common import (
    AsOfOpt,
    Diagnostics,
    Format,
    FormatOpt,
    QuietCodeOpt,
    QuietOpt,
    ResultFormat,
    SpecsOpt,
    as_of_date,
    dump_json,
    locate_specs,
    resolve,
    usage_error,
)
from netgen.diagnostics import Reporter, SpecError, render

# Help is plain text (click's formatter): rich's help shows flags as `--check <bool>` and boxes that pipes garble.
app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Compile access specs into VPC peering, security-group rules and NetworkPolicies.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"netgen {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                help="Print netgen's version and exit.")] = False) -> None:
    """Compile access specs into VPC peering, security-group rules and NetworkPolicies."""


@app.command()
def validate(specs: SpecsOpt = None, as_of: AsOfOpt = None, fmt: FormatOpt = Format.text,
             quiet_all: QuietOpt = False, quiet: QuietCodeOpt = None) -> None:
    """Check every spec file: YAML, schema and semantics. Reports all problems at once."""
    resolved = resolve(locate_specs(specs), as_of, Diagnostics.of(fmt.value, quiet_all, quiet))
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
def flows(specs: SpecsOpt = None, as_of: AsOfOpt = None,
          fmt: Annotated[Format, typer.Option("--format", help="text: the flow report; json: the flows and "
                                                               "diagnostics as one document; github: the report, "
                                                               "with diagnostics as annotations.")] = Format.text,
          quiet_all: QuietOpt = False, quiet: QuietCodeOpt = None) -> None:
    """Print the resolved flows, sorted, one per line, with the grants and spec lines behind each."""
    from netgen.targets.report import flow_json, flow_report

    out = Diagnostics.of(fmt.value, quiet_all, quiet, embedded=fmt is Format.json)
    reporter = Reporter()
    resolved = resolve(locate_specs(specs), as_of, out, reporter)
    if fmt is Format.json:
        dump_json({"flows": [flow_json(f) for f in resolved.flows], "diagnostics": out.data(reporter)})
        return
    out.print(reporter)
    sys.stdout.write(flow_report(resolved.flows))


@app.command()
def build(
    specs: SpecsOpt = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="DIR", show_default=False,
                                             help="Output folder; default: generated/ beside the spec "
                                                  "folder.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if the output is stale.")] = False,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.text,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Compile the specs into CloudFormation templates, NetworkPolicies and the flow report."""
    from netgen.render import OutputError, check_tree, write_tree
    from netgen.targets import compile_outputs

    where = locate_specs(specs)
    out = out or where.beside("generated")
    printer = Diagnostics.of(fmt.value, quiet_all, quiet)
    reporter = Reporter()
    resolved = resolve(where, as_of, printer, reporter)
    try:
        files = compile_outputs(resolved, reporter)
    except SpecError:
        printer.print(reporter)
        raise typer.Exit(1) from None
    printer.print(reporter)  # warnings
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
    json = "json"


@app.command()
def diff(
    base: Annotated[str | None, typer.Option("--base", metavar="REV", help="Git revision to compare with; "
                                             "default: merge-base of HEAD with origin/HEAD, main or master, "
                                             "else HEAD.")] = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[DiffFormat, typer.Option("--format", help="Report format (markdown fits a PR comment).")]
    = DiffFormat.text,
) -> None:
    """Access added and removed since a git revision, by grant and owner, and the infrastructure it changes.

    Exit 0 (a report, whatever it says), 1 on spec errors on either side, 2 on usage errors."""
    from netgen.review import UsageError
    from netgen.review.diff import SpecErrors, run
    from netgen.review.diff_render import RENDERERS

    day = as_of_date(as_of)
    try:
        report = run(locate_specs(specs).folder, base, day)
    except UsageError as exc:
        raise usage_error(str(exc)) from None
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
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="text, or json: the answer and its lines as one "
                                                               "document.")] = ResultFormat.text,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Can SOURCE reach DESTINATION, and why: grants, peering, routes, security-group rules, NetworkPolicy.

    Exit 0 yes, 1 no (or spec errors), 2 unknown names or usage errors."""
    from netgen.review import UsageError
    from netgen.review.explain import explain as answer

    out = Diagnostics.of("text", quiet_all, quiet, embedded=fmt is ResultFormat.json)
    reporter = Reporter()
    resolved = resolve(locate_specs(specs), as_of, out, reporter)
    if fmt is ResultFormat.text:
        out.print(reporter)
    try:
        result = answer(resolved, source, destination, port, protocol)
    except UsageError as exc:
        raise usage_error(str(exc)) from None
    if fmt is ResultFormat.json:
        dump_json({"allowed": result.allowed, "question": result.question, "lines": result.lines,
                   "diagnostics": out.data(reporter)})
    else:
        sys.stdout.write("\n".join(result.lines) + "\n")
    if not result.allowed:
        raise typer.Exit(1)


@app.command()
def graph(
    fmt: Annotated[GraphFormat, typer.Option("--format", help="mermaid, Graphviz dot, SVG (pure Python), or json: "
                                                              "the graph as data, with the diagnostics.")]
    = GraphFormat.mermaid,
    out: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write to this file instead of "
                                                                           "stdout.")] = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Draw the estate: accounts, regions, VPCs, clusters, peerings and the flows between them."""
    from netgen.review.graph import render as draw

    json_out = fmt is GraphFormat.json and out is None  # the diagnostics go into the document on stdout
    printer = Diagnostics.of("text", quiet_all, quiet, embedded=json_out)
    reporter = Reporter()
    resolved = resolve(locate_specs(specs), as_of, printer, reporter)
    text = draw(resolved, fmt.value)
    if json_out:
        dump_json({**json.loads(text), "diagnostics": printer.data(reporter)})
        return
    printer.print(reporter)
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, "utf-8")
    except OSError as exc:
        raise usage_error(f"cannot write {out}: {exc.strerror}") from None
    typer.echo(f"wrote {out}", err=True)


@app.command()
def owners(
    prefix: Annotated[str, typer.Option("--prefix", metavar="TEXT", help="Put before each team to make it a "
                                                                         "CODEOWNERS owner, e.g. @acme/ for "
                                                                         "GitHub teams.")] = "@",
    write: Annotated[Path | None, typer.Option("--write", metavar="FILE", help="Replace netgen's block of lines in "
                                                                               "this CODEOWNERS file (appended if "
                                                                               "absent); the rest is kept.")]
    = None,
    check: Annotated[Path | None, typer.Option("--check", metavar="FILE", help="Write nothing; exit 1 if FILE's "
                                                                               "netgen block is stale.")] = None,
    specs: SpecsOpt = None,
    as_of: AsOfOpt = None,
    fmt: Annotated[ResultFormat, typer.Option("--format", help="text: CODEOWNERS lines; json: each spec file's "
                                                               "teams and why.")] = ResultFormat.text,
    quiet_all: QuietOpt = False,
    quiet: QuietCodeOpt = None,
) -> None:
    """Which teams must review each spec file: the owners of the services, host groups and hosts it defines or
    that its grants reach, as CODEOWNERS lines (paths from the repository's top).

    Exit 0 ok, 1 spec errors or (with --check) a stale block, 2 usage errors."""
    from netgen.review.owners import codeowners, file_owners, repository_top, with_block

    if write is not None and check is not None:
        raise usage_error("--write and --check: give one")
    where = locate_specs(specs)
    printer = Diagnostics.of("text", quiet_all, quiet, embedded=fmt is ResultFormat.json)
    reporter = Reporter()
    resolved = resolve(where, as_of, printer, reporter)
    files = file_owners(resolved.estate)
    top = repository_top(where.folder)

    def path_of(file: str) -> str:
        return ((where.root or Path()) / file).resolve().relative_to(top).as_posix()

    if fmt is ResultFormat.json:
        dump_json({"files": [{"file": path_of(f), "teams": {t: sorted(why) for t, why in teams.items()}}
                             for f, teams in sorted(files.items(), key=lambda item: path_of(item[0]))],
                   "diagnostics": printer.data(reporter)})
        return
    printer.print(reporter)
    block = codeowners(files, path_of, prefix)
    target = write or check
    if target is None:
        sys.stdout.write(block)
        return
    try:
        old = target.read_text("utf-8") if target.exists() else ""
        new = with_block(old, block)
        if check is not None:
            if new != old:
                typer.echo(f"{target} is stale: run 'netgen owners --write {target}' and commit the result", err=True)
                raise typer.Exit(1)
            typer.echo(f"{target} is up to date", err=True)
            return
        if new != old:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(new, "utf-8")
    except OSError as exc:
        raise usage_error(f"{target}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {target}: {len(block.splitlines()) - 2} line(s) of netgen owners", err=True)


# --- talking to AWS (netgen/aws/; boto3 is imported only inside these commands) ------------------------------------

cli_aws.register(app)


def main() -> None:
    from netgen.pipeline import tune_gc

    tune_gc()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
