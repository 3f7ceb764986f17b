"""Post-processing: hostile tar and zip archives refused before anything is extracted, good ones
unpacked all or nothing, regex_replace, and Ctrl-C or a failure in the middle of either."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import MB, _interrupted, _start, _wait_for, download, error_lines, leftovers, write_model


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _link_chain(kind: bytes) -> list:
    """l0 -> ., l1 -> l0/.., l2 -> l1/.., ...: each link, read as text, stays inside; followed
    through the links before it, l1 already points one folder up."""
    chain = [(_member("l0", kind, "."), None)]
    chain += [(_member(f"l{i}", kind, f"l{i - 1}/.."), None) for i in range(1, 5)]
    return chain + [(_member("l4/PWNED.txt"), b"pwned")]


# Each case with the words of *our* refusal: tarfile's own 'data' filter would refuse most of
# these too, but with other words, so a passing test proves our checks ran first.
HOSTILE_TARS = {
    "absolute": ([(_member("/abs-evil.txt"), b"x")], "member '/abs-evil.txt' has an absolute path"),
    "dotdot": ([(_member("ok/../../dotdot-evil.txt"), b"x")],
               "member 'ok/../../dotdot-evil.txt' would be written outside the model folder"),
    "symlink-out": ([(_member("link", tarfile.SYMTYPE, "../../outside"), None)],
                    "link 'link' -> '../../outside' points outside the model folder"),
    "symlink-abs": ([(_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)],
                    "link 'link' points to the absolute path '/etc/passwd'"),
    "hardlink-out": ([(_member("hard", tarfile.LNKTYPE, "../outside"), None)],
                     "hard link 'hard' -> '../outside' names no earlier file of the archive"),
    "hardlink-missing": ([(_member("hard", tarfile.LNKTYPE, "nothing"), None)],
                         "hard link 'hard' -> 'nothing' names no earlier file of the archive"),
    # a link checked alone stays inside; a later link changes what it means
    "later-link-redirects": ([(_member("a", tarfile.SYMTYPE, "c/d/b/../../../OUTSIDE"), None),
                              (_member("c/d", tarfile.DIRTYPE), None),
                              (_member("c/d/b", tarfile.SYMTYPE, "../.."), None)],
                             "link 'a' -> 'c/d/b/../../../OUTSIDE' points outside the model folder"),
    "link-loop": ([(_member("a", tarfile.SYMTYPE, "b"), None), (_member("b", tarfile.SYMTYPE, "a"), None)],
                  "too many levels of links"),
    "too-deep": ([(_member("d/" * 300 + "f"), b"x")], "has a path too long or too deep"),
    "device": ([(_member("dev", tarfile.CHRTYPE), None)], "member 'dev' is a device or fifo"),
    "fifo": ([(_member("fifo", tarfile.FIFOTYPE), None)], "member 'fifo' is a device or fifo"),
    "link-chain": (_link_chain(tarfile.SYMTYPE), "link 'l1' -> 'l0/..' points outside the model folder"),
    "through-a-link": ([(_member("sub", tarfile.DIRTYPE), None), (_member("l", tarfile.SYMTYPE, "sub"), None),
                        (_member("l/x.txt"), b"x")],
                       "member 'l/x.txt' would be written through the link 'l'"),
}


def _archive_model(server, zoo, name: str, archive: bytes, fmt: str, filename: str):
    server.add(f"/{filename}", archive)
    write_model(zoo, name, [{"name": filename, "data": archive, "url": server.url(f"/{filename}")}],
                postprocessing=[{"$type": "unpack_archive", "file": filename, "format": fmt}])


def _escapes(out: Path) -> list[Path]:
    """Anything a hostile archive could have written outside the model folder (out/public/evil):
    beside it, above it, at the top of out, or above out."""
    names = ("abs-evil.txt", "dotdot-evil.txt", "PWNED.txt", "escape.txt", "outside")
    places = [out / "public/evil", out / "public", out, out.parent, Path("/")]
    return [p / n for p in places for n in names if (p / n).exists() or (p / n).is_symlink()]


def _assert_refused(result, out: Path, model: str, archive_name: str, words: str) -> None:
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert first.startswith(f"modelzoo-downloader: error: {model}: ") and archive_name in first
    assert words in first, first
    assert sorted(p.name for p in (out / "public" / model).iterdir()) == [archive_name]  # nothing unpacked
    assert _escapes(out) == [] and leftovers(out) == []


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(server, zoo, tmp_path, case):
    members, words = HOSTILE_TARS[case]
    archive = _tar([(_member("model/good.txt"), b"fine")] + members)
    _archive_model(server, zoo, "evil", archive, "gztar", "evil.tar.gz")
    out = tmp_path / "out"
    _assert_refused(download(zoo, out, "--name", "evil"), out, "evil", "evil.tar.gz", words)


def _zip(members: list[tuple[str, int, bytes]]) -> bytes:
    """(name, st_mode, content) members; a link's content is its target."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, mode, content in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, content)
    return buf.getvalue()


