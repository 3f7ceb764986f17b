"""How sync and verify speak of each file, through the run's one Reporter. The per-file routine
(pipeline.Mirror) is the same for a model's files and for IR; what it says differs by kind, as
docs/mirror.md promises: model files have progress lines and the ``mirror_file_begin`` /
``mirror_file_end`` / ``mirror_delete`` / ``mirror_verify_file`` events; IR has its
``published`` lines and ``mirror_ir_published`` events, and no per-file events in an audit.
"""

from __future__ import annotations

from ..events import Reporter, human_size, status_line
from .plan import Finding, Item, Outcome, WantedIr


def progress_line(how: str, rel: str, size: int, seconds: float) -> str:
    return status_line(how, rel, f"{human_size(size)} in {seconds:.2f} s, SHA-384 verified")


class Voice:
    """What a sync or an audit says of one item (the failure line itself is the pipeline's);
    this one says nothing, the kinds below say what theirs promise."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def begin(self, w: Item) -> None:
        """Before the item's job."""

    def end(self, o: Outcome, seconds: float) -> None:
        """After it, whatever the outcome."""

    def deleted(self, rel: str) -> None:
        """--delete removed rel."""

    def audited(self, w: Item, f: Finding) -> None:
        """verify's finding on the item."""


class FileVoice(Voice):
    """A model's files: a progress line each, and an event at every step."""

    def begin(self, w: Item) -> None:
        self.reporter.emit("mirror_file_begin", model=w.model, path=w.rel, size=w.size)

    def end(self, o: Outcome, seconds: float) -> None:
        w = o.wanted
        if o.error is None:
            self.reporter.say(progress_line(o.how, w.rel, w.size, seconds))
        self.reporter.emit("mirror_file_end", model=w.model, path=w.rel, size=w.size,
                           successful=o.error is None, how=o.how if o.error is None else "failed")

    def deleted(self, rel: str) -> None:
        self.reporter.status("deleted", rel)
        self.reporter.emit("mirror_delete", path=rel)

    def audited(self, w: Item, f: Finding) -> None:
        self.reporter.emit("mirror_verify_file", path=w.rel, model=w.model, status=f.status, detail=f.detail)


class IrVoice(Voice):
    """IR made here: a line and a ``mirror_ir_published`` event for each file published (a file
    adopted in place gets a line only); deletions a line; an audit says nothing per file (its
    table and summary do)."""

    def end(self, o: Outcome, seconds: float) -> None:
        w = o.wanted
        if o.error is not None or not isinstance(w, WantedIr):
            return
        if o.how == "copied":
            self.reporter.status("published", w.rel, f"{w.size} bytes, SHA-384 verified")
            self.reporter.emit("mirror_ir_published", model=w.model, path=w.rel, size=w.size, key=w.key,
                               tools=w.tools)
        else:
            self.reporter.status(o.how, w.rel, f"{w.size} bytes, SHA-384 verified in place")

    def deleted(self, rel: str) -> None:
        self.reporter.status("deleted", rel)
