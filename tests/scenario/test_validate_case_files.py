"""``agentsim validate`` takes the published case files that ``agentsim run`` takes, and counts
their cases; a bad line makes the file invalid (exit 2), named with its line and field."""

from __future__ import annotations

import json

from agentsim.cli.main import main


def test_validate_counts_the_cases_of_a_published_case_file(anchors, capsys):
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    assert main(["validate", str(file)]) == 0
    out = capsys.readouterr().out
    assert f"{file}: 107 cases valid" in out
    assert "107 valid, 0 invalid (1 file" in out


def test_validate_counts_cases_and_scenario_files_together(anchors, repo, capsys):
    file = anchors / "agentclinic" / "agentclinic_medqa.jsonl"
    scenario = repo / "scenarios" / "clinical" / "clinical-nstemi-atypical.yaml"
    assert main(["validate", str(file), str(scenario)]) == 0
    assert "108 valid, 0 invalid (2 files" in capsys.readouterr().out


def test_a_bad_line_makes_the_case_file_invalid(anchors, tmp_path, capsys):
    lines = (anchors / "agentclinic" / "agentclinic_medqa.jsonl").read_text().splitlines()[:3]
    broken = json.loads(lines[2])
    del broken["OSCE_Examination"]["Correct_Diagnosis"]
    target = tmp_path / "three.jsonl"
    target.write_text("\n".join([*lines[:2], json.dumps(broken)]) + "\n")
    assert main(["validate", str(target)]) == 2
    captured = capsys.readouterr()
    assert f"{target}:3" in captured.err and "Correct_Diagnosis" in captured.err
    assert "0 valid, 1 invalid" in captured.out
