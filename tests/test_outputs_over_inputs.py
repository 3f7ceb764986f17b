"""No command writes over one of its own inputs (issue 24, hole 3, for the downloader and the
mirror; the accuracy tool and the quantizer: tests/quantize/test_hostile_inputs.py): a file
that would land on a descriptor or on --list's file, or --changes naming one, is refused in one
line, exit 2, before the first request, and the input is left as it was."""

from __future__ import annotations

from conftest import one_error_line, run_tool, write_model


def _zoo_with_a_file_named(zoo, server, name: str) -> bytes:
    data = b"not a descriptor\n"
    write_model(zoo, "m", [{"name": name, "data": data, "url": server.add(f"/{name}", data)}])
    return (zoo / "public/m/model.yml").read_bytes()


def test_downloader_into_the_zoo_does_not_write_over_a_descriptor(zoo, server):
    before = _zoo_with_a_file_named(zoo, server, "model.yml")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", zoo)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "-o " in line and "is the input" in line and "model.yml" in line, line
    assert (zoo / "public/m/model.yml").read_bytes() == before and server.count() == 0


def test_downloader_does_not_write_over_its_list_file(zoo, server, tmp_path):
    _zoo_with_a_file_named(zoo, server, "names.txt")
    out = tmp_path / "out"
    listed = out / "public/m/names.txt"
    listed.parent.mkdir(parents=True)
    listed.write_text("m\n")
    result = run_tool("downloader", "--models_dir", zoo, "--list", listed, "-o", out)
    assert result.returncode == 2 and "is the input" in one_error_line(result)
    assert listed.read_text() == "m\n" and server.count() == 0


def test_mirror_sync_does_not_write_over_a_descriptor(zoo, server, tmp_path):
    before = _zoo_with_a_file_named(zoo, server, "model.yml")
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", zoo)
    assert result.returncode == 2 and "is the input" in one_error_line(result)
    assert (zoo / "public/m/model.yml").read_bytes() == before and server.count() == 0
    changes = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "dest",
                       "--changes", zoo / "public/m/model.yml")
    assert changes.returncode == 2 and "--changes" in one_error_line(changes)
    assert (zoo / "public/m/model.yml").read_bytes() == before and server.count() == 0
