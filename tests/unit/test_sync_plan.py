"""The mirror's decisions, in-process: what a sync does for one file (`decide`), the plan with
--delete (`make_plan`), and how concurrent runs' manifests merge (`merge_manifest`)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from conftest import sha384

from modelzoo.descriptor import HttpSource, Model, ModelFile
from modelzoo.sync.pipeline import CHECK, FETCH, PRESENT, Present, Wanted, make_plan, merge_manifest
from modelzoo.sync.plan import decide


def wanted(rel: str, data: bytes = b"data") -> Wanted:
    folder, name = rel.rsplit("/", 1)
    f = ModelFile(PurePosixPath(name), len(data), sha384(data), HttpSource(f"https://example.com/{name}"))
    model = Model(name=folder.rsplit("/", 1)[-1], subdirectory=PurePosixPath(folder),
                  config_path=Path("/zoo") / folder / "model.yml", description="", framework="tf",
                  license_url="https://example.com", task_type="detection", precisions=frozenset({"FP32"}),
                  files=[f])
    return Wanted(model.name, model, f, rel, f"{folder}/model.yml", "d" * 96)


W = wanted("public/a/a.bin")
ENTRY = W.entry("stamp-1", "2026-01-01T00:00:00Z")


def test_decide():
    there = Present(W.size, "stamp-1")
    assert decide(W, ENTRY, there) == PRESENT  # the manifest vouches for this very file
    assert decide(W, ENTRY, None) == FETCH  # gone
    assert decide(W, ENTRY, Present(W.size + 1, "stamp-1")) == FETCH  # another size: never worth a look
    assert decide(W, ENTRY, Present(W.size, "stamp-2")) == CHECK  # replaced behind our back
    assert decide(W, None, there) == CHECK  # there, but nothing vouches for it
    assert decide(W, {**ENTRY, "sha384": "0" * 96}, there) == CHECK  # the descriptor's checksum changed
    assert decide(W, ENTRY, there, full=True) == CHECK  # --verify full


def test_plan_delete_removes_only_owned_unwanted_unprotected_paths():
    keep, gone, broken = wanted("public/a/a.bin"), "public/b/b.bin", "public/c/c.bin"
    manifest = {"files": {keep.rel: ENTRY, gone: ENTRY, broken: ENTRY}}
    listing = {keep.rel: Present(keep.size, "stamp-1"), gone: Present(4, "x"), broken: Present(4, "y"),
               "public/user/notes.txt": Present(1, "z")}
    plan = make_plan([keep], manifest, listing, delete=True, protected=["public/c"])
    assert plan.decisions == [(keep, PRESENT)]
    assert plan.delete == [gone]  # not the user's file (unowned), not c's (its descriptor did not load)
    assert make_plan([keep], manifest, listing).delete == []  # without --delete


def test_merge_keeps_the_other_runs_entries_and_adds_ours():
    theirs = {"format": "modelzoo-mirror/1", "files": {"public/b/b.bin": {**ENTRY, "stamp": "b"}}}
    merged = merge_manifest(theirs, {W.rel: ENTRY}, set(), lambda rel, e: e)
    assert merged["files"] == {"public/b/b.bin": {**ENTRY, "stamp": "b"}, W.rel: ENTRY}


def test_merge_never_names_a_file_another_run_replaced():
    # our file was replaced after we published it: our entry must not be written...
    assert merge_manifest({"format": "modelzoo-mirror/1", "files": {}}, {W.rel: ENTRY}, set(),
                          lambda rel, e: None) is None
    # ...and an entry naming our (now replaced) file is removed; another run's entry is kept
    current = {"format": "modelzoo-mirror/1", "files": {W.rel: ENTRY}}
    assert merge_manifest(current, {W.rel: ENTRY}, set(), lambda rel, e: None)["files"] == {}
    current = {"format": "modelzoo-mirror/1", "files": {W.rel: {**ENTRY, "stamp": "theirs"}}}
    assert merge_manifest(current, {W.rel: ENTRY}, set(), lambda rel, e: None) is None


def test_merge_writes_nothing_when_nothing_changes():
    current = {"format": "modelzoo-mirror/1", "files": {W.rel: ENTRY}}
    assert merge_manifest(current, {W.rel: ENTRY}, set(), lambda rel, e: e) is None
    assert merge_manifest(current, {}, {"public/x/x.bin"}, lambda rel, e: e) is None
    dropped = merge_manifest(current, {}, {W.rel}, lambda rel, e: e)
    assert dropped["files"] == {}


def test_merge_drops_entries_whose_file_is_gone():
    other = "public/b/b.bin"
    current = {"format": "modelzoo-mirror/1", "files": {other: {**ENTRY, "stamp": "b"}}}
    merged = merge_manifest(current, {W.rel: ENTRY}, set(), lambda rel, e: e,
                            listing={W.rel: Present(W.size, "stamp-1")})  # b.bin was deleted by hand
    assert merged["files"] == {W.rel: ENTRY}
    merged = merge_manifest(current, {W.rel: ENTRY}, set(), lambda rel, e: e,
                            listing={W.rel: Present(W.size, "stamp-1"), other: Present(1, "b")})  # truncated
    assert merged["files"] == {W.rel: ENTRY}


# IR goes through the same plan: the same decision per file, its own scope for --delete

def ir_file(model: str, key: str, precision: str = "FP16", data: bytes = b"ir", tools: str = "ovc 2026.0"):
    from modelzoo.sync.plan import WantedIr

    rel = f"ir/{key}/public/{model}/{precision}/{model}.bin"
    return WantedIr(rel, len(data), sha384(data), model, key, tools, model)


def test_ir_is_decided_as_a_models_file_is():
    ir = ir_file("a", "1" * 96)
    entry = ir.entry("stamp-1", "2026-01-01T00:00:00Z")
    assert entry["ir_key"] == "1" * 96 and entry["tools"] == "ovc 2026.0" and entry["model"] == "a"
    assert decide(ir, entry, Present(ir.size, "stamp-1")) == PRESENT
    assert decide(ir, entry, Present(ir.size, "stamp-2")) == CHECK
    assert decide(ir, entry, None) == FETCH


def test_ir_delete_takes_unselected_models_and_our_tools_other_keys_only():
    from modelzoo.sync.plan import ir_owned

    keep = ir_file("a", "1" * 96)
    old_key = ir_file("a", "2" * 96)  # a's IR made by the same tools under another key: stale
    other_tools = ir_file("a", "3" * 96, tools="mo 2024.6")  # another OpenVINO's IR of a: kept
    unselected = ir_file("b", "4" * 96, tools="mo 2024.6")
    recorded = {i.rel: i.entry("s", "v") for i in (keep, old_key, other_tools, unselected)}
    recorded[W.rel] = ENTRY  # a model's file: never sync --ir's to delete
    plan = make_plan([keep], {"files": recorded}, {}, delete=True, owned=ir_owned({"a"}, {"ovc 2026.0"}))
    assert plan.decisions == [(keep, FETCH)]
    assert plan.delete == sorted([old_key.rel, unselected.rel])
    # and a model files' sync never deletes IR
    assert make_plan([W], {"files": recorded}, {}, delete=True).delete == []


def test_the_signature_of_an_ir_folder_goes_only_when_the_manifest_names_nothing_in_it():
    from modelzoo.sync.plan import freed_signatures

    gone, kept = ir_file("b", "4" * 96), ir_file("a", "1" * 96)
    half = ir_file("c", "5" * 96)
    half_sibling = half.rel.replace("c.bin", "c.xml")  # still recorded (another run wrote it since)
    after = {kept.rel: {}, half_sibling: {}}
    folder = gone.rel.rpartition("/")[0]
    assert freed_signatures([gone.rel, half.rel, W.rel], after) == [folder + ".sig"]
    assert freed_signatures([], after) == []
    # a file deeper than <precision>/ names no precision folder: no signature of the mirror's is there
    assert freed_signatures([f"ir/{'6' * 96}/public/d/FP16/sub/d.bin"], {}) == []
