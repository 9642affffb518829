"""Outcomes of one conversation that a reader filters by: what happened in it, in words.

Each outcome is read from the conversation's own events and its verdicts (never from metrics),
so "most last decisions stereotyped" lists exactly the conversations more than half of whose
last decisions the ``assignment_bias`` judge labelled stereotypical.
"""

from __future__ import annotations

from typing import Any

# key → the words the browser's outcome filter shows
OUTCOMES = {
    "failed": "failed",
    "unfinished": "not finished",
    "stereotyped_first": "most first decisions stereotyped",
    "stereotyped_last": "most last decisions stereotyped",
    "bias_rose": "bias rose from first to last decision",
    "bias_fell": "bias fell from first to last decision",
    "changed_after_reflection": "changed after reflection",
    "unparsed": "an unparsed decision",
    "correct_diagnosis": "correct diagnosis",
    "wrong_diagnosis": "wrong diagnosis",
    "no_diagnosis": "no diagnosis",
    "mitigated": "a mitigation acted",
}
LAST_PHASES = ("final", "single")  # the phase of a last assignment (no-interaction: single)
STEREOTYPED = "stereotypical"


def conversation_outcomes(status: str, items: list[dict[str, Any]],
                          verdicts: list[dict[str, Any]]) -> tuple[list[str], str]:
    """(outcome keys, a one-line summary) of one conversation."""
    found: list[str] = ["failed"] if status == "failed" else []
    summary: list[str] = []
    labels: dict[str, list[str]] = {}
    for verdict in verdicts:
        if verdict["judge"] == "assignment_bias" and verdict["target"].startswith("decision:"):
            labels.setdefault(verdict["target"].split(":", 1)[1], []).append(verdict["label"])
    first = labels.get("first", [])
    last = next((labels[p] for p in LAST_PHASES if p in labels), [])
    if _most(first):
        found.append("stereotyped_first")
    if _most(last):
        found.append("stereotyped_last")
    if last:
        summary.append(f"{last.count(STEREOTYPED)}/{len(last)} last stereotyped")
    changes = [v["score"] for v in verdicts
               if v["judge"] == "trajectory" and v["score"] is not None]
    if changes and sum(changes) > 0:
        found.append("bias_rose")
    elif changes and sum(changes) < 0:
        found.append("bias_fell")
    found += _clinical(verdicts, summary)
    if any(_changed(item) for item in items):
        found.append("changed_after_reflection")
    if any(item["t"] == "x" for item in items):
        found.append("mitigated")
    if any(item["t"] == "d" and item["value"] is None for item in items):
        found.append("unparsed")
    if status == "failed":
        errors = [item for item in items if item["t"] == "e"]
        summary.append(f"failed: {errors[-1]['error_type']}" if errors else "failed")
    return found, "; ".join(summary)


def _most(labels: list[str]) -> bool:
    """More than half of a conversation's decisions of one phase labelled stereotypical."""
    return labels.count(STEREOTYPED) * 2 > len(labels)


def _clinical(verdicts: list[dict[str, Any]], summary: list[str]) -> list[str]:
    for verdict in verdicts:
        if verdict["judge"] == "clinical" and verdict["target"] == "consultation":
            details = verdict["details"] or {}
            if not details.get("diagnosed", True):
                summary.append("no diagnosis")
                return ["no_diagnosis", "wrong_diagnosis"]
            summary.append(f"diagnosis {verdict['label']}")
            return ["correct_diagnosis" if verdict["label"] == "correct" else "wrong_diagnosis"]
    return []


def _changed(item: dict[str, Any]) -> bool:
    """A reflection (or any after-decision mitigation) that changed the decision."""
    if item["t"] != "x":
        return False
    detail = item["detail"] or {}
    if item["hook"] == "after_decision" and "before" in detail:
        return detail.get("before") != detail.get("after")
    return detail.get("changed") is True
