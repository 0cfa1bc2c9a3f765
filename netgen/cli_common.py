"""What netgen's commands share: their options, finding the spec folder, printing diagnostics (format, silenced
warnings, colour) and resolving the specs with the right exit codes. Exit codes: 0 ok, 1 spec errors or stale
output, 2 usage error."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from netgen.diagnostics import CODES, Diagnostic, Reporter, Severity, SpecError, did_you_mean, render


class Format(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class ResultFormat(StrEnum):
    text = "text"
    json = "json"


SpecsOpt = Annotated[Path | None, typer.Option(
    "--specs", metavar="DIR", show_default=False,
    help="Folder of spec files (*.yaml, *.yml), read recursively. Default: specs/ in this folder or in the "
         "nearest parent folder that has one, as git finds .git.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Judge grant expiry on this date (YYYY-MM-DD); "
                                                             "default today.", metavar="DATE")]
FormatOpt = Annotated[Format, typer.Option("--format", help="How to print diagnostics.")]
QuietOpt = Annotated[bool, typer.Option("-q", help="Silence every warning; their count is printed instead.")]
QuietCodeOpt = Annotated[list[str] | None, typer.Option(
    "--quiet", metavar="CODE", show_default=False,
    help="Silence the warnings with this code, e.g. NG112 (repeatable or comma-separated; 'all': every "
         "warning); their count is printed instead.")]


def usage_error(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def as_of_date(text: str | None) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a date (YYYY-MM-DD)", param_hint="--as-of") from None


# --- the spec folder -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Specs:
    """The spec folder, as a path from here, and root: the folder it was found in when netgen runs in a
    subdirectory (files are then named from root, as they would be from there, so that generated/ does not
    depend on where netgen runs); None when --specs was given or specs/ is here."""

    folder: Path
    root: Path | None = None

    def beside(self, name: str) -> Path:
        """A default path next to the spec folder (generated/): from root when specs/ was found above."""
        return self.root / name if self.root is not None else Path(name)


def find_specs(start: Path) -> Path | None:
    """The nearest specs/ folder in start or above it, up to the top of the git repository start is in."""
    for folder in (start, *start.parents):
        if (folder / "specs").is_dir():
            return folder / "specs"
        if (folder / ".git").exists():
            return None
    return None


def locate_specs(given: Path | None) -> Specs:
    if given is not None:
        if not given.is_dir():
            raise typer.BadParameter(f"'{given}' is not a folder", param_hint="--specs")
        return Specs(given)
    here = Path.cwd()
    found = find_specs(here)
    if found is None:
        raise usage_error("no specs/ folder here or in a parent folder (up to the top of the git repository): "
                          "run netgen inside the repository, or pass --specs DIR")
    if found.parent == here:
        return Specs(Path("specs"))
    root = Path(os.path.relpath(found.parent, here))
    return Specs(root / "specs", root)


# --- diagnostics ---------------------------------------------------------------------------------------------

def colour(stream) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def silenced_codes(quiet_all: bool, codes: list[str] | None) -> frozenset[str]:
    """The warning codes -q / --quiet silence; a code that is unknown or an error's is a usage error."""
    wanted = {code.strip().upper() for item in codes or () for code in item.split(",") if code.strip()}
    warnings = frozenset(code for code, (severity, _) in CODES.items() if severity is Severity.WARNING)
    if quiet_all or "ALL" in wanted:
        return warnings
    for code in sorted(wanted):
        if code not in CODES:
            raise usage_error(f"--quiet {code}: no such diagnostic code{did_you_mean(code, warnings)}")
        if code not in warnings:
            raise usage_error(f"--quiet {code}: {code} is an error; only warnings can be silenced")
    return frozenset(wanted)


@dataclass(frozen=True)
class Diagnostics:
    """How one command prints its diagnostics. fmt: text (stderr, coloured on a terminal), github (annotations on
    stdout) or json (stdout: the list of diagnostics, [] when there are none). With embedded, the command prints
    them inside its own JSON result; on spec errors they are printed as {"diagnostics": [...]}."""

    fmt: str = "text"
    silenced: frozenset[str] = frozenset()
    embedded: bool = False

    @classmethod
    def of(cls, fmt: str, quiet_all: bool = False, quiet: list[str] | None = None,
           embedded: bool = False) -> Diagnostics:
        return cls(fmt, silenced_codes(quiet_all, quiet), embedded)

    def shown(self, reporter: Reporter) -> list[Diagnostic]:
        """The diagnostics not silenced; prints a one-line count of the silenced ones on stderr."""
        everything = reporter.sorted()
        hidden = Counter(d.code for d in everything if d.code in self.silenced)
        if hidden:
            counts = ", ".join(f"{code}: {n}" for code, n in sorted(hidden.items()))
            typer.echo(f"{hidden.total()} warning(s) silenced ({counts})", err=True)
        return [d for d in everything if d.code not in self.silenced]

    def data(self, reporter: Reporter) -> list[dict]:
        """For a command's JSON result."""
        return [d.as_dict() for d in self.shown(reporter)]

    def print(self, reporter: Reporter) -> None:
        if self.embedded:
            typer.echo(json.dumps({"diagnostics": self.data(reporter)}, indent=2, sort_keys=True))
            return
        shown = self.shown(reporter)
        if self.fmt == "json":
            typer.echo(render(shown, "json"))
        elif shown and self.fmt == "github":
            typer.echo(render(shown, "github"))
        elif shown:
            coloured = colour(sys.stderr)
            typer.echo(render(shown, "text", colour=coloured), err=True, color=coloured)


def resolve(specs: Specs, as_of: str | None, out: Diagnostics, reporter: Reporter | None = None):
    """Resolve the specs. On errors print every diagnostic and exit 1; warnings are printed here unless the
    caller passed its own reporter (it then prints them, once, at the end)."""
    from netgen.pipeline import resolve_specs

    own = reporter is None
    reporter = reporter or Reporter()
    day = as_of_date(as_of)
    try:
        resolved = resolve_specs(specs.folder, day, reporter, root=specs.root)
    except SpecError:
        out.print(reporter)
        raise typer.Exit(1) from None
    if own:
        out.print(reporter)
    return resolved


def dump_json(data: object) -> None:
    """A command's JSON result on stdout: sorted keys, so that it is deterministic."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
