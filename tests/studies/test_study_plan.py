"""``agentsim study plan``: the plan's calls against the calls a scripted run makes, its tokens,
cost and time, and the command line (issue 17, "plan before you pay"). Offline: scripted
models only, no cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.studies import plan_study

REPO = Path(__file__).resolve().parents[2]
WORKPLACE = REPO / "scenarios" / "workplace"
CLINICAL = REPO / "scenarios" / "clinical"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def logged_calls(run_dir: Path) -> list[dict]:
    """The conversations' own model calls in a run's log (judges' calls left out)."""
    events = [json.loads(line) for line in
              (run_dir / "events.jsonl").read_text("utf-8").splitlines()]
    return [e for e in events if e["type"] == "model_call" and e["role"] != "judge"]


def conversation_calls(run_dir: Path) -> dict[str, int]:
    """Model → the conversations' own calls in a run's log."""
    counts: dict[str, int] = {}
    for event in logged_calls(run_dir):
        counts[event["model"]] = counts.get(event["model"], 0) + 1
    return counts


@pytest.fixture
def workplace_study(tmp_path: Path) -> Path:
    return write(tmp_path / "workplace.yaml", f"""
id: plan-workplace
scenarios:
  - {WORKPLACE / 'office-product-launch.yaml'}
  - {WORKPLACE / 'school-field-trip.yaml'}
models:
  lo: scripted/stereotyped?rate=0.3&final=0.5
  hi: scripted/stereotyped?rate=0.8
settings: [interaction, no-interaction, goal]
arms: [none, self_reflection, debias_prompt]
variants: none
replicates: 2
rounds: 1
seed: 7
""")


def test_workplace_plan_matches_the_calls_a_scripted_run_makes(workplace_study, tmp_path):
    plan = plan_study(workplace_study)
    data = plan.as_data()
    assert data["conversations"] == 2 * 2 * 3 * 3 * 2  # scenarios × models × settings × arms × r
    assert len(data["cells"]) == 2 * 3 * 3
    assert data["simulated_shapes"] == 2 * 3 * 3  # models and replicates reuse the shapes
    assert data["cost"]["total"] == 0.0  # scripted models are free

    out = tmp_path / "run"
    assert main(["study", "run", str(workplace_study), "--out", str(out), "--no-cache",
                 "--json"]) == 0
    actual = conversation_calls(out)
    planned = {name: row["calls"] for name, row in data["models"].items()}
    assert set(planned) == set(actual)
    total = sum(actual.values())
    assert total > 0
    assert abs(data["model_calls"] - total) <= 0.10 * total, (data["model_calls"], total)
    for name, count in actual.items():
        assert abs(planned[name] - count) <= 0.10 * count, (name, planned[name], count)
    # Discussions with fixed rounds make the same calls whatever the model says: exact.
    assert data["model_calls"] == total
    assert data["model_calls_max"] == data["model_calls"]
    # The cells' counts add up, and self-reflection costs calls the plain arm does not make.
    by_arm: dict[str, int] = {}
    for cell in data["cells"]:
        by_arm[cell["arm"]] = by_arm.get(cell["arm"], 0) + cell["model_calls"]
    assert sum(by_arm.values()) == total
    assert by_arm["self_reflection"] > by_arm["none"]
    tokens = data["tokens"]
    assert 0 < tokens["completion"] < tokens["completion_max"]
    # The bound is each call's max_tokens, as the run sent them.
    assert tokens["completion_max"] == sum(e["max_tokens"] for e in logged_calls(out))
    assert tokens["prompt"] > 50 * total  # prompts hold the scenario: tens of tokens at least


def test_clinical_plan_is_typical_for_the_stand_in_with_a_maximum(tmp_path):
    study = write(tmp_path / "clinical.yaml", f"""
id: plan-clinical
scenarios:
  - {CLINICAL / 'clinical-celiac-disease.yaml'}
  - {CLINICAL / 'clinical-graves-disease.yaml'}
models:
  doc: scripted/clinical?correct=0.5
biases: [doctor:recency, patient:gender]
arms: [none, self_reflection]
variants: none
max_turns: 8
seed: 3
""")
    data = plan_study(study).as_data()
    assert data["conversations"] == 2 * 3 * 2  # cases × (unbiased + 2 biases) × arms
    out = tmp_path / "run"
    assert main(["study", "run", str(study), "--out", str(out), "--no-cache", "--json"]) == 0
    total = sum(conversation_calls(out).values())
    assert abs(data["model_calls"] - total) <= 0.10 * total, (data["model_calls"], total)
    # The maximum: every doctor turn of the budget used (8), each a doctor call and an answer;
    # the stand-in doctor uses 4 (2 questions, 1 test, the diagnosis).
    assert data["model_calls_max"] == data["model_calls"] + 12 * (8 - 4) * 2
    assert any("typical" in note for note in data["notes"])


def test_plan_prices_tokens_and_bounds_time_by_the_rate_limits(tmp_path, capsys):
    write(tmp_path / "models.yaml", """
models:
  scripted/fair:
    input_cost_per_token: 0.000001
    output_cost_per_token: 0.000002
""")
    study = write(tmp_path / "priced.yaml", f"""
id: plan-priced
scenarios: [{WORKPLACE / 'office-product-launch.yaml'}]
models:
  fair: scripted/fair
models_config: models.yaml
settings: [interaction]
variants: none
replicates: 3
rounds: 1
""")
    out = tmp_path / "never"
    assert main(["study", "run", str(study), "--dry-run", "--json", "--rpm", "60",
                 "--out", str(out)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not out.exists()  # a dry run writes nothing
    row = data["models"]["scripted/fair"]
    assert row["price"] == {"prompt": 1e-06, "completion": 2e-06, "source": "config"}
    expected = row["prompt_tokens"] * 1e-06 + row["completion_tokens"] * 2e-06
    assert row["cost"] == pytest.approx(expected, abs=1e-6)
    assert data["cost"]["total"] == pytest.approx(expected, abs=1e-6)
    assert row["cost_max"] > row["cost"] > 0
    # 60 requests a minute: one second per call, and no token limit.
    assert row["rpm"] == 60 and row["tpm"] is None
    assert data["time"]["seconds_at_least"] == pytest.approx(row["calls"])
    assert data["conversations"] == 3 and data["model_calls"] == row["calls"] > 3

    assert main(["study", "plan", str(study)]) == 0
    text = capsys.readouterr().out
    assert "Plan of study plan-priced" in text and "3 conversations" in text
    assert f"{row['calls']} model calls" in text and "no limit" in text
    assert data["max_cost"] is None

    assert main(["study", "run", str(study), "--dry-run", "--max-cost", "0.01"]) == 0
    assert "Spending limit: $0.0100; the estimate reaches it" in capsys.readouterr().out


def test_plan_of_a_bad_study_is_one_line_and_exit_2(tmp_path, capsys):
    bad = write(tmp_path / "bad.yaml", "id: bad\nscenarios: [nowhere]\nmodels: {a: "
                "scripted/fair}\n")
    assert main(["study", "plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_a_call_longer_than_the_models_context_is_warned_of(tmp_path):
    # The embedded model reads 4,096 tokens: a plan whose calls may ask for more says so
    # before the run, where the run itself would fail those calls (kind context_window).
    from agentsim.studies import plan_study

    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "workplace" / \
        "office-product-launch.yaml"
    study = tmp_path / "long.yaml"
    study.write_text(f"id: long\nscenarios: [{scenario}]\nmodels: {{m: local/smollm2-135m-"
                     "instruct}\nsettings: [interaction]\nvariants: none\nmax_tokens: 4000\n")
    plan = plan_study(study)
    assert any("more than its context of 4,096" in w for w in plan.warnings), plan.warnings
    short = plan_study(study, sets={"max_tokens": 100})
    assert not any("context" in w for w in short.warnings), short.warnings
