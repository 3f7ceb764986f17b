"""A zoo from outside (issue 29): its descriptors name no path outside the model's folders, run
no code the user did not allow, cannot make the Model Optimizer run code or write elsewhere,
and cannot hang, flood or crash the downloader. Through the real command lines; the mo ones need
openvino-dev (CI's first environment)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import _interrupted, _start, _wait_for, leftovers, one_error_line, run_tool, write_model
from ovc_reference import tiny_pb

BACKENDS = ["mo", "ovc"]


def tiny_model(zoo: Path, dl: Path, name: str, mo_args: list[str], **extra) -> Path:
    """A model whose one file, tiny.pb (a convolution: x [1,8,8,3] -> y), is already downloaded."""
    pb = dl / "public" / name / "tiny.pb"
    pb.parent.mkdir(parents=True, exist_ok=True)
    pb.write_bytes(tiny_pb(0).read_bytes())
    write_model(zoo, name, [{"name": "tiny.pb", "data": pb.read_bytes(), "url": "http://127.0.0.1:9/tiny.pb"}],
                **{"framework": "tf", **extra}, model_optimizer_args=mo_args)
    return pb


def convert(zoo: Path, dl: Path, out: Path, *args: str | Path, timeout: float = 600):
    return run_tool("converter", "--models_dir", zoo, "-d", dl, "-o", out, *args, timeout=timeout)


def refused(result, model: str, *named: str) -> str:
    """A refused model: its one error line (naming what is refused), the failed line, exit 1."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1] == f"modelzoo-converter: failed: {model}", result.stderr
    for text in named:
        assert text in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------
