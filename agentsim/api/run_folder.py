"""A stored run folder as Python values: :class:`Run` (manifest, results, metric records and
frames, events as pandas frames). Part of :mod:`agentsim.api`; pandas and the run core load
inside the methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentsim.errors import InputError

__all__ = ["CONVERSATION_COLUMNS", "EXIT_STATUS", "FRAMES", "Run"]

# Frame kind → the event type it holds and the event's class in agentsim.core.events (Run.frame).
FRAMES: dict[str, tuple[str, str]] = {
    "messages": ("message", "Message"), "decisions": ("decision", "Decision"),
    "model_calls": ("model_call", "ModelCall"),
    "conversations": ("conversation_started", "ConversationStarted"),
    "judge_results": ("judge_result", "JudgeResult"),
    "mitigations": ("mitigation_applied", "MitigationApplied"),
}
CONVERSATION_COLUMNS = ["run_id", "conversation_id", "scenario_id", "protocol", "model",
                        "setting", "variant", "arm", "bias", "replicate", "seed", "ok", "turns",
                        "started",
                        "finished"]
EXIT_STATUS = {"finished": 0, "incomplete": 1, "stopped": 3}


class Run:
    """A run folder: its manifest, results, metrics and events as pandas frames.

    ``summary`` (the :class:`~agentsim.runs.runner.RunSummary`) is there for a run made, resumed
    or forked by this process; ``comparison`` and ``plots`` for one made by
    :func:`agentsim.api.compare`; ``previous_results`` (the archived results file) after
    :func:`agentsim.api.judge`.
    """

    def __init__(self, path: str | Path, summary: Any = None, *, comparison: Any = None,
                 plots: Sequence[Path] = (), previous_results: Path | None = None,
                 skip_bad_lines: bool = False) -> None:
        from agentsim.core.store import RunStore

        self.path = Path(path)
        RunStore.open(self.path)  # not a run folder: RunStoreError now, not at first use
        self.summary = summary
        self.plots = list(plots)
        self.previous_results = previous_results
        self.skip_bad_lines = skip_bad_lines
        self._comparison = comparison

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.manifest.get('status')!r})"

    def _store(self) -> Any:
        from agentsim.core.store import RunStore

        return RunStore.open(self.path, skip_bad_lines=self.skip_bad_lines)

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest (resolved options, scenarios, models, seeds, status), read afresh."""
        return self._store().read_manifest()

    @property
    def results(self) -> dict[str, Any]:
        """``results.json``, read afresh (a later judging replaces it); RunStoreError when the
        run was never judged."""
        from agentsim.core.store import RESULTS
        from agentsim.errors import RunStoreError

        if not (self.path / RESULTS).exists():
            raise RunStoreError(f"{self.path}: no {RESULTS}: the run has not been judged "
                                f"(status {self.manifest.get('status')!r}); resume or judge it")
        return self._store().read_results()

    @property
    def exit_status(self) -> int | None:
        """The command line's exit status for this run: 0 everything planned succeeded, 1
        conversations failed or were not run, 3 stopped by max_failures; None while unfinished."""
        if self.summary is not None:
            return self.summary.exit_status
        return EXIT_STATUS.get(self.manifest.get("status", ""))

    @property
    def comparison(self) -> dict[str, Any] | None:
        """The arm comparison (:func:`agentsim.analysis.compare.compare_arms`: control, arms,
        metrics as Estimates, counts, notes), or None when the run has none."""
        if self._comparison is None and (self.path / "comparison.json").exists():
            from agentsim.core.metrics import estimate_of

            data = self._store().read_results("comparison.json")
            self._comparison = {**data, "metrics": {k: estimate_of(v)
                                                    for k, v in data["metrics"].items()}}
        return self._comparison

    def records(self, comparison: bool = False) -> list[Any]:
        """The metrics as :class:`~agentsim.core.metrics.MetricRecord` (results written before
        records existed are converted from their names); ``comparison``: the arm comparison's,
        judge ``compare``, a bracket without a key read as the arm."""
        from agentsim.core.metrics import records_from_results, records_of

        if not comparison:
            return records_from_results(self.results)
        if self.comparison is None:
            raise InputError(f"{self.path} holds no comparison (made by agentsim compare)",
                             source="comparison")
        return records_of("compare", self.comparison["metrics"], unnamed="arm")

    def metrics(self, comparison: bool = False) -> Any:
        """The metrics as a DataFrame, one row per metric: ``judge``, ``metric``, one column per
        breakdown dimension (``round``, ``variant``, ``kind``, ...; missing where a metric has
        no such breakdown), ``value``, ``ci_low``, ``ci_high``, ``n``, ``p``, then ``p_raw``,
        ``clusters``, ``method`` and ``name`` (its key in results.json's ``metrics``)."""
        from agentsim.core.metrics import records_frame

        return records_frame(self.records(comparison))

    def frame(self, kind: str, *, complete_only: bool = True) -> Any:
        """The events of one kind as a DataFrame, a column per event field (``type`` left out).

        Kinds: ``messages``, ``decisions``, ``model_calls``, ``mitigations`` (events
        ``message``, ``decision``, ``model_call``, ``mitigation_applied``), ``conversations``
        (one row per conversation from its ``conversation_started`` and
        ``conversation_finished``: ids, scenario, protocol, setting, bias, ok, turns, times) and
        ``judge_results`` (the ``judge_result`` verdicts of the judging whose results are in
        results.json). The log is read as judges read it: of a conversation run more than once
        only its last attempt counts, and (``complete_only``, the default) only conversations
        whose last attempt finished successfully; ``complete_only=False`` adds failed ones.
        """
        import pandas as pd

        if kind not in FRAMES:
            raise InputError(f"unknown frame kind {kind!r}; kinds: {', '.join(FRAMES)}",
                             source="kind")
        from agentsim.core import events
        from agentsim.runs.judging import pass_verdicts

        store = self._store()
        if kind == "conversations":
            return pd.DataFrame(_conversations(store, complete_only), columns=CONVERSATION_COLUMNS)
        kind_type, class_name = FRAMES[kind]
        found = (pass_verdicts(store) if kind == "judge_results"
                 else store.iter_events({kind_type}, complete_only=complete_only))
        columns = [n for n in getattr(events, class_name).model_fields if n != "type"]
        return pd.DataFrame([e.model_dump(exclude={"type"}) for e in found], columns=columns)


def _conversations(store: Any, complete_only: bool) -> list[dict[str, Any]]:
    """One row per conversation: its start's identifiers and job, its finish's outcome."""
    from agentsim.core.log_stream import cell_of

    rows: dict[str, dict[str, Any]] = {}
    ids = {"run_id", "conversation_id", "scenario_id", "protocol", "setting", "variant", "arm",
           "replicate", "seed"}
    for event in store.iter_events({"conversation_started", "conversation_finished"},
                                   complete_only=complete_only):
        if event.type == "conversation_started":
            rows[event.conversation_id] = {**event.model_dump(include=ids),
                                           "bias": event.job.get("bias"), "started": event.ts,
                                           # a study's name of the cell's models
                                           "model": cell_of(event)[0]}
        elif event.conversation_id in rows:
            rows[event.conversation_id] |= {"ok": event.ok, "turns": event.turns,
                                            "finished": event.ts}
    return list(rows.values())
