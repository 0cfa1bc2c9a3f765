"""Structure-aware fuzzing of `netgen build` (issue 20): the example estate's documents mutated as careless or
hostile pull requests would (a value swapped for one of another type, a key dropped or written twice, a document
duplicated, a file cut off at some byte), and netgen's promise checked on every input:

- exit 0, and the output folder (which held the example's own output) is what a build of the same specs writes
  into an empty folder; or
- exit 1, every error located at a line and column of a spec file, and the output folder untouched;
- never a traceback, never more than a few seconds.

It runs for a fixed time (NETGEN_FUZZ_SECONDS, 45 by default) rather than a fixed number of inputs: as many as the
machine gets through. Set it higher for a long run; a failure prints the input that shrank from it."""

from __future__ import annotations

import copy
import gc
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE_AS_OF, EXAMPLE_SPECS, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_render_safety import snap

BUDGET_SECONDS = float(os.environ.get("NETGEN_FUZZ_SECONDS", "45"))
INPUT_SECONDS = 5.0  # "never more than a few seconds" for one input, with room for a slow spell of the machine

FILES = sorted(p.relative_to(EXAMPLE_SPECS).as_posix() for p in EXAMPLE_SPECS.rglob("*.yaml"))
TEXTS = {name: (EXAMPLE_SPECS / name).read_text("utf-8") for name in FILES}
DOCUMENTS = {name: [d for d in yaml.safe_load_all(text) if d is not None] for name, text in TEXTS.items()}
NAMES = sorted({d["metadata"]["name"] for docs in DOCUMENTS.values() for d in docs})

# Values of every type the specs hold, and some they must not: what a swapped value becomes.
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70_000), st.integers(min_value=2**63), st.floats(allow_nan=False),
    st.text(max_size=12), st.sampled_from(NAMES), st.sampled_from(["10.20.0.0/16", "10.40.64.1", "0.0.0.0/0",
                                                                   "pcx-0123456789abcdef0", "22-21", "https"]),
    st.lists(st.integers(0, 70_000), max_size=3), st.lists(st.sampled_from(NAMES), max_size=3),
    st.dictionaries(st.sampled_from(["name", "vpc", "ports", "x"]), st.integers(0, 9), max_size=2),
)
INDEX = st.integers(0, 10**6)  # taken modulo what there is to pick from
MUTATION = st.one_of(
    st.tuples(st.just("swap"), INDEX, INDEX, INDEX, VALUES),  # file, document, path, new value
    st.tuples(st.just("drop"), INDEX, INDEX, INDEX),  # file, document, key path
    st.tuples(st.just("duplicate"), INDEX, INDEX, INDEX),  # file, document, file it goes to
    st.tuples(st.just("double"), INDEX, INDEX),  # file, key line written twice
    st.tuples(st.just("truncate"), INDEX, st.floats(0, 1)),  # file, where it is cut
)


def paths(value, here: tuple = ()) -> list[tuple]:
    """Every path into a document, the document itself first."""
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*here, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*here, i))
    return found


def mutate(mutations: list[tuple]) -> dict[str, bytes]:
    """The example estate's files, with mutations applied: documents first, then text."""
    documents = copy.deepcopy(DOCUMENTS)
    changed: set[str] = set()
    for kind, *args in mutations:
        file = FILES[args[0] % len(FILES)]
        docs = documents[file]
        if kind in ("swap", "drop", "duplicate") and not docs:
            continue
        doc_index = args[1] % len(docs) if docs else 0
        if kind == "swap":
            where = paths(docs[doc_index])
            path = where[args[2] % len(where)]
            if not path:
                docs[doc_index] = args[3]
            else:
                parent = docs[doc_index]
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = args[3]
            changed.add(file)
        elif kind == "drop":
            keys = [p for p in paths(docs[doc_index]) if p and isinstance(p[-1], str)]
            if keys:
                path = keys[args[2] % len(keys)]
                parent = docs[doc_index]
                for step in path[:-1]:
                    parent = parent[step]
                del parent[path[-1]]
                changed.add(file)
        elif kind == "duplicate":
            target = FILES[args[2] % len(FILES)]
            documents[target].append(copy.deepcopy(docs[doc_index]))
            changed.add(target)
    texts = {name: (yaml.safe_dump_all(documents[name], sort_keys=False, allow_unicode=True) if name in changed
                    else TEXTS[name]).encode("utf-8") for name in FILES}
    for kind, *args in mutations:
        file = FILES[args[0] % len(FILES)]
        if kind == "double":
            lines = texts[file].split(b"\n")
            keys = [i for i, line in enumerate(lines) if re.match(rb"\s*[\w-]+:", line)]
            if keys:
                i = keys[args[1] % len(keys)]
                lines.insert(i + 1, lines[i])
                texts[file] = b"\n".join(lines)
        elif kind == "truncate":
            texts[file] = texts[file][:int(args[1] * len(texts[file]))]
    return texts


