"""docs/compatibility.md's evidence column (modelzoo.devtools.evidence, also bench/ovc_table.py):
one kind of evidence per model, read from the proofs' own lists and the converter's own plan, and
a committed table that differs from the generator's output is caught."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from modelzoo.devtools import zoo_proof
from modelzoo.devtools.peer import omz_models_root

REPO = Path(__file__).resolve().parents[1]


def _evidence(*args):
    return subprocess.run([sys.executable, "-m", "modelzoo.devtools.evidence", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def _copy(omz: Path, zoo: Path, name: str, as_name: str | None = None, edit=None) -> None:
    source = next(omz.glob(f"*/{name}/model.yml")).parent
    target = zoo / source.parent.name / (as_name or name)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        doc = yaml.safe_load((target / "model.yml").read_text())
        edit(doc)
        (target / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _rows(block: str) -> dict[str, list[str]]:
    table = ([c.strip() for c in line.strip("|").split("|")] for line in block.splitlines() if line.startswith("| "))
    return {cells[0]: cells for cells in table if cells[0] != "model"}


def test_each_kind_of_evidence_is_told_apart_and_counted(tmp_path):
    omz, zoo = omz_models_root(), tmp_path / "zoo"
    _copy(omz, zoo, "resnet-18-pytorch")  # in zoo_proof.CI_PROOFS
    _copy(omz, zoo, "aclnet")  # ONNX
    _copy(omz, zoo, "age-gender-recognition-retail-0013")  # IR
    _copy(omz, zoo, "retinanet-tf", "retinanet-copy")  # an output stage of convert/stages, no stand-in by that name
    _copy(omz, zoo, "googlenet-v1-tf", "plain-tf")  # translates; nothing proves it
    _copy(omz, zoo, "googlenet-v1-tf", "refused-tf", lambda d: d["model_optimizer_args"].append(
        "--transformations_config=$mo_ext_dir/front/tf/no_such_family.json"))
    (zoo / "public" / "broken").mkdir()
    (zoo / "public" / "broken" / "model.yml").write_text("files: []\n")
    result = _evidence("--models_dir", zoo)
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    evidence = {name: cells[4] for name, cells in rows.items()}
    assert evidence["resnet-18-pytorch"] == ("converted and compared with a stand-in "
                                             f"(`{zoo_proof.PROOF_TEST}`)")
    assert evidence["aclnet"] == "same frontend as mo 2024.6 (ONNX)"
    assert evidence["age-gender-recognition-retail-0013"] == "published as IR"
    assert evidence["retinanet-copy"] == "stage logic proven on a synthetic graph (`front/tf/retinanet.json`)"
    assert evidence["plain-tf"] == "not converted here yet"
    assert rows["refused-tf"][2] == "no" and "no_such_family.json" in rows["refused-tf"][3]
    assert evidence["refused-tf"] == "refused (why: the column before)"
    assert rows["broken"][2] == "descriptor error" and evidence["broken"] == "refused (why: the column before)"
    counts = re.search(r"^Evidence: (.*)\.$", result.stdout, re.M).group(1)
    assert counts == ("**1** published as IR, **1** converted and compared with a stand-in, **1** same frontend as "
                      "mo 2024.6, **1** stage logic proven on a synthetic graph, **1** not converted here yet, "
                      "**2** refused")


def test_a_stale_table_is_caught_and_write_makes_it_current(tmp_path):
    zoo = tmp_path / "zoo"
    _copy(omz_models_root(), zoo, "resnet-18-pytorch")
    doc = tmp_path / "doc.md"
    doc.write_text("# Compatibility\n\nbefore\n")
    assert _evidence("--models_dir", zoo, "--write", doc).returncode == 0
    assert doc.read_text().startswith("# Compatibility\n\nbefore\n\n<!-- ovc-table:start -->")
    assert _evidence("--models_dir", zoo, "--check", doc).returncode == 0
    doc.write_text(doc.read_text().replace("converted and compared with a stand-in (", "proven by ("))
    stale = _evidence("--models_dir", zoo, "--check", doc)
    assert stale.returncode == 1
    assert stale.stderr == f"{doc}: the ovc table is stale: run python bench/ovc_table.py --write {doc}\n"


def test_the_committed_table_counts_every_model_once():
    """docs/compatibility.md (checked against the generator by tests/test_convert.py): the evidence
    counts add up to the models in the table, the 21 ONNX models read by mo's own frontend, every
    CI proof named with its test."""
    text = (REPO / "docs" / "compatibility.md").read_text()
    block = text[text.index("<!-- ovc-table:start -->"): text.index("<!-- ovc-table:end -->")]
    rows = _rows(block)
    counts = re.search(r"^Evidence: (.*)\.$", block, re.M).group(1)
    assert sum(int(n) for n in re.findall(r"\*\*(\d+)\*\*", counts)) == len(rows) == 248
    assert sum(cells[4].startswith("same frontend as mo 2024.6") for cells in rows.values()) == 21
    for name in zoo_proof.CI_PROOFS:
        assert rows[name][4] == f"converted and compared with a stand-in (`{zoo_proof.PROOF_TEST}`)", name
