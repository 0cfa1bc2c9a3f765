"""Diagnostics: located messages with a stable code, collected across a whole run and printed together.

Every code netgen can emit is listed in CODES. Tests check that docs/diagnostics.md's table lists exactly
these codes with these severities, and that each code has a failing fixture.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# code -> (severity, summary). Never renumber: codes are part of netgen's interface.
CODES: dict[str, tuple[Severity, str]] = {
    # loading (NG0xx)
    "NG001": (Severity.ERROR, "file is not valid UTF-8"),
    "NG002": (Severity.ERROR, "YAML syntax error (tabs, bad indentation, unclosed quotes, ...)"),
    "NG003": (Severity.ERROR, "duplicate mapping key"),
    "NG004": (Severity.ERROR, "over a loading limit: file size, nodes, documents, alias expansion, nesting"),
    "NG005": (Severity.ERROR, "unsupported YAML feature (explicit tags, merge keys, non-string keys)"),
    "NG006": (Severity.ERROR, "document is not a mapping"),
    "NG007": (Severity.ERROR, "file cannot be read"),
    "NG008": (Severity.WARNING, "spec-looking file skipped (not *.yaml or *.yml, or outside the spec folder)"),
    "NG009": (Severity.ERROR, "a number written in a form YAML 1.1 reads in another base (0443 is octal 291)"),
    # shape (NG01x): JSON Schema
    "NG010": (Severity.ERROR, "unknown or missing apiVersion"),
    "NG011": (Severity.ERROR, "unknown or missing kind"),
    "NG012": (Severity.ERROR, "value does not match the schema (type, required field, enum, range)"),
    "NG013": (Severity.ERROR, "unknown field"),
    "NG014": (Severity.ERROR, "malformed AWS identifier (account, VPC, subnet, security group, route table)"),
    # semantics (NG1xx)
    "NG101": (Severity.ERROR, "duplicate name in its scope"),
    "NG102": (Severity.ERROR, "invalid name (lowercase letters, digits and '-', 1-63 characters)"),
    "NG103": (Severity.ERROR, "invalid IPv4 address or CIDR"),
    "NG104": (Severity.ERROR, "unknown reference"),
    "NG105": (Severity.ERROR, "ambiguous reference: qualify it with the cluster"),
    "NG106": (Severity.ERROR, "address outside its VPC's CIDRs"),
    "NG107": (Severity.ERROR, "CIDRs overlap between VPCs that must be peered"),
    "NG108": (Severity.ERROR, "invalid port or port range"),
    "NG109": (Severity.ERROR, "unknown named port on the service"),
    "NG110": (Severity.ERROR, "address prefix broader than the allowed limit"),
    "NG111": (Severity.ERROR, "grant has expired"),
    "NG112": (Severity.WARNING, "duplicate grant: another grant allows the same access"),
    "NG113": (Severity.ERROR, "grant must connect legacy hosts and Kubernetes, in either direction"),
    "NG114": (Severity.ERROR, "namespace not declared on the cluster"),
    "NG115": (Severity.ERROR, "host group has no members"),
    "NG116": (Severity.ERROR, "CIDRs overlap inside one VPC"),
    "NG117": (Severity.ERROR, "exposure is incomplete for the service (missing nodePort or load balancer)"),
    "NG118": (Severity.ERROR, "security group is in another VPC"),
    "NG119": (Severity.ERROR, "duplicate settings document"),
    "NG120": (Severity.WARNING, "grant expires within the warning window"),
    "NG121": (Severity.ERROR, "SCTP cannot be limited to ports in a security group; netgen will not open all"),
    "NG122": (Severity.ERROR, "legacy host address inside a cluster's pod, node or load-balancer ranges"),
    "NG123": (Severity.ERROR, "control characters or fractional numbers in a value"),
    "NG124": (Severity.ERROR, "grant opens legacy hosts' groups to more addresses than maxCollateralAddresses"),
    "NG125": (Severity.ERROR, "transit gateway route table is not one of the gateway's routeTables"),
    "NG126": (Severity.ERROR, "VPC attached to a transit gateway of another region"),
    "NG127": (Severity.ERROR, "VpcPath through a transit gateway, but no gateway joins the two VPCs"),
    # build (NG2xx)
    "NG201": (Severity.ERROR, "security group would exceed its rule quota"),
    "NG202": (Severity.ERROR, "route table would exceed its route quota"),
    "NG203": (Severity.ERROR, "VPC would exceed its peering quota"),
    "NG204": (Severity.ERROR, "a VPC would route overlapping prefixes to two different peerings"),
    "NG205": (Severity.ERROR, "a stack would exceed CloudFormation's 500 resources"),
    "NG206": (Severity.ERROR, "two stacks would get the same name, or two groups one stack"),
    "NG207": (Severity.ERROR, "an account and region would hold more netgen stacks than its stack quota"),
    "NG208": (Severity.WARNING, "security-group rules not proven the fewest: the exact search ran out of budget"),
    "NG210": (Severity.ERROR, "aws-vpc-cni: a CIDR would get more than 24 port/protocol entries for some pods"),
    "NG211": (Severity.ERROR, "cilium: pods must admit node addresses, which ipBlocks do not select by default"),
    "NG212": (Severity.ERROR, "cilium: some pods' policy map would exceed its 16,384 entries"),
    "NG213": (Severity.ERROR, "a transit gateway's route tables would exceed its route quota"),
    "NG214": (Severity.ERROR, "a transit gateway route table would route overlapping prefixes to two attachments"),
    "NG215": (Severity.WARNING, "a VPC's peerings near its quota, or the peering mesh is large: a transit gateway"),
}


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True, order=True)
class Diagnostic:
    location: Location
    code: str
    message: str

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]

    def text(self, colour: bool = False) -> str:
        if not colour:
            return f"{self.location}: {self.severity}[{self.code}]: {self.message}"
        shade = _RED if self.severity is Severity.ERROR else _YELLOW
        return f"{_BOLD}{self.location}:{_RESET} {shade}{self.severity}[{self.code}]:{_RESET} {self.message}"

    def github(self) -> str:
        loc = self.location
        level = "error" if self.severity is Severity.ERROR else "warning"
        msg = self.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"::{level} file={loc.file},line={loc.line},col={loc.column},title={self.code}::{msg}"

    def as_dict(self) -> dict:
        loc = self.location
        return {"file": loc.file, "line": loc.line, "column": loc.column,
                "severity": str(self.severity), "code": self.code, "message": self.message}


class SpecError(Exception):
    """Raised to stop a run whose diagnostics contain errors; carries all of them."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(f"{len(diagnostics)} diagnostic(s)")
        self.diagnostics = diagnostics


