"""Verdicts a judge records as fields (``Verdicts.record``) are written to the log as serialised,
unvalidated at that moment: each must be the very line the pydantic model would dump, and valid.
Checked for every built-in streaming judge on scripted runs of each protocol that has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsim.core.events import JudgeResult
from agentsim.core.reader import RunView
from agentsim.core.store import RunStore
from agentsim.judges.base import Verdicts
from agentsim.runs.judging import _judge_all, make_judge
from agentsim._aio import run_sync
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.scenario import load_scenarios

REPO = Path(__file__).resolve().parents[2]
RUNS = {  # protocol's scenarios → the model and the judges that record verdicts there
    "workplace": (REPO / "scenarios" / "workplace", "scripted/stereotyped?rate=0.5",
                  ("assignment_bias", "counterfactual", "trajectory", "influence")),
    "clinical": (REPO / "scenarios" / "clinical", "scripted/clinical?correct=0.5",
                 ("clinical",)),
    "setups": (REPO / "scenarios" / "setups", "scripted/stereotyped?rate=0.5", ("selection",)),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_recorded_verdicts_are_the_lines_the_model_dumps(tmp_path, name):
    folder, model, judges = RUNS[name]
    out = tmp_path / name
    run_experiment(load_scenarios([folder]), RunOptions(model=model, replicates=1, cache=False,
                                                        judges=()), out=out)
    view = RunView(RunStore.open(out))
    outputs, _ = run_sync(_judge_all(view, [(j, make_judge(j, None)) for j in judges]))
    for judge, output in outputs:
        lines = list(output.results.lines())
        assert lines, f"{judge} recorded no verdict"
        for line in lines:
            assert JudgeResult.model_validate_json(line).model_dump_json(exclude_none=True) \
                == line, judge


def test_record_checks_its_fields_and_keeps_the_models_form():
    verdicts = Verdicts()
    with pytest.raises(TypeError, match="not fields of a verdict"):
        verdicts.record(run_id="r", judge="j", target="t", colour="red")
    with pytest.raises(TypeError):
        verdicts.record(run_id="r", judge="j", target="t", details={1: 0.5})  # as the model
    verdicts.record(run_id="r", conversation_id="c", judge="j", target="t", score=1,
                    details={"x": [0.1, 1e-7, 2.5e20]}, ts=1.0)
    [line] = verdicts.lines()
    expected = JudgeResult(run_id="r", conversation_id="c", judge="j", target="t", score=1,
                           details={"x": [0.1, 1e-7, 2.5e20]}, ts=1.0)
    assert line == expected.model_dump_json(exclude_none=True)  # score 1.0, floats alike
    assert list(verdicts) == [JudgeResult.model_validate_json(line)]
    assert verdicts.identified is False  # no variant, arm, replicate or seed named
