"""One self-contained HTML report of a run folder: overview, headline metrics in words, figures
and a browser of every conversation (``agentsim report RUN_DIR``; also written as
``report.html`` at the end of ``run``, ``compare`` and ``judge``).

The report reads the run folder only (:mod:`agentsim.report.collect`), draws its figures as SVG
(:mod:`agentsim.report.plots`, :mod:`agentsim.report.svg`), writes the static part as escaped
HTML (:mod:`agentsim.report.overview`) and embeds the conversations as compressed data the
page's script opens on demand (:mod:`agentsim.report.page`, ``assets/report.js``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["REPORT_FILE", "build_report"]

REPORT_FILE = "report.html"


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``) and
    return its path. A folder that is not a run is a :class:`~agentsim.errors.RunStoreError`
    naming it (exit status 2 on the command line); the file is replaced atomically."""
    from agentsim.core.store import RunStore
    from agentsim.report.collect import read_run
    from agentsim.report.overview import body
    from agentsim.report.page import CHUNK, document, index_data, pack_chunk
    from agentsim.report.plots import figures

    store = RunStore.open(run_dir)  # refuses a folder that is not a run, naming it
    redact = store.redactor
    chunks: list[str] = []
    chunk_of: dict[str, int] = {}
    pending: list[dict] = []

    def sink(detail: dict) -> None:
        chunk_of[detail["id"]] = len(chunks)
        pending.append(detail)
        if len(pending) == CHUNK:
            chunks.append(pack_chunk(pending, redact))
            pending.clear()

    data = read_run(run_dir, sink)
    if pending:
        chunks.append(pack_chunk(pending, redact))
    drawn, notes = figures(data)
    parent = data.manifest.get("parent")
    index = index_data(data.index, chunk_of, {
        "run_id": data.manifest.get("run_id"), "personas": data.personas,
        "from_turn": parent.get("from_turn") if parent else None,
        "parent": parent.get("run_id") if parent else None})
    html = document(title=f"agentsim report: {data.manifest.get('run_id')}",
                    body=redact(body(data, drawn, notes)),
                    index=_redacted(index, redact), chunks=chunks)
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    _write_atomic(target, html)
    return target


def _redacted(index: dict, redact) -> dict:
    """The index with secrets removed (it holds ids, factor values and summaries)."""
    import json

    return json.loads(redact(json.dumps(index, ensure_ascii=False, default=str)))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # a report is for reading and sending, like the results
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