LINK, FILE = 0o120777, 0o100644


LINK, FILE = 0o120777, 0o100644
HOSTILE_ZIPS = {
    "dotdot": ([("../../escape.txt", FILE, b"bad")], "'../../escape.txt' would be written outside the model folder"),
    "symlink-out": ([("link", LINK, b"../../../etc/passwd")],
                    "link 'link' -> '../../../etc/passwd' points outside the model folder"),
    # the chain of the security report: before the fix, PWNED.txt landed three folders up
    "link-chain": ([("l0", LINK, b".")] + [(f"l{i}", LINK, f"l{i - 1}/..".encode()) for i in range(1, 5)]
                   + [("l4/PWNED.txt", FILE, b"pwned")], "link 'l1' -> 'l0/..' points outside the model folder"),
    "through-a-link": ([("sub/", 0o040755, b""), ("l", LINK, b"sub"), ("l/x.txt", FILE, b"x")],
                       "member 'l/x.txt' would be written through the link 'l'"),
    "fifo": ([("pipe", 0o010644, b"")], "member 'pipe' is a device, fifo or socket"),
    "char-device": ([("tty", 0o020644, b"")], "member 'tty' is a device, fifo or socket"),
    "block-device": ([("disk", 0o060644, b"")], "member 'disk' is a device, fifo or socket"),
    "later-link-redirects": ([("a", LINK, b"c/d/b/../../../OUTSIDE"), ("c/d/", 0o040755, b""),
                              ("c/d/b", LINK, b"../..")],
                             "link 'a' -> 'c/d/b/../../../OUTSIDE' points outside the model folder"),
    # each link names the previous one twice: resolving naively doubles the work per link
    "link-bomb": ([("l0", LINK, b".")] + [(f"l{i}", LINK, f"l{i - 1}/l{i - 1}".encode()) for i in range(1, 40)],
                  "too many levels of links"),
    # a 'link' whose target is a megabyte: refused before it is read into memory
    "huge-link-target": ([("big", LINK, b"a" * (1 << 20))], "link 'big' has a target of 1048576 bytes"),
    "empty-name": ([("", FILE, b"x")], "a member has an empty name"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused(server, zoo, tmp_path, case):
    members, words = HOSTILE_ZIPS[case]
    _archive_model(server, zoo, "evil", _zip([("model/good.txt", FILE, b"fine")] + members), "zip", "e.zip")
    out = tmp_path / "out"
    _assert_refused(download(zoo, out, "--name", "evil"), out, "evil", "e.zip", words)


def test_links_that_stay_inside_are_kept(server, zoo, tmp_path):
    archive = _zip([("model/w.bin", FILE, b"weights"), ("model/alias", LINK, b"w.bin"),
                    ("top", LINK, b"model/./w.bin"), ("dir", LINK, b"model")])
    _archive_model(server, zoo, "links", archive, "zip", "l.zip")
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "links")
    assert result.returncode == 0, result.stderr
    model = out / "public/links"
    assert (model / "model/alias").read_bytes() == (model / "top").read_bytes() == b"weights"
    assert os.readlink(model / "dir") == "model" and (model / "dir/w.bin").read_bytes() == b"weights"


def test_good_archives_unpack_and_regex_replace(server, zoo, tmp_path):
    archive = _tar([(_member("model/config.txt"), b"threshold = 0.5\nthreshold = 0.5\n"),
                    (_member("model/weights.bin"), b"\x00" * 100),
                    (_member("model/alias", tarfile.SYMTYPE, "weights.bin"), None)])
    server.add("/good.tar.gz", archive)
    write_model(zoo, "good", [{"name": "good.tar.gz", "data": archive, "url": server.url("/good.tar.gz")}],
                postprocessing=[
                    {"$type": "unpack_archive", "file": "good.tar.gz", "format": "gztar"},
                    {"$type": "regex_replace", "file": "model/config.txt", "pattern": "0\\.5",
                     "replacement": "0.25", "count": 2},
                ])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inside/readme.txt", "hello")
    server.add("/z.zip", buf.getvalue())
    write_model(zoo, "zipped", [{"name": "z.zip", "data": buf.getvalue(), "url": server.url("/z.zip")}],
                postprocessing=[{"$type": "unpack_archive", "file": "z.zip", "format": "zip"}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "good,zipped", "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    model = out / "public/good"
    assert (model / "model/config.txt").read_text() == "threshold = 0.25\nthreshold = 0.25\n"
    assert os.readlink(model / "model/alias") == "weights.bin"
    assert not (model / "good.tar.gz").exists()  # the archive is removed once unpacked
    assert (out / "public/zipped/inside/readme.txt").read_text() == "hello"
    events = [json.loads(line)["$type"] for line in result.stdout.splitlines()]
    assert "model_postprocessing_begin" in events and "model_postprocessing_end" in events
    assert leftovers(out) == []


def test_regex_replace_count_mismatch_leaves_file_untouched(server, zoo, tmp_path):
    text = b"a = 1\nb = 1\n"
    server.add("/cfg.txt", text)
    write_model(zoo, "cfg", [{"name": "cfg.txt", "data": text, "url": server.url("/cfg.txt")}],
                postprocessing=[{"$type": "regex_replace", "file": "cfg.txt", "pattern": "a = 1",
                                 "replacement": "a = 2", "count": 2}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "cfg")
    assert result.returncode == 1
    assert error_lines(result)[0].endswith(f"regex_replace: pattern 'a = 1' found 1 times in "
                                           f"{out / 'public/cfg/cfg.txt'}, expected 2")
    assert (out / "public/cfg/cfg.txt").read_bytes() == text and leftovers(out) == []


def test_ctrl_c_while_unpacking_leaves_only_verified_files(server, zoo, tmp_path):
    # 1.5 GB of zeros compress to 1.5 MB: unpacking takes long enough to be interrupted
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("first.txt", "small")
        with zf.open("big.bin", "w", force_zip64=True) as member:
            zero = bytes(MB)
            for _ in range(1500):
                member.write(zero)
    archive = buf.getvalue()
    _archive_model(server, zoo, "big", archive, "zip", "big.zip")
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "big")
    _wait_for(lambda: any(".unpack-" in p.name for p in (out / "public/big").glob(".*"))
              if (out / "public/big").exists() else False, "the staging folder")
    _interrupted(proc)
    model = out / "public/big"
    assert sorted(p.name for p in model.iterdir()) == ["big.zip"]  # as before unpacking: the verified archive
    assert (model / "big.zip").read_bytes() == archive


def test_ctrl_c_during_regex_replace_leaves_the_file_whole(server, zoo, tmp_path):
    text = b"threshold = 0.5\n" * 4_000_000  # 64 MB of text: the replacement takes a while
    server.add("/c.txt", text)
    write_model(zoo, "c", [{"name": "c.txt", "data": text, "url": server.url("/c.txt")}],
                postprocessing=[{"$type": "regex_replace", "file": "c.txt", "pattern": "0\\.5", "replacement": "1"}])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "c", "--progress_format", "json")
    _wait_for(lambda: (out / "public/c/c.txt").exists(), "the downloaded file")
    _interrupted(proc)
    assert [p.name for p in (out / "public/c").iterdir()] == ["c.txt"]
    # the edit is whole or not at all (it may finish within the grace period)
    assert (out / "public/c/c.txt").read_bytes() in (text, text.replace(b"0.5", b"1"))


def test_failure_halfway_through_moving_unpacked_files_puts_everything_back(server, zoo, tmp_path, tmpfs):
    """The archive has a/ and b/; b already exists in the model folder as a mount point, which
    cannot be renamed (EBUSY): a/ was already moved in and must be put back as it was."""
    archive = _zip([("a/new.txt", FILE, b"new a"), ("b/new.txt", FILE, b"new b")])
    server.add("/two.zip", archive)
    write_model(zoo, "two", [{"name": "two.zip", "data": archive, "url": server.url("/two.zip")}],
                postprocessing=[{"$type": "unpack_archive", "file": "two.zip", "format": "zip"}])
    out = tmp_path / "out"
    model = out / "public/two"
    (model / "a").mkdir(parents=True)
    (model / "a/old.txt").write_bytes(b"old a")
    mount_point = tmpfs("1m")
    model_b = model / "b"
    model_b.mkdir()
    subprocess.run(["mount", "--bind", str(mount_point), str(model_b)], check=True)
    try:
        result = download(zoo, out, "--name", "two")
        assert result.returncode == 1
        assert f"cannot move into place {model_b}: Device or resource busy" in error_lines(result)[0]
        assert sorted(p.name for p in model.iterdir()) == ["a", "b", "two.zip"]
        assert [p.name for p in (model / "a").iterdir()] == ["old.txt"]  # the old a/, untouched
        assert leftovers(out) == []
    finally:
        subprocess.run(["umount", str(model_b)], check=False)


def test_two_runs_unpacking_into_the_same_folder_take_turns(server, zoo, tmp_path):
    archive = _zip([(f"d{i}/f.txt", FILE, os.urandom(200_000)) for i in range(30)])
    _archive_model(server, zoo, "z", archive, "zip", "z.zip")
    out = tmp_path / "out"
    for _ in range(3):
        procs = [_start(zoo, out, "--name", "z") for _ in range(3)]
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        model = out / "public/z"
        assert sorted(p.name for p in model.iterdir()) == [f"d{i}" for i in sorted(range(30), key=str)]
        assert leftovers(out) == [] and not any(".old" in p.name for p in out.rglob("*"))