# 1. every path a descriptor names lies below the model's own folders


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A model file somewhere else on the machine (what a hostile descriptor would point at)."""
    pb = tmp_path / "elsewhere" / "secret.pb"
    pb.parent.mkdir()
    pb.write_bytes(tiny_pb(1).read_bytes())
    return pb


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["absolute", "climbing", "separate word", "transformations config"])
def test_a_path_outside_the_model_folders_is_refused(tmp_path, zoo, elsewhere, backend, how):
    dl, out = tmp_path / "dl", tmp_path / "out"
    value = {"absolute": f"--input_model={elsewhere}",
             "climbing": "--input_model=$dl_dir/../../../elsewhere/secret.pb",
             "separate word": "--input_model",
             "transformations config": f"--transformations_config={elsewhere}"}[how]
    args = [value, str(elsewhere)] if how == "separate word" else [value]
    if how == "transformations config":
        args = ["--input_model=$dl_dir/tiny.pb", *args]
    tiny_model(zoo, dl, "tiny", [*args, "--output=y"])
    for dry in ([], ["--dry_run"]):
        result = convert(zoo, dl, out, "--name", "tiny", "--backend", backend, *dry)
        line = refused(result, "tiny", value.replace("$dl_dir", str(dl / "public/tiny")), "refused")
        if how != "separate word":
            assert "is not below the model's folders ($dl_dir, $config_dir, $conv_dir, $mo_dir)" in line
        assert "Conversion command" not in result.stdout  # nothing started
    assert not out.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_link_in_the_download_folder_to_elsewhere_is_refused(tmp_path, zoo, elsewhere, backend):
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "tiny", ["--input_model=$dl_dir/link.pb", "--output=y"])
    (dl / "public/tiny/link.pb").symlink_to(elsewhere)
    result = convert(zoo, dl, out, "--name", "tiny", "--backend", backend)
    refused(result, "tiny", "--input_model=", f"(it leads to {elsewhere})")
    assert not out.exists()


def test_sync_ir_publishes_no_ir_of_a_file_elsewhere(tmp_path, zoo, server, elsewhere):
    data = tiny_pb(0).read_bytes()
    url = server.add("tiny.pb", data)
    write_model(zoo, "tiny", [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                model_optimizer_args=[f"--input_model={elsewhere}", "--output=y"])
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--cache_dir", tmp_path / "cache",
                      "--ir", "FP16", "--backend", "ovc", timeout=600)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].startswith(f"modelzoo-mirror: error: tiny: --input_model={elsewhere}: {elsewhere} is not below "
                               "the model's folders")
    assert lines[1] == "modelzoo-mirror: failed: tiny"
    assert not (dest / "ir").exists() or not list((dest / "ir").rglob("*.xml"))
    assert (dest / "public/tiny/tiny.pb").read_bytes() == data  # the model's own files are mirrored as before


def test_paths_below_the_model_folders_still_convert(tmp_path, zoo):
    """$dl_dir, $config_dir and $conv_dir (also through a link that stays inside), mo's own
    transformation configs: converted as before."""
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "in-dl", ["--input_model=$dl_dir/sub/../tiny.pb", "--output=y"])
    (dl / "public/in-dl/sub").mkdir()
    tiny_model(zoo, dl, "in-config", ["--input_model=$config_dir/graph.pb", "--output=y"])
    (zoo / "public/in-config/graph.pb").write_bytes(tiny_pb(0).read_bytes())
    tiny_model(zoo, dl, "in-conv", ["--input_model=$conv_dir/graph.pb", "--output=y"])
    (out / "public/in-conv").mkdir(parents=True)
    (out / "public/in-conv/graph.pb").write_bytes(tiny_pb(0).read_bytes())
    tiny_model(zoo, dl, "in-link", ["--input_model=$dl_dir/link.pb", "--output=y"])
    (dl / "public/in-link/link.pb").symlink_to("tiny.pb")
    result = convert(zoo, dl, out, "--all", "--backend", "ovc")
    assert result.returncode == 0, result.stderr
    for name in ("in-dl", "in-config", "in-conv", "in-link"):
        assert (out / f"public/{name}/FP16/{name}.xml").is_file()


# ------------------------------------------------------------------------------------------
# 2. a zoo's own code runs only when the user allows it


PRE_CONVERT = "import pathlib, sys\npathlib.Path(sys.argv[0]).with_name('ran').write_text(' '.join(sys.argv[1:]))\n"


def zoo_with_code(zoo: Path, dl: Path) -> dict[str, Path]:
    """tiny-pre (a pre-convert.py) and tiny-torch (a PyTorch model whose module is the zoo's
    model.py); each leaves a file 'ran' beside itself when it runs. Returns the scripts."""
    tiny_model(zoo, dl, "tiny-pre", ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    script = zoo / "public/tiny-pre/pre-convert.py"
    script.write_text(PRE_CONVERT)
    tiny_model(zoo, dl, "tiny-torch", ["--input_model=$conv_dir/tiny.onnx"], framework="pytorch",
               conversion_to_onnx_args=["--model-path=$config_dir", "--model-name=Net", "--import-module=model",
                                        "--output-file=$conv_dir/tiny.onnx", "--input-shape=1,3,8,8",
                                        "--input-names=x", "--output-names=y"])
    module = zoo / "public/tiny-torch/model.py"
    module.write_text("import pathlib\npathlib.Path(__file__).with_name('ran').write_text('imported')\n")
    return {"tiny-pre": script, "tiny-torch": module}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zoo_from_outside_runs_no_code_without_the_flag(tmp_path, zoo, backend):
    dl, out = tmp_path / "dl", tmp_path / "out"
    code = zoo_with_code(zoo, dl)
    for dry in ([], ["--dry_run"]):
        result = convert(zoo, dl, out, "--all", "--backend", backend, *dry)
        assert result.returncode == 2, result.stdout + result.stderr
        line = one_error_line(result)
        assert line.startswith(f"modelzoo-converter: error: the zoo {zoo.resolve()} would run its own code: ")
        assert str(code["tiny-pre"]) in line
        assert f"{zoo.resolve()}/public/tiny-torch: the PyTorch model's code (--model-path=$config_dir " \
               "--import-module=model)" in line
        assert line.endswith("refused: allow it with --allow_zoo_code (only for a zoo you trust)")
        if dry:  # a dry run lists what would run, one line each
            assert f"(dry run) zoo code that would run: {code['tiny-pre']}\n" in result.stdout
            assert "(dry run) zoo code that would run: " + str(zoo.resolve()) + "/public/tiny-torch" in result.stdout
        assert "Conversion command" not in result.stdout and "Backend:" not in result.stdout
        assert not any(p.with_name("ran").exists() for p in code.values())
        assert not out.exists()
    # a model that runs no zoo code is not held back by one that does in another run
    result = convert(zoo, dl, out, "--name", "tiny-pre", "--backend", "ovc", "--precisions", "FP16-INT8")
    assert result.returncode == 0, result.stderr  # (nothing to convert for INT8: no code would run)


def test_allow_zoo_code_runs_the_pre_convert_script(tmp_path, zoo):
    dl, out = tmp_path / "dl", tmp_path / "out"
    code = zoo_with_code(zoo, dl)
    dry = convert(zoo, dl, out, "--name", "tiny-pre", "--backend", "ovc", "--allow_zoo_code", "--dry_run")
    assert dry.returncode == 0, dry.stderr
    assert f"(dry run) zoo code that would run: {code['tiny-pre']}" in dry.stdout
    assert "(dry run) Pre-convert command: " in dry.stdout
    assert not code["tiny-pre"].with_name("ran").exists()
    result = convert(zoo, dl, out, "--name", "tiny-pre", "--backend", "ovc", "--allow_zoo_code")
    assert result.returncode == 0, result.stderr
    assert code["tiny-pre"].with_name("ran").read_text() == f"-- {dl / 'public/tiny-pre'} {out / 'public/tiny-pre'}"
    assert (out / "public/tiny-pre/FP16/tiny-pre.xml").is_file()


def test_the_bundled_zoo_runs_its_code_without_the_flag(tmp_path):
    """The zoo that ships with the tools is theirs: a checkout whose models/ has a pre-convert.py
    converts it with no flag (a copy of this checkout's tools, its own models/ beside them)."""
    import subprocess
    import sys

    from conftest import REPO

    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "tools", checkout / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    dl, out = tmp_path / "dl", tmp_path / "out"
    code = zoo_with_code(checkout / "models", dl)
    result = subprocess.run([sys.executable, str(checkout / "tools/downloader/converter.py"), "--name", "tiny-pre",
                             "-d", str(dl), "-o", str(out), "--backend", "ovc"], capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert code["tiny-pre"].with_name("ran").exists()
    assert (out / "public/tiny-pre/FP16/tiny-pre.xml").is_file()


def test_sync_ir_refuses_a_model_with_zoo_code_before_running_it(tmp_path, zoo, server):
    data = tiny_pb(0).read_bytes()
    for name in ("tiny-pre", "tiny-ok"):
        url = server.add(f"{name}/tiny.pb", data)
        write_model(zoo, name, [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                    model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y"])
    script = zoo / "public/tiny-pre/pre-convert.py"
    script.write_text(PRE_CONVERT)
    dest = tmp_path / "mirror"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", dest, "--cache_dir", tmp_path / "cache",
                      "--ir", "FP16", "--backend", "ovc", timeout=600)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0] == (f"modelzoo-mirror: error: tiny-pre: it runs the zoo's own code ({script}), so its IR has no "
                        "conversion key; not converted, not mirrored")
    assert lines[1] == "modelzoo-mirror: failed: tiny-pre"
    assert not script.with_name("ran").exists()
    assert list((dest / "ir").glob("*/public/tiny-ok/FP16/tiny-ok.xml"))  # the other model is published


# ------------------------------------------------------------------------------------------
# 3. the mo backend: an allow-list of Model Optimizer flags


def external_mo() -> list[str]:
    import sys

    mo = shutil.which("mo", path=os.path.dirname(sys.executable))
    assert mo, "openvino-dev installs the mo command (CI's first environment)"
    return ["--mo", mo]


MO_WAYS = {"in-process": lambda: [], "external": external_mo}


@pytest.mark.parametrize("way", MO_WAYS)
@pytest.mark.parametrize("flag,why", [
    ("--extensions=$config_dir/ext", "it makes the Model Optimizer import Python code from the named folders"),
    ("--output_dir=$conv_dir/elsewhere", "the converter decides where the IR is written"),
    ("--output_d=$conv_dir/elsewhere", "the converter decides where the IR is written"),
    ("--model_name=../../../outside/tiny", "the converter names the IR after the model"),
    ("--tensorboard_logdir=$conv_dir/board", "it writes a dump of the model into the named folder"),
    ("--tensorflow_custom_layer_libraries=$config_dir/ext/lib.so", "it loads shared libraries"),
    ("--tensorflow_custom_operations_config_update=$config_dir/ext/update.json", "it rewrites the named JSON file"),
    ("--caffe_parser_path=$config_dir/ext", "import a Python parser"),
    ("--help", "it prints and exits instead of converting"),
    ("--no_such_flag=1", "not a Model Optimizer flag the converter knows to be harmless"),
])
def test_mo_flags_that_run_code_or_write_elsewhere_are_refused(tmp_path, zoo, way, flag, why):
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "tiny", ["--input_model=$dl_dir/tiny.pb", "--output=y", flag])
    ext = zoo / "public/tiny/ext"
    (ext / "front").mkdir(parents=True)
    (ext / "front/hostile.py").write_text("import pathlib\npathlib.Path(__file__).parents[1].joinpath('ran').touch()\n")
    (ext / "update.json").write_text("[]")
    for dry in (["--dry_run"], []):
        result = convert(zoo, dl, out, "--name", "tiny", "--backend", "mo", *MO_WAYS[way](), *dry)
        refused(result, "tiny", flag.split("=")[0], why, "(mo backend)", "refused")
        assert "Conversion command" not in result.stdout
    assert not (ext / "ran").exists() and (ext / "update.json").read_text() == "[]"
    assert not (tmp_path / "outside").exists() and not out.exists()


def test_every_flag_of_the_bundled_and_open_model_zoo_descriptors_is_still_allowed(tmp_path):
    """The bundled zoo and Open Model Zoo's own (shipped in openvino-dev 2024.6: omz_tools/models;
    none of them uses a flag refused above), through the mo backend's checks in a dry run."""
    import importlib.util

    import yaml

    omz = Path(next(iter(importlib.util.find_spec("omz_tools").submodule_search_locations))) / "models"
    # (PyTorch models are the ovc backend's alone: the mo backend refuses them by name, tests/test_pytorch.py)
    names = sorted(yml.parent.name for yml in omz.glob("*/*/model.yml")
                   if "conversion_to_onnx_args" not in yaml.safe_load(yml.read_text()))
    (tmp_path / "list.txt").write_text("\n".join(names) + "\n")
    for zoo, extra in ((None, ["--all"]), (omz, ["--allow_zoo_code", "--list", tmp_path / "list.txt"])):
        result = run_tool("converter", *(["--models_dir", zoo] if zoo else []), "--dry_run", "--backend",
                          "mo", "-d", tmp_path / "dl", "-o", tmp_path / "out", *extra)
        assert result.returncode == 0, result.stderr
        assert "error" not in result.stderr
        listed = [yml for yml in omz.glob("*/*/model.yml") if yml.parent.name in names] if zoo else []
        with_mo = sum("model_optimizer_args" in yaml.safe_load(yml.read_text()) for yml in listed)
        assert result.stdout.count("Conversion command: mo --framework=") >= (1 if zoo is None else max(60, with_mo))


@pytest.mark.parametrize("way", MO_WAYS)
def test_the_converter_s_own_output_flags_come_last(tmp_path, zoo, way):
    dl, out = tmp_path / "dl", tmp_path / "out"
    tiny_model(zoo, dl, "tiny", ["--input_model=$dl_dir/tiny.pb", "--output=y"])
    result = convert(zoo, dl, out, "--name", "tiny", "--backend", "mo", *MO_WAYS[way]())
    assert result.returncode == 0, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.startswith("Conversion command:")]
    assert commands
    for command in commands:
        tail = command.split("--output=y ", 1)[1].split()
        assert "--model_name=tiny" in tail
        assert all(t.startswith(("--model_name=", "--output_dir=", "--compress_to_fp16=")) for t in tail)
    assert sorted(p.name for p in (out / "public/tiny").iterdir()) == ["FP16", "FP32"]


