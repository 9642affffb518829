"""Every registered judge through the Judge contract (agentsim/judges/base.py), on every kind of
run: all conversations failed, none planned, one conversation, a run of each protocol in each of
its settings, a fork, and a hand-written log of unparsed decisions.

The contract: ``judge(run)`` returns a JudgeOutput and never raises, also on a run it does not
apply to (it says so in notes, or returns no metrics); every metric is an Estimate whose value
is a finite number or NaN, with an interval around it (or none: both ends NaN), a count ``n``
that is an int ≥ 0 and a p-value in [0, 1] where there is one; its verdicts are judge_result
events naming it; verdicts and metrics survive a JSON round trip unchanged. LLM judges get the
scripted judge model as their role 'judge'.
"""

from __future__ import annotations

import inspect
import json
import math
import traceback

import pytest

from agentsim.core.events import JudgeResult, parse_event
from agentsim.judges.base import JudgeOutput
from agentsim.registry import REGISTRY
from agentsim.stats.inference import Estimate
from conformance.cases import EMPTY_RUNS, judge_runs, names, params



JUDGE_RUNS = [(judge, run) for judge in names("judge") for run in judge_runs()]


def output_of(judged, judge: str, run: str) -> JudgeOutput:
    """The judge's output on the run; a failed test naming the exception when it raised."""
    output = judged(judge, run)
    if isinstance(output, BaseException):
        pytest.fail(f"judge {judge!r} raised on the run {run!r}:\n"
                    + "".join(traceback.format_exception(output)))
    return output


@pytest.mark.parametrize(("judge", "run"), params(JUDGE_RUNS))
def test_returns_a_judge_output_without_raising(judged, judge, run):
    """judge(run) returns a JudgeOutput of verdict events naming the judge, Estimates by name,
    counts and notes, whatever the run holds."""
    output = output_of(judged, judge, run)
    assert isinstance(output, JudgeOutput)
    assert all(isinstance(result, JudgeResult) and result.judge == judge
               for result in output.results)
    assert all(isinstance(key, str) and isinstance(value, Estimate)
               for key, value in output.metrics.items())
    assert isinstance(output.counts, dict)
    assert all(isinstance(note, str) and note for note in output.notes)


def interval_problems(name: str, metric: Estimate) -> list[str]:
    """What is wrong with one metric under the contract (nothing: [])."""
    value, low, high = metric.value, metric.ci_low, metric.ci_high
    problems = []
    if math.isinf(value):
        problems.append(f"{name}: value {value} is neither finite nor NaN")
    if math.isnan(low) != math.isnan(high):
        problems.append(f"{name}: half an interval [{low}, {high}]")
    elif not math.isnan(low) and not math.isnan(value) and not low <= value <= high:
        problems.append(f"{name}: {value} outside its interval [{low}, {high}] "
                        f"({metric.method})")
    for count in ("n", "clusters"):
        number = getattr(metric, count)
        if not (isinstance(number, int) and not isinstance(number, bool) and number >= 0):
            problems.append(f"{name}: {count} = {number!r} is not an int >= 0")
    for p in (metric.p, metric.p_raw):
        if p is not None and not 0 <= p <= 1:
            problems.append(f"{name}: p-value {p} outside [0, 1]")
    return problems


@pytest.mark.parametrize(("judge", "run"), params(JUDGE_RUNS))
def test_metrics_are_numbers_within_their_intervals(judged, judge, run):
    """Every metric is finite or NaN, inside its interval (or without one), with n ≥ 0."""
    metrics = output_of(judged, judge, run).metrics
    problems = [problem for name, metric in metrics.items()
                for problem in interval_problems(name, metric)]
    assert problems == []


def strict_json(text: str):
    """JSON as every reader of the log parses it: NaN and Infinity are not JSON."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(("judge", "run"), params(JUDGE_RUNS))
def test_verdicts_survive_the_event_log(judged, judge, run):
    """Each verdict, written as a log line and parsed back as an event, is the same event."""
    for result in output_of(judged, judge, run).results:
        line = result.model_dump_json()
        strict_json(line)
        assert parse_event(line) == result


@pytest.mark.parametrize(("judge", "run"), params(JUDGE_RUNS))
def test_metrics_survive_results_json(judged, judge, run):
    """Each metric, as results.json holds it (NaN as null), reads back unchanged."""
    for metric in output_of(judged, judge, run).metrics.values():
        data = metric.as_dict()
        assert strict_json(json.dumps(data, allow_nan=False)) == data


@pytest.mark.parametrize(("judge", "run"), params(
    [(judge, run) for judge in names("judge") for run in EMPTY_RUNS]))
def test_a_run_without_finished_conversations_gives_no_verdicts(runs, judged, judge, run):
    """With nothing finished to judge there are no verdicts, and a metric (if any) counts
    nothing."""
    assert list(runs.judge_run(run).view().events("conversation_finished")) == []
    output = output_of(judged, judge, run)
    assert output.results == []
    assert {name: metric.n for name, metric in output.metrics.items() if metric.n} == {}


@pytest.mark.parametrize("judge", names("judge"))
def test_judge_is_a_coroutine(judge):
    """``judge`` is async: the driver owns the concurrency of judges and of their calls."""
    assert inspect.iscoroutinefunction(REGISTRY.get("judge", judge).judge)


PAIRED_RUNS = [(judge, run) for judge in names("judge") for run in judge_runs()
               if getattr(REGISTRY.get("judge", judge), "paired", ())]


@pytest.mark.parametrize(("judge", "run"), params(PAIRED_RUNS))
def test_paired_outcomes_name_declared_measures_and_started_conversations(runs, judge, run):
    """A judge that offers paired measures yields, for any run, only its declared measures,
    finite values (0 or 1 for a binary measure), hashable units and conversations of the log."""
    from agentsim.core.outcomes import Outcomes
    from agentsim.runs.judging import make_judge

    made = make_judge(judge)
    view = runs.judge_run(run).view()
    found = made.outcomes(view.for_protocols(getattr(made, "protocols", None)))
    assert isinstance(found, Outcomes)
    declared = {spec.name: spec for spec in made.paired}
    started = {e.conversation_id for e in view.events("conversation_started")}
    for outcome in found.values:
        spec = declared.get(outcome.measure)
        assert spec is not None, f"{judge}: undeclared measure {outcome.measure!r}"
        assert outcome.conversation_id in started
        assert math.isfinite(outcome.value)
        assert not spec.binary or outcome.value in (0.0, 1.0)
        hash(outcome.within)
