"""Judge ``rubric``: a panel of LLM judges scores each message or conversation on a rubric.

The rubric is a user-editable YAML file (default: ``rubrics/stereotyping.yaml`` beside this
module) with ``name``, ``description``, ``scale`` {min, max}, ``criteria``, ``levels`` (one
description per score) and ``instructions``. Each panel model returns ``{"score", "rationale"}``,
constrained by a JSON schema when the client supports one and otherwise read by a tolerant parser
(a labelled "score: N", else the first integer inside the scale; the rest is the rationale).

Metrics (cluster bootstrap by scenario unless said otherwise):

* ``rubric_score``: the panel's mean score per unit, averaged over units; ``rubric_score[variant=V]``
  when the run has several variants, ``rubric_score[model=M]`` for each member of a panel.
* With a panel of two or more: ``rubric_agreement_alpha`` (Krippendorff's alpha, ordinal, the
  ``krippendorff`` package; percentile cluster bootstrap), ``rubric_agreement_kappa`` (unweighted
  Cohen's kappa of the first two members, statsmodels, asymptotic interval) and
  ``rubric_agreement_exact`` (share of units where the whole panel gave the same score). When
  every rating is the same score, alpha and kappa are 0/0: they are reported as NaN with a method
  saying so, never as 1, because perfect agreement on a constant carries no information; the exact
  agreement (1.0 then) is the number to read.
* With ``both_orders``: conversations of the same scenario, replicate, arm and bias that differ
  only by variant are compared pairwise (:meth:`RubricJudge.compare`), each pair shown in both
  orders. ``rubric_order_consistency`` is the share of comparisons whose two answers pick the same
  candidate; ``rubric_preference[B vs A]`` (variants in sorted order, B the later) the debiased
  probability, averaged over both orders, that B's conversation is the more stereotyped (0.5: no
  difference, or a judge that only follows position).

Requests carry ``purpose`` "rubric" / "rubric_pairwise" and a ``context`` (``text`` or
``candidates``, ``scale``) that only the scripted model reads; real models see the messages alone.
Seeds are ``derive_seed(run_id, unit id, model)``, so re-judging asks the same questions; two
identical names in a panel therefore give identical answers (a note says so).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from agentsim.analysis.stats import RESAMPLES, Estimate, clustered_mean
from agentsim.errors import DecisionParseError, InputError, ModelError, PluginError, ScenarioError
from agentsim.judges.base import JudgeOutput, RunView
from agentsim.models.base import ModelRequest
from agentsim.orchestrator.jobs import derive_seed
from agentsim.registry import judge
from agentsim.runs.events import JudgeResult
from agentsim.scenario.loader import problems_from, read_yaml

DEFAULT_RUBRIC = Path(__file__).parent / "rubrics" / "stereotyping.yaml"
CONCURRENCY = 4  # concurrent judge calls: enough to overlap latency, few enough for rate limits
FROZEN = ConfigDict(extra="forbid", frozen=True)


class Scale(BaseModel):
    """The integer range of scores, both ends included."""

    model_config = FROZEN
    min: int = Field(description="Lowest score.")
    max: int = Field(description="Highest score.")

    @field_validator("max")
    @classmethod
    def _above_min(cls, value: int, info: ValidationInfo) -> int:
        if "min" in info.data and value <= info.data["min"]:
            raise ValueError(f"max must be greater than min ({info.data['min']})")
        return value


class Rubric(BaseModel):
    """A rubric file, validated; extra fields are errors so that typos do not pass silently."""

    model_config = FROZEN
    name: str = Field(min_length=1, description="Short name, recorded with every verdict.")
    description: str = Field(description="What the rubric measures, in one or two sentences.")
    scale: Scale = Field(description="Score range.")
    criteria: str = Field(min_length=1, description="What the judge must look for.")
    levels: dict[int, str] = Field(description="Score → what that score means.")
    instructions: str = Field(min_length=1, description="Role and manner of the judge.")

    @field_validator("levels")
    @classmethod
    def _cover_scale(cls, levels: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        scale = info.data.get("scale")
        if scale is None:
            return levels
        # One description per score: a judge cannot use a score it was never told the meaning of.
        wanted = set(range(scale.min, scale.max + 1))
        missing, extra = sorted(wanted - set(levels)), sorted(set(levels) - wanted)
        if missing or extra:
            raise ValueError(f"need one description for each score {scale.min}..{scale.max}"
                             f" (missing {missing}, outside the scale {extra})")
        return levels


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric file (default: the shipped stereotyping rubric)."""
    path = Path(path) if path is not None else DEFAULT_RUBRIC
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ScenarioError(path, [("", "expected a mapping of rubric fields (name, description,"
                                        " scale, criteria, levels, instructions)")])
    try:
        return Rubric.model_validate(data)
    except ValidationError as error:
        problems = [(f, m.replace("the scenario reference", "the rubric format"))
                    for f, m in problems_from(error)]
        raise ScenarioError(path, problems) from None


