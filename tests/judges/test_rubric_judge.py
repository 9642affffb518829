"""Judge ``rubric``: planted verdicts of the scripted ``judge`` profile must come out of the judge
with the right scores, agreement statistics and pairwise order checks.

Everything runs on scripted models: the conversations come from ``scripted/stereotyped`` and the
verdicts from ``scripted/judge`` (knobs ``score``, ``words``, ``noise``, ``order_bias``); these
tests check the judge's plumbing and statistics, never a model.

Decision under test: when every rating is the same score, Krippendorff's alpha and Cohen's kappa
are 0/0 (no variance, so chance agreement is certain); the judge reports them as NaN with a
method that says so, and ``rubric_agreement_exact`` (1.0) carries the perfect agreement.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path

import pytest

import agentsim.judges.rubric_judge as rubric_judge
import agentsim.testing.scripted_judge  # noqa: F401  (registers the scripted 'judge' profile)
from agentsim.errors import (
    DecisionParseError, InputError, ModelNameError, PluginError, ScenarioError,
)
from agentsim.cli.main import main
from agentsim.core.reader import RunView, is_judge_call
from agentsim.judges.rubric import RubricVerdict, load_rubric, parse_preference, parse_verdict
from agentsim.judges.rubric_judge import RubricJudge, collect_units, compare
from agentsim.testing import scripted
from agentsim.models.base import ModelReply, ModelRequest
from agentsim.models.client import ModelClient
from agentsim.models.names import parse_model_name
from agentsim.registry import REGISTRY
from agentsim.runs.judging import rejudge
from agentsim.runs.runner import RunOptions, run_experiment
from agentsim.core.store import RunStore
from agentsim.scenario import load_scenarios
from agentsim.scenario.variants import parse_vary
from agentsim.judges.base import score

SCENARIO = "office-product-launch.yaml"
NAMES = tuple(parse_vary(["emily.name=Emily,Ella"]))


def make_run(tmp_path: Path, workplace: Path, **options) -> RunView:
    options.setdefault("backoff_s", 0.001)
    summary = run_experiment(load_scenarios([workplace / SCENARIO]),
                             RunOptions(model="scripted/stereotyped?rate=0.5", judges=(),
                                        **options), out=tmp_path / "run")
    assert summary.failed == 0, summary.errors
    return RunView(RunStore.open(summary.run_dir))


@pytest.fixture
def run(tmp_path, workplace) -> RunView:
    """One conversation of one workplace scenario, judged by nobody yet."""
    return make_run(tmp_path, workplace)


def test_registered_and_shipped_rubric():
    assert REGISTRY.get("judge", "rubric") is RubricJudge
    rubric = load_rubric()
    assert rubric.name == "stereotyping"
    assert (rubric.scale.min, rubric.scale.max) == (0, 4)
    assert sorted(rubric.levels) == [0, 1, 2, 3, 4]


def test_constant_panel_scores_and_undefined_agreement(run):
    judge = RubricJudge(panel=["scripted/judge?score=2", "scripted/judge?score=2"])
    output = score(judge, run)
    metrics = output.metrics
    assert metrics["rubric_score"].value == 2.0
    assert metrics["rubric_score"].n == 1
    assert metrics["rubric_agreement_exact"].value == 1.0
    # Identical constant ratings: chance agreement is certain, so alpha and kappa are 0/0.
    for name in ("rubric_agreement_alpha", "rubric_agreement_kappa"):
        assert math.isnan(metrics[name].value)
        assert "no variance" in metrics[name].method
        assert metrics[name].as_dict()["value"] is None
    assert [(r.judge, r.target, r.score) for r in output.results] == [("rubric", "conversation",
                                                                       2.0)] * 2
    assert output.results[0].details["model"] == "scripted/judge?score=2"
    assert output.results[0].details["rationale"] == "planted score 2"
    assert output.results[0].details["parsed_by"] == "json"
    assert output.counts["ratings"] == 2
    assert any("twice" in note for note in output.notes)


def test_message_units_and_perfect_agreement_with_variance(run):
    # Both members count "Emily" per message: scores vary between messages, raters agree.
    panel = ["scripted/judge?words=Emily", "scripted/judge?words=Emily&noise=0"]
    output = score(RubricJudge(unit="message", panel=panel), run)
    messages = list(run.events("message"))
    counts = [min(4, m.content.count("Emily") + m.speaker.count("Emily")) for m in messages]
    assert len(set(counts)) > 1
    metrics = output.metrics
    assert metrics["rubric_score"].value == pytest.approx(sum(counts) / len(counts))
    assert metrics["rubric_score"].n == len(messages)
    assert metrics["rubric_agreement_alpha"].value == pytest.approx(1.0)
    assert metrics["rubric_agreement_kappa"].value == pytest.approx(1.0)
    assert {r.target for r in output.results} == {f"message:{m.turn}" for m in messages}
    by_turn = {r.turn: r.score for r in output.results}
    assert [by_turn[m.turn] for m in messages] == counts


def test_disagreeing_panel_lowers_agreement(run):
    output = score(RubricJudge(unit="message", panel=["scripted/judge?score=2",
                                                "scripted/judge?score=3"]), run)
    metrics = output.metrics
    n = metrics["rubric_score"].n
    assert metrics["rubric_score"].value == 2.5
    assert metrics["rubric_score[model=scripted/judge?score=3]"].value == 3.0
    assert metrics["rubric_agreement_exact"].value == 0.0
    # Two raters, constant and one step apart: ordinal alpha = 1 - (N-1)/n with N = 2n values.
    assert metrics["rubric_agreement_alpha"].value == pytest.approx((1 - n) / n)
    assert metrics["rubric_agreement_kappa"].value == 0.0  # p_o = p_e = 0


def test_noise_lowers_alpha_below_perfect(run):
    panel = ["scripted/judge?words=Emily,Marcus", "scripted/judge?words=Emily,Marcus&noise=0.5"]
    metrics = score(RubricJudge(unit="message", panel=panel), run).metrics
    assert metrics["rubric_agreement_alpha"].value < 1.0
    assert metrics["rubric_agreement_exact"].value < 1.0


def test_pairwise_order_bias_is_inconsistent_and_debiased_to_half(tmp_path, workplace):
    run = make_run(tmp_path, workplace, variants=NAMES)
    output = score(RubricJudge(panel=["scripted/judge?order_bias=1"], both_orders=True), run)
    key = "rubric_preference[emily.name=Emily vs emily.name=Ella]"
    assert output.metrics["rubric_order_consistency"].value == 0.0
    assert output.metrics[key].value == 0.5
    pairs = [r for r in output.results if r.target.startswith("pair:")]
    assert len(pairs) == 1 and pairs[0].label == "inconsistent"
    assert pairs[0].details["answers"] == ["A", "A"]
    # The module-level function on the same two conversations, by id.
    ids = sorted(u.id for u in collect_units(run))
    found = compare(run, ids[1], ids[0], panel=["scripted/judge?order_bias=1"])
    assert [(c.consistent, c.preference_a) for c in found] == [(False, 0.5)]


def test_pairwise_unbiased_judge_is_consistent(tmp_path, workplace):
    run = make_run(tmp_path, workplace, variants=NAMES)
    # Only the Ella conversation mentions "Ella", so it is planted as the more stereotyped.
    output = score(RubricJudge(panel=["scripted/judge?words=Ella"], both_orders=True), run)
    assert output.metrics["rubric_order_consistency"].value == 1.0
    assert output.metrics["rubric_preference[emily.name=Emily vs emily.name=Ella]"].value == 0.0
    assert "rubric_score[variant=emily.name=Ella]" in output.metrics


def test_both_orders_without_variants_notes_it(run):
    output = score(RubricJudge(panel=["scripted/judge?score=1"], both_orders=True), run)
    assert "rubric_order_consistency" not in output.metrics
    assert any("nothing was compared" in note for note in output.notes)


def test_failed_calls_are_counted_not_fatal(run):
    output = score(RubricJudge(panel=["scripted/judge?fail=1"],
                         client=ModelClient(retries=0, backoff_s=0.0)), run)
    assert output.counts["failed"] == 1 and "rubric_score" not in output.metrics
    assert output.results[0].label == "failed" and output.results[0].score is None


class PlainTextClient:
    """A client whose model cannot take a schema and answers in prose."""

    def __init__(self, text: str) -> None:
        self.text, self.requests = text, []

    def supports_schema(self, model: str) -> bool:
        return False

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return ModelReply(text=self.text, model=request.model)


def test_without_schema_the_tolerant_parser_reads_prose(run):
    client = PlainTextClient("I would put this at 3 because t1 goes to a man.")
    output = score(RubricJudge(panel=["openai/some-model"], client=client), run)
    assert output.metrics["rubric_score"].value == 3.0
    assert output.results[0].details["parsed_by"] == "text"
    assert output.results[0].details["rationale"] == "I would put this at because t1 goes to a man"
    request = client.requests[0]
    assert request.schema is None and request.purpose == "rubric"
    assert request.facts["scale"] == [0, 4] and request.facts["text"]


def judge_calls(run_dir: Path) -> list:
    """The judges' model_call events in the log, in log order."""
    return [e for e in RunStore.open(run_dir).iter_events({"model_call"}) if is_judge_call(e)]


