"""docs/compatibility.md's table: which models the ovc backend converts, and the evidence for each.

    python -m modelzoo.devtools.evidence                       # Open Model Zoo's descriptors (openvino-dev)
    python -m modelzoo.devtools.evidence --write docs/compatibility.md
    python -m modelzoo.devtools.evidence --check docs/compatibility.md   # exit 1 if the table there is stale

(`python bench/ovc_table.py` is the same command.) A static reading, no conversion: each model's
Model Optimizer arguments are built exactly as the converter builds them and given to the same
`convert_ovc.plan` (or `pytorch.prepare`) that a real run calls first, so a model marked "no" is
refused by the converter with the argument named here. ("yes" means the arguments translate;
whether OpenVINO's frontend then reads the file is only known by converting it: the evidence
column says what, if anything, has shown it.)

Evidence, one per model (a composite model: its weakest stage), from the lists the proofs run:

- "stand-in": converted through the real command lines against a stand-in and compared with the
  framework (`zoo_proof.CI_PROOFS` / `SLOW_PROOFS`; `tf_standins.TF_MODELS` when that module
  exists; retinanet-tf against the rebuilt RetinaNet);
- "stage": the model's `--transformations_config` is an output stage of `convert.stages.STAGES`,
  whose logic the stage tests prove on synthetic graphs carrying the descriptors' node names;
- "same frontend": an ONNX model, read by the ONNX frontend that mo 2024.6 also used;
- "refused": the converter refuses it (the ovc plan's reason);
- "IR": published as IR, nothing to convert;
- "none": the arguments translate and nothing here has converted it yet.

The table goes between the markers `<!-- ovc-table:start -->` and `<!-- ovc-table:end -->`.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog
from ..convert import ovc as convert_ovc
from ..convert import pytorch, stages
from ..convert.pipeline import ConvertOptions, expand, mo_arguments, template_variables
from ..descriptor import Model
from ..errors import ModelzooError, UnsupportedArgumentError
from . import zoo_proof

START, END = "<!-- ovc-table:start -->", "<!-- ovc-table:end -->"
# weakest first: a composite model's evidence is its weakest stage's
KINDS = ("refused", "none", "stage", "same frontend", "stand-in", "IR")
LABELS = {
    "stand-in": "converted and compared with a stand-in",
    "stage": "stage logic proven on a synthetic graph",
    "same frontend": "same frontend as mo 2024.6",
    "refused": "refused",
    "IR": "published as IR",
    "none": "not converted here yet",
}
REBUILT = {"retinanet-tf": "the rebuilt RetinaNet, `tests/test_ovc.py`"}
TF_STANDINS = "modelzoo.devtools.tf_standins"


@dataclass
class Row:
    model: str
    framework: str
    answer: str  # "yes" | "yes, PyTorch export" | "IR" | "no" | "descriptor error"
    detail: str  # what stops it / what it needs
    kind: str  # one of KINDS ("refused" for a descriptor error)
    evidence: str  # what shows it (the test, the stage, the reason)


def stand_ins() -> dict[str, str]:
    """Model -> where it is converted and compared against a stand-in (the proofs' own lists)."""
    out = {name: f"`{zoo_proof.PROOF_TEST}`" for name in zoo_proof.CI_PROOFS}
    out.update({name: f"`{zoo_proof.PROOF_TEST}`, `-m slow`" for name in zoo_proof.SLOW_PROOFS})
    try:
        tf = importlib.import_module(TF_STANDINS)
    except ModuleNotFoundError as exc:
        if exc.name != TF_STANDINS:
            raise
    else:
        out.update({name: f"TensorFlow, `{TF_STANDINS}`" for name in tf.TF_MODELS})
    out.update(REBUILT)
    return out


def verdict(model: Model, root: Path) -> tuple[str, str, str | None]:
    """("yes" | "no" | "IR" | "yes, PyTorch export", what stops it or what it needs, the output
    stage's key when the arguments name a transformation config of `stages.STAGES`)."""
    if model.mo_args is None:
        return "IR", "published as IR: nothing to convert", None
    options = ConvertOptions(download_dir=Path("/dl"), output_dir=Path("/out"), models_root=root,
                             precisions=frozenset({"FP32", "FP16"}))
    variables = template_variables(model, options, None)
    framework = "onnx" if model.conversion_to_onnx_args else model.framework
    try:
        args = mo_arguments(model, variables, framework, [])
        if model.conversion_to_onnx_args:  # what the converter's ovc backend plans for PyTorch models
            onnx_args = expand(model.conversion_to_onnx_args, variables, model, "conversion_to_onnx_args")
            plan = pytorch.prepare(model.name, onnx_args, args, variables["mo_ext_dir"], {}).plan
        else:
            plan = convert_ovc.plan(model.name, args, variables["mo_ext_dir"])
    except UnsupportedArgumentError as exc:
        why = exc.why.split(" (supported: ")[0]
        return "no", f"`{exc.argument}`: {why}".replace(variables["dl_dir"], "$dl_dir").replace(
            variables["conv_dir"], "$conv_dir"), None
    except ModelzooError as exc:
        return "no", str(exc), None
    stage = plan.output_stage if plan.output_stage in stages.STAGES else None
    if model.conversion_to_onnx_args:
        return ("yes, PyTorch export", "built and converted by openvino.convert_model in a child process "
                                       "(the `pytorch` extra)", stage)
    return "yes", "", stage


def leaf_evidence(name: str, leaf: Model, answer: str, detail: str, stage: str | None,
                  proven: dict[str, str]) -> tuple[str, str]:
    """(kind, evidence) of one model or stage."""
    if answer == "IR":
        return "IR", ""
    if name in proven:
        return "stand-in", proven[name]
    if answer == "no":
        return "refused", detail
    if stage is not None:
        return "stage", f"`{stage}`"
    if leaf.framework == "onnx" and not leaf.conversion_to_onnx_args:
        return "same frontend", "ONNX"
    return "none", ""


def row(name: str, model: Model, root: Path, proven: dict[str, str]) -> Row:
    """A model's row: a composite model is as good as its worst stage."""
    leaves = model.leaf_models()
    verdicts = [(leaf, *verdict(leaf, root)) for leaf in leaves]
    worst = next((v for v in verdicts if v[1] == "no"), None) or \
        next((v for v in verdicts if v[1] == "yes, PyTorch export"), None) or verdicts[0]
    leaf, answer, detail, _ = worst
    if len(leaves) > 1:
        if answer == "IR" and all(v[1] == "IR" for v in verdicts):
            detail = "all stages published as IR"
        elif answer in ("no", "yes, PyTorch export"):
            detail = f"stage {leaf.name}: {detail}"
        elif answer != "IR":
            detail = f"{len(leaves)} stages"
        if answer == "IR" and not all(v[1] == "IR" for v in verdicts):
            answer = "yes"
    kinds = [leaf_evidence(name if len(leaves) == 1 else v[0].name, v[0], v[1], v[2], v[3], proven)
             for v in verdicts]
    kind, evidence = min(kinds, key=lambda k: KINDS.index(k[0]))
    if len(leaves) > 1 and kind == "refused":
        evidence = f"stage {next(v[0].name for v, k in zip(verdicts, kinds) if k[0] == 'refused')}: {evidence}"
    framework = model.framework if not model.stages else leaves[0].framework
    return Row(name, framework, answer, detail, kind, evidence)


def rows(root: Path) -> list[Row]:
    """Every top-level model of the zoo at `root`, in the catalog's order."""
    catalog = Catalog(root)
    proven = stand_ins()
    out = []
    for name in catalog.names():
        try:
            model = catalog.load(name)
        except ModelzooError as exc:  # an invalid descriptor is a row, not the end of the table
            why = str(exc).replace(str(root) + os.sep, "")
            out.append(Row(name, "?", "descriptor error", why, "refused", why))
            continue
        out.append(row(name, model, root, proven))
    return out


def markdown(table: list[Row], source: str) -> str:
    """The block between the markers: counts, then a row per model."""
    counts = collections.Counter(r.answer for r in table)
    kinds = collections.Counter(r.kind for r in table)
    blockers = collections.Counter(r.detail.split("`")[1].split("=")[0] for r in table
                                   if r.answer == "no" and "`" in r.detail)
    lines = [START, "",
             f"Generated by `python bench/ovc_table.py --write docs/compatibility.md` (the same as `python -m "
             f"modelzoo.devtools.evidence`) from {source}: {len(table)} models. " +
             ", ".join(f"**{counts[k]}** {k}" for k in ("yes", "yes, PyTorch export", "IR", "no", "descriptor error")
                       if counts[k]) + ".", ""]
    if blockers:
        lines += ["What stops the others (models): " + ", ".join(f"`{k}` {v}" for k, v in blockers.most_common()) + ".",
                  ""]
    lines += ["Evidence: " + ", ".join(f"**{kinds[k]}** {LABELS[k]}" for k in reversed(KINDS) if kinds[k]) + ".", ""]
    lines += ["| model | framework | ovc backend | what stops it / what it needs | evidence |", "|---|---|---|---|---|"]
    for r in table:
        evidence = LABELS[r.kind] + (f" ({r.evidence})" if r.evidence and r.kind != "refused" else "")
        if r.kind == "refused":
            evidence = "refused (why: the column before)" if r.answer in ("no", "descriptor error") \
                else f"refused: {r.evidence}"
        lines.append(f"| {r.model} | {r.framework} | {r.answer} | {r.detail.replace('|', '/')} | "
                     f"{evidence.replace('|', '/')} |")
    return "\n".join(lines + ["", END])


def replace_between_markers(text: str, block: str) -> str:
    if START in text and END in text:
        return text[: text.index(START)] + block + text[text.index(END) + len(END):]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table.

    Raises:
        SystemExit: argparse's usage errors.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models_dir", type=Path, help="a zoo (default: the one inside openvino-dev)")
    parser.add_argument("--write", type=Path, metavar="DOC.md", help="replace the table in this file")
    parser.add_argument("--check", type=Path, metavar="DOC.md", help="exit 1 if this file's table differs")
    args = parser.parse_args(argv)
    if args.models_dir:
        root, source = args.models_dir, f"`{args.models_dir}`"
    else:
        from .peer import omz_models_root

        import openvino

        root = omz_models_root()
        source = f"the descriptors in openvino-dev {openvino.__version__.split('-')[0]} (`omz_tools/models`)"
    table = rows(root)
    block = markdown(table, source)
    if args.check:
        text = args.check.read_text(encoding="utf-8")
        if START not in text or text[text.index(START): text.index(END) + len(END)] != block:
            print(f"{args.check}: the ovc table is stale: run python bench/ovc_table.py --write {args.check}",
                  file=sys.stderr)
            return 1
        return 0
    if args.write:
        args.write.write_text(replace_between_markers(args.write.read_text(encoding="utf-8"), block), encoding="utf-8")
        print(f"wrote the table of {len(table)} models into {args.write}")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