# ------------------------------------------------------------------------------------------
# 8. a size no file can have


HUGE = 10**400


@pytest.mark.parametrize("tool", ["downloader", "converter", "mirror"])
def test_a_size_of_400_digits_is_refused_at_load(tmp_path, zoo, tool):
    write_model(zoo, "huge", [{"name": "m.pb", "size": HUGE, "checksum": "a" * 96, "url": "http://127.0.0.1:9/m.pb"}])
    args = {"downloader": ["downloader", "--models_dir", zoo, "-o", tmp_path / "out"],
            "converter": ["converter", "--models_dir", zoo, "-d", tmp_path / "dl", "--dry_run"],
            "mirror": ["mirror", "sync", "--models_dir", zoo, "--to", tmp_path / "m", "--dry_run"]}[tool]
    result = run_tool(*args, "--name", "huge")
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].endswith("files[0].size: an integer of about 400 digits: more bytes than any file can hold "
                             "(at most 2^63-1)")
    assert lines[1].endswith("failed: huge")


def test_sizes_are_said_without_overflow():
    from modelzoo.events import human_size

    assert human_size(38_800_000_000) == "38.8 GB" and human_size(999) == "999 B"
    assert human_size(2**63 - 1) == "9223372036.9 GB"
    assert human_size(HUGE) == "more than 1e308 B"  # (a sum of sizes: an int, never an OverflowError)


