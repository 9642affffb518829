"""Judge checks: accuracy on labelled texts and robustness to changes that should not matter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agentsim.cli.main import main
from agentsim.errors import InputError
from agentsim.judges.check import PERTURBATIONS, check_judge, load_borah, load_labelled
from agentsim.judges.rubric_judge import RubricJudge

WORDS = "men,women,woman,man,guys,emotional,older,young"


def report(model: str, threshold: int | None = None) -> dict:
    return check_judge(RubricJudge(), model, load_labelled(), threshold)


def test_an_order_biased_judge_is_caught_by_the_swap_perturbation():
    # Threshold 1: one group word makes a 'bias' verdict, so what a line holds decides it.
    biased = report(f"scripted/judge?words={WORDS}&first_line=1", threshold=1)["metrics"]
    fair = report(f"scripted/judge?words={WORDS}", threshold=1)["metrics"]
    # Asked again, both judges agree with themselves (deterministic scripted verdicts) ...
    assert biased["consistency"]["value"] == fair["consistency"]["value"] == 1.0
    # ... but reversing the lines moves only the judge that reads the first line.
    assert fair["robustness[swapped_order]"]["value"] == 1.0
    assert biased["robustness[swapped_order]"]["value"] < 1.0
    assert biased["excess_sensitivity[swapped_order]"]["value"] > 0


def test_accuracy_and_kappa_match_a_hand_count():
    result = report(f"scripted/judge?words={WORDS}")
    items = load_labelled()
    from agentsim.testing.scripted_judge import count_words

    predicted = [count_words(WORDS.split(","), item.text) >= 2 for item in items]
    correct = sum(p == item.biased for p, item in zip(predicted, items, strict=True))
    assert result["metrics"]["accuracy"]["value"] == pytest.approx(correct / len(items))
    assert result["threshold"] == 2 and result["items"] == 16 and result["unreadable"] == 0


def test_an_identity_statement_moves_a_word_counting_judge():
    metrics = report(f"scripted/judge?words={WORDS}")["metrics"]
    # The added sentence contains "woman": a judge that counts group words is not robust to it.
    assert metrics["robustness[identity_statement]"]["value"] < 1.0
    assert set(PERTURBATIONS) == {"swapped_order", "identity_statement", "irrelevant_sentence"}


def test_published_fine_tuning_files_load_as_a_labelled_set(anchors):
    items = load_borah(anchors / "borah")
    biased = [i for i in items if i.biased]
    assert len(items) == 252 + 86 + 88 + 23
    assert len(biased) == 252 + 86
    assert all(i.text and not i.text.startswith(":") for i in items)


def test_bad_labelled_file_names_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x", "biased": true}\n{"id": "b", "text": "y"}\n')
    with pytest.raises(InputError) as error:
        load_labelled(bad)
    assert error.value.line == 2 and error.value.field == "biased"


def test_cli(capsys):
    assert main(["judge-check", "rubric", "--role", f"judge=scripted/judge?words={WORDS}",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 16
    assert main(["judge-check", "assignment_bias"]) == 2
    assert "scores text" in capsys.readouterr().err


def test_cli_calls_through_the_client_a_run_builds(capsys):
    # A run's client keeps answers in the model cache (a bare ModelClient has none).
    cache = Path(os.environ["AGENTSIM_CACHE_DIR"])
    check = ["judge-check", "rubric", "--role", f"judge=scripted/judge?words={WORDS}",
             "--limit", "4", "--json"]

    def entries() -> dict[str, str]:  # the cache's answers by key, all written
        import sqlite3
        from contextlib import closing

        from agentsim.models.cache import DB_NAME, DiskCache

        DiskCache(cache).flush()
        with closing(sqlite3.connect(cache / DB_NAME)) as db:
            return dict(db.execute("SELECT key, answer FROM calls"))

    assert main(check) == 0
    first = json.loads(capsys.readouterr().out)
    stored = entries()
    assert len(stored) == 5 * 4  # 4 items: as they are, asked again, three perturbations
    assert main(check) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert entries() == stored  # every answer from the cache: no entry written again
