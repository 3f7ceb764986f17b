"""Free space first: the downloader, the mirror (folder destinations) and the converter add up
what they will write per file system and refuse, in one line and before the first request
(the loopback server counts connections: none), when it does not fit; a dry run prints the sum."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from conftest import MB, error_lines, leftovers, run_tool, write_model

NEEDS = re.compile(r"needs (\d+\.\d) MB on (\S+) \((\d+\.\d) (?:MB|KB) free\)")


def _three_mb(server, zoo, name="m"):
    data = os.urandom(3 * MB)
    write_model(zoo, name, [{"name": f"{name}.bin", "data": data, "url": server.add(f"/{name}.bin", data)}])
    return data


def test_download_onto_a_small_tmpfs_is_refused_before_any_request(server, zoo, tmpfs):
    _three_mb(server, zoo)
    out = tmpfs("1m")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out)
    assert result.returncode == 1
    [line] = error_lines(result)
    match = NEEDS.search(line)
    assert line.startswith("modelzoo-downloader: error: needs ") and match, line
    assert match.group(1) == "3.1" and Path(match.group(2)) == out  # 3 MiB, on the tmpfs's mount point
    assert server.connections == 0 and list(out.iterdir()) == []


def test_the_cache_file_system_is_counted_too(server, zoo, tmp_path, tmpfs):
    _three_mb(server, zoo)
    cache = tmpfs("2m")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "out", "--cache_dir", cache)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert NEEDS.search(line).group(2) == str(cache), line  # the output folder has room: only the cache is named
    assert server.connections == 0


def test_what_is_present_or_cached_needs_no_room(server, zoo, tmp_path, tmpfs):
    data = _three_mb(server, zoo)
    out = tmpfs("4m")
    assert run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out).returncode == 0
    # present: nothing to write, although 3 MB would no longer fit beside it
    again = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out)
    assert again.returncode == 0, again.stderr
    assert (out / "public/m/m.bin").read_bytes() == data


def test_no_space_check_skips_it(server, zoo, tmpfs):
    _three_mb(server, zoo)
    out = tmpfs("1m")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out, "--no_space_check")
    assert result.returncode == 1
    assert "no space left on device while writing" in error_lines(result)[0]  # it tried, and met the full disk
    assert server.connections > 0 and leftovers(out) == []


def test_an_archive_counts_with_its_unpacked_content(server, zoo, tmp_path, tmpfs):
    """A zip already in the cache says what it unpacks to (2 MB of zeros in a tiny archive)."""
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weights.bin", bytes(2 * MB))
    data = archive.read_bytes()
    write_model(zoo, "z", [{"name": "z.zip", "data": data, "url": server.add("/z.zip", data)}],
                postprocessing=[{"$type": "unpack_archive", "file": "z.zip", "format": "zip"}])
    cache = tmp_path / "cache"
    assert run_tool("downloader", "--models_dir", zoo, "--name", "z", "-o", tmp_path / "warm",
                    "--cache_dir", cache).returncode == 0
    before = server.connections
    out = tmpfs("1m")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "z", "-o", out, "--cache_dir", cache)
    assert result.returncode == 1
    [line] = error_lines(result)
    needed = float(NEEDS.search(line).group(1))
    assert 2.1 <= needed < 2.3, line  # 2 MiB unpacked plus the archive's copy on another file system
    assert server.connections == before


def test_mirror_sync_refused_and_dry_run_prints_the_sum(server, zoo, tmpfs):
    _three_mb(server, zoo, "a")
    _three_mb(server, zoo, "b")
    dest = tmpfs("5m")
    dry = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--dry_run")
    assert dry.returncode == 0, dry.stderr
    [space] = [line for line in dry.stdout.splitlines() if "space" in line]
    assert re.fullmatch(rf"\s+space  needs 6\.3 MB on {dest} \(5\.\d MB free\): does not fit", space), space
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith("modelzoo-mirror: error: needs 6.3 MB on ") and str(dest) in line
    assert server.connections == 0 and list(dest.iterdir()) == []


def test_converter_estimates_the_ir_and_refuses(zoo, tmp_path, tmpfs):
    write_model(zoo, "t", [{"name": "t.pb", "data": b"", "url": "http://127.0.0.1:9/t.pb"}])
    downloaded = tmp_path / "dl/public/t"
    downloaded.mkdir(parents=True)
    (downloaded / "t.pb").write_bytes(os.urandom(2 * MB))
    out = tmpfs("2m")
    dry = run_tool("converter", "--models_dir", zoo, "--name", "t", "-d", tmp_path / "dl", "-o", out, "--dry_run")
    assert dry.returncode == 0, dry.stderr
    [space] = [line for line in dry.stdout.splitlines() if "space" in line]
    # FP32 as big as the model's files, FP16 half: 3 MiB
    assert re.fullmatch(rf"\(dry run\) space: needs 3\.1 MB on {out} \(2\.\d MB free\) \(an estimate of the IR\): "
                        "does not fit", space), space
    result = run_tool("converter", "--models_dir", zoo, "--name", "t", "-d", tmp_path / "dl", "-o", out)
    assert result.returncode == 1
    [line] = error_lines(result)
    assert line.startswith("modelzoo-converter: error: needs 3.1 MB on ") and list(out.iterdir()) == []
