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
    from netgen.render import check_tree, write_tree
    from netgen.targets import compile_outputs

    reporter = Reporter()
    resolved = _resolve(specs, as_of, fmt, reporter)
    try:
        files = compile_outputs(resolved, reporter)
    except SpecError:
        _report(reporter, fmt)
        raise typer.Exit(1) from None
    _report(reporter, fmt)  # warnings
    if check:
        stale = check_tree(out, files)
        for line in stale:
            typer.echo(line, err=True)
        if stale:
            typer.echo(f"{out} is stale: run 'netgen build' and commit the result", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date ({len(files)} files)", err=True)
        return
    changed = write_tree(out, files)
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