@pytest.fixture(scope="module")
def clean_output(tmp_path_factory) -> Path:
    """The example estate's own output: the folder each fuzzed build starts from."""
    out = tmp_path_factory.mktemp("fuzz") / "out"
    result = run_cli("build", "--specs", str(EXAMPLE_SPECS), "--out", str(out), "--as-of", EXAMPLE_AS_OF.isoformat())
    assert result.exit_code == 0, result.stderr
    return out


def build(specs: Path, out: Path):
    started = time.perf_counter()
    result = run_cli("build", "--specs", str(specs), "--out", str(out), "--as-of", EXAMPLE_AS_OF.isoformat(),
                     "--format", "json")
    return result, time.perf_counter() - started


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@settings(max_examples=8, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def check_the_promise(mutations: list[tuple], clean_output: Path, counted: list[int]) -> None:
    counted.append(1)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for name, data in mutate(mutations).items():
            (work / "specs" / name).parent.mkdir(parents=True, exist_ok=True)
            (work / "specs" / name).write_bytes(data)
        out = work / "out"
        shutil.copytree(clean_output, out, copy_function=shutil.copy2)
        before = snap(out)
        result, seconds = build(work / "specs", out)
        assert result.exception is None, repr(result.exception)
        assert "Traceback" not in result.stdout + result.stderr
        assert seconds < INPUT_SECONDS, f"{seconds:.1f} s for one input"
        assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
        reported = json.loads(result.stdout) if result.stdout.strip() else []
        if result.exit_code == 0:
            fresh = work / "fresh"
            again, _ = build(work / "specs", fresh)
            assert again.exit_code == 0, again.stdout
            assert contents(out) == contents(fresh), "a build over the old output differs from a clean build"
            return
        errors = [d for d in reported if d["severity"] == "error"]
        assert errors, result.stdout
        for d in errors:
            assert d["line"] >= 1 and d["column"] >= 1, d
            assert d["file"].endswith(tuple(FILES)), d
        assert snap(out) == before, "a failed build changed the output folder"


def test_every_mutated_estate_builds_as_a_clean_build_would_or_fails_located_and_writes_nothing(clean_output):
    """Rounds of a few inputs each (a failing one is shrunk within its round) until the time budget is spent."""
    counted: list[int] = []
    deadline = time.monotonic() + BUDGET_SECONDS
    try:
        for rounds in itertools.count(1):
            if time.monotonic() > deadline:
                break
            check_the_promise(clean_output=clean_output, counted=counted)
            if rounds % 10 == 0:
                # A build freezes what is alive for the garbage collector (netgen.pipeline.settle: one build per
                # process); hundreds in one process would keep their garbage, and slow what forks after them.
                gc.unfreeze()
                gc.collect()
    finally:
        gc.unfreeze()
        gc.collect()
    print(f"fuzzed {len(counted)} inputs in {BUDGET_SECONDS:.0f} s")


def test_the_fuzzer_mutates_what_it_says():
    """The mutations reach the text: a key written twice is a duplicate key, a truncated file is shorter, a
    swapped value is there, a duplicated document is there twice."""
    first = FILES[0]
    doubled = mutate([("double", 0, 0)])[first]
    assert doubled.count(b"\n") == TEXTS[first].encode().count(b"\n") + 1
    assert mutate([("truncate", 0, 0.5)])[first] == TEXTS[first].encode()[:len(TEXTS[first].encode()) // 2]
    swapped = yaml.safe_load_all(mutate([("swap", 0, 0, 1, 12345)])[first])
    assert 12345 in [value for doc in swapped for value in doc.values()]
    twice = list(yaml.safe_load_all(mutate([("duplicate", 0, 0, 0)])[first]))
    assert twice[0] == twice[-1] and len(twice) == len(DOCUMENTS[first]) + 1
