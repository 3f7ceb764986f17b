"""Progress reporting: tqdm bars on a terminal, quiet lines in a log, or JSON events.

The JSON events have omz_downloader's names and fields (model_download_begin,
model_file_download_begin, model_file_download_progress, model_file_download_end,
model_download_end, model_postprocessing_begin/_end), one object a line, so scripts written
for it keep working. Errors always go to stderr, one line each.
"""

from __future__ import annotations

import os
import sys
import threading
import time
TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of modelzoo-cache verify's start)
if TYPE_CHECKING:
    from typing import Any, Callable, TextIO

    from tqdm import tqdm

PROGRESS_INTERVAL = 0.25  # seconds between JSON progress events for one file


def human_size(n: float) -> str:
    """Bytes for people (1000s: KB, MB, GB). Integer-safe: an int too large for a float (a sum, or
    what a hostile descriptor says) is still one short string, never an OverflowError."""
    if n < 1000:
        return f"{n:.0f} B"
    try:
        value = float(n)
    except OverflowError:
        return "more than 1e308 B"
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}" if value < 1e15 else f"{value:.3g} {unit}"


def plain_line(kind: str, text: str) -> str:
    return f"{kind}: {text}"


def _to_devnull(stream: TextIO) -> None:
    """Point a broken stream's file descriptor at /dev/null, so that what is still buffered does
    not fail again when Python flushes it at exit."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(null, stream.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    finally:
        os.close(null)


def status_line(how: str, what: str, detail: str = "") -> str:
    """``how`` right-aligned in ten columns, then what it happened to, then the detail: the one
    shape of "downloaded/cached/published/deleted/removed ..." lines, whoever prints them."""
    return f"{how:>10}  {what}" + (f"  {detail}" if detail else "")


class Reporter:
    """Where a pipeline says what happens: progress and notes on stdout (bars on a terminal,
    lines in a log, or JSON events for scripts), failures and warnings on stderr, one line
    each, shaped by ``line`` (the command line passes one that starts with its name).
    Thread-safe: worker threads of one run share one reporter."""

    def __init__(self, fmt: str = "text", out: TextIO | None = None, err: TextIO | None = None,
                 bars: bool | None = None, line: Callable[[str, str], str] = plain_line) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout  # (never None: cli.common.run puts /dev/null in a closed one's place)
        self.err = err or sys.stderr
        self.bars = self.out.isatty() if bars is None else bars
        self.line = line
        self._lock = threading.Lock()
        self._out_closed = self._err_closed = False

    # -- low level

    def emit(self, event: str, **fields: Any) -> None:
        if self.fmt != "json":
            return
        import json  # (here: modelzoo-cache verify imports this module for human_size, and starts faster without it)

        line = json.dumps({"$type": event, **fields})
        with self._lock:
            self._write_out(line)

    def status(self, how: str, what: str, detail: str = "") -> None:
        """One line of a file's or an entry's fate, in the padded columns every pipeline uses."""
        self.say(status_line(how, what, detail))

    def say(self, text: str) -> None:
        if self.fmt != "text":
            return
        with self._lock:
            if self.bars:
                from tqdm import tqdm

                tqdm.write(text, file=self.out)
            else:
                self._write_out(text)

    def _write_out(self, line: str) -> None:
        """A stdout that cannot be written (``downloader.py ... | head``, a full disk) silences
        the progress lines, not the work: the run goes on and its exit code says how it went."""
        if self._out_closed:
            return
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except OSError as exc:
            self._out_closed = True
            _to_devnull(self.out)
            if not isinstance(exc, BrokenPipeError):  # a reader that went away is no news
                self._write_err(self.line("warning", f"cannot write progress to stdout ({exc.strerror or exc}); "
                                                     "going on without it"))

    def _write_err(self, line: str) -> None:
        """An error line; if stderr itself cannot be written, the exit code still tells."""
        if self._err_closed:
            return
        try:
            self.err.write(line + "\n")
            self.err.flush()
        except OSError:
            self._err_closed = True
            _to_devnull(self.err)

    def _stderr(self, text: str) -> None:
        with self._lock:
            self._write_err(text)

    def error(self, text: str) -> None:
        """An error that already names what failed: one line on stderr."""
        self._stderr(self.line("error", text))

    def failure(self, model: str, error: BaseException) -> None:
        """A model failed: one line on stderr."""
        self._stderr(self.line("error", f"{model}: {error}"))

    def warning(self, text: str) -> None:
        self._stderr(self.line("warning", text))

    # -- model and file events

    def model_begin(self, model: str, num_files: int) -> None:
        self.emit("model_download_begin", model=model, num_files=num_files)

    def model_end(self, model: str, successful: bool) -> None:
        self.emit("model_download_end", model=model, successful=successful)

    def postprocessing(self, model: str, begin: bool) -> None:
        self.emit("model_postprocessing_begin" if begin else "model_postprocessing_end", model=model)

    def file(self, model: str, model_file: str, size: int, label: str) -> "FileProgress":
        return FileProgress(self, model, model_file, size, label)


class FileProgress:
    """One file's progress: begin event on creation, progress updates, end event on finish()."""

    def __init__(self, reporter: Reporter, model: str, model_file: str, size: int, label: str) -> None:
        self.r = reporter
        self.model, self.model_file, self.size, self.label = model, model_file, size, label
        self.started = time.monotonic()
        self._last_emit = 0.0
        self._last_size = 0
        self._bar: "tqdm | None" = None
        reporter.emit("model_file_download_begin", model=model, model_file=model_file, size=size)
        if reporter.fmt == "text" and reporter.bars:
            from tqdm import tqdm  # (bars only on a terminal: a log or a script never pays for it)

            self._bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1000, desc=model_file,
                             file=reporter.out, leave=False, dynamic_ncols=True)

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._last_size)
        self._last_size = done
        now = time.monotonic()
        if self.r.fmt == "json" and (now - self._last_emit >= PROGRESS_INTERVAL or done == self.size):
            self._last_emit = now
            self.r.emit("model_file_download_progress", model=self.model, model_file=self.model_file, size=done)

    def finish(self, successful: bool, how: str = "downloaded") -> None:
        if self._bar is not None:
            self._bar.close()
        if successful:
            if self.r.fmt == "json" and self._last_size != self.size and how == "downloaded":
                self.r.emit("model_file_download_progress", model=self.model, model_file=self.model_file,
                            size=self.size)
            elapsed = time.monotonic() - self.started
            rate = f", {human_size(self.size / elapsed)}/s" if how == "downloaded" and elapsed > 0.05 else ""
            self.r.status(how, self.label, f"{human_size(self.size)} in {elapsed:.2f} s{rate}, SHA-384 verified")
        self.r.emit("model_file_download_end", model=self.model, model_file=self.model_file, successful=successful)
