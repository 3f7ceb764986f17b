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


def test_converter_does_not_write_ir_over_a_downloaded_file(zoo, tmp_path):
    """-o is -d by default: a model whose own downloaded file is named like its IR is refused."""
    dl = tmp_path / "dl"
    data = b"downloaded, not IR\n"
    write_model(zoo, "m", [{"name": "m.pb", "data": b"x", "url": "http://127.0.0.1:9/m.pb"},
                           {"name": "FP32/m.xml", "data": data, "url": "http://127.0.0.1:9/m.xml"}],
                framework="tf", model_optimizer_args=["--input_model=$dl_dir/m.pb"])
    (dl / "public/m/FP32").mkdir(parents=True)
    (dl / "public/m/FP32/m.xml").write_bytes(data)
    (dl / "public/m/m.pb").write_bytes(b"x")
    result = run_tool("converter", "--models_dir", zoo, "--name", "m", "-d", dl, "--backend", "ovc")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "FP32/m.xml" in line and "is the input" in line, line
    assert (dl / "public/m/FP32/m.xml").read_bytes() == data


def test_lock_does_not_write_over_a_descriptor(zoo, server):
    before = _zoo_with_a_file_named(zoo, server, "a.bin")
    result = run_tool("lock", "--models_dir", zoo, "--all", "-o", zoo / "public/m/model.yml")
    assert result.returncode == 2 and "is the input" in one_error_line(result)
    assert (zoo / "public/m/model.yml").read_bytes() == before