# ------------------------------------------------------------------------------------------
# 6. a name no file system takes


@pytest.mark.parametrize("name,problem", [
    ("/".join(["folder"] * 500) + "/m.bin", "too long or too deep a path (at most 4096 bytes, 256 folders)"),
    ("/".join(["d"] * 300) + "/m.bin", "too long or too deep a path (at most 4096 bytes, 256 folders)"),
    ("a" * 256 + "/m.bin", "a name in it is longer than 255 bytes"),
])
def test_a_name_no_file_system_takes_is_refused_at_load(tmp_path, zoo, server, name, problem):
    """Refused at load, the model alone: the others are downloaded (the name was an
    ENAMETOOLONG traceback in the space check that ended the whole run)."""
    good = b"good"
    write_model(zoo, "deep", [{"name": name, "data": b"x", "url": server.add("/x", b"x")}])
    write_model(zoo, "fine", [{"name": "f.bin", "data": good, "url": server.add("/f", good)}])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", out)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert "deep/model.yml: files[0].name: " in lines[0] and lines[0].endswith(problem)
    assert lines[1] == "modelzoo-downloader: failed: deep"
    assert (out / "public/fine/f.bin").read_bytes() == good


def test_a_name_too_long_below_the_output_folder_fails_its_model_only(tmp_path, zoo, server):
    """A valid name that, below a deep output folder, passes PATH_MAX: that model fails in one
    line; the space check and the other models do not stop."""
    good = b"good"
    name = "/".join(["d" * 200] * 15) + "/m.bin"  # 3,021 bytes: valid
    write_model(zoo, "deep", [{"name": name, "data": b"x", "url": server.add("/x", b"x")}])
    write_model(zoo, "fine", [{"name": "f.bin", "data": good, "url": server.add("/f", good)}])
    out = tmp_path.joinpath(*["o" * 200] * 6)  # + 1,206 bytes
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", out)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and lines[-1] == "modelzoo-downloader: failed: deep", result.stderr
    assert "File name too long" in result.stderr
    assert (out / "public/fine/f.bin").read_bytes() == good


