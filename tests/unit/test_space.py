"""space in-process: sizes people type, and what a run writes per file system against its free space."""

from __future__ import annotations

import os

import pytest

from modelzoo.errors import DiskFullError, InsufficientSpaceError
from modelzoo.download.space import Need, check_space, fetch_writes, parse_size, space_needed


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1000", 1000), ("500M", 500_000_000), ("500MB", 500_000_000), ("20G", 20 * 10**9),
    ("20gb", 20 * 10**9), ("1.5GiB", 1_610_612_736), ("2KiB", 2048), ("1T", 10**12), ("3 MiB", 3 << 20),
    ("0.5k", 500), (".5K", 500), ("7B", 7),
])
def test_sizes(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["10XB", "", "G", "-5M", "1e3", "nan", "1.2.3G", "5 M B", "9" * 30 + "T"])
def test_what_is_not_a_size(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_writes_add_up_per_file_system(tmp_path, tmpfs):
    small = tmpfs("1m")
    needs = space_needed([(tmp_path / "a" / "b" / "new.bin", 100), (small / "x.bin", 300_000),
                          (tmp_path / "other.bin", 50), (small / "deep" / "er" / "y.bin", 400_000)])
    assert [(n.needed, n.mount == small) for n in needs] == [(150, False), (700_000, True)]
    st = os.statvfs(small)
    assert needs[1].free == st.f_bavail * st.f_frsize and needs[1].fits
    assert needs[0].mount == needs[0].mount.parent or os.stat(needs[0].mount.parent).st_dev != os.stat(tmp_path).st_dev
    check_space(needs)  # fits: nothing raised


def test_a_run_that_does_not_fit_is_refused_in_one_line(tmp_path, tmpfs):
    small = tmpfs("1m")
    needs = space_needed([(small / "big.bin", 3_000_000), (tmp_path / "fine.bin", 10)])
    with pytest.raises(InsufficientSpaceError) as caught:
        check_space(needs)
    assert isinstance(caught.value, DiskFullError) and caught.value.exit_code == 1
    assert str(caught.value) == f"needs 3.0 MB on {small} ({needs[0].free / 1e6:.1f} MB free)"
    assert "\n" not in str(caught.value)


def test_zero_bytes_still_names_its_file_system(tmp_path):
    (need,) = space_needed([(tmp_path / "nothing", 0)])
    assert need.needed == 0 and need.fits and str(need).startswith("needs 0 B on /")
    assert Need(tmp_path, 10, 5).fits is False


@pytest.mark.parametrize("text", ["9" * 5000, "9" * 5000 + "X"])
def test_a_huge_size_is_refused_in_a_short_line(text):
    with pytest.raises(ValueError, match="size") as caught:
        parse_size(text)
    assert len(str(caught.value)) < 120


def test_what_fetching_one_file_writes(tmp_path, tmpfs):
    from modelzoo.store.cache import Cache

    cache = Cache(tmp_path / "cache")
    sha = "ab" + "0" * 94
    here, elsewhere = tmp_path / "out" / "f.bin", tmpfs("1m") / "f.bin"
    assert fetch_writes(sha, 1000, here, None) == [(here, 1000)]  # the .part beside the target
    assert fetch_writes(sha, 1000, here, cache) == [(cache.partial_path(sha), 1000), (here, 0)]  # then a link
    assert fetch_writes(sha, 1000, elsewhere, cache) == [(cache.partial_path(sha), 1000), (elsewhere, 1000)]
    cache.partial_path(sha).parent.mkdir(parents=True)
    cache.partial_path(sha).write_bytes(b"x" * 400)  # an earlier run's prefix: resumed
    assert fetch_writes(sha, 1000, here, cache)[0] == (cache.partial_path(sha), 600)
    cache.blob_path(sha).write_bytes(b"y" * 1000)
    assert fetch_writes(sha, 1000, here, cache) == [(here, 0)]  # held: a hard link
    assert fetch_writes(sha, 1000, elsewhere, cache) == [(elsewhere, 1000)]  # held: a copy
    assert fetch_writes(sha, 1000, None, cache) == []  # a remote destination: nothing local


def test_a_read_only_file_system_is_left_to_the_write(tmpfs):
    ro = tmpfs("1m", readonly=True)
    [need] = space_needed([(ro / "big.bin", 10**9)])
    assert need.read_only and not need.fits
    check_space([need])  # the write will say "Read-only file system"
