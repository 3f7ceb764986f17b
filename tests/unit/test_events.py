"""events in-process: the one reporter of every pipeline, on real streams (text, JSON, a stdout
that cannot be written), and the command lines' shape of its error lines."""

from __future__ import annotations

import io
import json
import os

from modelzoo.cli.common import CommandLine
from modelzoo.events import Reporter, human_size


def test_human_size():
    assert [human_size(n) for n in (0, 999, 1000, 1_500_000, 2e12)] == ["0 B", "999 B", "1.0 KB", "1.5 MB",
                                                                        "2000.0 GB"]


def test_text_lines_and_error_lines_shaped_by_the_command_line():
    out, err = io.StringIO(), io.StringIO()
    r = Reporter("text", out=out, err=err, bars=False, line=CommandLine("tool"))
    r.say("hello")
    r.emit("ignored_in_text", x=1)
    r.failure("m", ValueError("broken"))
    r.warning("careful")
    assert out.getvalue() == "hello\n"
    assert err.getvalue() == "tool: error: m: broken\ntool: warning: careful\n"


def test_json_events_in_omz_downloaders_names():
    out, err = io.StringIO(), io.StringIO()
    r = Reporter("json", out=out, err=err, bars=False)
    r.model_begin("m", 1)
    progress = r.file("m", "m.bin", 10, "public/m/m.bin")
    progress.update(10)
    progress.finish(True)
    r.model_end("m", True)
    r.say("not in json")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["$type"] for e in events] == ["model_download_begin", "model_file_download_begin",
                                            "model_file_download_progress", "model_file_download_end",
                                            "model_download_end"]
    assert events[3] == {"$type": "model_file_download_end", "model": "m", "model_file": "m.bin", "successful": True}
    assert err.getvalue() == ""


def test_a_stdout_that_cannot_be_written_silences_progress_not_errors():
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away (`| head`)
    out = os.fdopen(write_end, "w")
    err = io.StringIO()
    r = Reporter("text", out=out, err=err, bars=False, line=CommandLine("tool"))
    r.say("lost")  # a broken pipe: no news, no exception
    r.say("lost too")
    r.failure("m", RuntimeError("still said"))
    assert err.getvalue() == "tool: error: m: still said\n"
