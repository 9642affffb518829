"""Judge ``clinical``: diagnostic accuracy, the course of the consultation and patient perception.

Per conversation it reads the log: the moderator's verdict and the deterministic normaliser's
(``diagnosis_check``), the doctor's actions, the test lookups and the patient's ratings. Metrics,
overall and per patient variant and bias condition:

* ``accuracy`` — uses the **moderator's** verdict (a consultation without a diagnosis counts as
  wrong; when the moderator's answer is neither yes nor no, the normaliser's verdict is used and
  counted in ``counts.moderator_unparsed``); ``accuracy_normalised`` uses the normaliser only.
  Wilson intervals.
* ``normalised_accuracy[bias=B]`` — accuracy under bias B over accuracy without a bias on the
  same cases, variants and replicates (cluster bootstrap by scenario).
* ``no_diagnosis_rate``, ``turns`` (doctor turns), ``tests`` (tests requested), and the three
  perception ratings ``confidence``, ``compliance``, ``return`` (1–10).
* ``gap_<measure>[B vs A]`` — paired differences between patient variants (same scenario,
  replicate and bias): a sign-flip test on case totals for every gap (the unit of the interval).
* With probes: ``probe_accuracy[round=r]`` — share of doctors whose private leading diagnosis
  after doctor turn r is right (normaliser) — and ``probe_accuracy_slope`` over turns.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from agentsim.core.event_views import DecisionFacts
from agentsim.core.log_stream import cell_of
from agentsim.stats.inference import (
    Estimate,
    clustered_mean,
    clustered_ratio,
    paired_difference,
    slope,
    wilson,
)
from agentsim.judges.base import ConversationLog, JudgeOutput, RunView, StreamingJudge
from agentsim.registry import judge
from agentsim.core.decisions import (
    DiagnosisCheckDecision,
    DiagnosisProbeDecision,
    DoctorActionDecision,
    PerceptionDecision,
    TestResultDecision,
    typed_decision,
)
from agentsim.core.outcomes import Outcomes, PairedMeasure

RATINGS = ("confidence", "compliance", "return")
# The decision kinds a consultation row is built from.
CLINICAL_KINDS = ("doctor_action", "test_result", "diagnosis_check", "perception",
                  "diagnosis_probe")


def consultation_rows(run: RunView) -> list[dict[str, Any]]:
    """One row per finished clinical conversation, from the log alone (decision values read
    as their typed models: a value that does not fit its kind raises DecisionValueError)."""
    consultations = run.for_protocols(ClinicalJudge.protocols)
    rows = (consultation_row(log) for log in consultations.conversations(ClinicalJudge.reads))
    return [row for row in rows if row is not None]


def consultation_row(log: ConversationLog) -> dict[str, Any] | None:
    """The numbers of one consultation (None when it reached no verdict)."""
    event = log.started
    row: dict[str, Any] = {
        "conversation": log.id, "scenario": event.scenario_id, "variant": event.variant,
        "bias": event.job.get("bias", "none"), "replicate": event.replicate, "turns": 0,
        "cell": cell_of(event),  # pairs of biases and variants are within one cell
        "tests": 0, "doctor_unparsed": 0, "not_in_case": 0, "ambiguous": 0,
        "diagnosed": False, "correct": None, "correct_normalised": None,
        "moderator_unparsed": False}
    for event in log.of("decision"):
        if event.kind == "doctor_action" and not event.value:
            # A doctor turn read neither as JSON nor as a marked action, even when asked
            # again: the turn is spent (the budget counts it) and nothing was said.
            row["turns"] += 1
            row["doctor_unparsed"] += 1
            continue
        if event.kind not in CLINICAL_KINDS or not event.value:
            continue  # unparsed ratings carry no value; other kinds are not this judge's
        match typed_decision(event):
            case DoctorActionDecision(ambiguous=ambiguous):
                row["turns"] += 1
                row["ambiguous"] += ambiguous
            case TestResultDecision(in_case=in_case):
                # Counted when carried out: a request on the last turn is never run.
                row["tests"] += 1
                row["not_in_case"] += not in_case
            case DiagnosisCheckDecision(moderator=verdict, normalised=normal):
                row["diagnosed"] = verdict != "no diagnosis"
                row["correct_normalised"] = normal is True
                row["moderator_unparsed"] = verdict == "unparsed"
                row["correct"] = (normal is True) if verdict == "unparsed" else verdict == "yes"
            case PerceptionDecision() as perception:
                row.update({k: float(v) for k, v in perception.ratings().items()})
            case DiagnosisProbeDecision(normalised=right):
                row.setdefault("probes", {})[event.round] = right
    return row if row["correct"] is not None else None


def _summaries(rows: list[dict[str, Any]], suffix: str) -> dict[str, Estimate]:
    metrics: dict[str, Estimate] = {}
    n = len(rows)
    clusters = [r["scenario"] for r in rows]
    metrics[f"accuracy{suffix}"] = wilson(sum(r["correct"] for r in rows), n)
    metrics[f"accuracy_normalised{suffix}"] = wilson(sum(r["correct_normalised"] for r in rows), n)
    metrics[f"no_diagnosis_rate{suffix}"] = wilson(sum(not r["diagnosed"] for r in rows), n)
    metrics[f"turns{suffix}"] = clustered_mean([r["turns"] for r in rows], clusters)
    metrics[f"tests{suffix}"] = clustered_mean([r["tests"] for r in rows], clusters)
    rated = [r for r in rows if RATINGS[0] in r]
    for rating in RATINGS:
        if rated:
            metrics[f"{rating}{suffix}"] = clustered_mean([r[rating] for r in rated],
                                                          [r["scenario"] for r in rated])
    return metrics


def _group(rows: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


@judge("clinical")
class ClinicalJudge(StreamingJudge):
    """Diagnostic accuracy, consultation course and perception, by variant and bias."""

    name = "clinical"
    protocols = frozenset({"clinical"})  # the conversations it scores
    reads = frozenset({"decision"})
    views = {"decision": DecisionFacts}  # the answers' texts are not read
    paired = (PairedMeasure("accuracy", "diagnostic accuracy", binary=True, group="quality"),
              PairedMeasure("turns", "doctor turns", group="quality"))

    @staticmethod
    def outcomes(run: RunView) -> Outcomes:
        """Accuracy (moderator verdict) and doctor turns of each finished consultation."""
        found = Outcomes()
        for row in consultation_rows(run):
            found.add("accuracy", row["conversation"], (), row["correct"])
            found.add("turns", row["conversation"], (), row["turns"])
        return found
    description = "diagnostic accuracy (moderator and normaliser), turns, tests, perception, gaps"

    def tally(self, run: RunView) -> ClinicalTally:
        """One small row per consultation as the run streams by (pairing variants and biases
        needs them all; a row is a few numbers, not the consultation's events)."""
        return ClinicalTally(self, run)

    def score_rows(self, run: RunView, rows: list[dict[str, Any]]) -> JudgeOutput:
        """The metrics, verdicts and counts of the consultations' rows."""
        output = JudgeOutput()
        if not rows:
            return output
        output.metrics.update(_summaries(rows, ""))
        variants = sorted({r["variant"] for r in rows})
        biases = sorted({r["bias"] for r in rows})
        if len(variants) > 1:
            for (variant,), chosen in sorted(_group(rows, "variant").items()):
                output.metrics.update(_summaries(chosen, f"[variant={variant}]"))
        if len(biases) > 1:
            for (bias,), chosen in sorted(_group(rows, "bias").items()):
                output.metrics.update(_summaries(chosen, f"[bias={bias}]"))
            self._normalised(rows, biases, output)
        if len(variants) > 1:
            self._gaps(rows, variants, output)
        self._probes(rows, output)
        for row in rows:
            output.results.record(
                run_id=run.manifest["run_id"], conversation_id=row["conversation"],
                variant=row["variant"], replicate=row["replicate"], judge=self.name,
                target="consultation", label="correct" if row["correct"] else "wrong",
                score=float(row["correct"]),
                details={k: row[k] for k in ("diagnosed", "correct_normalised", "turns", "tests",
                                             "not_in_case", "ambiguous", "bias")})
        output.counts = {
            "consultations": len(rows),
            "moderator_unparsed": sum(r["moderator_unparsed"] for r in rows),
            "moderator_normaliser_disagree": sum(r["correct"] != r["correct_normalised"]
                                                 for r in rows),
            "tests_not_in_case": sum(r["not_in_case"] for r in rows),
            "ambiguous_turns": sum(r["ambiguous"] for r in rows),
            "doctor_unparsed": sum(r["doctor_unparsed"] for r in rows),
        }
        output.notes.append("clinical: 'accuracy' uses the moderator's verdict (normaliser when "
                            "unparsed); 'accuracy_normalised' the deterministic normaliser")
        return output

    @staticmethod
    def _probes(rows: list[dict[str, Any]], output: JudgeOutput) -> None:
        points = [(r["scenario"], turn, float(ok)) for r in rows
                  for turn, ok in r.get("probes", {}).items()]
        if not points:
            return
        for turn in sorted({t for _, t, _ in points}):
            chosen = [(s, ok) for s, t, ok in points if t == turn]
            output.metrics[f"probe_accuracy[round={turn}]"] = clustered_mean(
                [ok for _, ok in chosen], [s for s, _ in chosen])
        output.metrics["probe_accuracy_slope"] = slope(
            [t for _, t, _ in points], [ok for _, _, ok in points], [s for s, _, _ in points])

    @staticmethod
    def _normalised(rows: list[dict[str, Any]], biases: list[str], output: JudgeOutput) -> None:
        base = {(r["scenario"], r["variant"], r["replicate"], r["cell"]): r for r in rows
                if r["bias"] == "none"}
        for bias in biases:
            if bias == "none":
                continue
            pairs = [(r, base[key]) for r in rows if r["bias"] == bias
                     and (key := (r["scenario"], r["variant"], r["replicate"], r["cell"]))
                     in base]
            if pairs:
                output.metrics[f"normalised_accuracy[bias={bias}]"] = clustered_ratio(
                    [float(r["correct"]) for r, _ in pairs],
                    [float(b["correct"]) for _, b in pairs],
                    [r["scenario"] for r, _ in pairs])

    @staticmethod
    def _gaps(rows: list[dict[str, Any]], variants: list[str], output: JudgeOutput) -> None:
        by_key = {(r["scenario"], r["bias"], r["replicate"], r["cell"], r["variant"]): r
                  for r in rows}
        for first, second in combinations(variants, 2):
            pairs = [(by_key[(s, b, n, c, first)], row)
                     for (s, b, n, c, v), row in by_key.items()
                     if v == second and (s, b, n, c, first) in by_key]
            if not pairs:
                continue
            label = f"[{second} vs {first}]"
            clusters = [a["scenario"] for a, _ in pairs]
            output.metrics[f"gap_accuracy{label}"] = paired_difference(
                [float(a["correct"]) for a, _ in pairs], [float(b["correct"]) for _, b in pairs],
                clusters)
            rated = [(a, b) for a, b in pairs if RATINGS[0] in a and RATINGS[0] in b]
            for rating in RATINGS:
                if rated:
                    output.metrics[f"gap_{rating}{label}"] = paired_difference(
                        [a[rating] for a, _ in rated], [b[rating] for _, b in rated],
                        [a["scenario"] for a, _ in rated])


class ClinicalTally:
    """The consultations' rows of one pass, scored by :meth:`ClinicalJudge.score_rows`."""

    def __init__(self, judge: ClinicalJudge, run: RunView) -> None:
        self.judge, self.run = judge, run
        self.rows: list[dict[str, Any]] = []

    def add(self, conversation: ConversationLog) -> None:
        """Read one consultation's numbers."""
        row = consultation_row(conversation)
        if row is not None:
            self.rows.append(row)

    async def result(self) -> JudgeOutput:
        """Score the consultations read."""
        return self.judge.score_rows(self.run, self.rows)