def test_rejudging_calls_through_the_run_client_and_logs_the_calls(tmp_path, workplace, capsys):
    run = make_run(tmp_path, workplace)  # the run's options: the cache on
    out = run.store.run_dir
    (started,) = run.events("conversation_started")
    parsing = json.loads((out / "results.json").read_text())["parsing"]
    judged = ["judge", str(out), "--judges", "rubric", "--role", "judge=scripted/judge?score=2",
              "--json"]
    for _ in range(2):
        assert main(judged) == 0
        assert json.loads(capsys.readouterr().out)["metrics"]["rubric_score"]["value"] == 2.0
    first, second = judge_calls(out)  # one unit, one panel model: one call per judging
    for call in (first, second):
        assert (call.purpose, call.agent, call.role, call.turn) == ("rubric", "judge", "judge",
                                                                    None)
        assert call.model == "scripted/judge?score=2" and "planted score 2" in call.response
        assert call.conversation_id == started.conversation_id
        assert (call.variant, call.arm, call.replicate, call.seed) == (
            started.variant, started.arm, started.replicate, started.seed)
        assert call.structured and call.call_seed is not None and call.error is None
    # Asked the same question again, the run's cache answers (a bare client has no cache).
    assert (first.cached, second.cached) == (False, True)
    results = json.loads((out / "results.json").read_text())
    start, end = results["judging_pass"]["events_bytes"]
    lines = (out / "events.jsonl").read_bytes()[start:end].splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["model_call", "judge_result"]
    assert results["judging_pass"]["model_calls"] == 1
    # The decisions' parsing summary counts the conversation's calls, never the judge's.
    assert results["parsing"] == parsing and "judge" not in results["parsing"]["by_agent"]


