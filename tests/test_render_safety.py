"""The write stage never writes, reads or deletes through symbolic links, never leaves the output folder, and
turns every problem with the output folder into a one-line 'netgen: error:' with exit 2 and nothing written."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from buildhelpers import build, build_ok

from netgen.render import OWNED, OutputError, check_tree, write_tree


def snap(folder: Path) -> dict[str, tuple]:
    """Every path below folder, links not followed: (kind, bytes or link target, mode, mtime_ns)."""
    result: dict[str, tuple] = {}
    if not os.path.lexists(folder):
        return result
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in dirs + names:
            path = Path(root, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                content: bytes | str | None = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                content = path.read_bytes()
            else:
                content = None
            result[path.relative_to(folder).as_posix()] = (stat.S_IFMT(st.st_mode), content, st.st_mode,
                                                          st.st_mtime_ns)
    return result


def assert_refused(run, *words: str) -> None:
    assert run.exit_code == 2, run.output
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netgen: error: "), run.stderr
    assert "Traceback" not in run.output
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build_ok(out)
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    folder = tmp_path / "victim"
    (folder / "c1").mkdir(parents=True)
    (folder / "c1/keep.yaml").write_text("keep me\n")
    (folder / "note.txt").write_text("mine\n")
    return folder


# ----- symbolic links ---------------------------------------------------------------------------------------

def test_the_symlink_repro_leaves_the_victim_alone(built, victim):
    shutil.rmtree(built / "kubernetes")
    (built / "kubernetes").symlink_to("../victim")
    with (built / OWNED).open("a") as handle:
        handle.write("kubernetes/c1/keep.yaml\n")
    before_victim, before_out = snap(victim), snap(built)
    assert_refused(build(built), "kubernetes", "symbolic link")
    assert_refused(build(built, check=True), "kubernetes", "symbolic link")
    assert snap(victim) == before_victim
    assert snap(built) == before_out


def test_a_symlink_pointing_inside_the_output_folder_is_refused_too(built):
    """The documented rule: no link at all on the path of a file netgen writes, reads or deletes."""
    (built / "kubernetes").rename(built / "k8s")
    (built / "kubernetes").symlink_to("k8s")
    before = snap(built)
    assert_refused(build(built), "symbolic link")
    assert snap(built) == before


@pytest.mark.parametrize("dangling", [False, True])
def test_a_target_file_that_is_a_symlink_is_refused(built, tmp_path, dangling):
    outside = tmp_path / "outside.txt"
    if not dangling:
        outside.write_text("keep me\n")
    (built / "flows.txt").unlink()
    (built / "flows.txt").symlink_to(outside)
    before = snap(tmp_path)
    assert_refused(build(built), "flows.txt", "symbolic link")
    assert_refused(build(built, check=True), "flows.txt", "symbolic link")
    assert snap(tmp_path) == before
    assert os.path.lexists(outside) == (not dangling)


def test_the_owned_list_itself_being_a_symlink_is_refused(built, tmp_path):
    outside = tmp_path / "list.txt"
    outside.write_text("flows.txt\n")
    (built / OWNED).unlink()
    (built / OWNED).symlink_to(outside)
    before = snap(tmp_path)
    assert_refused(build(built), OWNED, "symbolic link")
    assert snap(tmp_path) == before


@pytest.mark.parametrize("target_exists", [True, False])
def test_an_output_folder_that_is_a_symlink_is_refused(tmp_path, target_exists):
    elsewhere = tmp_path / "elsewhere"
    if target_exists:
        elsewhere.mkdir()
    (tmp_path / "out").symlink_to(elsewhere)
    before = snap(tmp_path)
    assert_refused(build(tmp_path / "out"), "out", "symbolic link")
    assert_refused(build(tmp_path / "out", check=True), "symbolic link")
    assert snap(tmp_path) == before


def test_an_owned_entry_through_a_symlinked_folder_is_refused(built, victim):
    """A link that is on no generated path, named by an owned entry: refused, not followed."""
    (built / "extra").symlink_to("../victim")
    with (built / OWNED).open("a") as handle:
        handle.write("extra/c1/keep.yaml\n")
    before_victim, before_out = snap(victim), snap(built)
    assert_refused(build(built), "extra", "symbolic link")
    assert_refused(build(built, check=True), "extra", "symbolic link")
    assert snap(victim) == before_victim and snap(built) == before_out


def test_an_owned_entry_that_is_a_symlink_is_neither_followed_nor_deleted(built, victim):
    (built / "link.txt").symlink_to("../victim/note.txt")
    with (built / OWNED).open("a") as handle:
        handle.write("link.txt\n")
    before_victim, before_out = snap(victim), snap(built)
    assert_refused(build(built), "link.txt", "symbolic link")
    assert snap(victim) == before_victim and snap(built) == before_out


def test_a_foreign_symlink_on_no_netgen_path_is_left_alone(built, victim):
    (built / "docs").symlink_to("../victim")
    before_victim = snap(victim)
    run = build_ok(built)
    assert "0 written or deleted" in run.stderr
    assert build(built, check=True).exit_code == 0
    assert os.readlink(built / "docs") == "../victim" and snap(victim) == before_victim


def test_emptied_folders_are_removed_without_following_links(tmp_path, victim):
    out = tmp_path / "out"
    write_tree(out, {"a/b/old.txt": b"old\n", "a/c/d/old.txt": b"old\n", "keep.txt": b"k\n"})
    (out / "a/victim").symlink_to("../../victim")  # a foreign link keeps folder a non-empty
    before_victim = snap(victim)
    assert write_tree(out, {"keep.txt": b"k\n"}) == 3  # two deletions and the owned list
    assert sorted(snap(out)) == [OWNED, "a", "a/victim", "keep.txt"]
    assert snap(victim) == before_victim


# ----- folders where files go, files where folders go ----------------------------------------------------

def test_a_folder_where_a_file_goes_fresh_folder(tmp_path):
    """The original repro: aws/ files used to be written before the IsADirectoryError on flows.txt."""
    out = tmp_path / "out"
    (out / "flows.txt").mkdir(parents=True)
    before = snap(out)
    assert_refused(build(out), "flows.txt", "folder")
    assert_refused(build(out, check=True), "flows.txt", "folder")
    assert snap(out) == before
    assert not list(tmp_path.rglob(".*.*")), "temporary files left behind"


def test_a_folder_where_a_file_goes_existing_folder(built):
    (built / "flows.txt").unlink()
    (built / "flows.txt").mkdir()
    (built / "aws/deploy-plan.json").write_text("stale\n")  # a stale file elsewhere must not get fixed halfway
    before = snap(built)
    assert_refused(build(built), "flows.txt", "folder")
    assert_refused(build(built, check=True), "flows.txt", "folder")
    assert snap(built) == before


def test_a_file_where_a_folder_goes(built):
    shutil.rmtree(built / "kubernetes")
    (built / "kubernetes").write_text("not a folder\n")
    before = snap(built)
    assert_refused(build(built), "kubernetes", "not a folder")
    assert_refused(build(built, check=True), "kubernetes", "not a folder")
    assert snap(built) == before


@pytest.mark.parametrize("below", ["", "sub"])
def test_an_output_folder_that_is_a_regular_file(tmp_path, below):
    regular = tmp_path / "some-regular-file"
    regular.write_text("hello\n")
    out = regular / below if below else regular
    before = snap(tmp_path)
    assert_refused(build(out), "some-regular-file", "not a folder")
    assert_refused(build(out, check=True), "some-regular-file")
    assert snap(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no fifos")
@pytest.mark.parametrize("name", ["flows.txt", OWNED])
def test_a_fifo_at_a_target_is_refused_without_blocking(built, name):
    (built / name).unlink()
    os.mkfifo(built / name)
    before = snap(built)
    assert_refused(build(built), name, "not a regular file")
    assert_refused(build(built, check=True), name)
    assert snap(built) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_an_unwritable_folder_is_a_one_line_error(built):
    (built / "flows.txt").write_text("stale\n")
    os.chmod(built, 0o555)
    try:
        assert_refused(build(built), "flows.txt")
    finally:
        os.chmod(built, 0o755)


# ----- odd .netgen-owned content -----------------------------------------------------------------------------

ODD_ENTRIES = [
    "/etc/passwd",
    "../outside.txt",
    "aws/../../outside.txt",
    "./../outside.txt",
    "a\0b",
    "flows.txt\0../outside.txt",
    "x" * 100_000,
    "aws/" + "y" * 300 + "/z.txt",
    "/".join(["d"] * 3000),
    ".",
    "./",
    "//",
    "aws",  # a folder netgen writes into: not a file, left alone
    "kubernetes/",
    "flows.txt/sub",  # through a regular file: absent
    "\udcff",
]


def test_odd_owned_entries_never_delete_nor_crash(tmp_path):
    out = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    files = {"aws/a.json": b"{}\n", "flows.txt": b"flows\n"}
    write_tree(out, files)
    listing = (out / OWNED).read_text("utf-8", "surrogateescape")
    (out / OWNED).write_bytes((listing + "\n".join(ODD_ENTRIES) + "\n").encode("utf-8", "surrogateescape"))
    assert check_tree(out, files) == [f"differs: {out / OWNED}"]
    write_tree(out, files)
    assert outside.read_text() == "keep me\n"
    assert sorted(snap(out)) == [OWNED, "aws", "aws/a.json", "flows.txt"]
    assert check_tree(out, files) == []


def test_odd_owned_entries_through_the_cli(built, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    with (built / OWNED).open("a", encoding="utf-8") as handle:
        handle.write("\n".join(e for e in ODD_ENTRIES if e != "\udcff") + f"\n{outside}\n")
    run = build(built, check=True)
    assert run.exit_code == 1 and "Traceback" not in run.output
    build_ok(built)
    assert outside.read_text() == "keep me\n"
    assert build(built, check=True).exit_code == 0


def test_normalised_owned_entries_still_delete_the_file_they_name(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"k/old.txt": b"old\n", "keep.txt": b"k\n"})
    (out / OWNED).write_text("./k//old.txt\nkeep.txt\n")
    assert check_tree(out, {"keep.txt": b"k\n"})[-1] == f"no longer generated: {out / 'k/old.txt'}"
    write_tree(out, {"keep.txt": b"k\n"})
    assert not (out / "k").exists()


def test_an_owned_list_that_is_not_utf8_owns_nothing(tmp_path):
    out = tmp_path / "out"
    write_tree(out, {"old.txt": b"old\n"})
    (out / OWNED).write_bytes(b"old.txt\n\xff\xfe\n")
    write_tree(out, {"new.txt": b"new\n"})
    assert (out / "old.txt").read_bytes() == b"old\n"


# ----- the render functions directly -----------------------------------------------------------------------

def test_write_tree_refuses_before_writing_anything(tmp_path):
    out = tmp_path / "out"
    (out / "b").mkdir(parents=True)
    (out / "b/c").mkdir()
    with pytest.raises(OutputError, match=r"b/c is a folder"):
        write_tree(out, {"a/one.txt": b"1\n", "b/c": b"2\n"})
    assert sorted(snap(out)) == ["b", "b/c"]
    with pytest.raises(OutputError, match=r"b/c is a folder"):
        check_tree(out, {"a/one.txt": b"1\n", "b/c": b"2\n"})


def test_check_tree_on_an_absent_folder_lists_everything_missing(tmp_path):
    out = tmp_path / "out"
    assert check_tree(out, {"a.txt": b"a"}) == [f"missing: {out / 'a.txt'}", f"missing: {out / OWNED}"]
    assert not out.exists()


def test_an_io_error_while_writing_is_a_one_line_error(built, monkeypatch):
    import errno

    import netgen.render

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (built / "flows.txt").write_text("stale\n")
    monkeypatch.setattr(netgen.render.tempfile, "mkstemp", full)
    assert_refused(build(built), "flows.txt", os.strerror(errno.ENOSPC))
    with pytest.raises(OutputError, match="cannot write"):
        write_tree(built, {"flows.txt": b"new\n"})


# ----- hostile specs (issue 20) -----------------------------------------------------------------------------

def _bombs(specs: Path) -> None:
    bomb = "a0: &a0 [" + ",".join(["x"] * 16) + "]\n" + "".join(
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 16) + "]\n" for i in range(1, 4))
    (specs / "access/bombs.yaml").write_text("---\n".join([bomb] * 20))


def _sparse(specs: Path) -> None:
    target = specs.parent / "sparse.bin"
    with target.open("wb") as f:
        f.truncate(1 << 30)
    (specs / "access/huge.yaml").symlink_to(target)


HOSTILE = {
    "alias bombs": _bombs,
    "a sparse gigabyte behind a symlink": _sparse,
    "a NUL byte": lambda specs: (specs / "access/nul.yaml").write_bytes(b"apiVersion: netgen.dev/v1\x00alpha1\n"),
    "port 0443": lambda specs: (specs / "inventory/services.yaml").write_text(
        (specs / "inventory/services.yaml").read_text().replace("port: 443,", "port: 0443,", 1)),
    "folders 40 deep": lambda specs: (specs / Path(*["d"] * 40)).mkdir(parents=True),
}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_specs_fail_and_leave_the_output_folder_alone(built, tmp_path, hostile):
    shutil.copytree(Path(__file__).resolve().parent.parent / "specs", tmp_path / "specs")
    HOSTILE[hostile](tmp_path / "specs")
    before = snap(built)
    run = build(built, cwd=tmp_path)
    assert run.exit_code == 1, run.output
    assert "Traceback" not in run.output
    assert snap(built) == before
