"""Helpers for the build-stage tests (tests/test_build.py): running builds, snapshots, spec surgery, and
independent checks of the generated files. Kept apart from conftest.py on purpose: plain functions only."""

from __future__ import annotations

import contextlib
import json
import random
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from ipaddress import IPv4Network, collapse_addresses
from pathlib import Path

from typer.testing import CliRunner

from netgen.cli import app

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-26"
AS_OF_DATE = date.fromisoformat(AS_OF)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def netgen(*args: str, cwd: Path = REPO) -> Run:
    """Run the netgen CLI in-process with cwd as the working folder (so spec locations are relative)."""
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


def build(out: Path | str, *, cwd: Path = REPO, specs: str = "specs", check: bool = False,
          fmt: str | None = None) -> Run:
    args = ["build", "--specs", specs, "--out", str(out), "--as-of", AS_OF]
    if check:
        args.append("--check")
    if fmt:
        args += ["--format", fmt]
    return netgen(*args, cwd=cwd)


def build_ok(out: Path | str, *, cwd: Path = REPO, specs: str = "specs") -> Run:
    run = build(out, cwd=cwd, specs=specs)
    assert run.exit_code == 0, run.output
    return run


def copy_specs(workdir: Path) -> Path:
    """A writable copy of the example estate at workdir/specs; build it with cwd=workdir."""
    target = workdir / "specs"
    shutil.copytree(REPO / "specs", target)
    return target


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new, 1), "utf-8")


def split_documents(text: str) -> list[str]:
    """The raw text of each YAML document of a spec file (split on '---' lines), comments kept."""
    docs, current = [], []
    for line in text.splitlines(keepends=True):
        if line.rstrip() == "---":
            docs.append("".join(current))
            current = []
        else:
            current.append(line)
    docs.append("".join(current))
    return [d for d in docs if re.search(r"^apiVersion:", d, re.MULTILINE)]


def document_line(path: Path, kind: str, name: str) -> int:
    """1-based line where the document `kind`/`name` starts (its first key) in a spec file."""
    lines = path.read_text("utf-8").splitlines()
    start = None
    for i, line in enumerate(lines, 1):
        if line.startswith("apiVersion:"):
            start = i
        if line == f"kind: {kind}" and start is not None:
            for following in lines[i:]:
                if following.startswith("apiVersion:"):
                    break
                if following.strip() == f"name: {name}":
                    return start
    raise AssertionError(f"no {kind} {name} in {path}")


def scatter_specs(source: Path, target: Path, seed: int) -> int:
    """Rewrite every document of a spec tree into its own file, under shuffled names and folders."""
    docs = [doc for path in sorted(source.rglob("*.yaml")) for doc in split_documents(path.read_text("utf-8"))]
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    for position, index in enumerate(order):
        folder = target / f"part-{position % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{position:03d}-{random.Random(seed + index).randrange(16**6):06x}.yaml").write_text(
            docs[index], "utf-8")
    return len(docs)


def tree(folder: Path) -> dict[str, bytes]:
    """{relative posix path: bytes} of every file below folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Every path below folder (files and folders) with its bytes, mode and st_mtime_ns."""
    result = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        result[p.relative_to(folder).as_posix()] = (p.read_bytes() if p.is_file() else None, st.st_mode,
                                                   st.st_mtime_ns)
    return result


def mtimes(folder: Path) -> dict[str, int]:
    return {k: v[2] for k, v in snapshot(folder).items()}


def templates(out: Path) -> dict[str, dict]:
    """{aws/<account>/<region>/<part>.json: parsed template}, part being 'network' or 'sg-<group name>'."""
    return {p.relative_to(out).as_posix(): json.loads(p.read_text("utf-8"))
            for p in sorted((out / "aws").glob("*/*/*.json"))}


def resources(out: Path) -> dict[tuple[str, str], dict]:
    """{(template path, logical id): resource} over every template."""
    return {(path, lid): res for path, t in templates(out).items() for lid, res in t["Resources"].items()}


def policies(out: Path) -> dict[str, dict]:
    import yaml

    return {p.relative_to(out).as_posix(): yaml.safe_load(p.read_text("utf-8"))
            for p in sorted((out / "kubernetes").glob("*/*/*.yaml"))}


# ----- netgen's own checks on security-group rules (things cfn-lint does not check) -----

DESCRIPTION_CHARS = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]*")


def sg_rule_problems(resource: dict) -> list[str]:
    """Problems with one AWS::EC2::SecurityGroupIngress/Egress resource ([] when it is fine)."""
    props = resource.get("Properties", {})
    problems = []
    ports = [props.get("FromPort"), props.get("ToPort")]
    for key, port in zip(("FromPort", "ToPort"), ports, strict=True):
        if type(port) is not int or not 0 <= port <= 65535:
            problems.append(f"{key} {port!r} is not an integer port 0..65535")
    if all(type(p) is int for p in ports) and ports[0] > ports[1]:
        problems.append(f"FromPort {ports[0]} > ToPort {ports[1]}")
    text = props.get("Description")
    if not isinstance(text, str) or len(text) > 255 or not DESCRIPTION_CHARS.fullmatch(text):
        problems.append(f"Description {text!r} is over 255 characters or has characters AWS rejects")
    cidr = props.get("CidrIp")
    try:
        if not isinstance(cidr, str) or str(IPv4Network(cidr, strict=True)) != cidr:
            raise ValueError
    except ValueError:
        problems.append(f"CidrIp {cidr!r} is not a canonical IPv4 CIDR")
    if props.get("IpProtocol") not in ("tcp", "udp"):
        problems.append(f"IpProtocol {props.get('IpProtocol')!r} is not tcp or udp")
    if "CidrIpv6" in props or "SourceSecurityGroupId" in props or "DestinationSecurityGroupId" in props:
        problems.append("rule must use CidrIp only")
    return problems


def covered_by(nets: Iterable[IPv4Network], within: Iterable[IPv4Network]) -> bool:
    """True when every address of nets lies in the union of within."""
    within = list(within)
    return list(collapse_addresses([*within, *nets])) == list(collapse_addresses(within))


# ----- exact comparison of (address, port) sets given as rectangles -----

Rect = tuple[int, int, int, int]  # first address, last address, first port, last port (inclusive)


def rect(net: IPv4Network, first: int, last: int) -> Rect:
    return int(net.network_address), int(net.broadcast_address), first, last


def cells(rects: Iterable[Rect], *others: Iterable[Rect]) -> set[tuple[int, int]]:
    """The union of rects as a set of elementary cells, on a grid cut at every edge of rects and others."""
    rects = list(rects)
    everything = rects + [r for group in others for r in group]
    xs = sorted({r[0] for r in everything} | {r[1] + 1 for r in everything})
    ys = sorted({r[2] for r in everything} | {r[3] + 1 for r in everything})
    result = set()
    for a0, a1, p0, p1 in rects:
        for x in xs:
            if a0 <= x <= a1:
                for y in ys:
                    if p0 <= y <= p1:
                        result.add((x, y))
    return result


def same_union(left: Iterable[Rect], right: Iterable[Rect]) -> bool:
    left, right = list(left), list(right)
    return cells(left, right) == cells(right, left)


def network_template(vpc) -> str:
    """Where the peerings and routes of a VPC (netgen.model.Vpc) belong: its account and region's network stack."""
    return f"aws/{vpc.account.name}/{vpc.region}/network.json"


def group_template(group) -> str:
    """Where the rules of a security group (netgen.model.SecurityGroup) belong: the group's own stack."""
    return f"aws/{group.vpc.account.name}/{group.vpc.region}/sg-{group.name}.json"