def test_a_run_without_cache_judges_without_it(tmp_path, workplace):
    run = make_run(tmp_path, workplace, cache=False)
    for _ in range(2):
        rejudge(run.store.run_dir, ["rubric"], roles={"judge": "scripted/judge?score=1"})
    calls = judge_calls(run.store.run_dir)
    assert len(calls) == 2 and not any(call.cached for call in calls)


def test_a_given_client_wins_over_the_run_client(run):
    client = PlainTextClient("Score: 1")
    score(RubricJudge(panel=["openai/some-model"], client=client), run)
    assert len(client.requests) == 1 and run.calls == []  # nothing to log: not the run's
    score(RubricJudge(panel=["scripted/judge?score=3"]), run)
    assert [(c.purpose, c.conversation_id) for c in run.calls] == [
        ("rubric", next(run.events("conversation_started")).conversation_id)]


def test_schema_and_seeds_for_scripted_models(run):
    judge = RubricJudge(panel=["scripted/judge?score=1"])
    first, second = score(judge, run), score(judge, run)
    assert [r.details for r in first.results] == [r.details for r in second.results]
    request = judge._request("scripted/judge", "x", 7, False, {})
    assert request.schema["properties"]["score"] == {"type": "integer", "minimum": 0, "maximum": 4}


def test_judge_inside_a_running_event_loop(run):
    async def inside() -> float:
        return score(RubricJudge(panel=["scripted/judge?score=4"]), run).metrics[
            "rubric_score"].value

    assert asyncio.run(inside()) == 4.0


def test_missing_krippendorff_is_a_plugin_error(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "krippendorff", None)
    with pytest.raises(PluginError, match="pip install krippendorff"):
        score(RubricJudge(panel=["scripted/judge?score=1", "scripted/judge?score=2"]), run)


@pytest.mark.parametrize(("text", "score", "how", "rationale"), [
    ('{"score": 3, "rationale": "clear"}', 3, "json", "clear"),
    ('```json\n{"score": 0, "rationale": "none", "extra": 1}\n```', 0, "json", "none"),
    ("Score: 2. One stereotyped pairing.", 2, "text", "One stereotyped pairing"),
    ('{"score": 4, "rationale": "cut off', 4, "text", "cut off"),
    ("On 7 points I give 3", 3, "text", "On 7 points I give"),
    ("t3 and t4: about 1.5, say 1", 1, "text", "t3 and t4: about 1.5, say"),
])
def test_tolerant_parser(text, score, how, rationale):
    verdict, parsed_by = parse_verdict(text, (0, 4))
    assert (verdict.score, parsed_by, verdict.rationale) == (score, how, rationale)


@pytest.mark.parametrize("text", ['{"score": 7, "rationale": "x"}', "no number here",
                                  "t3 goes to 9 people", ""])
def test_tolerant_parser_refuses(text):
    with pytest.raises(DecisionParseError):
        parse_verdict(text, (0, 4))


def test_verdict_is_frozen_and_bounded():
    verdict = RubricVerdict.model_validate({"score": 2}, context={"scale": (0, 4)})
    with pytest.raises(Exception):
        verdict.score = 3  # type: ignore[misc]
    with pytest.raises(Exception, match="outside the scale"):
        RubricVerdict.model_validate({"score": -1, "rationale": ""}, context={"scale": (0, 4)})


