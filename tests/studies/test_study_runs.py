"""Study files: their schema errors, the pairing of every cell with every other, each cell's
planted values, and a study run read by resume, judge, fork, export and the Python API.

The scripted model plants the values (``stereotyped?rate=R``: a first decision is fully
stereotyped with probability R, else balanced): these tests check the machinery, never a
model.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.core.store import RunStore
from agentsim.errors import InputError
from agentsim.studies import load_study, run_study

REPO = Path(__file__).resolve().parents[2]
LOW, HIGH = "scripted/stereotyped?rate=0.3", "scripted/stereotyped?rate=0.8&final=0.9"
STUDY = f"""
id: planted
title: two planted models in two settings and two arms
hypotheses: ["hi is more biased than lo"]
scenarios:
  - {{path: {REPO / "scenarios" / "workplace"}, tags: [demo]}}
models:
  lo: "{LOW}"
  hi: {{model: "{HIGH}"}}
settings: [interaction, no-interaction]
arms: [none, debias_prompt]
variants: none
replicates: 3
rounds: 1
seed: 7
"""
_MADE: dict[str, Path] = {}


def write(folder: Path, text: str, name: str = "study.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def study_run(tmp_path_factory) -> Path:
    """One run of the planted study (made once: the tests below only read or copy it)."""
    if "run" not in _MADE:
        folder = tmp_path_factory.mktemp("study")
        made = run_study(write(folder, STUDY), out=folder / "run", no_cache=True)
        assert made.summary.failed == 0, made.summary.errors
        _MADE["run"] = made.path
    return _MADE["run"]


def started(run_dir: Path) -> list:
    return list(RunStore.open(run_dir).iter_events({"conversation_started"}))


@pytest.mark.parametrize("change, field", [
    ("models:\n  lo: scripted/fair\nmodel_names: [x]\n", "model_names"),
    ("models:\n  Bad Name: scripted/fair\n", "models"),
    ("models:\n  lo: scripted/fair\nreplicates: '3'\n", "replicates"),
    ("models:\n  lo: scripted/fair\nsettings: [interaction, interaction]\n", "settings"),
    ("models:\n  lo: scripted/fair\ncontrols: {model: nobody}\n", ""),
    ("models: {}\n", "models"),
])
def test_schema_errors_name_the_file_and_the_field(tmp_path, capsys, change, field):
    path = write(tmp_path, f"id: bad\nscenarios: [{REPO / 'scenarios' / 'workplace'}]\n"
                           + change)
    with pytest.raises(InputError) as error:
        load_study(path)
    assert str(path) in str(error.value)
    assert field in (error.value.field or "")
    assert main(["study", "run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err.replace("\n", "") and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written


def test_design_errors_are_caught_before_anything_runs(tmp_path, capsys):
    clinical = REPO / "scenarios" / "clinical"
    path = write(tmp_path, f"id: s\nscenarios: [{clinical}]\nmodels: {{a: scripted/clinical}}"
                           "\nsettings: [goal]\n")
    assert main(["study", "run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "settings apply to discussion scenarios only" in capsys.readouterr().err
    path = write(tmp_path, "id: s\nscenarios: [../nowhere]\nmodels: {a: scripted/fair}\n")
    assert main(["study", "run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "scenarios[0]" in capsys.readouterr().err
    path = write(tmp_path, f"id: s\nscenarios: [{REPO / 'scenarios' / 'workplace'}]\n"
                           "models: {a: scripted/fair}\nrounds: 50\n")
    assert main(["study", "run", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "rounds" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_study_files_are_not_scenarios(tmp_path, capsys):
    # A folder holding scenarios and a study runs the scenarios; naming the study is an error.
    folder = tmp_path / "mixed"
    shutil.copy(REPO / "scenarios" / "workplace" / "office-product-launch.yaml", folder
                if folder.mkdir() is None else folder)
    write(folder, STUDY)
    assert main(["validate", str(folder)]) == 0
    assert main(["validate", str(folder / "study.yaml")]) == 2
    assert "this is a study file" in capsys.readouterr().err
    for shipped in sorted((REPO / "scenarios" / "studies").glob("*.yaml")):
        assert load_study(shipped).spec.id == shipped.stem  # every shipped study validates


def test_every_cell_is_paired_with_every_other(study_run):
    events = started(study_run)
    manifest = json.loads((study_run / "manifest.json").read_text())
    scenarios = {e.scenario_id for e in events}
    # 2 models x 2 settings x 2 arms over the same scenarios and replicates.
    assert len(events) == len(manifest["jobs"]) == 8 * len(scenarios) * 3
    assert len({e.conversation_id for e in events}) == len(events)
    cells: dict[tuple, set] = defaultdict(set)
    seeds: dict[tuple, set] = defaultdict(set)
    for event in events:
        cells[(event.scenario_id, event.replicate)].add(
            (event.job["model_label"], event.setting, event.arm))
        seeds[(event.scenario_id, event.replicate)].add(event.seed)
    assert all(len(found) == 8 for found in cells.values())
    assert all(len(found) == 1 for found in seeds.values())  # one seed per scenario, replicate
    assert manifest["study"]["id"] == "planted" and len(manifest["study"]["sha256"]) == 64
    assert manifest["study"]["controls"] == {"model": "lo", "setting": "interaction",
                                             "arm": "none"}


def test_each_cell_is_judged_alone_and_covers_its_planted_rate(study_run):
    results = json.loads((study_run / "results.json").read_text())
    cells = {(c["model"], c["setting"], c["arm"]): c for c in results["cells"]}
    assert len(cells) == 8
    for (model, setting, arm), cell in cells.items():
        first = cell["metrics"]["bias_first"]
        planted = 0.3 if model == "lo" else 0.8
        assert first["ci_low"] <= planted <= first["ci_high"], (model, setting, arm, first)
        assert cell["conversations"] > 0 and cell["failed"] == 0
    # The comparison of models pairs every unit with itself under the other model: the same
    # seed draws the same number u for both, stereotyped under lo when u < 0.3 and under hi
    # when u < 0.8, so the paired difference is about 0.8 - 0.3.
    comparison = json.loads((study_run / "comparison.json").read_text())
    delta = comparison["metrics"]["delta_bias_first[model=hi]"]
    assert 0.3 < delta["value"] < 0.7 and delta["ci_low"] > 0, delta
    assert "delta_bias_first[setting=no-interaction]" in comparison["metrics"]
    assert "delta_bias_first[debias_prompt|model=hi]" in comparison["metrics"]


def test_judging_again_reproduces_every_cell(study_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study_run, copy)
    before = json.loads((copy / "results.json").read_text())["cells"]
    assert main(["judge", str(copy), "--json"]) == 0
    after = json.loads((copy / "results.json").read_text())["cells"]
    assert [c["metrics"]["bias_first"] for c in after] == \
        [c["metrics"]["bias_first"] for c in before]


def test_an_interrupted_study_resumes_to_the_same_results(study_run, tmp_path):
    cut = tmp_path / "cut"
    shutil.copytree(study_run, cut)
    log = (cut / "events.jsonl").read_text().splitlines(keepends=True)
    finishes = [i for i, line in enumerate(log) if '"conversation_finished"' in line]
    (cut / "events.jsonl").write_text("".join(log[:finishes[len(finishes) // 3] + 1]))
    (cut / "results.json").unlink()
    manifest = json.loads((cut / "manifest.json").read_text())
    (cut / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    assert main(["resume", str(cut), "--json"]) == 0
    resumed = json.loads((cut / "results.json").read_text())
    original = json.loads((study_run / "results.json").read_text())
    assert [c["metrics"] for c in resumed["cells"]] == [c["metrics"] for c in original["cells"]]
    assert len({e.conversation_id for e in started(cut)}) == len(manifest["jobs"])


def test_a_study_conversation_forks_and_exports(study_run, tmp_path):
    import agentsim

    conversation = next(e.conversation_id for e in started(study_run)
                        if e.job["model_label"] == "hi" and e.setting == "interaction")
    assert ".hi.interaction." in conversation
    fork = agentsim.fork(study_run, conversation, 4, model=LOW, out=tmp_path / "fork")
    assert fork.summary.failed == 0
    job = started(fork.path)[0].job
    assert job["models"]["default"] == LOW and job["model_label"] is None
    assert main(["export", str(study_run), "--out", str(tmp_path / "export")]) == 0
    exported = sorted(p.name for p in (tmp_path / "export").iterdir())
    assert exported, "export wrote nothing"
    run = agentsim.open_run(study_run)
    frame = run.frame("conversations")
    assert len(frame) == len(started(study_run))


def test_compare_takes_models_and_settings(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", str(REPO / "scenarios" / "workplace" / "office-product-launch.yaml"),
                 "--models", f"lo={LOW},hi={HIGH}", "--settings", "interaction,goal",
                 "--rounds", "1", "--replicates", "4", "--no-cache", "--out", str(out),
                 "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    comparison = payload["comparison"]
    assert comparison["controls"] == {"model": "lo", "setting": "interaction"}
    assert comparison["metrics"]["delta_bias_first[model=hi]"]["value"] > 0
    assert "delta_bias_first[setting=goal]" in comparison["metrics"]
    assert main(["compare", str(out), "--models", "a=scripted/fair", "--model", "scripted/fair",
                 "--out", str(tmp_path / "x")]) == 2


def test_replaced_models_and_replicates_are_recorded(tmp_path):
    path = write(tmp_path, STUDY)
    made = run_study(path, models="a=scripted/fair", replicates=1, out=tmp_path / "run",
                     no_cache=True)
    manifest = json.loads((made.path / "manifest.json").read_text())
    assert manifest["study"]["overrides"] == {"models": {"a": "scripted/fair"},
                                              "replicates": 1}
    assert manifest["study"]["sha256"] == load_study(path).sha256  # the file's own hash
    assert {e.job["model_label"] for e in started(made.path)} == {"a"}


def test_set_replaces_fields_for_one_run_and_is_checked(tmp_path, capsys):
    path = write(tmp_path, STUDY)
    one = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
    made = run_study(path, sets=["replicates=1", f"scenarios=[{one}]", "arms=[none]"],
                     out=tmp_path / "run", no_cache=True)
    events = started(made.path)
    assert {e.scenario_id for e in events} == {"office-product-launch"}
    assert len(events) == 2 * 2  # models x settings, one arm, one replicate
    overrides = json.loads((made.path / "manifest.json").read_text())["study"]["overrides"]
    assert overrides["replicates"] == 1 and overrides["arms"] == ["none"]
    assert main(["study", "run", str(path), "--set", "replicates=0",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--set: replicates" in capsys.readouterr().err
    assert main(["study", "run", str(path), "--set", "colour=red",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "not a field of study files" in capsys.readouterr().err