class Reporter:
    """Collects diagnostics of one run. Passed explicitly; never global."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        # Names that text which failed to load (a YAML error, invalid UTF-8) seems to define. References to them
        # are not reported as unknown: the error in that file explains them, and fixing it may define them.
        self.unloaded_names: set[str] = set()

    def add(self, location: Location, code: str, message: str) -> None:
        if code not in CODES:
            raise KeyError(f"undocumented diagnostic code {code}")
        self.diagnostics.append(Diagnostic(location, code, message))

    @property
    def has_errors(self) -> bool:
        return self.errors_since(0)

    def errors_since(self, start: int) -> bool:
        """Whether any diagnostic from the start-th on is an error."""
        return any(d.severity is Severity.ERROR for d in self.diagnostics[start:])

    def sorted(self) -> list[Diagnostic]:
        return sorted(set(self.diagnostics))

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise SpecError(self.sorted())


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    matches = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


_BOLD, _RED, _YELLOW, _RESET = "\x1b[1m", "\x1b[1;31m", "\x1b[1;33m", "\x1b[0m"  # ANSI, for a terminal


def render(diagnostics: list[Diagnostic], fmt: str, colour: bool = False) -> str:
    """text (colour: ANSI escapes, for a terminal), github (Actions annotations) or json."""
    if fmt == "json":
        return json.dumps([d.as_dict() for d in diagnostics], indent=2, sort_keys=True)
    lines = [d.github() if fmt == "github" else d.text(colour) for d in diagnostics]
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    if fmt == "text" and diagnostics:
        lines.append(f"{errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
