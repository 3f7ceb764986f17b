"""Selecting models: names, patterns, list files, --all, --print_all, unknown names."""

from __future__ import annotations

import json

import pytest
from conftest import one_error_line, run_tool, write_model


@pytest.fixture
def small_zoo(zoo):
    for name in ("alpha-1", "alpha-2", "beta", "gamma-tf"):
        write_model(zoo, name, [{"name": f"{name}.pb", "data": name.encode(), "url": f"http://127.0.0.1:9/{name}"}])
    return zoo


def names(result):
    assert result.returncode == 0, result.stderr
    return [m["name"] for m in json.loads(result.stdout)]


@pytest.mark.parametrize("tool", ["info_dumper", "downloader", "converter"])
def test_print_all(small_zoo, tool):
    result = run_tool(tool, "--models_dir", small_zoo, "--print_all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["alpha-1", "alpha-2", "beta", "gamma-tf"]


def test_patterns_and_order(small_zoo):
    assert names(run_tool("info_dumper", "--models_dir", small_zoo, "--name", "beta,alpha*")) == \
        ["beta", "alpha-1", "alpha-2"]
    assert names(run_tool("info_dumper", "--models_dir", small_zoo, "--name", "alpha-?,alpha-1")) == \
        ["alpha-1", "alpha-2"]
    assert names(run_tool("info_dumper", "--models_dir", small_zoo, "--all")) == \
        ["alpha-1", "alpha-2", "beta", "gamma-tf"]


def test_list_file(small_zoo, tmp_path):
    lst = tmp_path / "models.lst"
    lst.write_text("# models for CI\ngamma-tf   # trailing comment\n\nalpha-*\n")
    assert names(run_tool("info_dumper", "--models_dir", small_zoo, "--list", lst)) == \
        ["gamma-tf", "alpha-1", "alpha-2"]


@pytest.mark.parametrize("tool", ["downloader", "converter"])
def test_unknown_name_suggests_closest(small_zoo, tmp_path, tool):
    out = tmp_path / "out"
    result = run_tool(tool, "--models_dir", small_zoo, "--name", "beta,gama-tf", "-o", out)
    assert result.returncode == 2  # a usage error, as the README says
    line = one_error_line(result)
    assert "no model matches 'gama-tf'" in line and "closest: gamma-tf" in line
    assert not out.exists()  # nothing downloaded, not even the good name


def test_unknown_name_info(small_zoo):
    result = run_tool("info_dumper", "--models_dir", small_zoo, "--name", "zzz*")
    assert result.returncode == 2
    assert one_error_line(result) == f"modelzoo-info: error: no model matches 'zzz*' in {small_zoo}"


def test_selection_flags_are_exclusive(small_zoo):
    result = run_tool("info_dumper", "--models_dir", small_zoo)
    assert result.returncode == 2 and "exactly one of --name, --list, --all" in result.stderr
    result = run_tool("info_dumper", "--models_dir", small_zoo, "--all", "--name", "beta")
    assert result.returncode == 2


def test_broken_descriptor_of_unselected_model_does_not_matter(small_zoo):
    (small_zoo / "public" / "beta" / "model.yml").write_text("files: [")
    assert names(run_tool("info_dumper", "--models_dir", small_zoo, "--name", "alpha-1")) == ["alpha-1"]
    result = run_tool("info_dumper", "--models_dir", small_zoo, "--all", "--strict")
    assert result.returncode == 2 and "public/beta/model.yml" in one_error_line(result)
    assert result.stdout == ""


def _break_beta(zoo):
    """beta: invalid YAML; gamma-tf: an unknown key (a warning only)."""
    (zoo / "public" / "beta" / "model.yml").write_text("files: [")
    gamma = zoo / "public" / "gamma-tf" / "model.yml"
    gamma.write_text(gamma.read_text() + "colour: blue\n")
    return zoo / "public" / "beta" / "model.yml", gamma


def test_all_goes_on_past_an_invalid_descriptor_info(small_zoo):
    beta, gamma = _break_beta(small_zoo)
    result = run_tool("info_dumper", "--models_dir", small_zoo, "--all")
    assert result.returncode == 1
    assert [m["name"] for m in json.loads(result.stdout)] == ["alpha-1", "alpha-2", "gamma-tf"]
    warning, error, summary = result.stderr.splitlines()
    assert warning.startswith(f"modelzoo-info: warning: {gamma}: colour: unknown key, ignored")
    assert error.startswith(f"modelzoo-info: error: {beta}: line ")
    assert summary == "modelzoo-info: failed: beta"


def test_all_goes_on_past_an_invalid_descriptor_downloader(small_zoo, server, tmp_path):
    for name in ("alpha-1", "alpha-2", "gamma-tf"):
        server.add(name, name.encode())
    with server_urls(small_zoo, server):
        beta, gamma = _break_beta(small_zoo)
        out = tmp_path / "out"
        result = run_tool("downloader", "--models_dir", small_zoo, "--all", "-o", out, "-j", "2")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("alpha-1", "alpha-2", "gamma-tf"):
        assert (out / "public" / name / f"{name}.pb").read_bytes() == name.encode()
    assert not (out / "public" / "beta").exists()
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"modelzoo-downloader: warning: {gamma}: colour: unknown key")
    assert lines[1].startswith(f"modelzoo-downloader: error: {beta}: ")
    assert lines[-1] == "modelzoo-downloader: failed: beta"
    assert len(lines) == 3

    result = run_tool("downloader", "--models_dir", small_zoo, "--all", "-o", tmp_path / "strict", "--strict")
    assert result.returncode == 2 and one_error_line(result).startswith(f"modelzoo-downloader: error: {beta}: ")
    assert not (tmp_path / "strict").exists()
    (small_zoo / "public" / "beta" / "model.yml").unlink()
    result = run_tool("downloader", "--models_dir", small_zoo, "--all", "-o", tmp_path / "strict", "--strict")
    assert result.returncode == 2 and "gamma-tf/model.yml: colour: unknown key" in one_error_line(result)
    assert not (tmp_path / "strict").exists()


