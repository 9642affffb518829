"""The run reader: a view limited to some protocols' conversations, which is what a judge that
declares ``protocols`` is given (so no judge branches on a protocol's name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli import main
from agentsim.core.reader import RunView
from agentsim.core.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory) -> Path:
    """One run holding a discussion and a consultation."""
    out = tmp_path_factory.mktemp("mixed") / "run"
    code = main(["run", str(ROOT / "scenarios/workplace/office-annual-conference.yaml"),
                 str(ROOT / "scenarios/clinical/clinical-celiac-disease.yaml"),
                 "--model", "scripted/stereotyped", "--role", "doctor=scripted/clinical",
                 "--role", "patient=scripted/clinical", "--role", "moderator=scripted/clinical",
                 "--out", str(out), "--no-cache"])
    assert code == 0
    return out


def _protocols(view: RunView, *types: str) -> set[str]:
    started = {e.conversation_id: e.protocol for e in view.events("conversation_started")}
    return {started[e.conversation_id] for e in view.events(*types)}


def test_a_view_for_some_protocols_holds_only_their_conversations(mixed_run):
    view = RunView(RunStore.open(mixed_run))
    assert _protocols(view, "decision", "message") == {"discussion", "clinical"}
    clinical = view.for_protocols({"clinical"})
    assert _protocols(clinical, "decision", "message") == {"clinical"}
    assert _protocols(view.for_protocols({"discussion"}), "decision") == {"discussion"}
    everything = view.for_protocols(None)  # no limit: the same events as the plain view
    assert [e.conversation_id for e in everything.events("decision")] == [
        e.conversation_id for e in view.events("decision")]
    assert any(e.type == "run_finished" for e in clinical.events("run_finished"))  # run-level
    assert clinical.store is view.store and clinical.calls is view.calls


def test_judges_that_declare_protocols_score_only_those(mixed_run):
    results = json.loads((mixed_run / "results.json").read_text())
    counts = results["counts"]
    assert counts["clinical"]["consultations"] == 1  # the consultation alone
    assert counts["influence"]["conversations"] == 1  # the discussion alone
