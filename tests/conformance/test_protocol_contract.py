"""Every registered protocol through the protocol contract (agentsim/orchestrator/kernel.py): in
each setting it declares it runs shipped scenarios of its kind end to end (variants, two
replicates, probes, scripted models), every planned conversation is logged from
``conversation_started`` to ``conversation_finished``, once, and its graph can be drawn with
``agentsim graph``.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agentsim.cli import main
from agentsim.core.jobs import ConversationJob
from conformance.cases import kinds, names, params, shipped_of


@pytest.mark.parametrize("kind", params((kind,) for kind in kinds()))
def test_runs_shipped_scenarios_end_to_end(runs, kind):
    """The run exits 0 and logs each planned conversation started once and finished ok once,
    and no conversation it did not plan."""
    built = runs.judge_run(kind.id)  # the protocol's run the judges are checked on
    assert built.summary.exit_status == 0, built.summary.errors
    store = built.view().store
    planned = Counter(ConversationJob.model_validate(job).conversation_id
                      for job in store.read_manifest()["jobs"])
    started = Counter(e.conversation_id for e in store.iter_events({"conversation_started"}))
    finished = [e for e in store.iter_events({"conversation_finished"})]
    assert len(planned) > 1 and max(planned.values()) == 1
    assert started == planned
    assert Counter(e.conversation_id for e in finished) == planned
    assert all(e.ok for e in finished)
    assert {e.protocol for e in store.iter_events({"conversation_started"})} == {kind.protocol}
    if kind.setting is not None:
        assert {e.setting for e in store.iter_events({"conversation_started"})} == {kind.setting}


@pytest.mark.parametrize("protocol", names("protocol"))
def test_graph_can_be_drawn(capsys, tmp_path, protocol):
    """``agentsim graph SCENARIO`` prints the compiled graph (from start to end), who hears whom
    and the topology; with --out it writes them as Mermaid files."""
    path, scenario = shipped_of(protocol)[0]
    assert main(["graph", str(path), "--json"]) == 0
    drawing = json.loads(capsys.readouterr().out)[scenario.id]
    assert "__start__" in drawing["graph"] and "__end__" in drawing["graph"]
    assert drawing["topology"].strip()
    assert drawing["hears"] and all(isinstance(v, list) for v in drawing["hears"].values())
    assert main(["graph", str(path), "--out", str(tmp_path / "drawn")]) == 0
    written = sorted(p.name for p in (tmp_path / "drawn").glob("*.mmd"))
    assert written == [f"{scenario.id}.graph.mmd", f"{scenario.id}.topology.mmd"]
