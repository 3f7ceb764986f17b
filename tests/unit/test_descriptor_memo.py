"""descriptor_memo in-process: what is kept, what is refused, what survives a restart."""

from __future__ import annotations

import datetime
import json
import os

import modelzoo.descriptor_memo as memo_module
from modelzoo.descriptor import load_yaml_mapping
from modelzoo.descriptor_memo import DescriptorMemo


def test_a_parse_survives_to_the_next_run_keyed_by_the_exact_text(tmp_path):
    memo = DescriptorMemo(tmp_path)
    memo.put("a: 1\n", {"a": 1})
    memo.save()
    again = DescriptorMemo(tmp_path)
    assert again.get("a: 1\n") == {"a": 1}
    assert again.get("a: 1") is None and again.get("a:  1\n") is None  # any other text misses


def test_only_what_json_keeps_exactly_is_remembered(tmp_path):
    memo = DescriptorMemo(tmp_path)
    memo.put("d", {"when": datetime.date(2020, 1, 1)})  # a YAML date
    memo.put("k", {1: "x"})  # a non-string key would come back as "1"
    memo.put("b", {True: "x"})
    memo.put("n", {"x": float("nan")})
    memo.put("ok", {"x": [1, 2.5, True, None, "s"]})
    memo.save()
    again = DescriptorMemo(tmp_path)
    assert [t for t in ("d", "k", "b", "n", "ok") if again.get(t) is not None] == ["ok"]


def test_nothing_new_nothing_written(tmp_path):
    memo = DescriptorMemo(tmp_path)
    memo.save()
    assert not (tmp_path / memo_module.FILE_NAME).exists()


def test_a_foreign_or_broken_file_is_ignored_and_replaced(tmp_path):
    path = tmp_path / memo_module.FILE_NAME
    for junk in (b"\x00garbage", b'{"format": 999, "entries": [["a: 1\\n", {"a": 2}]]}', b"[]",
                 b'{"format": 1, "entries": [["only one"], 5, ["a: 1\\n", {"a": 3}]]}'):
        path.write_bytes(junk)
        memo = DescriptorMemo(tmp_path)
        if b"999" in junk:
            assert memo.get("a: 1\n") is None  # another format's entries are not trusted
        memo.put("b: 2\n", {"b": 2})
        memo.save()
        doc = json.loads(path.read_bytes())
        assert doc["format"] == memo_module.FORMAT and ["b: 2\n", {"b": 2}] in doc["entries"]


def test_the_least_recently_used_texts_go_first(tmp_path, monkeypatch):
    monkeypatch.setattr(memo_module, "MAX_ENTRIES", 3)
    memo = DescriptorMemo(tmp_path)
    for t in "abc":
        memo.put(t, {t: 1})
    memo.save()
    memo = DescriptorMemo(tmp_path)
    assert memo.get("a") == {"a": 1}  # used in this run: kept
    memo.put("d", {"d": 1})
    memo.save()
    memo = DescriptorMemo(tmp_path)
    assert [t for t in "abcd" if memo.get(t) is not None] == ["a", "c", "d"]  # b was the oldest unused


def test_what_json_cannot_nest_or_a_huge_text_is_not_remembered(tmp_path):
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    memo = DescriptorMemo(tmp_path)
    memo.put("deep", {"x": deep})  # json.dumps would recurse too deeply: not kept, no error
    memo.put("x" * (memo_module.MAX_TEXT + 1), {"x": 1})  # one huge descriptor must not crowd out the rest
    memo.put("small", {"x": 1})
    memo.save()
    again = DescriptorMemo(tmp_path)
    assert again.get("deep") is None and again.get("x" * (memo_module.MAX_TEXT + 1)) is None
    assert again.get("small") == {"x": 1}


def test_a_memo_that_is_absurd_a_fifo_or_from_another_parser_is_ignored(tmp_path):
    path = tmp_path / memo_module.FILE_NAME
    path.write_text("[" * 100_000 + "]" * 100_000)  # json.loads would recurse too deeply
    assert DescriptorMemo(tmp_path).get("a") is None
    path.unlink()
    os.mkfifo(path)  # a plain open would wait for a writer for ever
    assert DescriptorMemo(tmp_path).get("a") is None
    path.unlink()
    path.write_text(json.dumps({"format": memo_module.FORMAT, "parser": "some other PyYAML build",
                                "entries": [["a", {"a": 1}]]}))
    assert DescriptorMemo(tmp_path).get("a") is None  # another parser may not accept the same texts
    memo = DescriptorMemo(tmp_path)
    memo.put("a", {"a": 2})
    memo.save()
    assert DescriptorMemo(tmp_path).get("a") == {"a": 2}


def test_texts_that_differ_only_in_trailing_white_space_are_different_keys(tmp_path):
    memo = DescriptorMemo(tmp_path / "cache")
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text("d: |+\n  x\n")
    b.write_text("d: |+\n  x\n\n")  # (a kept trailing newline is part of the value)
    assert load_yaml_mapping(a, memo) == {"d": "x\n"} and load_yaml_mapping(b, memo) == {"d": "x\n\n"}
    assert memo.get("a: 1") is None and load_yaml_mapping(a, memo) == {"d": "x\n"}


def test_the_memo_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / memo_module.FILE_NAME).symlink_to(victim)
    memo = DescriptorMemo(cache)
    memo.put("a", {"a": 1})
    memo.save()
    assert victim.read_text() == "not yours" and not (cache / memo_module.FILE_NAME).is_symlink()
    assert DescriptorMemo(cache).get("a") == {"a": 1}


def test_a_memo_file_over_the_size_cap_is_not_read(tmp_path, monkeypatch):
    memo = DescriptorMemo(tmp_path)
    memo.put("a", {"a": 1})
    memo.save()
    monkeypatch.setattr(memo_module, "MAX_FILE_BYTES", (tmp_path / memo_module.FILE_NAME).stat().st_size - 1)
    assert DescriptorMemo(tmp_path).get("a") is None
