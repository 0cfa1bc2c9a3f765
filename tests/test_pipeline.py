"""The pipeline validates and resolves grants as their files load (netgen.pipeline). Whatever the layout of the
files, and whatever is wrong in them, it must give exactly what loading everything, then validating, then
resolving gives: the same estate, flows and diagnostics."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from test_properties import SETTINGS, estates

import netgen.loader
import netgen.pipeline
import netgen.validate
from netgen.bench.synth import generate, write
from netgen.diagnostics import Reporter, SpecError
from netgen.loader import holds_only_grants, load_tree
from netgen.pipeline import resolve_specs
from netgen.resolve import resolve
from netgen.schema import check_document
from netgen.validate import build_estate

AS_OF = date(2026, 11, 26)
EXAMPLE = Path(__file__).resolve().parents[1] / "specs"


def at_once(specs: Path) -> tuple:
    """(grant names, flows, diagnostics) as the stages give them one after the other, each over everything."""
    reporter = Reporter()
    estate = build_estate(load_tree(specs, reporter, check=check_document), reporter, AS_OF)
    if reporter.has_errors:
        return None, None, reporter.sorted()
    flows = resolve(estate, reporter)
    if reporter.has_errors:
        return None, None, reporter.sorted()
    return [g.name for g in estate.grants], flows, reporter.sorted()


def piped(specs: Path) -> tuple:
    reporter = Reporter()
    try:
        resolved = resolve_specs(specs, AS_OF, reporter)
    except SpecError as exc:
        return None, None, exc.diagnostics
    return [g.name for g in resolved.estate.grants], list(resolved.flows), reporter.sorted()


@pytest.fixture
def streams_or_not(monkeypatch) -> list[str]:
    """Records which way each run went: 'streamed' (the grants of files that load last taken as each loads)
    or 'at once'."""
    ways: list[str] = []
    late: set[str] = set()
    real = netgen.pipeline._all_at_once

    def all_at_once(*args, **kwargs):
        ways.append("at once")
        return real(*args, **kwargs)

    real_guess = netgen.pipeline.holds_only_grants

    def holds_only_grants(path):
        if real_guess(path):
            late.add(str(path))
            return True
        return False

    real_grants = netgen.pipeline._AsFilesLoad.grants

    def grants(self, documents):
        if documents and documents[0].file in late and (not ways or ways[-1] != "streamed"):
            ways.append("streamed")
        return real_grants(self, documents)

    monkeypatch.setattr(netgen.pipeline, "_all_at_once", all_at_once)
    monkeypatch.setattr(netgen.pipeline, "holds_only_grants", holds_only_grants)
    monkeypatch.setattr(netgen.pipeline._AsFilesLoad, "grants", grants)
    return ways


def test_the_example_estate_streams_and_gives_what_the_stages_give(streams_or_not, forks):
    expected = at_once(EXAMPLE)
    streams_or_not.clear()
    assert piped(EXAMPLE) == expected
    assert streams_or_not == ["streamed"], "the grants files load last, and stream"
    assert forks, "the files were read on two cores"
    assert expected[2] == [], "the example estate is clean"


@pytest.mark.parametrize("two_cores", [False, True])
def test_a_synthetic_estate_streams_on_one_core_or_two(tmp_path, streams_or_not, two_cores, request):
    if two_cores:
        request.getfixturevalue("forks")
    write(tmp_path / "specs", generate(80, 16, 600, 2))
    late = [holds_only_grants(p) for p in netgen.loader.spec_files(tmp_path / "specs")]
    assert late.count(True) > 3 and late.count(False) > 3, "grants-only files load last, the others first"
    expected = at_once(tmp_path / "specs")
    assert any(d.code == "NG112" for d in expected[2]), "duplicate-access warnings depend on file order"
    streams_or_not.clear()
    assert piped(tmp_path / "specs") == expected
    assert streams_or_not == ["streamed"]


def test_the_late_files_are_dealt_mostly_to_the_child(tmp_path, forks, monkeypatch):
    write(tmp_path / "specs", generate(80, 16, 600, 2))
    paths = netgen.loader.spec_files(tmp_path / "specs")
    late = [holds_only_grants(p) for p in paths]
    read_here: list[int] = []
    real = netgen.loader.load_checked

    def load_file(path, check, root=None, budget=None):
        read_here.append(paths.index(path))
        return real(path, check, root, budget)

    monkeypatch.setattr(netgen.loader, "load_checked", load_file)
    order = [i for i, _ in netgen.loader.load_files(paths, late, Reporter(), check_document)]
    assert sorted(order) == list(range(len(paths)))
    first_late = next(k for k, i in enumerate(order) if late[i])
    assert not any(late[i] for i in order[:first_late]) and not any(not late[i] for i in order[first_late:])
    assert order[first_late:] == [i for i in range(len(paths)) if late[i]], "late files come in path order"
    here = [i for i in read_here if late[i]]  # (the child's reads are not seen here: it is another process)
    sizes = [paths[i].stat().st_size for i in range(len(paths))]
    share = sum(sizes[i] for i in here) / sum(sizes[i] for i in range(len(paths)) if late[i])
    assert 0.1 < share < 0.4, share


def _grants_file(specs: Path, name: str, docs: list[dict]) -> None:
    (specs / "access" / name).write_text(yaml.safe_dump_all(docs, sort_keys=False), "utf-8")


def _grant(name: str, group: str, service: str = "payments/payments-api") -> dict:
    return {"apiVersion": "netgen.dev/v1alpha1", "kind": "Grant", "metadata": {"name": name},
            "spec": {"owner": "team-x", "reason": "test access", "from": {"hostGroup": group},
                     "to": {"service": service}}}


def test_a_late_file_that_defines_what_earlier_grants_use_falls_back(tmp_path, streams_or_not, forks):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    _grants_file(specs, "a-early.yaml", [_grant("uses-late-group", "late-group")])
    # 'kind :' reads as a kind to YAML, not to the file's first glance: this file seems to hold only grants
    (specs / "access" / "z-late.yaml").write_text(
        yaml.safe_dump(_grant("another", "billing")) + "---\napiVersion: netgen.dev/v1alpha1\nkind : HostGroup\n"
        "metadata: {name: late-group}\nspec: {members: [billing-use1-01]}\n", "utf-8")
    assert holds_only_grants(specs / "access" / "z-late.yaml")
    expected = at_once(specs)
    assert expected[1] and all(d.code == "NG112" for d in expected[2]), "the late group is known"
    streams_or_not.clear()
    assert piped(specs) == expected
    assert streams_or_not == ["streamed", "at once"]


def test_a_late_file_that_fails_to_load_explains_what_earlier_grants_miss(tmp_path, streams_or_not, forks):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    _grants_file(specs, "a-early.yaml", [_grant("uses-broken-group", "broken-group")])
    # a grants file with a YAML error, whose text seems to define the group the earlier grant names
    (specs / "access" / "z-late.yaml").write_text(
        yaml.safe_dump(_grant("another", "billing")) + "---\nkind: Grant\nmetadata: {name: broken-group\n",
        "utf-8")
    expected = at_once(specs)
    assert {d.code for d in expected[2]} == {"NG002", "NG112"}, "no unknown-reference error for its names"
    streams_or_not.clear()
    assert piped(specs) == expected
    assert streams_or_not == ["streamed"]


def test_a_late_file_that_fails_to_load_explains_a_host_group_that_matches_nothing(tmp_path, streams_or_not):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    groups = specs / "inventory" / "host-groups.yaml"
    groups.write_text(groups.read_text() + "---\napiVersion: netgen.dev/v1alpha1\nkind: HostGroup\n"
                      "metadata: {name: nobody}\nspec: {selector: {matchLabels: {role: nobody}}}\n", "utf-8")
    assert [d.code for d in at_once(specs)[2]] == ["NG115"]
    (specs / "access" / "z-late.yaml").write_text("kind: Grant\nmetadata: {name: what\n", "utf-8")  # a host?
    expected = at_once(specs)
    assert [d.code for d in expected[2]] == ["NG002"]
    streams_or_not.clear()
    assert piped(specs) == expected
    assert streams_or_not == ["streamed"]


def test_a_schema_error_in_a_late_grant_keeps_streaming(tmp_path, streams_or_not, forks):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    billing = specs / "access" / "billing.yaml"
    billing.write_text(billing.read_text().replace("  from: {hostGroup: billing}", "  fro: {hostGroup: billing}", 1))
    expected = at_once(specs)
    assert expected[2] and expected[1] is None
    streams_or_not.clear()
    assert piped(specs) == expected
    assert streams_or_not == ["streamed"]


def test_names_the_caller_knows_failed_to_load_explain_unknown_references(tmp_path):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    _grants_file(specs, "zz.yaml", [_grant("uses-pending-group", "pending-group")])
    reporter = Reporter()
    reporter.unloaded_names.add("pending-group")  # (netgen as a library: what an earlier load left)
    resolved = resolve_specs(specs, AS_OF, reporter)
    assert "uses-pending-group" not in [g.name for g in resolved.estate.grants]
    assert not [d for d in reporter.sorted() if d.code != "NG112"]


def test_a_validation_error_stops_resolution_as_it_does_at_once(tmp_path, streams_or_not, monkeypatch):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    resolved: list[str] = []  # grants resolved as their files load
    real_add = netgen.pipeline.Resolution.add

    def add(self, grants):
        grants = list(grants)
        resolved.extend(g.name for g in grants)
        return real_add(self, grants)

    monkeypatch.setattr(netgen.pipeline.Resolution, "add", add)
    settings = specs / "inventory" / "settings.yaml"
    settings.write_text(settings.read_text().replace("broadestPrefix: 16", "broadestPrefix: 32"), "utf-8")
    clean = piped(specs)
    assert any(d.code == "NG110" for d in clean[2]), "resolution finds prefixes broader than /32"
    _grants_file(specs, "a-early.yaml", [_grant("to-nowhere", "billing", "payments/no-such-api")])
    expected = at_once(specs)
    assert [d.code for d in expected[2]] == ["NG104"], "resolution's problems are not reported then"
    streams_or_not.clear()
    resolved.clear()
    assert piped(specs) == expected
    assert streams_or_not == ["streamed"]
    assert resolved == [], "no grant is resolved once validation has found an error (in the first grants file)"


def _layout(root: Path, docs: list[dict], draw_files: list[int], mixed: list[bool]) -> None:
    """Inventory in a few files; grants in grants-only files, some of which also hold an inventory document."""
    inventory = [d for d in docs if d["kind"] != "Grant"]
    grants = [d for d in docs if d["kind"] == "Grant"]
    files: dict[str, list[dict]] = {}
    for i, d in enumerate(inventory):
        files.setdefault(f"inventory/{i % 3}.yaml", []).append(d)
    for d, n in zip(grants, draw_files, strict=False):
        files.setdefault(f"access/{n:02d}.yaml", []).append(d)
    for n, moved in enumerate(mixed):  # an inventory document moved into a grants file: that file loads early
        if moved and files.get("inventory/0.yaml") and f"access/{n:02d}.yaml" in files:
            files[f"access/{n:02d}.yaml"].append(files["inventory/0.yaml"].pop())
    for relative, bucket in files.items():
        if bucket:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(yaml.safe_dump_all(bucket, sort_keys=False), "utf-8")


@SETTINGS
@given(docs=estates(), files=st.lists(st.integers(0, 9), max_size=60), mixed=st.lists(st.booleans(), max_size=10),
       twice=st.lists(st.integers(0, 59), max_size=3))
def test_streaming_gives_what_the_stages_give_on_random_estates(docs, files, mixed, twice, tmp_path_factory,
                                                                 forks):
    grants = [d for d in docs if d["kind"] == "Grant"]
    for k in twice:  # the same grant again in a later file: a duplicate name (NG101)
        if grants:
            docs.append(grants[k % len(grants)])
    root = tmp_path_factory.mktemp("layout")
    _layout(root, docs, files + [9] * len(docs), mixed)
    assert piped(root) == at_once(root)


@pytest.mark.parametrize(("text", "only_grants"), [
    ("apiVersion: x\nkind: Grant\nmetadata: {}\n---\napiVersion: x\nkind: Grant\n", True),
    ("apiVersion: x\r\nkind: Grant\r\nmetadata: {}\r\n---\r\nkind: Grant\r\n", True),  # CRLF line ends
    ("\ufeffkind: Grant\nmetadata: {}\n", True),
    ("kind: Grant  # access for billing\nspec: {}\n---\nkind: 'Grant'\n---\nkind : \"Grant\"\n", True),
    ("kind: Grant\n---\nkind: HostGroup\n", False),
    ("kind: Grants\n", False),
    ("kind: Vpc\n", False),
    ("# no documents\n", False),
])
def test_files_that_hold_only_grants_are_told_apart(tmp_path, text, only_grants):
    path = tmp_path / "file.yaml"
    path.write_text(text, "utf-8")
    assert holds_only_grants(path) is only_grants


def test_nothing_is_resolved_or_worded_in_vain_once_an_early_file_failed_to_load(tmp_path, monkeypatch):
    specs = shutil.copytree(EXAMPLE, tmp_path / "specs")
    (specs / "inventory" / "broken.yaml").write_text("kind: HostGroup\nmetadata: {name: ghost\n", "utf-8")
    _grants_file(specs, "zz.yaml", [_grant("uses-ghost", "ghost")])
    resolved: list[str] = []
    worded: list[str] = []
    real_add, real_hint = netgen.pipeline.Resolution.add, netgen.validate.did_you_mean

    def add(self, grants):
        grants = list(grants)
        resolved.extend(g.name for g in grants)
        return real_add(self, grants)

    def did_you_mean(word, candidates):
        worded.append(word)
        return real_hint(word, candidates)

    monkeypatch.setattr(netgen.pipeline.Resolution, "add", add)
    monkeypatch.setattr(netgen.validate, "did_you_mean", did_you_mean)
    expected = at_once(specs)
    assert [d.code for d in expected[2]] == ["NG002"]
    resolved.clear()
    worded.clear()
    assert piped(specs) == expected
    assert resolved == [], "the run is bound to fail: no grant is resolved"
    assert worded == [], "a reference that a name which failed to load explains is not even worded"