def test_all_goes_on_past_an_invalid_descriptor_converter(small_zoo, tmp_path):
    beta, _ = _break_beta(small_zoo)
    result = run_tool("converter", "--models_dir", small_zoo, "--all", "-d", tmp_path, "--dry_run")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("alpha-1", "alpha-2", "gamma-tf"):  # the others' mo commands are printed
        assert f"{name}.pb" in result.stdout
    assert f"modelzoo-converter: error: {beta}: " in result.stderr
    assert result.stderr.splitlines()[-1] == "modelzoo-converter: failed: beta"


class server_urls:
    """Point the small zoo's descriptors at the loopback server (the fixture's URLs are port 9)."""

    def __init__(self, zoo, server):
        self.zoo, self.server = zoo, server

    def __enter__(self):
        for yml in self.zoo.glob("public/*/model.yml"):
            yml.write_text(yml.read_text().replace("http://127.0.0.1:9", self.server.base_url))

    def __exit__(self, *exc):
        return False


def test_missing_list_file_and_models_dir(small_zoo, tmp_path):
    result = run_tool("info_dumper", "--models_dir", small_zoo, "--list", tmp_path / "nope.lst")
    assert result.returncode == 2 and "cannot read model list" in one_error_line(result)
    result = run_tool("info_dumper", "--models_dir", tmp_path / "nowhere", "--all")
    assert result.returncode == 2 and "does not exist" in one_error_line(result)


def test_unknown_precision_is_a_usage_error(small_zoo):
    result = run_tool("downloader", "--models_dir", small_zoo, "--name", "beta", "--precisions", "FP64")
    assert result.returncode == 2 and "unknown precision(s) FP64" in one_error_line(result)


@pytest.mark.parametrize("tool", ["downloader", "converter", "info_dumper", "mirror", "cache", "quantizer",
                                  "accuracy_check", "reproduce"])
def test_an_unknown_option_is_one_line_from_every_command(tool, tmp_path):
    """argparse's own parser prints its usage before the error; every command says one line."""
    before = {"cache": ["verify"], "mirror": ["sync", "--to", tmp_path],
              "reproduce": ["retinanet-tf", "--random-weights"]}.get(tool, [])
    result = run_tool(tool, *before, "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in one_error_line(result)


@pytest.mark.parametrize("tool", ["converter", "quantizer"])
@pytest.mark.parametrize("url", ["ftp://mirror.example/ir", "gs://bucket/ir", "HTTP://shouted.example/ir"])
def test_a_mirror_of_an_unknown_scheme_is_refused_before_any_work(small_zoo, tmp_path, tool, url):
    """(Schemes are matched as written: the fetchers' table is lower-case.)"""
    out = tmp_path / "out"
    result = run_tool(tool, "--models_dir", small_zoo, "--name", "beta", "--mirror", url, "--dry_run",
                      *(["-d", out] if tool == "converter" else ["--ir_dir", out]))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"argument --mirror: {url!r}: expected a folder or an http://" in one_error_line(result)
    assert result.stdout == "" and not out.exists()


# ----------------------------------------------------------------------------- hostile command lines

def _tool_args(tool: str, tmp_path) -> tuple[list, list]:
    """(what comes before the selection, what comes after it) for a tool."""
    return {"mirror": (["sync"], ["--to", tmp_path / "dest"]), "downloader": ([], ["-o", tmp_path / "out"]),
            "converter": ([], ["-d", tmp_path / "out", "--dry_run"]), "info_dumper": ([], [])}[tool]


@pytest.mark.parametrize("tool", ["info_dumper", "downloader", "converter", "mirror"])
@pytest.mark.parametrize("kind", ["not utf-8", "fifo", "dev zero"])
def test_a_list_that_is_not_a_text_file_is_one_line(small_zoo, tmp_path, tool, kind):
    import os

    lst = tmp_path / "models.lst"
    if kind == "not utf-8":
        lst.write_bytes(b"beta\n\xff\xfe alpha\n")
    elif kind == "fifo":
        os.mkfifo(lst)
    else:
        lst.symlink_to("/dev/zero")
    before, after = _tool_args(tool, tmp_path)
    result = run_tool(tool, *before, "--models_dir", small_zoo, "--list", lst, *after, timeout=60)
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(lst) in line and ("not UTF-8" in line if kind == "not utf-8" else "not a regular file" in line)


@pytest.mark.parametrize("tool, flag", [("downloader", "-j"), ("downloader", "--connections"), ("mirror", "-j"),
                                        ("mirror", "--connections"), ("converter", "-j")])
def test_a_huge_job_or_connection_count_is_refused(small_zoo, tmp_path, tool, flag):
    before, after = _tool_args(tool, tmp_path)
    result = run_tool(tool, *before, "--models_dir", small_zoo, "--name", "beta", *after, flag, "1000000000",
                      timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].endswith(": must be at most 256 (got 1000000000)")
    assert flag in result.stderr.splitlines()[-1]
