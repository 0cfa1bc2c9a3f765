"""The load stage is safe against hostile YAML, and the CLI turns every bad input into diagnostics, not crashes."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, copy_example_specs, diagnose_specs, edit_spec, run_cli
from jsonschema import Draft202012Validator

from netgen.diagnostics import Reporter
from netgen.loader import load_file, load_text, load_tree, spec_files
from netgen.pipeline import resolve_specs
from netgen.targets.report import HEADER

HEAD = "apiVersion: netgen.dev/v1alpha1\n"
ACCOUNT = HEAD + """kind: Account
metadata:
  name: acme
spec:
  accountId: "123456789012"
  peeringAcceptRoleArn: arn:aws:iam::123456789012:role/accepter
"""


def load(text: str) -> tuple[list, list[tuple[str, int, int, str]]]:
    reporter = Reporter()
    docs = load_text(text, "t.yaml", reporter)
    return docs, [(d.code, d.location.line, d.location.column, d.message) for d in reporter.sorted()]


def codes_at(diagnostics) -> list[tuple[str, int, int]]:
    return [(code, line, col) for code, line, col, _ in diagnostics]


def bomb(levels: int, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# ---- alias bombs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [9, 30])
def test_billion_laughs_fails_fast(levels: int, tmp_path: Path):
    path = tmp_path / "bomb.yaml"
    path.write_text(HEAD + "kind: Account\n" + bomb(levels), "utf-8")
    reporter = Reporter()
    start = time.perf_counter()
    docs = load_file(path, "bomb.yaml", reporter)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"alias bomb took {elapsed:.2f}s"
    assert docs == []
    assert [(d.code, d.location.line, d.location.column) for d in reporter.diagnostics] == [("NG004", 1, 1)]


def test_billion_laughs_through_cli_fails_fast(tmp_path: Path):
    (tmp_path / "bomb.yaml").write_text(bomb(12), "utf-8")
    start = time.perf_counter()
    result = run_cli("validate", "--specs", str(tmp_path), "--format", "json")
    assert time.perf_counter() - start < 1.0
    assert result.exit_code == 1
    assert [d["code"] for d in json.loads(result.stdout)] == ["NG004"]


def test_modest_aliases_are_expanded():
    docs, diagnostics = load("base: &b {x: 1, y: [1, 2]}\nc: *b\nd: *b\n")
    assert diagnostics == []
    assert docs[0].data == {"base": {"x": 1, "y": [1, 2]}, "c": {"x": 1, "y": [1, 2]}, "d": {"x": 1, "y": [1, 2]}}


# ---- duplicate keys ------------------------------------------------------------------------------------------

def test_duplicate_key_is_rejected_with_location():
    docs, diagnostics = load("# c\na: 1\nb:\n  c: 1\n  d: 2\n  c: 3\na: 4\n")
    assert codes_at(diagnostics) == [("NG003", 6, 3), ("NG003", 7, 1)]
    assert "first defined at line 4, column 3" in diagnostics[0][3]
    assert "first defined at line 2, column 1" in diagnostics[1][3]
    assert docs[0].data == {"a": 1, "b": {"c": 1, "d": 2}}  # the first definition wins, never silently the last


def test_duplicate_key_in_flow_mapping():
    _, diagnostics = load("x: {k: 1, k: 2}\n")
    assert codes_at(diagnostics) == [("NG003", 1, 11)]


# ---- encodings -----------------------------------------------------------------------------------------------

def test_latin1_file_gives_ng001_with_line_and_column(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("# inventory\ncity: Zürich\n".encode("latin-1"))
    reporter = Reporter()
    assert load_file(path, "latin1.yaml", reporter) == []
    [d] = reporter.diagnostics
    assert (d.code, d.location.line, d.location.column) == ("NG001", 2, 8)
    assert "0xfc" in d.message


def test_non_ascii_utf8_is_accepted(tmp_path: Path):
    path = tmp_path / "utf8.yaml"
    path.write_bytes("# Zürich, 東京\ncity: Zürich\n".encode())
    reporter = Reporter()
    [doc] = load_file(path, "utf8.yaml", reporter)
    assert reporter.diagnostics == []
    assert doc.data == {"city": "Zürich"}
    assert doc.at(("city",)).column == 7


def test_bom_is_ignored_and_columns_are_unaffected(tmp_path: Path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\nb: [x, y]\n")
    reporter = Reporter()
    [doc] = load_file(path, "bom.yaml", reporter)
    assert reporter.diagnostics == []
    assert doc.data == {"a": 1, "b": ["x", "y"]}
    assert (doc.at(("a",)).line, doc.at(("a",)).column) == (1, 4)


# ---- syntax --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "line", "column"), [
    ("a:\n\tb: 1\n", 2, 1),  # libyaml: "found character that cannot start any token" (does not name the tab)
    ("a:\n  b: 1\n\tc: 2\n", 3, 1),
    ("a: 1\n\t- x\n", 2, 1),
])
def test_tab_indentation_gives_ng002_with_hint(text: str, line: int, column: int):
    _, diagnostics = load(text)
    assert codes_at(diagnostics) == [("NG002", line, column)]
    assert "tabs are not allowed in YAML indentation; use spaces" in diagnostics[0][3]


def test_tab_inside_a_value_is_fine():
    docs, diagnostics = load('a: "x\ty"\nb: x\ty\n')
    assert diagnostics == []
    assert docs[0].data == {"a": "x\ty", "b": "x\ty"}


def test_other_syntax_errors_have_no_tab_hint():
    _, diagnostics = load('a: "unclosed\n')
    assert [c for c, *_ in diagnostics] == ["NG002"]
    assert "tab" not in diagnostics[0][3]


# ---- explicit tags -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tagged", [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
    "!!python/object/new:os.system [touch {marker}]",
    "!!python/name:os.system",
    '!!python/object/apply:builtins.exec ["open(\'{marker}\', \'w\').close()"]',
    "!ruby/object {{x: 1}}",
    "!!binary aGVsbG8=",
    "!!set {{a: null}}",
    "!!omap [{{a: 1}}]",
])
def test_explicit_tags_give_ng005_and_never_execute(tagged: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    _, diagnostics = load("# c\nprofile: " + tagged.format(marker=marker) + "\n")
    assert codes_at(diagnostics) == [("NG005", 2, 10)]
    assert not marker.exists()


@pytest.mark.parametrize("tagged", ["!!int twelve", "!!float x", "!!bool maybe", "!!int [1]"])
def test_standard_tag_on_wrong_value_is_ng005_not_a_crash(tagged: str):
    _, diagnostics = load("a: " + tagged + "\n")
    assert codes_at(diagnostics) == [("NG005", 1, 4)]


def test_merge_keys_and_non_string_keys_give_ng005():
    _, diagnostics = load("base: &b {x: 1}\nc:\n  <<: *b\n  1: one\n  ? [a, b]\n  : list\n  true: yes\n")
    assert codes_at(diagnostics) == [("NG005", 3, 3), ("NG005", 4, 3), ("NG005", 5, 5), ("NG005", 7, 3)]


def test_explicit_tag_through_cli_never_executes(tmp_path: Path):
    marker = tmp_path / "pwned"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "evil.yaml").write_text(
        ACCOUNT.replace('accountId: "123456789012"',
                        f'accountId: !!python/object/apply:os.system ["touch {marker}"]'), "utf-8")
    result = run_cli("validate", "--specs", str(specs), "--format", "json")
    assert result.exit_code == 1
    assert not marker.exists()
    assert ("NG005", 6, 14) in {(d["code"], d["line"], d["column"]) for d in json.loads(result.stdout)}


# ---- documents -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("", []),
    ("---\n", []),
    ("# only a comment\n", []),
    ("---\n...\n---\n", []),
    ("a: 1\n---\n", []),  # a trailing separator
    ("---\n---\na: 1\n---\n", []),
    ("- a\n- b\n", [("NG006", 1, 1)]),
    ("just a scalar\n", [("NG006", 1, 1)]),
    ("a: 1\n---\n42\n---\nb: 2\n", [("NG006", 3, 1)]),
])
def test_documents_must_be_mappings(text: str, expected: list):
    docs, diagnostics = load(text)
    assert codes_at(diagnostics) == expected
    assert all(isinstance(d.data, dict) for d in docs)


def test_document_locations_are_recorded():
    [first, second] = load("# c\na: 1\n---\nb:\n  c: [x, {d: e}]\n")[0]
    assert (second.line, second.column) == (4, 1)
    assert second.at(("b", "c", 1, "d")).line == 5
    assert second.at(("b", "c", 1, "d")).column == 14
    assert second.at(("b", "c", 1, "d"), key=True).column == 11
    assert second.at(("b", "missing", "deeper")).column == 3  # falls back to the closest enclosing value
    assert first.at(("a",)).line == 2



def test_locations_are_found_lazily_and_match_a_full_compose():
    """Positions come from composing one document's text again; they must equal pyyaml's own marks for the
    whole file, through non-ASCII text, CRLF line endings, an indented document, flow style and comments."""
    text = ("# café ☕ 𝄞\r\na: 'é'\r\n---\r\n  k: 1\r\n  l:\r\n    - {m: [1, 2], n: 'ü'}\r\n"
            "--- {x: {y: z}}\n---\n# comment\nkey: |\n  block ✓\nafter: [p, q]\n")
    docs, diagnostics = load(text)
    assert diagnostics == [] and len(docs) == 4
    for doc, node in zip(docs, yaml.compose_all(text, Loader=yaml.SafeLoader), strict=True):
        stack = [((), node)]
        while stack:
            path, node = stack.pop()
            mark = node.start_mark
            assert (doc.at(path).line, doc.at(path).column) == (mark.line + 1, mark.column + 1), path
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    assert doc.at((*path, k.value), key=True).column == k.start_mark.column + 1
                    stack.append(((*path, k.value), v))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(((*path, i), v) for i, v in enumerate(node.value))


@pytest.mark.parametrize("text", [
    "metadata:\n  name: a\n",  # plain
    "# café\r\nkind: X\r\nmetadata: {labels: {r: 'ü'}, name: \"b\"}\r\n",  # flow style, CRLF, non-ASCII
    "x: 1\n---\n  metadata:\n    name:\n      c\n",  # an indented document, the value on its own line
    "metadata:\n  name: first\nmetadata:\n  name: second\n",  # duplicate keys: the first wins (NG003)
    "metadata: [name]\n", "metadata:\n  labels: {}\n", "kind: X\n",  # no name: the closest enclosing value
    "%TAG !n! tag:yaml.org,2002:\n---\n!n!str metadata:\n  name: d\n",  # directives
    "? metadata\n: {? name\n   : e}\n",  # explicit keys
])
def test_name_positions_recorded_while_loading_match_a_compose(text):
    """metadata.name's position is recorded as a document loads (diagnostics about a whole object point at it);
    it must equal what composing the document again finds."""
    docs, _ = load(text)
    assert docs
    for doc in docs:
        assert doc.name_position is not None
        composed = dataclasses.replace(doc, name_position=None).at(("metadata", "name"))
        assert doc.at(("metadata", "name")) == composed


def test_locations_beside_an_alias_bomb_and_before_a_syntax_error():
    """A located error in a document that loaded must not expand its neighbour's aliases, nor trip over a
    syntax error further down the file."""
    text = "a: {b: c}\n---\n" + bomb(30) + "---\nd: [e, f]\n---\ng: [unclosed\n"
    docs, diagnostics = load(text)
    assert [code for code, *_ in diagnostics] == ["NG004", "NG002"]
    assert len(docs) == 2
    started = time.perf_counter()
    assert (docs[0].at(("a", "b")).line, docs[0].at(("a", "b")).column) == (1, 8)
    last = 2 + 30 + 1 + 1  # "a:", "---", the bomb's 30 lines, "---", then "d:"
    assert (docs[1].at(("d", 1)).line, docs[1].at(("d", 1)).column) == (last, 8)
    assert time.perf_counter() - started < 1


def test_locations_in_a_file_with_tag_directives():
    """%TAG can change what a tag means, so such a file is composed whole again, directives included."""
    text = "%TAG !n! tag:yaml.org,2002:\n---\napiVersion: !n!str netgen/v0\nkind: Grant\n!n!str b: {c: d}\n"
    [doc] = load(text)[0]
    assert (doc.at(("apiVersion",)).line, doc.at(("apiVersion",)).column) == (3, 13)
    assert (doc.at(("b", "c")).line, doc.at(("b", "c")).column) == (5, 15)


def test_duplicate_key_first_position_ignores_keys_that_are_not_plain_strings():
    _, diagnostics = load("1: a\n'1': b\n'1': c\n")
    assert diagnostics[-1] == ("NG003", 3, 1, "duplicate key '1' (first defined at line 2, column 1)")


def test_duplicate_key_location_names_the_first_key():
    _, diagnostics = load("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert diagnostics == [("NG003", 4, 3, "duplicate key 'b' (first defined at line 2, column 3)")]



@pytest.mark.parametrize("text", [
    'a: "bell\\a"\n', "a: |\n  trailing newline\n", 'a: "x\\ty"\n', "a: 8080.0\n", "a: 1.5e+3\n", "a: .inf\n",
    '"k\\x01": v\n', "a: [1, {b: \"\\x7f\"}]\n", "a: 2026-01-01\t10:00:00\n", "a: >\n  folded\n",
])
def test_loader_flags_every_document_the_plain_value_check_must_read(text: str):
    """The schema stage only walks documents the loader flagged; each way a control character or a fraction
    can arrive must flag it, and the full check must then find something."""
    from netgen.schema import _plain_values

    [doc] = load(text)[0]
    assert doc.irregular
    reporter = Reporter()
    assert not _plain_values(doc, reporter)


def test_clean_documents_are_not_flagged():
    [doc] = load("a: 'plain'\nb: [1, true, null, 2026-01-01]\nc: {d: \"quoted \\u00e9\"}\n")[0]
    assert not doc.irregular


# ---- files ---------------------------------------------------------------------------------------------------

def test_unreadable_path_gives_ng007(tmp_path: Path):
    reporter = Reporter()
    assert load_file(tmp_path, "folder.yaml", reporter) == []  # reading a directory fails even for root
    [d] = reporter.diagnostics
    assert (d.code, d.location.file, d.location.line, d.location.column) == ("NG007", "folder.yaml", 0, 0)


def test_spec_files_are_sorted_and_filtered(tmp_path: Path):
    for rel in ["b/z.yml", "a.yaml", "b/a.yaml", "notes.txt", "c.yaml.bak", "dir.yaml/inner.yaml"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a: 1\n")
    (tmp_path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    names = [p.relative_to(tmp_path).as_posix() for p in spec_files(tmp_path)]
    assert names == ["a.yaml", "b/a.yaml", "b/z.yml", "dangling.yaml", "dir.yaml/inner.yaml", "loop.yaml"]
    reporter = Reporter()
    assert len(load_tree(tmp_path, reporter)) == 4
    assert [(d.code, Path(d.location.file).name) for d in reporter.diagnostics] == [
        ("NG007", "dangling.yaml"), ("NG007", "loop.yaml")]


# ---- the CLI never crashes on bad input ----------------------------------------------------------------------

NASTY: list[tuple[str, bytes, int, set[str]]] = [
    ("empty", b"", 0, set()),
    ("only-separator", b"---\n", 0, set()),
    ("list", b"- a\n- b\n", 1, {"NG006"}),
    ("scalar", b"hello\n", 1, {"NG006"}),
    ("nested-10000", b"[" * 10000 + b"]" * 10000 + b"\n", 1, {"NG002"}),
    ("nested-mappings", b"a:\n" + b"".join(b"  " * i + b"a:\n" for i in range(1, 3000)), 1, {"NG002"}),
    ("nested-900", (HEAD + "kind: Settings\nmetadata: " + "[" * 900 + "]" * 900 + "\n").encode(), 1, {"NG004"}),
    ("huge-int", (HEAD + "kind: Settings\nmetadata: {name: s}\nspec: {broadestPrefix: " + "9" * 1000 + "}\n")
     .encode(), 1, {"NG012"}),
    # Longer than Python reads as an int (sys.get_int_max_str_digits): the scalar cannot be read at all.
    ("int-over-python-limit", (HEAD + "kind: Settings\nmetadata: {name: s}\nspec: {broadestPrefix: " + "9" * 5000
                               + "}\n").encode(), 1, {"NG005", "NG012"}),
    ("huge-float", (HEAD + "kind: Settings\nmetadata: {name: s}\nspec: {broadestPrefix: 1.0e+99999}\n").encode(),
     1, {"NG123"}),  # one error: the schema does not word the value again (a number, but not a whole one)
    ("null-byte", b"a: b\x00c\n", 1, {"NG002"}),
    ("control-char", b"a: \x07\n", 1, {"NG002"}),
    ("lone-surrogate-escape", b'a: "\\ud800"\n', 1, {"NG002"}),
    ("bom-only", b"\xef\xbb\xbf", 0, set()),
    ("invalid-utf8", b"a: \xc3\x28\n", 1, {"NG001"}),
    ("truncated-utf8", b"a: \xe2\x82\n", 1, {"NG001"}),
    ("utf16", "a: 1\n".encode("utf-16"), 1, {"NG001"}),
    ("undefined-alias", b"a: *nope\n", 1, {"NG002"}),
    ("unclosed-quote", b'a: "x\n', 1, {"NG002"}),
    ("directive", b"%YAML 1.1\n%TAG ! tag:evil.com,2000:\n---\na: !x 1\n", 1, {"NG005", "NG010"}),
    ("bad-directive", b"%YAML 9.9\n---\na: 1\n", 1, {"NG002"}),
    ("non-string-apiversion", (b"apiVersion: [1]\nkind: Account\n"), 1, {"NG010"}),
    ("non-string-kind", (HEAD + "kind: {a: 1}\n").encode(), 1, {"NG011"}),
    ("metadata-not-mapping", (HEAD + "kind: Account\nmetadata: 5\nspec: 5\n").encode(), 1, {"NG012"}),
    ("null-everything", (HEAD + "kind: Grant\nmetadata:\nspec:\n").encode(), 1, {"NG012"}),
    ("grant-wrong-types", (HEAD + "kind: Grant\nmetadata: {name: g}\nspec: {owner: 1, reason: [], from: [],"
                           " to: {ports: [{}]}, expires: 2020-01-01}\n").encode(), 1, {"NG012"}),
    ("huge-line", b"a: " + b"x" * 2_000_000 + b"\n", 1, {"NG010"}),
    ("many-documents", b"---\na: 1\n" * 2000, 1, {"NG010"}),
]


@pytest.mark.parametrize(("content", "exit_code", "codes"), [n[1:] for n in NASTY], ids=[n[0] for n in NASTY])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_nasty_input_is_a_diagnostic_not_a_crash(content: bytes, exit_code: int, codes: set[str], fmt: str,
                                                 tmp_path: Path):
    (tmp_path / "input.yaml").write_bytes(content)
    result = run_cli("validate", "--specs", str(tmp_path), "--as-of", "2026-01-01", "--format", fmt)
    assert result.exception is None, repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == exit_code
    if fmt == "json":
        reported = json.loads(result.stdout) if result.stdout.strip() else []
        assert {d["code"] for d in reported} == codes
        assert all(d["line"] >= 1 and d["column"] >= 1 for d in reported)
    else:
        assert result.stdout == ""  # text diagnostics and the summary go to stderr
        assert all(f"[{code}]" in result.stderr for code in codes)


def test_crlf_line_endings_work(example_specs: Path):
    expected = run_cli("flows", "--specs", str(example_specs), "--as-of", EXAMPLE_AS_OF.isoformat()).stdout
    for path in spec_files(example_specs):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    result = run_cli("flows", "--specs", str(example_specs), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected  # same flows, same file:line behind each


def test_bom_files_work(example_specs: Path):
    expected = run_cli("flows", "--specs", str(example_specs), "--as-of", EXAMPLE_AS_OF.isoformat()).stdout
    for path in spec_files(example_specs):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run_cli("flows", "--specs", str(example_specs), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


def test_crlf_locations_match_lf(example_specs: Path):
    path = example_specs / "inventory" / "settings.yaml"
    path.write_bytes(path.read_bytes().replace(b"broadestPrefix: 16", b"broadestPrefix: 99").replace(b"\n", b"\r\n"))
    [d] = diagnose_specs(example_specs)
    assert (d.code, d.location.line, d.location.column) == ("NG012", 7, 19)


# ---- usage errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["validate", "--specs", "{tmp}/does-not-exist"],
    ["validate", "--specs", "{tmp}/file.yaml"],
    ["validate", "--specs", "{specs}", "--as-of", "2026-13-01"],
    ["validate", "--specs", "{specs}", "--as-of", "tomorrow"],
    ["validate", "--specs", "{specs}", "--format", "xml"],
    ["flows", "--specs", "{tmp}/does-not-exist"],
    ["validate", "--no-such-option"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args: list[str], tmp_path: Path):
    (tmp_path / "file.yaml").write_text("a: 1\n")
    args = [a.format(tmp=tmp_path, specs=EXAMPLE_SPECS) for a in args]
    result = run_cli(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.exception is None
    assert "Traceback" not in result.stdout + result.stderr


# ---- output formats ------------------------------------------------------------------------------------------

def _broken_estate(specs: Path) -> None:
    """Two errors and one warning (a grant expiring soon)."""
    settings = specs / "inventory" / "settings.yaml"
    settings.write_text(settings.read_text().replace("broadestPrefix: 16", "broadestPrefix: 99"))
    accounts = specs / "inventory" / "accounts.yaml"
    accounts.write_text(accounts.read_text().replace("  profile: acme-legacy\n", "  profile: a\n  profile: b\n"))


def test_format_json_parses(example_specs: Path):
    _broken_estate(example_specs)
    result = run_cli("validate", "--specs", str(example_specs), "--as-of", "2027-09-20", "--format", "json")
    assert result.exit_code == 1
    reported = json.loads(result.stdout)
    assert [(Path(d["file"]).name, d["line"], d["column"], d["severity"], d["code"]) for d in reported] == [
        ("payments.yaml", 19, 12, "warning", "NG120"),
        ("accounts.yaml", 10, 3, "error", "NG003"),
        ("settings.yaml", 7, 19, "error", "NG012"),
    ]
    assert all(set(d) == {"file", "line", "column", "severity", "code", "message"} for d in reported)


def test_format_github_lines(example_specs: Path):
    _broken_estate(example_specs)
    result = run_cli("validate", "--specs", str(example_specs), "--as-of", "2027-09-20", "--format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"::warning file={example_specs}/access/payments.yaml,line=19,col=12,title=NG120::")
    assert all(line.startswith("::error file=") for line in lines[1:])
    assert lines[1].startswith(f"::error file={example_specs}/inventory/accounts.yaml,line=10,col=3,title=NG003::")


def test_format_github_escapes_newlines(tmp_path: Path):
    (tmp_path / "x.yaml").write_text(HEAD + 'kind: "Acc\\nount"\n')
    result = run_cli("validate", "--specs", str(tmp_path), "--format", "github")
    [line] = result.stdout.splitlines()
    assert line.startswith("::error file=") and "%0A" in line


def test_text_format_summary(example_specs: Path):
    _broken_estate(example_specs)
    result = run_cli("validate", "--specs", str(example_specs), "--as-of", "2027-09-20")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "2 error(s), 1 warning(s)"


# ---- the example estate through the CLI ----------------------------------------------------------------------

def test_validate_example_estate_passes():
    result = run_cli("validate", "--specs", str(EXAMPLE_SPECS), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("ok: 18 grants, 18 hosts, 9 services, ")
    assert result.stdout == ""


def test_flows_prints_one_line_per_flow():
    result = run_cli("flows", "--specs", str(EXAMPLE_SPECS), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    flows = resolve_specs(EXAMPLE_SPECS, EXAMPLE_AS_OF, Reporter()).flows
    assert len(flows) > 0
    assert result.stdout.startswith(HEADER)
    body = result.stdout[len(HEADER):].splitlines()
    assert body == [flow.line() for flow in flows]
    assert len(set(body)) == len(body)


def test_schema_command_prints_a_valid_draft_2020_12_schema():
    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


# Documents of kinds the example estate does not use (docs/examples): a VpcPeering needs a live peering.
DOC_EXAMPLES = EXAMPLE_SPECS.parent / "docs" / "examples"


def doc_examples(reporter: Reporter) -> list:
    """netgen's documents in docs/examples; other tools' examples there (Argo CD's ApplicationSet) have tests of
    their own (tests/test_rollout.py)."""
    return [d for d in load_tree(DOC_EXAMPLES, reporter) if d.data.get("apiVersion", "").startswith("netgen.dev/")]


def test_every_example_document_validates_against_the_printed_schema():
    validator = Draft202012Validator(json.loads(run_cli("schema").stdout))
    reporter = Reporter()
    documents = load_tree(EXAMPLE_SPECS, reporter) + doc_examples(reporter)
    assert reporter.diagnostics == []
    assert len(documents) >= 50
    kinds = set()
    for doc in documents:
        errors = [e.message for e in validator.iter_errors(doc.data)]
        assert errors == [], f"{doc.file}:{doc.line}: {errors}"
        kinds.add(doc.data["kind"])
    assert kinds == set(validator.schema["properties"]["kind"]["enum"])


def test_printed_schema_rejects_broken_documents():
    """The root schema dispatches on kind: a broken document of each kind fails it (the test above can fail)."""
    validator = Draft202012Validator(json.loads(run_cli("schema").stdout))
    documents = load_tree(EXAMPLE_SPECS, Reporter()) + doc_examples(Reporter())
    for kind in validator.schema["properties"]["kind"]["enum"]:
        doc = next(d.data for d in documents if d.data["kind"] == kind)
        assert not validator.is_valid({**doc, "spec": {**doc["spec"], "unknownField": 1}}), kind
        assert not validator.is_valid({**doc, "metadata": {"name": "Not_A_Name"}}), kind
    assert not validator.is_valid({"apiVersion": "netgen.dev/v1alpha1", "kind": "Nope", "metadata": {}, "spec": {}})


def test_yaml_in_examples_parses_with_plain_safe_load():
    """The example files are plain YAML: a stock safe loader reads the same data netgen does."""
    for path in spec_files(EXAMPLE_SPECS):
        plain = [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]
        ours = [d.data for d in load_file(path, str(path), Reporter())]
        assert len(plain) == len(ours)
        for a, b in zip(plain, ours, strict=True):
            assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.mark.parametrize("damage", [
    ("  name: batch-euw1-01\n", "  name: batch-euw1-01\n   bad: [unclosed\n"),  # a YAML syntax error: NG002
    ("  name: batch-euw1-01\n", "  name: batch-euw1-01 \udcff\n"),  # invalid UTF-8 (written below): NG001
])
def test_a_file_that_fails_to_load_does_not_cascade_into_unknown_references(tmp_path, damage):
    """Hosts defined after a YAML error (or in a file that is not UTF-8) are lost; the grants and groups naming
    them stay quiet, the error in that file explains them. An unknown name elsewhere is still reported."""
    specs = copy_example_specs(tmp_path)
    hosts = specs / "inventory/hosts-euw1.yaml"
    text = hosts.read_text("utf-8")
    assert text.count(damage[0]) == 1
    hosts.write_bytes(text.replace(*damage).encode("utf-8", errors="surrogateescape"))
    edit_spec(specs / "access/billing.yaml", "service: payments/payments-api", "service: payments/nope")
    diagnostics = diagnose_specs(specs)
    assert {(d.code, Path(d.location.file).name) for d in diagnostics} == {
        ("NG002" if "unclosed" in damage[1] else "NG001", "hosts-euw1.yaml"), ("NG104", "billing.yaml")}, \
        "\n".join(d.text() for d in diagnostics)
    [unknown] = [d for d in diagnostics if d.code == "NG104"]
    assert "payments/nope" in unknown.message


def test_names_in_text_that_failed_to_load_are_found_in_block_and_flow_style():
    reporter = Reporter()
    load_text(ACCOUNT + "---\n" + HEAD + "kind: LegacyHost\nmetadata: {name: 'h-1', labels: {a: b}}\n"
              "spec: {address: [unclosed\n---\nmetadata:\n  name: \"h-2\" # two\n", "t.yaml", reporter)
    assert [d.code for d in reporter.diagnostics] == ["NG002"]
    assert reporter.unloaded_names == {"h-1", "h-2"}  # not 'acme', which loaded
