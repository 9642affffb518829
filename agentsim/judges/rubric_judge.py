"""Judge ``rubric``: a panel of LLM judges scores each conversation (or message) on a rubric.

A rubric is a user-editable YAML file (default: ``rubrics/stereotyping.yaml`` beside this
module): ``name``, ``description``, ``scale`` {min, max}, ``criteria``, ``levels`` (score →
meaning, one per score) and ``instructions``. Each panel model answers ``{"score",
"rationale"}``, constrained by a JSON schema where the client supports one, else read by a
tolerant parser (:func:`parse_verdict`).

Metrics (cluster bootstrap by scenario unless said otherwise):

* ``rubric_score``: the panel's mean score per unit, averaged over units; ``[variant=V]`` when the
  run has several variants, ``[model=M]`` per member of a panel of two or more.
* Panels of two or more: ``rubric_agreement_alpha`` (Krippendorff's ordinal alpha, ``krippendorff``
  package), ``rubric_agreement_kappa`` (unweighted Cohen's kappa of the first two members,
  statsmodels, asymptotic interval) and ``rubric_agreement_exact`` (share of units on which the
  whole panel gave one score). When every rating is the same score, alpha and kappa are 0/0 and
  are reported as NaN with a method saying so — never as 1, since agreeing on a constant says
  nothing about reliability; read the exact agreement (1.0) instead.
* ``both_orders``: conversations of one scenario, replicate, arm and bias that differ only by
  variant are compared pairwise (:meth:`RubricJudge.compare`), each pair shown in both orders.
  ``rubric_order_consistency``: share of comparisons whose two answers pick the same candidate;
  ``rubric_preference[B vs A]`` (B the later variant id in sorted order): the debiased probability,
  averaged over both orders, that B's conversation is the more stereotyped (0.5: no difference, or
  a judge that only follows position).

Models are called through the run's client (``run.client_for``: the run's endpoints, cache,
retries and limits; each call logged as a ``model_call`` of purpose "rubric" about the judged
conversation — for a pair, its first) unless the judge was given a ``client``. Requests carry
purpose "rubric" / "rubric_pairwise" and ``facts`` (``text`` or ``candidates``, ``scale``) that
**only the scripted model reads**; real models see the messages alone. Seeds are
``derive_seed(run_id, unit id, model)``: re-judging asks the same questions, and a model named
twice in a panel answers twice alike (a note warns of the inflated agreement).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from agentsim._aio import run_sync
from agentsim.stats.agreement import alpha_estimate, kappa_estimate
from agentsim.stats.inference import clustered_mean
from agentsim.errors import DecisionParseError, InputError, ModelError
from agentsim.judges.base import JudgeOutput, RunView
from agentsim.models.base import ModelRequest
from agentsim.core.jobs import derive_seed
from agentsim.core.log_stream import cell_of
from agentsim.registry import judge
from agentsim.core.events import JudgeResult
from agentsim.judges.rubric import RubricVerdict, load_rubric, parse_preference, parse_verdict



@dataclass(frozen=True)
class Unit:
    """One thing to score: a whole conversation (``target`` "conversation") or one message
    ("message:<turn>", ``id`` "<conversation id>#<turn>")."""

    id: str
    target: str
    text: str
    conversation_id: str
    scenario: str
    variant: str | None
    arm: str | None
    replicate: int | None
    seed: int | None
    bias: str = "none"
    turn: int | None = None
    agent: str | None = None
    cell: tuple[str, ...] = ()  # the conversation's cell: model, setting, arm (cell_of)


def collect_units(run: RunView, unit: str = "conversation") -> list[Unit]:
    """Units of the conversations that finished successfully, in log order."""
    started: dict[str, Any] = {}
    messages: dict[str, list[Any]] = defaultdict(list)
    finished: set[str] = set()
    for event in run.events("conversation_started", "message", "conversation_finished"):
        if event.type == "conversation_started":
            started[event.conversation_id] = event
        elif event.type == "message":
            messages[event.conversation_id].append(event)
        elif event.ok:  # a failed conversation's partial transcript is not what agents said
            finished.add(event.conversation_id)
    units = []
    for cid, s in started.items():
        if cid not in finished or not messages[cid]:
            continue
        common = dict(conversation_id=cid, scenario=s.scenario_id, variant=s.variant, arm=s.arm,
                      replicate=s.replicate, seed=s.seed, bias=s.job.get("bias", "none"),
                      cell=cell_of(s))
        lines = [(m, f"{m.speaker}: {m.content}") for m in messages[cid]]
        if unit == "conversation":
            units.append(Unit(cid, "conversation", "\n".join(t for _, t in lines), **common))
        else:
            units += [Unit(f"{cid}#{m.turn}", f"message:{m.turn}", text, turn=m.turn,
                           agent=m.agent, **common) for m, text in lines]
    return units


@dataclass(frozen=True)
class Comparison:
    """A pair judged by one model in both orders: ``answers`` with ``a`` shown first, then
    with ``b`` shown first ("A", "B", or None when unreadable or failed)."""

    a: Unit
    b: Unit
    model: str
    answers: tuple[str | None, str | None]
    rationales: tuple[str, str]

    @property
    def complete(self) -> bool:
        """Both orders answered; a half pair is left out, as it cannot be told from order bias."""
        return None not in self.answers

    @property
    def consistent(self) -> bool:
        """The same candidate was chosen whichever position it was shown in."""
        return self.answers in (("A", "B"), ("B", "A"))

    @property
    def preference_a(self) -> float:
        """Debiased probability that ``a`` is the more stereotyped: the mean over both orders."""
        return ((self.answers[0] == "A") + (self.answers[1] == "B")) / 2


def variant_pairs(units: Sequence[Unit]) -> list[tuple[Unit, Unit]]:
    """(later, earlier) variants of one scenario, replicate, arm and bias (sorted variant ids)."""
    groups: dict[tuple[Any, ...], list[Unit]] = defaultdict(list)
    for u in units:
        groups[(u.scenario, u.arm, u.replicate, u.bias, u.cell)].append(u)
    return [(later, earlier) for group in groups.values()
            for earlier, later in combinations(sorted(group, key=lambda u: u.variant or ""), 2)]


@judge("rubric")
class RubricJudge:
    """Score conversations or messages on a rubric with a panel of LLM judges.

    ``rubric``: a rubric file (default: shipped stereotyping rubric); ``unit``: "message" or
    "conversation"; ``panel``: model names (default: the run's 'judge' role); ``both_orders``:
    also compare counterfactual variants pairwise, in both orders. ``client`` (a ModelClient or
    anything with ``supports_schema`` and async ``complete``; it replaces the run's client and
    its calls are not logged), ``temperature`` and ``max_tokens`` are for tests and tuning.
    How many calls are in flight is the judging driver's choice (the run's concurrency), not
    the judge's.
    """

    name = "rubric"
    description = "LLM panel scores units on a rubric (default: stereotyping); agreement; pairwise"

    def __init__(self, rubric: str | Path | None = None, unit: str = "conversation",
                 panel: Sequence[str] | None = None, both_orders: bool = False, *,
                 client: Any = None, temperature: float = 0.0,
                 max_tokens: int = 256) -> None:
        if unit not in ("message", "conversation"):
            raise InputError(f"unit must be 'message' or 'conversation', got {unit!r}",
                             source="rubric judge")
        if isinstance(panel, str):  # one model named on the command line
            panel = [panel]
        if panel is not None and not panel:
            raise InputError("the panel needs at least one model", source="rubric judge")
        self.rubric = load_rubric(rubric)
        self.scale = (self.rubric.scale.min, self.rubric.scale.max)
        self.unit, self.both_orders, self.panel = unit, both_orders, list(panel or []) or None
        self.temperature, self.max_tokens = temperature, max_tokens
        self._client, self._schema_ok = client, {}
        # Who says whether a model takes a schema: the given client, else the run's (set by
        # _panel), else one for texts (score_texts).
        self._schemas: Any = client

    def _panel(self, run: RunView) -> list[str]:
        from agentsim.models.client import check_model_name  # lazy: slow imports

        self._schemas = self._client or run.client
        panel = self.panel or [run.model_for("judge")]
        for model in panel:
            check_model_name(model)
        return panel

    def _caller(self, run: RunView, conversation_id: str) -> Any:
        """The client of the calls about one conversation: the given one, else the run's,
        which records them for the log."""
        return self._client or run.client_for(self.name, conversation_id)

    def _request(self, model: str, user: str, seed: int, pairwise: bool,
                 facts: dict[str, Any]) -> ModelRequest:
        if model not in self._schema_ok:
            self._schema_ok[model] = self._schemas.supports_schema(model)
        r, (low, high) = self.rubric, self.scale
        levels = "\n".join(f"{score}: {text}" for score, text in sorted(r.levels.items()))
        system = (f"{r.instructions.strip()}\n\nRubric '{r.name}': {r.description.strip()}\n"
                  f"Criteria: {r.criteria.strip()}\nScale:\n{levels}\n\n")
        key = "preferred" if pairwise else "score"
        if pairwise:
            system += ("You will see two candidates, A and B. Decide which one deserves the higher"
                       ' score. Answer with JSON: {"preferred": "A" or "B", "rationale": "..."}.')
            answer: dict[str, Any] = {"type": "string", "enum": ["A", "B"]}
        else:
            system += (f'Answer with JSON: {{"score": <integer from {low} to {high}>, '
                       '"rationale": "<one or two sentences>"}.')
            answer = {"type": "integer", "minimum": low, "maximum": high}
        schema = {"type": "object", "properties": {key: answer, "rationale": {"type": "string"}},
                  "required": [key, "rationale"], "additionalProperties": False}
        return ModelRequest(
            model=model, messages=[{"role": "system", "content": system},
                                   {"role": "user", "content": user}],
            schema=schema if self._schema_ok[model] else None, temperature=self.temperature,
            max_tokens=self.max_tokens, seed=seed,
            purpose="rubric_pairwise" if pairwise else "rubric",
            facts={"scale": [low, high], **facts})

    @staticmethod
    async def _ask(calls: list[tuple[Any, ModelRequest]]) -> list[str | ModelError]:
        """Answers to (client, request) pairs, all asked at once (the client bounds them)."""

        async def one(client: Any, request: ModelRequest) -> str | ModelError:
            try:
                return (await client.complete(request)).text
            except ModelError as error:  # one failed call must not lose the others
                return error

        return await asyncio.gather(*(one(c, r) for c, r in calls))

    async def judge(self, run: RunView) -> JudgeOutput:
        """Score every unit with every panel model; metrics as in the module docstring."""
        output, panel, run_id = JudgeOutput(), self._panel(run), run.store.run_id
        units = collect_units(run, self.unit)
        jobs = [(j, i, model) for j in range(len(units)) for i, model in enumerate(panel)]
        what = "Conversation transcript" if self.unit == "conversation" else "One message"
        answers = await self._ask([
            (self._caller(run, units[j].conversation_id),
             self._request(model, f"{what}:\n\n{units[j].text}",
                           derive_seed(run_id, units[j].id, model), False,
                           {"text": units[j].text, "unit": units[j].target}))
            for j, _, model in jobs])
        scores = np.full((len(panel), len(units)), np.nan)
        output.counts = counts = {"units": len(units), "ratings": 0, "unparsed": 0, "failed": 0,
                                  "by_text": 0}
        for (j, i, model), answer in zip(jobs, answers, strict=True):
            details: dict[str, Any] = {"model": model, "rubric": self.rubric.name}
            label = None
            try:
                if isinstance(answer, ModelError):
                    counts["failed"] += 1
                    label, details["error"] = "failed", str(answer)
                    continue
                verdict, how = parse_verdict(answer, self.scale)
                scores[i, j] = verdict.score
                counts["ratings"] += 1
                counts["by_text"] += how == "text"
                details.update(rationale=verdict.rationale, parsed_by=how)
            except DecisionParseError as error:
                counts["unparsed"] += 1
                label, details["error"], details["raw"] = "unparsed", str(error), answer
            finally:  # every call leaves a verdict event, failed ones too
                score = None if np.isnan(scores[i, j]) else float(scores[i, j])
                output.results.append(self._result(units[j], units[j].target, label, score,
                                                   details, run_id))
        self._metrics(units, panel, scores, output)
        if len(set(panel)) < len(panel):
            output.notes.append("rubric: the panel names a model twice; with the same seeds the "
                                "copies answer alike, which inflates agreement")
        if self.both_orders:
            await self._pairwise(run, panel, output)
        return output

    async def score_texts(self, texts: Sequence[str], model: str,
                          seeds: Sequence[int]) -> list[RubricVerdict | None]:
        """Score free texts (not a run) with one model; None where the answer failed or could
        not be read. Used by judge checks on labelled sets and perturbations."""
        from agentsim.models.client import ModelClient  # lazy: slow imports

        # No run to log the calls in: the given client (judge-check builds a run's), else a
        # plain one.
        self._schemas = client = self._client or ModelClient()
        calls = [(client, self._request(model, text, seed, False, {"text": text, "unit": "text"}))
                 for text, seed in zip(texts, seeds, strict=True)]
        verdicts: list[RubricVerdict | None] = []
        for answer in await self._ask(calls):
            try:
                verdicts.append(None if isinstance(answer, ModelError)
                                else parse_verdict(answer, self.scale)[0])
            except DecisionParseError:
                verdicts.append(None)
        return verdicts

    def _result(self, u: Unit, target: str, label: str | None, score: float | None,
                details: dict[str, Any], run_id: str) -> JudgeResult:
        return JudgeResult(run_id=run_id, conversation_id=u.conversation_id, turn=u.turn,
                           agent=u.agent, variant=u.variant, arm=u.arm, replicate=u.replicate,
                           seed=u.seed, judge=self.name, target=target, label=label,
                           score=score, details=details)

    def _metrics(self, units: list[Unit], panel: list[str], scores: np.ndarray,
                 output: JudgeOutput) -> None:
        rated = [j for j in range(len(units)) if not np.all(np.isnan(scores[:, j]))]
        if not rated:
            return
        means = np.nanmean(scores[:, rated], axis=0)  # the panel's verdict on each unit
        scenario = [units[j].scenario for j in rated]
        output.metrics["rubric_score"] = clustered_mean(means.tolist(), scenario)
        variants = sorted({units[j].variant or "" for j in rated})
        for variant in variants if len(variants) > 1 else ():
            keep = [k for k, j in enumerate(rated) if (units[j].variant or "") == variant]
            output.metrics[f"rubric_score[variant={variant}]"] = clustered_mean(
                [means[k] for k in keep], [scenario[k] for k in keep])
        if len(panel) < 2:
            return
        for i, model in enumerate(panel):
            mine = [j for j in rated if not np.isnan(scores[i, j])]
            output.metrics[f"rubric_score[model={model}]"] = clustered_mean(
                scores[i, mine].tolist(), [units[j].scenario for j in mine])
        paired = [j for j in rated if np.sum(~np.isnan(scores[:, j])) >= 2]
        clusters = [units[j].scenario for j in paired]
        if paired:
            output.metrics["rubric_agreement_exact"] = clustered_mean(
                [float(np.nanmax(scores[:, j]) == np.nanmin(scores[:, j])) for j in paired],
                clusters)
            output.metrics["rubric_agreement_alpha"] = alpha_estimate(
                scores[:, paired], clusters, self.scale)
        both = [j for j in paired if not np.isnan(scores[:2, j]).any()]
        if both:
            output.metrics["rubric_agreement_kappa"] = kappa_estimate(
                scores[0, both].astype(int).tolist(), scores[1, both].astype(int).tolist(),
                [units[j].scenario for j in both], self.scale)

    async def comparisons(self, run: RunView, pairs: Sequence[tuple[Unit, Unit]],
                    panel: Sequence[str] | None = None) -> list[Comparison]:
        """Ask every panel model about every pair (a, b), in both orders."""
        panel, run_id = list(panel or self._panel(run)), run.store.run_id
        jobs = [(a, b, model, order) for a, b in pairs for model in panel for order in (0, 1)]
        calls = []
        for a, b, model, order in jobs:
            first, second = (a, b) if order == 0 else (b, a)
            calls.append((self._caller(run, a.conversation_id), self._request(
                model, f"Candidate A:\n{first.text}\n\nCandidate B:\n{second.text}",
                derive_seed(run_id, a.id, b.id, order, model), True,
                {"candidates": [first.text, second.text]})))
        found: list[tuple[str | None, str]] = []
        for answer in await self._ask(calls):
            try:
                found.append(parse_preference(answer) if isinstance(answer, str) else
                             (None, str(answer)))
            except DecisionParseError as error:
                found.append((None, f"{error}: {answer}"))
        return [Comparison(a, b, model, (found[k][0], found[k + 1][0]),
                           (found[k][1], found[k + 1][1]))
                for k, (a, b, model, _) in enumerate(jobs) if k % 2 == 0]

    async def compare(self, run: RunView, a_unit: Unit | str, b_unit: Unit | str) -> list[Comparison]:
        """Which of two conversations (units or conversation ids) is the more stereotyped,
        per panel model, each asked in both orders."""
        known = {u.id: u for u in collect_units(run, "conversation")}
        a, b = (u if isinstance(u, Unit) else known[u] for u in (a_unit, b_unit))
        return await self.comparisons(run, [(a, b)])

    async def _pairwise(self, run: RunView, panel: list[str], output: JudgeOutput) -> None:
        # Always whole conversations: two variants' messages do not correspond turn by turn.
        found = await self.comparisons(run, variant_pairs(collect_units(run, "conversation")), panel)
        if not found:
            output.notes.append("rubric: both_orders found no conversations differing only by "
                                "variant; nothing was compared")
            return
        done = [c for c in found if c.complete]
        output.counts["pairwise"] = {"comparisons": len(found),
                                     "incomplete": len(found) - len(done)}
        for c in found:
            label = "incomplete" if not c.complete else (
                "consistent" if c.consistent else "inconsistent")
            output.results.append(self._result(
                c.a, f"pair:{c.a.variant} vs {c.b.variant}", label,
                c.preference_a if c.complete else None,
                {"model": c.model, "a": c.a.id, "b": c.b.id, "answers": list(c.answers),
                 "rationales": list(c.rationales)}, run.store.run_id))
        if done:
            output.metrics["rubric_order_consistency"] = clustered_mean(
                [float(c.consistent) for c in done], [c.a.scenario for c in done])
        by_variants: dict[tuple[str | None, str | None], list[Comparison]] = defaultdict(list)
        for c in done:
            by_variants[(c.a.variant, c.b.variant)].append(c)
        for (later, earlier), chosen in sorted(by_variants.items()):
            output.metrics[f"rubric_preference[{later} vs {earlier}]"] = clustered_mean(
                [c.preference_a for c in chosen], [c.a.scenario for c in chosen])


def compare(run: RunView, a_unit: Unit | str, b_unit: Unit | str,
            **options: Any) -> list[Comparison]:
    """``RubricJudge(**options).compare(run, a_unit, b_unit)`` from synchronous code."""
    return run_sync(RubricJudge(**options).compare(run, a_unit, b_unit))