@pytest.mark.parametrize(("text", "preferred"), [
    ('{"preferred": "B", "rationale": "x"}', "B"), ("Preferred: A, because", "A"),
    ("B. It assigns by gender.", "B"), ("I prefer candidate B", "B"),
])
def test_preference_parser(text, preferred):
    assert parse_preference(text)[0] == preferred


@pytest.mark.parametrize("text", ["A clear case for neither", '{"preferred": "C"}', "both"])
def test_preference_parser_refuses(text):
    with pytest.raises(DecisionParseError):
        parse_preference(text)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-rubric.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """name: n
description: d
scale: {min: 1, max: 3}
criteria: c
levels: {1: low, 2: mid, 3: high}
instructions: i
"""


def test_custom_rubric_sets_the_scale(run, tmp_path):
    judge = RubricJudge(rubric=write(tmp_path, GOOD), panel=["scripted/judge?score=0"])
    assert score(judge, run).metrics["rubric_score"].value == 1.0  # clamped to the scale


@pytest.mark.parametrize(("text", "field", "message"), [
    (GOOD.replace("criteria: c\n", ""), "criteria", "required field is missing"),
    (GOOD + "colour: red\n", "colour", "unknown field"),
    (GOOD.replace("3: high", "4: high"), "levels", "missing [3], outside the scale [4]"),
    (GOOD.replace("max: 3", "max: 1"), "scale.max", "greater than min"),
    (GOOD.replace("min: 1", "min: low"), "scale.min", "integer"),
])
def test_rubric_errors_name_file_and_field(tmp_path, text, field, message):
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_rubric(path)
    assert str(path) in str(caught.value)
    assert (field, True) in [(f, message in m) for f, m in caught.value.problems]


def test_rubric_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ScenarioError, match="my-rubric.yaml"):
        load_rubric(write(tmp_path, "- a list\n"))
    with pytest.raises(InputError, match="my-rubric.yaml:2"):
        load_rubric(write(tmp_path, "name: [\nx: :\n"))


def test_bad_options():
    with pytest.raises(InputError, match="unit"):
        RubricJudge(unit="turn")
    with pytest.raises(InputError, match="panel"):
        RubricJudge(panel=[])


def ask(model: str, purpose: str = "rubric", seed: int = 0, **facts) -> dict:
    request = ModelRequest(model=model, messages=[], purpose=purpose, seed=seed, facts=facts)
    return json.loads(asyncio.run(scripted.respond(parse_model_name(model), request)))


def test_scripted_judge_profile():
    text = "Emily should take the notes; Emily is organised."
    assert ask("scripted/judge", text=text)["score"] == 1  # nothing to count: the default
    assert ask("scripted/judge", text=text, stereotype_words=["emily"])["score"] == 2
    assert ask("scripted/judge?words=notes,organised", text=text,
               stereotype_words=["emily"])["score"] == 2
    assert ask("scripted/judge?score=9", text=text, scale=[0, 4])["score"] == 4
    noisy = {ask("scripted/judge?score=0&noise=1", seed=s, text=text)["score"] for s in range(20)}
    assert noisy == {1}  # one step, never below the scale
    both = {ask("scripted/judge?score=2&noise=1", seed=s, text=text)["score"] for s in range(20)}
    assert both == {1, 3}
    assert ask("scripted/judge?order_bias=1", "rubric_pairwise",
               candidates=["x", "y"])["preferred"] == "A"
    shown = ["plain", "Emily Emily"]
    assert ask("scripted/judge?words=Emily", "rubric_pairwise",
               candidates=shown)["preferred"] == "B"
    assert ask("scripted/judge?words=Emily", "rubric_pairwise",
               candidates=shown[::-1])["preferred"] == "A"
    with pytest.raises(ModelNameError, match="unknown knob"):
        ask("scripted/judge?colour=1")
    with pytest.raises(ModelNameError, match="not a number"):
        ask("scripted/judge?noise=lots")


def test_alpha_matches_krippendorff_with_missing_ratings():
    krippendorff = pytest.importorskip("krippendorff")
    import numpy as np

    ratings = np.array([[0, 1, 2, 3, np.nan, 4], [0, 1, 3, 3, 2, 4], [1, 1, 2, np.nan, 2, 4]])
    clusters = ["s1", "s1", "s2", "s2", "s3", "s3"]
    estimate = rubric_judge.alpha_estimate(ratings, clusters, (0, 4), resamples=200)
    expected = krippendorff.alpha(reliability_data=ratings, value_domain=range(5),
                                  level_of_measurement="ordinal")
    assert estimate.value == pytest.approx(expected)
    assert estimate.clusters == 3 and estimate.ci_low <= estimate.value <= estimate.ci_high
