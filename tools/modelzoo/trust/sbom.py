"""A mirror's CycloneDX 1.6 ML-BOM (``DEST/modelzoo-sbom.cdx.json``): what the mirror holds in
the form a security team's tools read.

Built from the manifest (so its hashes are the manifest's SHA-384) and the selected models'
descriptors: one ``machine-learning-model`` component per model (license, task, inputs and
outputs, the card's accuracy from accuracy-check.yml and the measured one from the accuracy
tool's ``--json`` records), its files as nested ``file`` components with their SHA-384 and
source URL; each IR (key, model, precision) a ``machine-learning-model`` whose pedigree names
the source model, with its key, the tools that made it and, for INT8, quantization.json's
options. Written as JSON directly (cyclonedx-python-lib has no model-card classes yet); the
tests validate it against that library's bundled schema.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..descriptor import Model

SPEC = "1.6"
_OUTPUT = re.compile(r"^--output(?:=|$)")


def _license(url: str) -> list[dict[str, Any]]:
    return [{"license": {"name": url.rsplit("/", 1)[-1] or url, "url": url}}] if url else []


def _inputs(model: Model) -> list[dict[str, str]]:
    out = []
    for i in model.input_info:
        shape = f" [{','.join(map(str, i.shape))}]" if i.shape else ""
        out.append({"format": f"{i.name}{shape}{' ' + i.layout if i.layout else ''}"})
    return out


def _outputs(model: Model) -> list[dict[str, str]]:
    for arg in model.mo_args or []:
        if _OUTPUT.match(arg) and "=" in arg:
            return [{"format": name} for name in arg.split("=", 1)[1].split(",") if name]
    return []


def _card_metrics(model: Model, root: Path) -> list[dict[str, Any]]:
    yml = root / model.subdirectory / "accuracy-check.yml"
    if not yml.is_file():
        return []
    from ..accuracy.config import load_accuracy_config
    from ..errors import ModelzooError

    try:
        config = load_accuracy_config(yml, model.name)
    except ModelzooError:
        return []
    return [{"type": m.name or m.type, "value": str(m.reference), "slice": f"{config.dataset} (model card)"}
            for m in config.metrics if m.reference is not None]


def _measured(records: list[dict[str, Any]], name: str, precision: str | None = None) -> list[dict[str, Any]]:
    return [{"type": str(r.get("metric")), "value": str(r.get("value")),
             "slice": f"measured {r.get('precision')} on {r.get('images')} images"}
            for r in records if r.get("model") == name and (precision is None or r.get("precision") == precision)]


def _file(rel: str, entry: dict[str, Any], name: str) -> dict[str, Any]:
    c: dict[str, Any] = {"type": "file", "bom-ref": f"file:{rel}", "name": name,
                         "hashes": [{"alg": "SHA-384", "content": entry["sha384"]}],
                         "properties": [{"name": "modelzoo:size", "value": str(entry["size"])},
                                        {"name": "modelzoo:mirror_path", "value": rel}]}
    if entry.get("source"):
        c["externalReferences"] = [{"type": "distribution", "url": entry["source"]}]
    return c


def build(manifest: dict[str, Any], models: Iterable[Model], root: Path, records: list[dict[str, Any]] | None = None,
          quantization: dict[str, dict[str, Any]] | None = None, timestamp: str | None = None) -> dict[str, Any]:
    """The BOM of a mirror whose manifest is ``manifest``. ``quantization``: the IR folder
    (``ir/<key>/<model folder>/<precision>``) -> its quantization.json; ``records``: the accuracy
    tool's --json records."""
    records = records or []
    leaves = {leaf.name: leaf for m in models for leaf in m.leaf_models()}
    files = manifest.get("files") or {}
    by_model: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    ir: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for rel, entry in sorted(files.items()):
        if rel.startswith("ir/"):
            ir.setdefault(rel.rpartition("/")[0], []).append((rel, entry))
        else:
            by_model.setdefault(entry.get("model") or rel.split("/")[-2], []).append((rel, entry))
    components = []
    for name in sorted(by_model):
        leaf = leaves.get(name)
        c: dict[str, Any] = {"type": "machine-learning-model", "bom-ref": f"model:{name}", "name": name}
        card: dict[str, Any] = {}
        if leaf is not None:
            c["description"] = leaf.description
            if _license(leaf.license_url):
                c["licenses"] = _license(leaf.license_url)
            params: dict[str, Any] = {"task": leaf.task_type, "modelArchitecture": leaf.framework}
            if _inputs(leaf):
                params["inputs"] = _inputs(leaf)
            if _outputs(leaf):
                params["outputs"] = _outputs(leaf)
            card["modelParameters"] = params
            metrics = _card_metrics(leaf, root) + _measured(records, name)
            if metrics:
                card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
        if card:
            c["modelCard"] = card
        first = by_model[name][0][1]
        if first.get("descriptor"):
            c["properties"] = [{"name": "modelzoo:descriptor", "value": first["descriptor"]},
                               {"name": "modelzoo:descriptor_sha384", "value": first.get("descriptor_sha384", "")}]
        prefix = f"{leaf.subdirectory.as_posix()}/" if leaf is not None else None
        c["components"] = [_file(rel, e, rel[len(prefix):] if prefix and rel.startswith(prefix) else rel)
                           for rel, e in by_model[name]]
        components.append(c)
    for folder, entries in sorted(ir.items()):
        parts = folder.split("/")
        key, precision = parts[1], parts[-1]
        first = entries[0][1]
        name = first.get("model", "/".join(parts[2:-1]))
        props = [{"name": "modelzoo:ir_key", "value": key}, {"name": "modelzoo:precision", "value": precision},
                 {"name": "modelzoo:tools", "value": first.get("tools", "")}]
        for opt, value in sorted(((quantization or {}).get(folder) or {}).get("options", {}).items()):
            props.append({"name": f"modelzoo:quantization:{opt}", "value": json.dumps(value, sort_keys=True)})
        c = {"type": "machine-learning-model", "bom-ref": f"ir:{key}:{name}:{precision}",
             "name": f"{name} {precision} IR", "version": key[:16],
             "description": f"OpenVINO IR of {name}, {precision}, made by {first.get('tools', '')}",
             "pedigree": {"ancestors": [{"type": "machine-learning-model", "name": name}]},
             "properties": props,
             "components": [_file(rel, e, rel.rpartition("/")[2]) for rel, e in entries]}
        measured = _measured(records, name, precision)
        if measured:
            c["modelCard"] = {"quantitativeAnalysis": {"performanceMetrics": measured}}
        components.append(c)
    metadata: dict[str, Any] = {"tools": {"components": [{"type": "application", "name": "modelzoo",
                                                          "version": __version__}]}}
    if timestamp or manifest.get("updated"):
        metadata["timestamp"] = timestamp or manifest["updated"]
    return {"bomFormat": "CycloneDX", "specVersion": SPEC, "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
            "metadata": metadata, "components": components}


def encode(bom: dict[str, Any]) -> bytes:
    return (json.dumps(bom, indent=1, sort_keys=True) + "\n").encode()
