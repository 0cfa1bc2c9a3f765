"""Hostile and careless input (issue 20): the load stage's limits hold per file and per run whatever the input's
shape, errors are located where the mistake is, and a number YAML 1.1 reads in another base is an error.

Sizes are scaled to run in a moment: what is checked is the budget (bytes read, nodes built, files composed), not
the size. The limits themselves are listed in docs/diagnostics.md ("Loading is safe")."""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

import netgen.loader
import netgen.yamlload
from netgen.diagnostics import Reporter
from netgen.loader import MAX_FOLDER_DEPTH, load_file, load_tree
from netgen.yamlload import ALIAS_NODES_PER_FILE, ALIAS_NODES_PER_RUN, load_text

HEAD = "apiVersion: netgen.dev/v1alpha1\n"


def located(diagnostics) -> list[tuple[str, int, int]]:
    return [(d.code, d.location.line, d.location.column) for d in diagnostics]


def load(text: str) -> tuple[list, Reporter]:
    reporter = Reporter()
    return load_text(text, "t.yaml", reporter), reporter


def bomb(levels: int, width: int, prefix: str = "a") -> str:
    """A mapping whose last entry expands width ** levels scalars through aliases."""
    lines = [f"{prefix}0: &{prefix}0 [" + ",".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"{prefix}{i}: &{prefix}{i} [" + ",".join([f"*{prefix}{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


BOMB_NODES = 94_214  # what bomb(4, 17) builds through aliases: under one file's budget, not two such


# ---- size ----------------------------------------------------------------------------------------------------

def test_a_file_over_the_limit_behind_a_symlink_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """A sparse file of a quarter of a gigabyte (gigabytes in the issue) reached through a symlink: its size is
    looked at first, and it is never read whole (the pipeline's scheduling glance included)."""
    monkeypatch.setattr(netgen.loader, "MAX_FILE_BYTES", 1 << 20)
    sparse = tmp_path / "sparse.bin"
    with sparse.open("wb") as f:
        f.truncate(256 << 20)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "big.yaml").symlink_to(sparse)
    tracemalloc.start()
    try:
        diagnostics = diagnose_specs(specs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert located(diagnostics) == [("NG004", 1, 1)]
    assert "larger than 1048576 bytes" in diagnostics[0].message
    assert peak < 4 << 20, f"{peak / 2**20:.0f} MiB allocated: the file was read"


def test_a_file_of_exactly_the_limit_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(netgen.loader, "MAX_FILE_BYTES", 64)
    path = tmp_path / "x.yaml"
    path.write_text("a: " + "x" * 60 + "\n")
    assert path.stat().st_size == 64
    reporter = Reporter()
    assert [d.data for d in load_file(path, "x.yaml", reporter)] == [{"a": "x" * 60}]
    path.write_text("a: " + "x" * 61 + "\n")
    assert load_file(path, "x.yaml", reporter) == [] and located(reporter.diagnostics) == [("NG004", 1, 1)]


def test_a_fifo_named_like_a_spec_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "x.yaml").symlink_to(fifo)
    reporter = Reporter()
    reader = threading.Thread(target=load_file, args=(tmp_path / "x.yaml", "x.yaml", reporter), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock it (a writer opens the other end), then fail
        with open(fifo, "wb"):
            pass
        pytest.fail("load_file waited for a writer on a FIFO")
    assert [(d.code, d.message) for d in reporter.diagnostics] == [("NG007", "cannot read file: not a regular file")]


# ---- nodes and documents per file ----------------------------------------------------------------------------

def count_composes(monkeypatch) -> list[int]:
    """Records the length of every text pyyaml composes from here on (loading, and finding positions)."""
    lengths: list[int] = []
    real = yaml.compose_all

    def compose_all(stream, Loader):  # noqa: N803 - pyyaml's own argument name
        lengths.append(len(stream))
        return real(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "compose_all", compose_all)
    return lengths


def test_a_file_with_more_nodes_than_the_limit_is_refused_uncomposed(monkeypatch):
    monkeypatch.setattr(netgen.yamlload, "MAX_NODES_PER_FILE", 1_000)
    composed = count_composes(monkeypatch)
    docs, reporter = load(HEAD + "kind: Grant\nmetadata: {name: g}\nspec:\n  ports: [" + "1," * 1_200 + "]\n")
    # 13 nodes before the list's items (the root mapping, 6 keys, 4 values, a mapping, the list): the 1,001st node
    # is its 988th item, whose column is 11 + 2 * 987
    assert docs == [] and located(reporter.diagnostics) == [("NG004", 5, 11 + 2 * 987)]
    assert "more than 1,000 nodes" in reporter.diagnostics[0].message
    assert composed == []
    assert reporter.unloaded_names == {"g"}, "references to what it defines are not worded"


def test_a_file_as_dense_as_yaml_allows_is_counted(monkeypatch):
    """`{a,a,...}` holds a key and its null value per two characters, the most YAML text holds: counted too."""
    monkeypatch.setattr(netgen.yamlload, "MAX_NODES_PER_FILE", 3_000)
    dense = "{" + "a," * 1_600 + "a}\n"
    docs, reporter = load(dense)
    assert [d.code for d in reporter.diagnostics] == ["NG004"]
    docs, reporter = load("{" + "a," * 1_000 + "a}\n")  # 2,003 nodes: within the limit
    assert "NG004" not in [d.code for d in reporter.diagnostics]


def test_a_file_with_more_documents_than_the_limit_stops_there(monkeypatch):
    monkeypatch.setattr(netgen.yamlload, "MAX_DOCUMENTS_PER_FILE", 50)
    text = "".join(f"---\nmetadata: {{name: d{i}}}\n" for i in range(80))
    docs, reporter = load(text)
    assert len(docs) == 50
    assert located(reporter.diagnostics) == [("NG004", 102, 1)]  # the 51st document, after its '---'
    assert "more than 50 documents" in reporter.diagnostics[0].message
    assert {"d50", "d79"} <= reporter.unloaded_names and "d49" not in reporter.unloaded_names


def test_empty_documents_count_toward_the_limit(monkeypatch):
    monkeypatch.setattr(netgen.yamlload, "MAX_DOCUMENTS_PER_FILE", 50)
    docs, reporter = load("---\n" * 1_000 + "a: 1\n")
    assert docs == [] and [d.code for d in reporter.diagnostics] == ["NG004"]


# ---- aliases: per file and per run ---------------------------------------------------------------------------

def test_many_small_alias_bombs_in_one_file_spend_one_budget():
    """Each document stays under what one document could expand; together they are over the file's budget.
    Once it is spent, the file's other documents that need aliases are left out without another word."""
    text = "---\n".join(bomb(4, 16, prefix=f"d{k}a") for k in range(40))
    started = time.perf_counter()
    docs, reporter = load(text)
    assert time.perf_counter() - started < 2
    assert located(reporter.diagnostics) == [("NG004", 6, 1)]  # the second document, which crosses the budget
    assert f"more than {ALIAS_NODES_PER_FILE:,} nodes" in reporter.diagnostics[0].message
    assert len(docs) == 1


def test_a_file_without_aliases_is_not_counted_and_one_with_a_few_loads():
    docs, reporter = load("base: &b {x: [1, 2]}\nc: *b\n---\nd: plain\n")
    assert reporter.diagnostics == []
    assert [d.data for d in docs] == [{"base": {"x": [1, 2]}, "c": {"x": [1, 2]}}, {"d": "plain"}]


def alias_files(root: Path, count: int) -> None:
    """count files each expanding BOMB_NODES through aliases, between files with none."""
    root.mkdir()
    for k in range(count):
        (root / f"b{k:02d}.yaml").write_text(bomb(4, 17, prefix=f"f{k}a"), "utf-8")
        (root / f"c{k:02d}.yaml").write_text(HEAD + f"kind: Account\nmetadata: {{name: n{k}}}\n", "utf-8")


@pytest.mark.parametrize("cores", [1, 2])
def test_the_runs_alias_budget_runs_out_at_the_same_file_on_one_core_or_two(tmp_path, request, monkeypatch, cores):
    assert BOMB_NODES < ALIAS_NODES_PER_FILE and 10 * BOMB_NODES < ALIAS_NODES_PER_RUN < 11 * BOMB_NODES
    if cores == 2:
        request.getfixturevalue("forks")
    else:
        monkeypatch.setenv("NETGEN_JOBS", "1")
    alias_files(tmp_path / "specs", 14)
    reporter = Reporter()
    documents = load_tree(tmp_path / "specs", reporter)
    over = [d for d in reporter.diagnostics if d.code == "NG004"]
    assert [(Path(d.location.file).name, d.location.line) for d in over] == [("b10.yaml", 1)]
    assert f"more than {ALIAS_NODES_PER_RUN:,} nodes in all" in over[0].message
    assert len([d for d in documents if any(key.endswith("a3") for key in d.data)]) == 10, "ten are expanded"


def test_the_runs_budget_is_the_callers_to_give():
    """load_text and load_file without a budget: each call gets one of its own (a library caller's files)."""
    for _ in range(12):
        docs, reporter = load(bomb(4, 17))
        assert reporter.diagnostics == [] and docs


# ---- a file with directives: positions found in one pass -----------------------------------------------------

def test_thousands_of_errors_in_a_file_with_a_yaml_directive_compose_it_once_more(tmp_path, monkeypatch):
    """%TAG can change what a tag means, so positions in such a file are found in the whole file composed: once
    for all of its documents, not once for each (quadratic: 77 s for 3,000 documents in the issue)."""
    count = 2_000
    (tmp_path / "d.yaml").write_text("%YAML 1.1\n---\n" + "\n---\n".join(
        HEAD + f"kind: Grant\nmetadata: {{name: g{i}}}\nspec: {{owner: 1, reason: r, from: {{}}, to: {{}}}}"
        for i in range(count)) + "\n", "utf-8")
    composed = count_composes(monkeypatch)
    started = time.perf_counter()
    diagnostics = diagnose_specs(tmp_path)
    assert time.perf_counter() - started < 10
    whole = max(composed)
    assert composed.count(whole) <= 2, "composed to load, then once to find every position"
    owners = [d for d in diagnostics if "spec.owner" in d.message]
    assert len(owners) == count
    assert located(owners[-1:]) == [("NG012", 6 + 5 * (count - 1), 15)]  # %YAML, ---, then 5 lines each


# ---- folders -------------------------------------------------------------------------------------------------

def make_deep(root: Path, depth: int) -> None:
    """depth nested folders named d below root, a spec file in the deepest, made without recursion."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with open(os.open("x.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("a: 1\n")
    finally:
        os.close(fd)


def remove_deep(root: Path) -> None:
    """Remove what make_deep made, deepest first (shutil.rmtree recurses once per folder)."""
    depth = 0
    while (root / Path(*["d"] * (depth + 1))).is_dir():
        depth += 1
    (root / Path(*["d"] * depth) / "x.yaml").unlink()
    for level in range(depth, 0, -1):
        os.rmdir(root / Path(*["d"] * level))


def test_a_folder_tree_a_thousand_levels_deep_is_a_located_error(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    make_deep(specs, 1_000)
    (specs / "shallow.yaml").write_text("a: 1\n")
    try:
        result = run_cli("validate", "--specs", str(specs), "--format", "json")
    finally:
        remove_deep(specs)
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 1
    reported = {(Path(d["file"]).relative_to(specs).as_posix(), d["code"]) for d in json.loads(result.stdout)}
    assert reported == {("/".join(["d"] * (MAX_FOLDER_DEPTH + 1)), "NG007"), ("shallow.yaml", "NG010")}


def test_a_file_at_the_depth_limit_is_read(tmp_path):
    make_deep(tmp_path, MAX_FOLDER_DEPTH)
    reporter = Reporter()
    assert [d.data for d in load_tree(tmp_path, reporter)] == [{"a": 1}]
    assert reporter.diagnostics == []


# ---- positions of characters YAML refuses --------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "column"), [
    ("a: b\x00c\n", 1, 5),
    ("é: 1\nb: x\x07y\n", 2, 5),  # libyaml counts bytes: the é before it is two
    ("# ü ü\nkey: [ok, 'fine']\nthird: \x1b\n", 3, 8),
    ("a: 1\r\nb: \x00\r\n", 2, 4),
    ("a: \ufffe\n", 1, 4),
])
def test_a_character_yaml_refuses_is_located_where_it_is(text: str, line: int, column: int):
    docs, reporter = load(text)
    assert located(reporter.diagnostics) == [("NG002", line, column)]
    assert "unacceptable character" in reporter.diagnostics[0].message


def test_a_nul_byte_is_located_through_the_cli(tmp_path):
    (tmp_path / "n.yaml").write_bytes((HEAD + "kind: Settings\nmetadata: {name: s}\nspec: {broadestPrefix: 1\x006}\n")
                                      .encode())
    result = run_cli("validate", "--specs", str(tmp_path))
    assert result.exit_code == 1 and result.exception is None
    assert "n.yaml:4:25: error[NG002]: unacceptable character #x0000" in result.stderr


# ---- YAML 1.1 numbers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "read", "words"), [
    ("0443", 291, "octal number to YAML 1.1 (a leading 0): it reads as 291, not 443; write 443"),
    ("22:22", 1342, "base-60 number (digits between colons) to YAML 1.1: it reads as 1342"),
    ("1:00:00", 3600, "base-60"),
    ("0x1F", 31, "hexadecimal number to YAML 1.1: it reads as 31; write 31 if that is meant"),
    ("+0x10", 16, "hexadecimal"),
    ("0b101", 5, "binary number to YAML 1.1: it reads as 5"),
    ("1_000", 1000, "underscores are dropped"),
    ("-017", -15, "octal"),
    ("0_443", 291, "octal"),
    ("!!int 0443", 291, "octal"),
])
def test_a_number_yaml_11_reads_in_another_base_is_an_error_saying_how(written: str, read: int, words: str):
    docs, reporter = load(f"# c\nspec: {{port: {written}}}\n")
    assert located(reporter.diagnostics) == [("NG009", 2, 14)]
    assert words in reporter.diagnostics[0].message and "quote it if it is text" in reporter.diagnostics[0].message
    assert docs[0].data == {"spec": {"port": read}} and docs[0].flagged == ((2, 14),)


@pytest.mark.parametrize("written", ["443", "0", "-5", "+5", '"0443"', "'22:22'", "0o17", "08", "1.5", "0x", "a1"])
def test_plain_decimals_and_strings_are_not_flagged(written: str):
    docs, reporter = load(f"port: {written}\n")
    assert not [d for d in reporter.diagnostics if d.code == "NG009"] and docs[0].flagged == ()


_NUMBERISH = st.text(alphabet="0123456789_:xXbBoO+-abcdefABCDEF.", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(written=_NUMBERISH)
def test_every_int_the_yaml_11_resolver_reads_from_a_non_decimal_form_is_flagged(written: str):
    """Whatever pyyaml's resolver reads as an integer: flagged unless written in plain decimal, never otherwise."""
    try:
        node = yaml.compose(f"k: {written}\n", Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return
    value = node.value[0][1]
    docs, reporter = load(f"k: {written}\n")
    flagged = [d for d in reporter.diagnostics if d.code == "NG009"]
    digits = written.lstrip("+-")
    plain = digits.isdigit() and (digits == "0" or not digits.startswith("0"))
    if value.tag != "tag:yaml.org,2002:int" or plain:
        assert not flagged, written
    else:  # flagged, or (0b_, 0x_: what pyyaml cannot read) an explicit error saying so
        assert flagged or [d.code for d in reporter.diagnostics] == ["NG005"], (written, reporter.diagnostics)


def test_a_misread_number_is_one_error_where_it_stands(tmp_path):
    """The schema does not also word the value (a name is a string), and nothing refers to the document in vain."""
    specs = copy_example_specs(tmp_path)
    edit_spec(specs / "inventory/hosts-euw1.yaml", "  address: 10.20.10.11\n", "  address: 0x0A140A0B\n")
    edit_spec(specs / "inventory/services.yaml", "payments-api}\n  ports:\n    - {name: https, port: 443,",
              "payments-api}\n  ports:\n    - {name: https, port: 0443,")
    diagnostics = diagnose_specs(specs)
    assert {(d.code, Path(d.location.file).name) for d in diagnostics} == {
        ("NG009", "hosts-euw1.yaml"), ("NG009", "services.yaml")}, "\n".join(d.text() for d in diagnostics)


def test_the_example_estate_holds_no_misread_number():
    assert not [d for d in diagnose_specs(EXAMPLE_SPECS) if d.code == "NG009"]