# ------------------------------------------------------------------------------------------
# 7. a valid long name (231-255 bytes) downloads


@pytest.mark.parametrize("length", [231, 255])
def test_a_file_name_of_up_to_255_bytes_downloads(tmp_path, zoo, server, length):
    import io
    import tarfile

    member = "é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".txt"  # two-byte characters
    assert len(member.encode()) == length
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    archive = member[:-4] + ".tgz"
    data, text = buf.getvalue(), b"value 1\n"
    write_model(zoo, "long", [{"name": archive, "data": data, "url": server.add("/a", data)},
                              {"name": "n" * (length - 4) + ".cfg", "data": text, "url": server.add("/c", text)}],
                postprocessing=[
                    {"$type": "unpack_archive", "file": archive, "format": "gztar"},
                    {"$type": "regex_replace", "file": "n" * (length - 4) + ".cfg", "pattern": "1",
                     "replacement": "2"}])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--name", "long", "-o", out)
    assert result.returncode == 0, result.stderr
    folder = out / "public/long"
    assert (folder / member).read_bytes() == b"hello"
    assert (folder / ("n" * (length - 4) + ".cfg")).read_bytes() == b"value 2\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted([member, "n" * (length - 4) + ".cfg"])


# ------------------------------------------------------------------------------------------
# 9. regex_replace on a folder


