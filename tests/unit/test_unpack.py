"""unpack in-process: link resolution, staging, cancel, the fail-closed tar check, regex_replace
fed to a child slow to start."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from modelzoo.download import unpack
from modelzoo.descriptor import RegexReplace
from modelzoo.errors import Interrupted, PostprocessingError, UnsafeArchiveError


def tree_with(links: dict[str, str]) -> unpack._Tree:
    tree = unpack._Tree(Path("a.zip"))
    for name, target in links.items():
        tree.add_link(PurePosixPath(name), target, hard=False)
    return tree


def test_links_are_resolved_through_earlier_links():
    tree = tree_with({"l0": ".", "d": "sub", "deep/x": "../sub/file"})
    assert tree.resolve(PurePosixPath("l0/sub/f"), follow_last=True) == ("sub", "f")
    assert tree.resolve(PurePosixPath("d/../.."), follow_last=True) is None
    with pytest.raises(UnsafeArchiveError, match="'l1' -> 'l0/..' points outside"):
        tree.add_link(PurePosixPath("l1"), "l0/..", hard=False)
    with pytest.raises(UnsafeArchiveError, match="written through the link 'd'"):
        tree.add_member(PurePosixPath("d/new.txt"))


def test_a_link_loop_is_refused():
    tree = unpack._Tree(Path("a.zip"))
    tree.links[PurePosixPath("a")] = "b"
    tree.links[PurePosixPath("b")] = "a"
    with pytest.raises(UnsafeArchiveError, match="too many levels of links"):
        tree.resolve(PurePosixPath("a/x"), follow_last=True)


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)


def test_unpack_moves_everything_in_and_removes_the_archive(tmp_path):
    _zip(tmp_path / "a.zip", {"d/w.bin": b"w", "top.txt": b"t"}, {"alias": "d/w.bin"})
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "stale").write_bytes(b"old")  # an earlier unpack's folder is replaced whole
    unpack.unpack_archive(tmp_path / "a.zip", "zip", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias", "d", "top.txt"]
    assert (tmp_path / "alias").read_bytes() == b"w" and not (tmp_path / "d" / "stale").exists()


def test_an_archive_in_a_subfolder_unpacks_beside_itself_as_omz_downloader_does(tmp_path):
    """googlenet-v1-tf: `models/research/slim/tf_slim-1.1.0-...whl` gives `models/research/slim/tf_slim/`."""
    slim = tmp_path / "models" / "research" / "slim"
    slim.mkdir(parents=True)
    _zip(slim / "w.whl", {"tf_slim/layers/layers.py": b"x = layer.apply(y)\n"})
    unpack.unpack_archive(slim / "w.whl", "zip", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    assert sorted(p.name for p in slim.iterdir()) == ["tf_slim"]
    assert (slim / "tf_slim" / "layers" / "layers.py").read_bytes() == b"x = layer.apply(y)\n"


def test_a_hostile_member_leaves_the_folder_as_it_was(tmp_path):
    _zip(tmp_path / "a.zip", {"ok.txt": b"fine"}, {"l0": ".", "l1": "l0/.."})
    with pytest.raises(UnsafeArchiveError):
        unpack.unpack_archive(tmp_path / "a.zip", "zip", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.zip"]


def test_cancel_during_extraction_removes_the_staging_folder(tmp_path):
    _zip(tmp_path / "a.zip", {f"f{i}.txt": b"x" * 1000 for i in range(20)})
    calls = []

    def check_cancel() -> None:
        calls.append(1)
        if len(calls) > 5:
            raise Interrupted("interrupted")

    with pytest.raises(Interrupted):
        unpack.unpack_archive(tmp_path / "a.zip", "zip", tmp_path, check_cancel)
    assert [p.name for p in tmp_path.iterdir()] == ["a.zip"]


def test_tar_without_extraction_filters_fails_closed(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("x.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    monkeypatch.delattr(tarfile, "data_filter")  # the stdlib of Python < 3.10.12 / 3.11.4
    with pytest.raises(UnsafeArchiveError, match="lacks tarfile's extraction filters"):
        unpack.unpack_archive(tmp_path / "a.tar", "tar", tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.tar"]


def test_regex_replace(tmp_path):
    path = tmp_path / "cfg.txt"
    path.write_text("a = 1\na = 1\n")
    path.chmod(0o640)
    with pytest.raises(PostprocessingError, match="found 2 times .* expected 3"):
        unpack.regex_replace(path, RegexReplace(PurePosixPath("cfg.txt"), "a = 1", "a = 2", 3))
    assert path.read_text() == "a = 1\na = 1\n"
    unpack.regex_replace(path, RegexReplace(PurePosixPath("cfg.txt"), "a = 1", "a = 2", 2))
    assert path.read_text() == "a = 2\na = 2\n" and (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.txt"]


def test_regex_replace_feeds_a_big_file_to_a_child_slow_to_start(tmp_path, monkeypatch):
    # Under load the child interpreter can take longer to start than communicate()'s first 0.1 s
    # poll; a file larger than the pipe's buffer (transformers' __init__.py: ~200 KB) then had to
    # be fed on across the retries, which communicate() does not do: the child waited for the rest
    # of its input until the bound expired. A real interpreter behind a sleep stands for the load.
    import shlex
    import sys
    import threading

    slow = tmp_path / "slow-python"
    slow.write_text(f'#!/bin/sh\nsleep 0.5\nexec {shlex.quote(sys.executable)} "$@"\n')
    slow.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(slow))
    monkeypatch.setenv("MODELZOO_REGEX_SECONDS", "5")
    body = "_import_structure['models'] = []\n" * 9000  # ~300 KB, well over a 64 KiB pipe
    paths = []
    for i in range(3):  # at once, as the downloader's -j workers do
        paths.append(tmp_path / f"init{i}.py")
        paths[-1].write_text(body + "from .utils import dummy\n")
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            unpack.regex_replace(path, RegexReplace(PurePosixPath(path.name), r"from \.utils import dummy",
                                                    "from .utils import real", 1))
        except BaseException as exc:  # (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for path in paths:
        assert path.read_text() == body + "from .utils import real\n"
