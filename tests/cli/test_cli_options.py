"""Every option checked: out-of-range numbers, empty values, options that do not apply to the
scenarios being run, and options of the other commands. Each bad command line exits 2 with one
message naming the option, no traceback, and nothing written; an option that applies to some of
the scenarios only is a warning the summary repeats.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentsim.cli.main import main

REPO = Path(__file__).resolve().parents[2]
WORKPLACE = REPO / "scenarios" / "workplace" / "office-product-launch.yaml"
CLINICAL = REPO / "scenarios" / "clinical" / "clinical-celiac-disease.yaml"
CID = "office-product-launch.base.none.r0"


def run(*extra: str, scenario: Path = WORKPLACE) -> list[str]:
    return ["run", str(scenario), "--model", "scripted/fair", "--no-variants", "--out", "{out}",
            *extra]


# (id, command line, fragment the message must hold — the option's name at least)
BAD = [
    ("replicates-0", run("--replicates", "0"), "--replicates"),
    ("replicates-negative", run("--replicates", "-3"), "--replicates"),
    ("replicates-fraction", run("--replicates", "1.5"), "--replicates"),
    ("replicates-word", run("--replicates", "abc"), "--replicates"),
    ("replicates-huge", run("--replicates", "100001"), "--replicates"),
    ("rounds-negative", run("--rounds", "-1"), "--rounds"),
    ("rounds-21", run("--rounds", "21"), "--rounds"),
    ("rounds-1000", run("--rounds", "1000"), "--rounds"),
    ("rounds-bool", run("--rounds", "true"), "--rounds"),
    ("concurrency-0", run("--concurrency", "0"), "--concurrency"),
    ("concurrency-negative", run("--concurrency", "-1"), "--concurrency"),
    ("concurrency-huge", run("--concurrency", "5000"), "--concurrency"),
    ("temperature-negative", run("--temperature", "-0.1"), "--temperature"),
    ("temperature-high", run("--temperature", "2.5"), "--temperature"),
    ("temperature-nan", run("--temperature", "nan"), "--temperature"),
    ("temperature-inf", run("--temperature", "inf"), "--temperature"),
    ("max-tokens-0", run("--max-tokens", "0"), "--max-tokens"),
    ("max-tokens-negative", run("--max-tokens", "-5"), "--max-tokens"),
    ("seed-negative", run("--seed", "-1"), "--seed"),
    ("seed-float", run("--seed", "1e3"), "--seed"),
    ("seed-huge", run("--seed", "99999999999999999999999"), "--seed"),
    ("max-turns-0", run("--max-turns", "0", scenario=CLINICAL), "--max-turns"),
    ("max-turns-101", run("--max-turns", "101", scenario=CLINICAL), "--max-turns"),
    ("limit-0", run("--limit", "0"), "--limit"),
    ("limit-negative", run("--limit", "-2"), "--limit"),
    ("retries-negative", run("--retries", "-1"), "--retries"),
    ("retries-huge", run("--retries", "101"), "--retries"),
    ("timeout-0", run("--timeout", "0"), "--timeout"),
    ("rpm-0", run("--rpm", "0"), "--rpm"),
    ("tpm-0", run("--tpm", "0"), "--tpm"),
    ("max-in-flight-0", run("--max-in-flight", "0"), "--max-in-flight"),
    ("max-failures-negative", run("--max-failures", "-1"), "--max-failures"),
    ("max-failures-120%", run("--max-failures", "120%"), "--max-failures"),
    ("max-failures-word", run("--max-failures", "lots"), "--max-failures"),
    ("model-empty", ["run", str(WORKPLACE), "--model", "", "--out", "{out}"], "--model"),
    ("role-empty-model", run("--role", "emily="), "--role"),
    ("role-empty-name", run("--role", "=scripted/fair"), "--role"),
    ("role-no-equals", run("--role", "emily"), "--role"),
    ("role-unknown", run("--role", "nobody=scripted/fair"), "--role"),
    ("out-empty", ["run", str(WORKPLACE), "--model", "scripted/fair", "--out", ""], "--out"),
    ("cache-dir-empty", run("--cache-dir", ""), "--cache-dir"),
    ("setting-unknown", run("--setting", "chaos"), "--setting"),
    ("structured-unknown", run("--structured", "jsonschema"), "--structured"),
    ("bias-on-workplace", run("--bias", "doctor:race"), "--bias"),
    ("max-turns-on-workplace", run("--max-turns", "10"), "--max-turns"),
    ("bias-catalogue-on-workplace", run("--bias-catalogue", str(REPO / "scenarios" / "clinical"
                                                                / "biases.yaml")),
     "--bias-catalogue"),
    ("bias-catalogue-without-bias", run("--bias-catalogue", str(REPO / "scenarios" / "clinical"
                                                                / "biases.yaml"),
                                        scenario=CLINICAL), "--bias-catalogue"),
    ("cases-on-yaml", run("--cases", "0-3"), "--cases"),
    ("limit-on-yaml", run("--limit", "3"), "--limit"),
    ("setting-on-clinical", run("--setting", "goal", scenario=CLINICAL), "--setting"),
    ("rounds-on-clinical", run("--rounds", "1", scenario=CLINICAL), "--rounds"),
    ("rounds-without-discussion", run("--rounds", "2", "--setting", "no-interaction"),
     "--rounds"),
    ("setting-on-setup", run("--setting", "goal", scenario=REPO / "scenarios" / "setups" /
                             sorted(os.listdir(REPO / "scenarios" / "setups"))[0]), "--setting"),
    ("mitigation-arg-not-in-run", run("--mitigation-arg", "debias_prompt:file=x.txt"),
     "--mitigation-arg"),
    ("mitigation-arg-malformed", run("--mitigation-arg", "nonsense"), "--mitigation-arg"),
    ("mitigation-unknown", run("--mitigation", "no_such_fix"), "no_such_fix"),
    ("vary-with-no-variants", [*run("--vary", "emily.gender=man,woman")], "--no-variants"),
    ("vary-malformed", run("--vary", "nonsense"), "--vary"),
    ("tag-matches-nothing", run("--tag", "no-such-tag"), "--tag"),
    ("compare-one-arm", ["compare", str(WORKPLACE), "--model", "scripted/fair", "--arms", "none",
                         "--out", "{out}"], "--arms"),
    ("compare-control-missing", ["compare", str(WORKPLACE), "--model", "scripted/fair",
                                 "--arms", "debias_prompt,self_reflection", "--out", "{out}"],
     "--control"),
    ("compare-rounds-negative", ["compare", str(WORKPLACE), "--arms", "none,debias_prompt",
                                 "--rounds", "-2", "--out", "{out}"], "--rounds"),
    ("replay-fork-option-without-from-turn", ["replay", "{run}", "--model", "scripted/fair"],
     "--model"),
    ("replay-out-without-from-turn", ["replay", "{run}", "--out", "{out}"], "--out"),
    ("replay-replicates-without-from-turn", ["replay", "{run}", "--replicates", "3"],
     "--replicates"),
    ("replay-from-turn-negative", ["replay", "{run}", "--conversation", CID, "--from-turn", "-1",
                                   "--out", "{out}"], "--from-turn"),
    ("replay-from-turn-without-conversation", ["replay", "{run}", "--from-turn", "4", "--out",
                                               "{out}"], "--from-turn"),
    ("replay-replicates-0", ["replay", "{run}", "--conversation", CID, "--from-turn", "4",
                             "--replicates", "0", "--out", "{out}"], "--replicates"),
    ("replay-fork-mitigation-unknown", ["replay", "{run}", "--conversation", CID,
                                        "--from-turn", "4", "--mitigation", "no_such_fix",
                                        "--out", "{out}"], "no_such_fix"),
    ("judge-arg-for-a-judge-not-run", ["judge", "{run}", "--judges", "assignment_bias",
                                       "--judge-arg", "lexicon:lexicon_dir=x"], "--judge-arg"),
    ("judge-role-unknown", ["judge", "{run}", "--role", "doctor=scripted/fair"], "--role"),
    ("judge-unknown", ["judge", "{run}", "--judges", "no_such_judge"], "no_such_judge"),
    ("import-limit-0", ["import", "agentclinic", str(REPO / "x.jsonl"), "--limit", "0",
                        "--out", "{out}"], "--limit"),
    ("import-out-empty", ["import", "borah", str(REPO / "x.csv"), "--out", ""], "--out"),
    ("judge-check-limit-0", ["judge-check", "rubric", "--limit", "0"], "--limit"),
    ("judge-check-threshold-negative", ["judge-check", "rubric", "--threshold", "-1"],
     "--threshold"),
    ("finetune-epochs-negative", ["finetune", "train", "--data", "x.jsonl", "--out", "{out}",
                                  "--epochs", "-1"], "--epochs"),
    ("finetune-lr-0", ["finetune", "train", "--data", "x.jsonl", "--out", "{out}", "--lr", "0"],
     "--lr"),
    ("finetune-lora-rank-0", ["finetune", "train", "--data", "x.jsonl", "--out", "{out}",
                              "--lora-rank", "0"], "--lora-rank"),
    ("finetune-batch-size-0", ["finetune", "train", "--data", "x.jsonl", "--out", "{out}",
                               "--batch-size", "0"], "--batch-size"),
    ("finetune-max-steps-0", ["finetune", "train", "--data", "x.jsonl", "--out", "{out}",
                              "--max-steps", "0"], "--max-steps"),
    ("finetune-data-seed-negative", ["finetune", "data", "--borah", "x", "--out", "{out}",
                                     "--seed", "-1"], "--seed"),
    ("export-format-unknown", ["export", "{run}", "--format", "xml", "--out", "{out}"],
     "--format"),
    ("runs-list-root-empty", ["runs", "list", "--root", ""], "--root"),
    ("resume-not-a-run", ["resume", "{out}"], "not a run folder"),
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stored") / "run"
    assert main(["run", str(WORKPLACE), "--model", "scripted/fair", "--no-variants", "--out",
                 str(out), "--json"]) == 0
    return out


def test_the_table_is_large_enough():
    assert len(BAD) >= 80 and len({name for name, _, _ in BAD}) == len(BAD)


@pytest.mark.parametrize("argv, fragment", [(a, f) for _, a, f in BAD],
                         ids=[name for name, _, _ in BAD])
def test_a_bad_command_line_exits_2_naming_the_option(argv, fragment, stored, tmp_path,
                                                      capsys):
    out = tmp_path / "out"
    before = (stored / "events.jsonl").read_bytes()
    command = [part.format(out=out, run=stored) for part in argv]
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert fragment in err, err
    assert not out.exists()  # nothing written
    assert (stored / "events.jsonl").read_bytes() == before


def test_an_option_for_some_scenarios_only_is_a_warning_the_summary_repeats(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for scenario in (WORKPLACE, CLINICAL):
        (folder / scenario.name).write_bytes(scenario.read_bytes())
    roles = [arg for role in ("doctor", "patient", "measurement", "moderator")
             for arg in ("--role", f"{role}=scripted/clinical")]
    base = ["run", str(folder), "--model", "scripted/fair", *roles, "--no-variants",
            "--bias", "doctor:race", "--max-turns", "6"]
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "a"), "--json"]) == 0
    captured = capsys.readouterr()
    warnings = json.loads(captured.out)["warnings"]
    assert any(w.startswith("--bias applies to clinical scenarios only: 1 of the 2") for w in
               warnings), warnings
    assert any(w.startswith("--max-turns applies to clinical") for w in warnings), warnings
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert set(warnings) <= set(manifest["warnings"])
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    # said at the start and repeated at the end, after the metrics
    assert out.count("--bias applies to clinical scenarios only") == 2
    assert out.rindex("--bias applies") > out.index("conversations, ")