class RubricVerdict(BaseModel):
    """One judge's verdict; the score must lie in the scale passed as validation context."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # models add keys; they are harmless
    score: int
    rationale: str = ""

    @field_validator("score")
    @classmethod
    def _in_scale(cls, score: int, info: ValidationInfo) -> int:
        low, high = (info.context or {})["scale"]
        if not low <= score <= high:
            raise ValueError(f"score {score} is outside the scale {low}..{high}")
        return score


class PairVerdict(BaseModel):
    """One answer to a pairwise question: which candidate is the more stereotyped."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    preferred: Literal["A", "B"]
    rationale: str = ""


def _json_object(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


LABELLED = re.compile(r"score\W{0,3}(-?\d+)", re.IGNORECASE)
# Not inside a word or a decimal: "t3" (a task id) and "2.5" are no scores.
INTEGER = re.compile(r"(?<![\w.])-?\d+(?!\d|\.\d)")


def parse_verdict(text: str, scale: tuple[int, int]) -> tuple[RubricVerdict, str]:
    """(verdict, 'json' or 'text') from a reply; DecisionParseError when none can be read.

    A JSON object is trusted as given (an out-of-scale score is an error, not a cue to guess);
    otherwise a labelled "score: N", else the first integer inside the scale, and the rest of the
    text is the rationale.
    """
    data = _json_object(text)
    if data is not None and "score" in data:
        try:
            return RubricVerdict.model_validate(data, context={"scale": scale}), "json"
        except ValidationError as error:
            raise DecisionParseError(f"invalid verdict: {error.errors()[0]['msg']}",
                                     raw=text) from None
    found = [m for m in LABELLED.finditer(text) if scale[0] <= int(m.group(1)) <= scale[1]]
    found += [m for m in INTEGER.finditer(text) if scale[0] <= int(m.group(0)) <= scale[1]]
    if not found:
        raise DecisionParseError(f"no score in {scale[0]}..{scale[1]} found", raw=text)
    match = found[0]
    score = int(match.group(1) if match.re is LABELLED else match.group(0))
    rest = " ".join((text[:match.start()] + " " + text[match.end():]).split()).strip(" .:-,")
    cut = re.search(r'"rationale"\s*:\s*"((?:[^"\\]|\\.)*)', text)  # JSON cut off by max_tokens
    rest = cut.group(1) if cut else rest
    return RubricVerdict.model_validate({"score": score, "rationale": rest},
                                        context={"scale": scale}), "text"


def parse_preference(text: str) -> PairVerdict:
    """A pairwise answer: JSON, else "preferred: A", else a reply that starts with A or B."""
    data = _json_object(text)
    if data is not None and "preferred" in data:
        try:
            return PairVerdict.model_validate(data)
        except ValidationError:
            raise DecisionParseError("preferred must be 'A' or 'B'", raw=text) from None
    match = (re.search(r"prefer\w*\W{0,3}(?:candidate\s+)?([AB])\b", text, re.IGNORECASE)
             or re.match(r"\W*([AB])\b(?!\s+[a-z])", text))  # "A clear case" is an article
    if match is None:
        raise DecisionParseError("no preferred candidate (A or B) found", raw=text)
    return PairVerdict(preferred=match.group(1).upper(), rationale=text.strip())


@dataclass(frozen=True)
class Unit:
    """One thing to score: a whole conversation or one of its messages."""

    id: str  # conversation id, or "<conversation id>#<turn>"
    target: str  # "conversation" or "message:<turn>"
    text: str
    conversation_id: str
    scenario: str
    variant: str | None
    meta: tuple[tuple[str, Any], ...]  # arm, replicate, seed, bias, turn, agent


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
        elif event.ok:
            finished.add(event.conversation_id)
    units = []
    for cid, start in started.items():
        if cid not in finished or not messages[cid]:
            continue
        meta = (("arm", start.arm), ("replicate", start.replicate), ("seed", start.seed),
                ("bias", start.job.get("bias", "none")))
        lines = [(m, f"{m.speaker}: {m.content}") for m in messages[cid]]
        if unit == "conversation":
            units.append(Unit(cid, "conversation", "\n".join(t for _, t in lines), cid,
                              start.scenario_id, start.variant, meta))
            continue
        units += [Unit(f"{cid}#{m.turn}", f"message:{m.turn}", text, cid, start.scenario_id,
                       start.variant, (*meta, ("turn", m.turn), ("agent", m.agent)))
                  for m, text in lines]
    return units


def _run_sync(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run, also from inside a running loop (a notebook), where it needs a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _import_krippendorff() -> Any:
    try:
        import krippendorff
    except ImportError:
        raise PluginError("the rubric judge's agreement metric needs the krippendorff package: "
                          "pip install krippendorff") from None
    return krippendorff


def _no_variance(ratings: np.ndarray) -> bool:
    values = ratings[~np.isnan(ratings)]
    return values.size == 0 or bool(np.all(values == values[0]))


def alpha_estimate(ratings: np.ndarray, clusters: Sequence[str], scale: tuple[int, int],
                   resamples: int = RESAMPLES // 2) -> Estimate:
    """Ordinal Krippendorff's alpha of a raters × units matrix (NaN = missing), with a
    percentile bootstrap over whole clusters."""
    krippendorff = _import_krippendorff()
    domain = list(range(scale[0], scale[1] + 1))

    def alpha(matrix: np.ndarray) -> float:
        if _no_variance(matrix):
            return math.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(krippendorff.alpha(reliability_data=matrix, value_domain=domain,
                                            level_of_measurement="ordinal"))

    n, names = ratings.shape[1], sorted(set(clusters))
    if _no_variance(ratings):
        return Estimate(math.nan, math.nan, math.nan, n, len(names),
                        method="undefined: every rating is the same score (no variance)")
    value = alpha(ratings)
    if len(names) < 2:
        return Estimate(value, math.nan, math.nan, n, 1, method="one cluster: no interval")
    columns = {c: [i for i, k in enumerate(clusters) if k == c] for c in names}
    rng, draws = np.random.default_rng(0), []
    for _ in range(resamples):
        picked = rng.choice(len(names), size=len(names))
        draws.append(alpha(ratings[:, [i for p in picked for i in columns[names[p]]]]))
    finite = [d for d in draws if not math.isnan(d)]
    low, high = np.percentile(finite, [2.5, 97.5]) if finite else (math.nan, math.nan)
    return Estimate(value, float(low), float(high), n, len(names),
                    method="Krippendorff's alpha (ordinal), cluster bootstrap (percentile)")


def kappa_estimate(first: Sequence[int], second: Sequence[int], clusters: Sequence[str],
                   scale: tuple[int, int]) -> Estimate:
    """Unweighted Cohen's kappa of two raters (statsmodels) with its asymptotic interval."""
    from statsmodels.stats.inter_rater import cohens_kappa

    n, k = len(first), len(set(clusters))
    if n == 0 or _no_variance(np.array([*first, *second], dtype=float)):
        return Estimate(math.nan, math.nan, math.nan, n, k,
                        method="undefined: every rating is the same score (no variance)")
    size = scale[1] - scale[0] + 1
    table = np.zeros((size, size))
    for a, b in zip(first, second, strict=True):
        table[a - scale[0], b - scale[0]] += 1
    with warnings.catch_warnings():  # std 0 under perfect or zero agreement: z is 0/0, unused
        warnings.simplefilter("ignore")
        result = cohens_kappa(table)
    return Estimate(float(result.kappa), max(-1.0, float(result.kappa_low)),
                    min(1.0, float(result.kappa_upp)), n, k,
                    method="Cohen's kappa (unweighted), asymptotic CI assuming independent units")


@dataclass(frozen=True)
class Comparison:
    """A pair judged by one model in both orders. ``answers`` are the replies with ``a`` shown
    first, then with ``b`` shown first ("A", "B", or None when unreadable)."""

    a: Unit
    b: Unit
    model: str
    answers: tuple[str | None, str | None]
    rationales: tuple[str, str]

    @property
    def complete(self) -> bool:
        """Both orders answered; an incomplete pair is left out, as half of it is order bias."""
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
    """(later, earlier) variants of one scenario, replicate, arm and bias; sorted variant ids."""
    groups: dict[tuple[Any, ...], list[Unit]] = defaultdict(list)
    for unit in units:
        meta = dict(unit.meta)
        groups[(unit.scenario, meta["arm"], meta["replicate"], meta["bias"])].append(unit)
    pairs = []
    for group in groups.values():
        ordered = sorted(group, key=lambda u: u.variant or "")
        pairs += [(later, earlier) for earlier, later in combinations(ordered, 2)]
    return pairs


@judge("rubric")
class RubricJudge:
    """Score conversations or messages on a rubric with a panel of LLM judges.

    ``rubric``: a rubric file (default: the shipped stereotyping rubric); ``unit``: "message" or
    "conversation"; ``panel``: model names (default: the run's 'judge' role); ``both_orders``:
    also compare counterfactual variants pairwise, in both orders. ``client`` (a ModelClient)
    and ``concurrency`` are for tests and tuning.
    """

    name = "rubric"
    description = "LLM panel scores units on a rubric (default: stereotyping); agreement; pairwise"

    def __init__(self, rubric: str | Path | None = None, unit: str = "conversation",
                 panel: Sequence[str] | None = None, both_orders: bool = False, *,
                 client: Any = None, concurrency: int = CONCURRENCY, temperature: float = 0.0,
                 max_tokens: int = 256) -> None:
        if unit not in ("message", "conversation"):
            raise InputError(f"unit must be 'message' or 'conversation', got {unit!r}",
                             source="rubric judge")
        if panel is not None and not panel:
            raise InputError("the panel needs at least one model", source="rubric judge")
        self.rubric = load_rubric(rubric)
        self.scale = (self.rubric.scale.min, self.rubric.scale.max)
        self.unit, self.both_orders = unit, both_orders
        self.panel = list(panel) if panel else None
        self.concurrency, self.temperature, self.max_tokens = concurrency, temperature, max_tokens
        self._client, self._schema_ok = client, {}

    def _panel(self, run: RunView) -> list[str]:
        from agentsim.models.client import check_model_name  # lazy: litellm is slow to import

        panel = self.panel or [run.model_for("judge")]
        for model in panel:
            check_model_name(model)
        return panel

    def _request(self, model: str, user: str, seed: int, pairwise: bool,
                 context: dict[str, Any]) -> ModelRequest:
        if self._client is None:
            from agentsim.models.client import ModelClient

            self._client = ModelClient()
        if model not in self._schema_ok:
            self._schema_ok[model] = self._client.supports_schema(model)
        r, (low, high) = self.rubric, self.scale
        levels = "\n".join(f"{score}: {text}" for score, text in sorted(r.levels.items()))
        system = (f"{r.instructions.strip()}\n\nRubric '{r.name}': {r.description.strip()}\n"
                  f"Criteria: {r.criteria.strip()}\nScale:\n{levels}\n\n")
        if pairwise:
            system += ("You will see two candidates, A and B. Decide which one deserves the higher"
                       ' score. Answer with JSON: {"preferred": "A" or "B", "rationale": "..."}.')
            answer: dict[str, Any] = {"type": "string", "enum": ["A", "B"]}
        else:
            system += (f'Answer with JSON: {{"score": <integer from {low} to {high}>, '
                       '"rationale": "<one or two sentences>"}.')
            answer = {"type": "integer", "minimum": low, "maximum": high}
        key = "preferred" if pairwise else "score"
        schema = {"type": "object", "properties": {key: answer, "rationale": {"type": "string"}},
                  "required": [key, "rationale"], "additionalProperties": False}
        return ModelRequest(
            model=model, messages=[{"role": "system", "content": system},
                                   {"role": "user", "content": user}],
            schema=schema if self._schema_ok[model] else None, temperature=self.temperature,
            max_tokens=self.max_tokens, seed=seed,
            purpose="rubric_pairwise" if pairwise else "rubric",
            context={"scale": [low, high], **context})

    async def _ask(self, requests: list[ModelRequest]) -> list[str | ModelError]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(request: ModelRequest) -> str | ModelError:
            async with gate:
                try:
                    return (await self._client.complete(request)).text
                except ModelError as error:  # one failed call must not lose the others
                    return error

        return await asyncio.gather(*(one(r) for r in requests))

    def judge(self, run: RunView) -> JudgeOutput:
        """Score every unit with every panel model; metrics as in the module docstring."""
        output, panel, run_id = JudgeOutput(), self._panel(run), run.store.run_id
        units = collect_units(run, self.unit)
        jobs = [(j, i, model) for j in range(len(units)) for i, model in enumerate(panel)]
        what = "Conversation transcript" if self.unit == "conversation" else "One message"
        answers = _run_sync(self._ask([
            self._request(model, f"{what}:\n\n{units[j].text}",
                          derive_seed(run_id, units[j].id, model), False,
                          {"text": units[j].text, "unit": units[j].target})
            for j, _, model in jobs]))
        scores = np.full((len(panel), len(units)), np.nan)
        counts = {"units": len(units), "ratings": 0, "unparsed": 0, "failed": 0, "by_text": 0}
        for (j, i, model), answer in zip(jobs, answers, strict=True):
            details: dict[str, Any] = {"model": model, "rubric": self.rubric.name}
            label = None
            if isinstance(answer, ModelError):
                counts["failed"] += 1
                label, details["error"] = "failed", str(answer)
            else:
                try:
                    verdict, how = parse_verdict(answer, self.scale)
                except DecisionParseError as error:
                    counts["unparsed"] += 1
                    label, details["error"], details["raw"] = "unparsed", str(error), answer
                else:
                    scores[i, j] = verdict.score
                    counts["ratings"] += 1
                    counts["by_text"] += how == "text"
                    details.update(rationale=verdict.rationale, parsed_by=how)
            output.results.append(self._result(run_id, units[j], units[j].target, label,
                                               None if np.isnan(scores[i, j]) else scores[i, j],
                                               details))
        self._metrics(units, panel, scores, output)
        output.counts = counts
        if len(set(panel)) < len(panel):
            output.notes.append("rubric: the panel names a model twice; with the same seeds the "
                                "copies answer alike, which inflates agreement")
        if self.both_orders:
            self._pairwise(run, panel, output)
        return output

    def _result(self, run_id: str, unit: Unit, target: str, label: str | None,
                score: float | None, details: dict[str, Any]) -> JudgeResult:
        meta = dict(unit.meta)
        return JudgeResult(
            run_id=run_id, conversation_id=unit.conversation_id, turn=meta.get("turn"),
            agent=meta.get("agent"), variant=unit.variant, arm=meta["arm"],
            replicate=meta["replicate"], seed=meta["seed"], judge=self.name, target=target,
            label=label, score=score, details=details)

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
        if not paired:
            return
        clusters = [units[j].scenario for j in paired]
        output.metrics["rubric_agreement_exact"] = clustered_mean(
            [float(np.nanmax(scores[:, j]) == np.nanmin(scores[:, j])) for j in paired], clusters)
        output.metrics["rubric_agreement_alpha"] = alpha_estimate(scores[:, paired], clusters,
                                                                  self.scale)
        both = [j for j in paired if not np.isnan(scores[:2, j]).any()]
        output.metrics["rubric_agreement_kappa"] = kappa_estimate(
            [int(scores[0, j]) for j in both], [int(scores[1, j]) for j in both],
            [units[j].scenario for j in both], self.scale)

    def comparisons(self, run: RunView, pairs: Sequence[tuple[Unit, Unit]],
                    panel: Sequence[str] | None = None) -> list[Comparison]:
        """Ask every panel model about every pair, in both orders."""
        panel, run_id = list(panel or self._panel(run)), run.store.run_id
        jobs = [(a, b, model, order) for a, b in pairs for model in panel for order in (0, 1)]
        requests = []
        for a, b, model, order in jobs:
            first, second = (a, b) if order == 0 else (b, a)
            requests.append(self._request(
                model, f"Candidate A:\n{first.text}\n\nCandidate B:\n{second.text}",
                derive_seed(run_id, a.id, b.id, order, model), True,
                {"candidates": [first.text, second.text]}))
        answers = _run_sync(self._ask(requests))
        found: list[tuple[str | None, str]] = []
        for answer in answers:
            try:
                verdict = parse_preference(answer) if isinstance(answer, str) else None
            except DecisionParseError:
                verdict = None
            found.append((verdict.preferred, verdict.rationale) if verdict else
                          (None, str(answer)))
        return [Comparison(a, b, model, (found[k][0], found[k + 1][0]),
                           (found[k][1], found[k + 1][1]))
                for k, (a, b, model, _) in enumerate(jobs) if k % 2 == 0]

    def compare(self, run: RunView, a_unit: Unit | str, b_unit: Unit | str) -> list[Comparison]:
        """Which of two conversations (units or conversation ids) is the more stereotyped, per
        panel model, each asked in both orders."""
        known = {u.id: u for u in collect_units(run, "conversation")}
        a, b = (u if isinstance(u, Unit) else known[u] for u in (a_unit, b_unit))
        return self.comparisons(run, [(a, b)])

    def _pairwise(self, run: RunView, panel: list[str], output: JudgeOutput) -> None:
        # Always whole conversations: messages of two variants do not correspond turn by turn.
        pairs = variant_pairs(collect_units(run, "conversation"))
        if not pairs:
            output.notes.append("rubric: both_orders found no conversations differing only by "
                                "variant; nothing was compared")
            return
        found = self.comparisons(run, pairs, panel)
        done = [c for c in found if c.complete]
        output.counts["pairwise"] = {"comparisons": len(found), "incomplete": len(found) - len(done)}
        for c in found:
            label = "incomplete" if not c.complete else (
                "consistent" if c.consistent else "inconsistent")
            output.results.append(self._result(
                run.store.run_id, c.a, f"pair:{c.a.variant} vs {c.b.variant}", label,
                c.preference_a if c.complete else None,
                {"model": c.model, "a": c.a.id, "b": c.b.id, "answers": list(c.answers),
                 "rationales": list(c.rationales)}))
        if not done:
            return
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
    """Module-level shortcut: ``RubricJudge(**options).compare(run, a_unit, b_unit)``."""
    return RubricJudge(**options).compare(run, a_unit, b_unit)
