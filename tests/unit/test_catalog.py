"""catalog in-process: names from folders, patterns, lists, composites, broken descriptors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_model

from modelzoo.catalog import Catalog, read_list_file, split_names
from modelzoo.errors import DescriptorError, SelectionError

FILE = [{"name": "m.onnx", "data": b"x", "url": "https://example.com/m.onnx"}]


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    for name in ("alpha-1", "alpha-2", "beta"):
        write_model(root, name, FILE, framework="onnx")
    write_model(root, "gamma-tf", FILE, group="intel")
    comp = root / "public" / "duo"
    comp.mkdir(parents=True)
    (comp / "composite-model.yml").write_text(
        "description: two stages\ntask_type: detection\nframework: onnx\n"
        "license: https://example.com/LICENSE\nstages_order: [duo-enc, duo-dec]\n")
    for stage in ("duo-enc", "duo-dec"):
        write_model(root, f"duo/{stage}", FILE, framework="onnx")
    return root


def test_names_come_from_folders_and_composites_count_once(zoo):
    catalog = Catalog(zoo)
    assert catalog.names() == ["alpha-1", "alpha-2", "beta", "duo", "gamma-tf"]
    assert catalog.folder("gamma-tf") == "intel/gamma-tf" and catalog.folder("duo-enc") == "public/duo/duo-enc"
    duo = catalog.load("duo")
    assert [s.name for s in duo.stages] == ["duo-enc", "duo-dec"] and duo.leaf_models() == duo.stages


def test_patterns_in_first_match_order_without_repeats(zoo):
    catalog = Catalog(zoo)
    assert catalog.select_names(["beta", "alpha-*", "beta", "*-2"]) == ["beta", "alpha-1", "alpha-2"]
    assert catalog.select_names(["duo*"]) == ["duo"]  # the composite covers its stages
    assert catalog.select_names(["*-dec"]) == ["duo-dec"]  # a stage alone when asked for
    with pytest.raises(SelectionError, match=r"no model matches 'alpah-1' .*closest: alpha-1"):
        catalog.select_names(["alpah-1"])


def test_a_broken_descriptor_fails_only_its_model(zoo):
    (zoo / "public" / "beta" / "model.yml").write_text("files: [")
    catalog = Catalog(zoo)
    loaded = catalog.load_each(catalog.names())
    assert [m.name for m in loaded.models] == ["alpha-1", "alpha-2", "duo", "gamma-tf"]
    assert list(loaded.failed) == ["beta"] and isinstance(loaded.failed["beta"], DescriptorError)
    assert "public/beta/model.yml" in str(loaded.failed["beta"])


def test_list_files_and_name_lists(tmp_path):
    lst = tmp_path / "m.lst"
    lst.write_text("# comment\nbeta   # why\n\n'alpha-*' extra words\n")
    assert read_list_file(lst) == ["beta", "alpha-*"]
    lst.write_text("# nothing\n")
    with pytest.raises(SelectionError, match="names no models"):
        read_list_file(lst)
    with pytest.raises(SelectionError, match="cannot read model list"):
        read_list_file(tmp_path / "missing.lst")
    assert split_names("a, b*,c") == ["a", "b*", "c"]
    with pytest.raises(SelectionError, match="empty name"):
        split_names("a,,b")


def test_a_missing_root_is_a_selection_error(tmp_path):
    with pytest.raises(SelectionError, match="does not exist"):
        Catalog(tmp_path / "nowhere")