def tar_gz(members: dict[str, bytes | None]) -> bytes:
    """A .tar.gz; a member whose content is None is a folder."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_regex_replace_on_a_folder_says_so(tmp_path, zoo, server):
    data = tar_gz({"conf": None, "conf/x.txt": b"a"})
    write_model(zoo, "m", [{"name": "a.tgz", "data": data, "url": server.add("/a", data)}], postprocessing=[
        {"$type": "unpack_archive", "file": "a.tgz", "format": "gztar"},
        {"$type": "regex_replace", "file": "conf", "pattern": "a", "replacement": "b"}])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].endswith(f"regex_replace: {out / 'public/m/conf'} is not a regular file"), lines[0]
    assert lines[1] == "modelzoo-downloader: failed: m"


# ------------------------------------------------------------------------------------------
# 10. names the tools keep for themselves


@pytest.mark.parametrize("name", [".converting-999999-x", ".quantizing-999999-x/m.bin",
                                  "a/.m.bin.999999-0123456789ab.part"])
def test_a_file_named_like_the_tools_own_staging_is_refused_at_load(tmp_path, zoo, server, name):
    write_model(zoo, "m", [{"name": name, "data": b"x", "url": server.add("/x", b"x")}])
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "out")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert "m/model.yml: files[0].name: " in lines[0]
    assert lines[0].endswith("is named like the tools' own temporaries and staging folders (which they remove as "
                             "leftovers)")
    assert not (tmp_path / "out").exists()


def test_an_archive_member_named_like_the_converter_s_staging_is_refused(tmp_path, zoo, server):
    data = tar_gz({".converting-999999-x": b"kept?", "ok.txt": b"ok"})
    write_model(zoo, "m", [{"name": "a.tgz", "data": data, "url": server.add("/a", data)}], postprocessing=[
        {"$type": "unpack_archive", "file": "a.tgz", "format": "gztar"}])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert "member '.converting-999999-x' is named like the tools' own temporaries and staging folders" in lines[0]
    assert not (out / "public/m/.converting-999999-x").exists() and not (out / "public/m/ok.txt").exists()


# ------------------------------------------------------------------------------------------
# 4. a pattern that backtracks without end; 5. a replacement that floods


CATASTROPHIC = {"$type": "regex_replace", "file": "c.txt", "pattern": "(a|aa)+$", "replacement": "b"}
BACKTRACKS = b"a" * 40 + b"!"  # minutes of backtracking in Python's re


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_pattern_that_backtracks_without_end_is_stopped(tmp_path, zoo, server):
    write_model(zoo, "m", [{"name": "c.txt", "data": BACKTRACKS, "url": server.add("/c", BACKTRACKS)}],
                postprocessing=[CATASTROPHIC])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out, timeout=120,
                      env={"MODELZOO_REGEX_SECONDS": "1"})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].endswith(f"regex_replace: pattern '(a|aa)+$' took more than 1 s on {out / 'public/m/c.txt'} "
                             "(a pattern that backtracks without end?)")
    assert (out / "public/m/c.txt").read_bytes() == BACKTRACKS  # as downloaded: not edited


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_ends_a_run_stuck_in_a_pattern(tmp_path, zoo, server, sig):
    write_model(zoo, "m", [{"name": "c.txt", "data": BACKTRACKS, "url": server.add("/c", BACKTRACKS)}],
                postprocessing=[CATASTROPHIC])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "m")
    try:
        _wait_for(lambda: children(proc.pid), "the substitution's child process", timeout=60)
        [child] = children(proc.pid)
        time.sleep(0.3)  # well inside the regex engine
        stderr = _interrupted(proc, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stderr.startswith("modelzoo-downloader: error: interrupted")
    _wait_for(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
              "the child gone", timeout=20)
    assert leftovers(out) == []


def test_a_replacement_that_floods_is_stopped_while_substituting(tmp_path, zoo, server):
    """Pattern 'a', 5,000 characters for each, a 10 KB file: 50 MB before; now refused at the
    bound (twice the file plus 1 MiB) before anything is written, and the file stays as it was."""
    data = b"a" * 10_000
    write_model(zoo, "m", [{"name": "c.txt", "data": data, "url": server.add("/c", data)}], postprocessing=[
        {"$type": "regex_replace", "file": "c.txt", "pattern": "a", "replacement": "b" * 5000}])
    out = tmp_path / "out"
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out, max_file_size=4 << 20)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len(lines) == 2, result.stderr
    assert lines[0].endswith(f"regex_replace: replacing 'a' in {out / 'public/m/c.txt'} would make more than "
                             f"{2 * 10_000 + (1 << 20)} bytes of it (at most twice its size plus 1 MiB)"), lines[0]
    assert (out / "public/m/c.txt").read_bytes() == data
    assert leftovers(out) == []


def test_what_a_regex_replace_may_write_counts_in_the_space_check(tmp_path, zoo, server, tmpfs):
    """A 400 KB file and its edited copy (at most 1.8 MB) on a 1 MB file system: refused before
    the first request, the need said in one line."""
    data = b"x" * 400_000
    write_model(zoo, "m", [{"name": "c.txt", "data": data, "url": server.add("/c", data)}], postprocessing=[
        {"$type": "regex_replace", "file": "c.txt", "pattern": "x", "replacement": "y", "count": 1}])
    out = tmpfs("1m")
    result = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("modelzoo-downloader: error: needs 2.2 MB on ") and line.endswith("(1.0 MB free)"), line
    assert server.requests == []
    unchecked = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out, "--no_space_check")
    assert unchecked.returncode == 0, unchecked.stderr  # (what it really writes fits: 'x' -> 'y' once)
    assert (out / "public/m/c.txt").read_bytes() == b"y" + data[1:]
