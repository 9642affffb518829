"""The command line: exit statuses, clear errors without tracebacks, JSON output, fast help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentsim.cli.main import main

BAD_SCENARIO = """\
id: bad-one
domain: office
description: A test.
personas:
  - id: ann
    name: Ann
    attributes: {gender: woman}
    age: 40
tasks:
  - id: t1
    text: Do a thing.
    stereotype: {gender: man}
protocol:
  rounds: many
"""


def agentsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentsim", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from agentsim.cli.main import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('litellm', 'langgraph', 'llama_cpp', 'pandas', 'scipy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert agentsim("--help").returncode == 0


def test_validate_reports_file_and_field_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO)
    result = agentsim("validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(bad) in result.stderr
    assert "personas[0].age: unknown field" in result.stderr
    assert "protocol.rounds" in result.stderr


def test_validate_accepts_the_shipped_scenarios(workplace, capsys):
    assert main(["validate", str(workplace)]) == 0
    assert "0 invalid" in capsys.readouterr().out


def test_bad_yaml_names_the_line(tmp_path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: x\npersonas: [\n  - oops: : :\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml:" in err and "not valid YAML" in err


def test_run_with_a_bad_file_writes_nothing(tmp_path, workplace):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SCENARIO)
    out = tmp_path / "run"
    result = agentsim("run", str(workplace), str(bad), "--model", "scripted/fair",
                      "--out", str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not out.exists()


def test_run_json_output_shape(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    code = main(["run", str(workplace / "office-product-launch.yaml"), "--model",
                 "scripted/stereotyped?rate=0.5", "--replicates", "3", "--out", str(out),
                 "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["run_dir"] == str(out)
    assert payload["conversations"] == 3 and payload["failed"] == 0
    for name in ("bias_first", "bias_last", "escalation"):
        assert set(payload["metrics"][name]) >= {"value", "ci_low", "ci_high", "n"}


def test_run_refuses_an_existing_run_folder_and_keeps_it(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    args = ["run", str(workplace / "office-product-launch.yaml"), "--model", "scripted/fair",
            "--out", str(out), "--json"]
    assert main(args) == 0
    before = (out / "events.jsonl").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "events.jsonl").read_bytes() == before


def test_bad_model_and_role_are_input_errors(tmp_path, workplace, capsys):
    scenario = str(workplace / "office-product-launch.yaml")
    assert main(["run", scenario, "--model", "scripted/stereotyped?rate=lots"]) == 2
    assert "rate" in capsys.readouterr().err
    assert main(["run", scenario, "--model", "scripted/nonsense"]) == 2
    assert "unknown scripted profile" in capsys.readouterr().err
    assert main(["run", scenario, "--model", "scripted/fair", "--role", "nobody=scripted/fair"]) == 2
    assert "unknown role 'nobody'" in capsys.readouterr().err
    assert main(["run", scenario, "--model", "local/no-such-model"]) == 2
    assert "unknown local model" in capsys.readouterr().err


def test_role_override_routes_one_persona(tmp_path, workplace, capsys):
    out = tmp_path / "run"
    assert main(["run", str(workplace / "office-product-launch.yaml"), "--model", "scripted/fair",
                 "--role", "emily=scripted/stereotyped?rate=1", "--out", str(out), "--json"]) == 0
    from agentsim.core.store import RunStore

    models = {(e.agent, e.model) for e in RunStore.open(out).iter_events({"model_call"})}
    assert {m for a, m in models if a == "emily"} == {"scripted/stereotyped?rate=1"}
    assert {m for a, m in models if a != "emily"} == {"scripted/fair"}


def test_import_borah_command(tmp_path, anchors, capsys):
    out = tmp_path / "imported"
    assert main(["import", "borah", str(anchors / "borah" / "situations.csv"), "--out",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "107 scenario files written" in text and "4 rows not converted" in text
    assert main(["validate", str(out)]) == 0
