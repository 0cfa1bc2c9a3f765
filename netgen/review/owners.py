"""Who must say yes: the teams that own services, host groups and hosts (their spec.owner).

What a grant reaches is owned: a service by its owner; hosts by their own owner, else by the owner of the host
group the grant names, else by the owners of the groups they belong to. `netgen diff` lists, per change, the
owners whose services or hosts gain or lose callers (approvals); `netgen owners` maps each spec file to the teams
that must review it, in CODEOWNERS syntax (codeowners).
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from netgen.model import Estate, Grant, Host
from netgen.resolve import Flow

GAINS, LOSES = "gains callers", "loses callers"
BEGIN = "# BEGIN netgen owners: `netgen owners --write` keeps the lines up to END; do not edit them"
END = "# END netgen owners"


@dataclass(frozen=True, order=True)
class Approval:
    owner: str  # "" when nobody owns the target
    kind: str  # service, host group or host
    name: str  # prod-use1/payments/payments-api, databases, db-use1-02
    change: str  # GAINS or LOSES
    grants: tuple[str, ...]

    @property
    def target(self) -> str:
        return f"{self.kind} {self.name}"


class Owners:
    """The owners of what grants reach, in one estate."""

    def __init__(self, estate: Estate):
        self.grants = {g.name: g for g in estate.grants}
        self.groups = {g.name: g for g in estate.host_groups}
        self.groups_of: dict[str, list[str]] = defaultdict(list)  # host name -> owners of its groups
        for group in estate.host_groups:
            for host in group.hosts:
                if group.owner:
                    self.groups_of[host.name].append(group.owner)

    def targets(self, grant: Grant, flow: Flow | None = None) -> list[tuple[str, str, str]]:
        """(owner or "", kind, name) of what the grant reaches (with flow: of the hosts that flow reaches)."""
        if grant.service is not None:
            return [(grant.service.owner or "", "service", grant.service.ref)]
        found = []
        kind, _, name = grant.legacy_ref.partition(" ")
        group = self.groups.get(name) if kind == "hostGroup" else None
        if group is not None and group.owner:
            found.append((group.owner, "host group", group.name))
        for host in grant.hosts if flow is None else _reached(grant.hosts, flow):
            if host.owner:
                found.append((host.owner, "host", host.name))
            elif group is None or not group.owner:  # (else the group's owner answers for it)
                found += [(owner, "host", host.name) for owner in sorted(set(self.groups_of[host.name]))] or [
                    ("", "host", host.name)]
        return found


def _reached(hosts: Iterable[Host], flow: Flow) -> list[Host]:
    end = flow.destination
    return [h for h in hosts if h.vpc.name == end.vpc and any(h.network.subnet_of(n) for n in end.addresses)]


def approvals(added: list[Flow], removed: list[Flow], base: Estate, head: Estate) -> list[Approval]:
    """Whose services and hosts gain callers (added flows, read in the working tree's estate) or lose them
    (removed flows, read at the base)."""
    found: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for flows, estate, change in ((added, head, GAINS), (removed, base, LOSES)):
        owners = Owners(estate)
        for flow in flows:
            for ref in flow.grants:
                grant = owners.grants.get(ref.name)
                for owner, kind, name in owners.targets(grant, flow) if grant is not None else ():
                    found[(owner, kind, name, change)].add(grant.name)
    return sorted(Approval(*key, tuple(sorted(grants))) for key, grants in found.items())


def _needed(items: list[Approval]) -> list[str]:
    return sorted({a.owner for a in items if a.owner})


def _grants(a: Approval) -> str:
    return f"grant{'s' if len(a.grants) > 1 else ''} {', '.join(a.grants)}"


def approval_text(items: list[Approval]) -> list[str]:
    if not items:
        return []
    owners = _needed(items)
    lines = ["", f"needs approval from {', '.join(owners)}:" if owners else "needs approval from nobody "
             "(no owner is declared for what changes):"]
    lines += [f"  {a.owner or '(no owner)'}: {a.target} {a.change} ({_grants(a)})" for a in items]
    return lines


def approval_markdown(items: list[Approval]) -> list[str]:
    if not items:
        return []
    owners = _needed(items)
    lines = ["#### Approvals", "",
             f"Needs approval from {', '.join(f'**{o}**' for o in owners)}." if owners
             else "No owner is declared for what changes.", ""]
    lines += [f"- {f'**{a.owner}**' if a.owner else '*no owner*'}: {a.kind} `{a.name}` {a.change} ({_grants(a)})"
              for a in items]
    return [*lines, ""]


def approval_json(items: list[Approval]) -> dict:
    return {"needsApprovalFrom": _needed(items),
            "changes": [{"owner": a.owner or None, "kind": a.kind, "name": a.name, "change": a.change,
                         "grants": list(a.grants)} for a in items]}


# --- netgen owners: spec files -> the teams that review them ----------------------------------------------------

def file_owners(estate: Estate) -> dict[str, dict[str, set[str]]]:
    """file (as diagnostics name it) -> team -> why: the owners of what a file defines, and of what the grants
    in it reach."""
    files: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for kind, items in (("service", estate.services), ("host group", estate.host_groups), ("host", estate.hosts)):
        for item in items:
            if item.owner:
                files[item.loc.file][item.owner].add(f"defines {kind} {getattr(item, 'ref', item.name)}")
    owners = Owners(estate)
    for grant in estate.grants:
        for owner, kind, name in owners.targets(grant):
            if owner:
                files[grant.loc.file][owner].add(f"grant {grant.name} reaches {kind} {name}")
    return files


def repository_top(folder: Path) -> Path:
    """The top of the git work tree holding folder, else folder's parent: what CODEOWNERS paths start from."""
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return Path(done.stdout.strip()).resolve()
    return folder.resolve().parent


def codeowner(team: str, prefix: str) -> str | None:
    """A team as CODEOWNERS names it (@org/team, @user or an e-mail address); None when it cannot be one."""
    if " " in team:
        return None
    return team if team.startswith("@") or "@" in team else f"{prefix}{team}"


def codeowners(files: dict[str, dict[str, set[str]]], path_of, prefix: str) -> str:
    """The netgen block of a CODEOWNERS file: one line per spec file with owners, sorted; path_of(file) is the
    file's path from the repository's top."""
    lines = [BEGIN]
    for path, teams in sorted((path_of(file), teams) for file, teams in files.items()):
        names = [codeowner(team, prefix) for team in sorted(teams)]
        bad = [team for team, name in zip(sorted(teams), names, strict=True) if name is None]
        if bad:
            lines.append(f"# {', '.join(repr(b) for b in bad)}: not a CODEOWNERS owner (no spaces allowed)")
        if any(names):
            lines.append(f"/{path} {' '.join(n for n in names if n)}")
    return "\n".join([*lines, END]) + "\n"


def with_block(text: str, block: str) -> str:
    """text (a CODEOWNERS file) with its netgen block replaced by block, or block appended: CODEOWNERS' last
    matching line wins, so netgen's lines go after a team's catch-all rules."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == END]
    if starts and ends and ends[-1] > starts[0]:
        return "".join(lines[:starts[0]]) + block + "".join(lines[ends[-1] + 1:])
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text else "") + block
