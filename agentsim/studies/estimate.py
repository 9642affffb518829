"""The plan of a study before anything is paid for: cells, conversations, model calls, tokens,
cost and the time the rate limits allow (``agentsim study plan``, ``study run --dry-run``).

**How calls and tokens are estimated.** Counting calls from the protocol's rules would copy
every protocol's control flow (rounds, speaking orders, decision points, probes, each
mitigation's extra calls, re-asks) into a second place that drifts from the first. Instead each
distinct *shape* of conversation — (scenario, variant, setting, arm, bias condition, protocol
options), everything but the model cell, replicate and seed, which do not change the graph —
runs once through the real protocol graph, in process, on an offline stand-in model
(:data:`STAND_INS`: ``scripted/clinical`` for consultations, ``scripted/fair`` otherwise). No
model is called and nothing is written: events go to a sink in memory. Each call's model slot
(which key of the job's models it went to, after the arm's replacements) is recorded, so the
counts are reused for every model cell and replicate of the shape, each call charged to the
model that cell puts in that slot.

* **Calls** are the stand-in's. Discussions and setups with fixed rounds make the same calls
  whatever the model says; a consultation's length depends on the doctor, so its count is
  *typical for the stand-in* (its doctor asks 2 questions, requests 1 test, then diagnoses),
  and ``model_calls_max`` adds the turn budget: every remaining doctor turn used, each a
  doctor call and an answer (and a probe with probes on); re-asks of unparsed answers are not
  in either figure.
* **Prompt tokens** are measured on the prompts the graph built: litellm's ``token_counter``
  (tiktoken, shipped with litellm) for OpenAI-family names, about 4 characters a token
  otherwise — never a tokenizer download, which other names could trigger.
* **Completion tokens**: the stand-in's answers are short, so ``completion`` (its answers'
  length) is a low estimate and ``completion_max`` (each call's ``max_tokens``) the bound.
* **Cost**: tokens × the price of :mod:`agentsim.models.prices` (0 for local and scripted
  models, "unknown" when litellm's map and the models config have no price).
* **Time**: the least time each model's ``rpm``/``tpm`` limits allow for its calls (tokens as
  the client's limiter counts them: characters / 4 plus ``max_tokens``); a model without limits
  is not bounded by one. Latency and concurrency are not modelled.

LLM judges' calls (made when the run is judged) are not simulated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentsim._aio import run_sync
from agentsim.core.log_stream import cell_of

if TYPE_CHECKING:  # the run machinery is imported when a plan is made, not with the package
    from agentsim.core.jobs import ConversationJob
    from agentsim.models.client import ModelClient
    from agentsim.models.prices import Prices

__all__ = ["STAND_INS", "PlanEstimate", "estimate_plan", "estimate_run", "plan_study"]

STAND_INS = {"clinical": "scripted/clinical"}  # protocol → stand-in; others: DEFAULT_STAND_IN
DEFAULT_STAND_IN = "scripted/fair"
SLOT = "plan-slot/"  # a simulated job's model names: the slot (models key) each call went to
AT_ONCE = 16  # simulated conversations in flight
OPENAI_FAMILY = {"openai", "azure", "text-completion-openai"}  # tiktoken counts them offline


@dataclass
class _Call:
    """One model call of a simulated conversation."""

    slot: str  # the job's models key, or a model name a mitigation brought in (see model)
    messages: list[dict[str, Any]]
    max_tokens: int
    completion_chars: int
    purpose: str
    doctor_turn: int | None = None  # a consultation's doctor turn the call belongs to
    named: bool = False  # slot is a model name (not one of the job's models)

    def model(self, job: ConversationJob) -> str:
        """The model this call goes to in ``job``'s cell."""
        if self.named:
            return self.slot
        return job.models.get(self.slot) or job.models["default"]

    @property
    def chars(self) -> int:
        return sum(len(str(m.get("content", ""))) for m in self.messages)


@dataclass
class _Shape:
    """A simulated conversation: its calls, the calls its budget still allows, its error."""

    job: ConversationJob
    calls: list[_Call] = field(default_factory=list)
    budget: list[_Call] = field(default_factory=list)  # more calls its turn budget allows
    error: str | None = None


class _StandIn:
    """The client of one simulated conversation: every call answered by the stand-in, the
    schema question answered as the real model would be asked it."""

    def __init__(self, real: ModelClient, inner: ModelClient, stand_in: str,
                 job: ConversationJob, facts: Any, calls: list[_Call]) -> None:
        self.real, self.inner, self.stand_in = real, inner, stand_in
        self.models, self.facts, self.calls = job.models, facts, calls

    def _real(self, model: str) -> str:
        if not model.startswith(SLOT):  # a model a mitigation names itself
            return model
        slot = model.removeprefix(SLOT)
        return self.models.get(slot) or self.models["default"]

    def supports_schema(self, model: str) -> bool:
        """Whether the real model of this slot takes a schema (prompts differ by it)."""
        return self.real.supports_schema(self._real(model))

    async def complete(self, request: Any) -> Any:
        """The stand-in's answer, the call recorded under its slot."""
        reply = await self.inner.complete(replace(request, model=self.stand_in,
                                                  facts=self.facts))
        self.calls.append(_Call(request.model.removeprefix(SLOT), request.messages,
                                request.max_tokens, len(reply.text), request.purpose,
                                (request.context or {}).get("doctor_turn"),
                                named=not request.model.startswith(SLOT)))
        return replace(reply, model=request.model)


class _Sink:
    """Where a simulated conversation's events go: nowhere but its first error."""

    run_id = "plan"

    def __init__(self) -> None:
        self.error: str | None = None

    def append(self, event: Any) -> None:
        if event.type == "error" and self.error is None:
            self.error = f"{event.error_type}: {event.message}"


def shape_of(job: ConversationJob) -> str:
    """What decides a conversation's graph and prompts: the job without its model cell,
    replicate and seed."""
    return json.dumps(job.model_dump(mode="json", exclude={"model_label", "models",
                                                           "replicate", "seed"}),
                      sort_keys=True)


async def _simulate(shapes: dict[str, _Shape], plan: Any, real: ModelClient) -> None:
    from agentsim.models.client import ModelClient
    from agentsim.models.facts import conversation_facts
    from agentsim.runs.runner import run_conversation

    inner = ModelClient(seed=0)  # the stand-ins' client: no cache, no limits
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(shape: _Shape) -> None:
        job = shape.job
        scenario = plan.scenario_of(job)
        stand_in = STAND_INS.get(job.protocol, DEFAULT_STAND_IN)
        simulated = job.model_copy(update={"models": {k: SLOT + k for k in job.models}})
        client = _StandIn(real, inner, stand_in, job,
                          conversation_facts("scripted", scenario, job), shape.calls)
        sink = _Sink()
        async with gate:
            await run_conversation(simulated, scenario, client, sink, "plan",  # type: ignore
                                   plan.catalogue)
        shape.error = sink.error
        shape.budget = _budget_calls(shape)

    await asyncio.gather(*(one(shape) for shape in shapes.values()))


def _budget_calls(shape: _Shape) -> list[_Call]:
    """The calls a consultation's turn budget allows beyond the stand-in's: each doctor turn
    left, a doctor call and its answer (and a probe)."""
    if shape.job.protocol != "clinical":
        return []
    doctor = [c for c in shape.calls if c.purpose == "doctor"]
    answers = [c for c in shape.calls if c.purpose in ("patient", "measurement")]
    if not doctor:
        return []
    # Turns, not calls: a mitigation's second look at the diagnosis is no turn of the budget.
    turns = len({c.doctor_turn for c in doctor}) if all(c.doctor_turn for c in doctor) \
        else len(doctor)
    left = max(0, (shape.job.max_turns or 20) - turns)
    turn = [doctor[0]]
    turn.append(answers[0] if answers else doctor[0])
    if shape.job.probes:
        turn.append(doctor[0])
    return turn * left


@dataclass
class ModelEstimate:
    """One model's share of the plan."""

    calls: int = 0
    calls_max: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_tokens_max: int = 0
    limiter_tokens: int = 0  # as the client's tokens-per-minute limiter counts them
    longest: int = 0  # the largest prompt + max_tokens of one call (against its context)
    price: Any = None  # agentsim.models.prices.Price, None when unknown
    rpm: float | None = None
    tpm: float | None = None

    @property
    def cost(self) -> float | None:
        """US dollars for the estimated tokens (None: no price known)."""
        return None if self.price is None else \
            self.price.cost(self.prompt_tokens, self.completion_tokens)

    @property
    def cost_max(self) -> float | None:
        """US dollars with every call using its whole ``max_tokens``."""
        return None if self.price is None else \
            self.price.cost(self.prompt_tokens, self.completion_tokens_max)

    @property
    def seconds(self) -> float | None:
        """The least time the model's limits allow for its calls (None: no limit)."""
        bounds = [self.calls / self.rpm * 60] if self.rpm else []
        bounds += [self.limiter_tokens / self.tpm * 60] if self.tpm else []
        return max(bounds) if bounds else None

    def as_data(self) -> dict[str, Any]:
        """The model's row of the plan's JSON."""
        price = None if self.price is None else {
            "prompt": self.price.prompt, "completion": self.price.completion,
            "source": self.price.source}
        return {"calls": self.calls, "calls_max": self.calls_max,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "completion_tokens_max": self.completion_tokens_max, "price": price,
                "cost": _money(self.cost), "cost_max": _money(self.cost_max),
                "rpm": self.rpm, "tpm": self.tpm, "seconds": self.seconds}


def _money(value: float | None) -> float | str:
    return "unknown" if value is None else round(value, 6)


@dataclass
class PlanEstimate:
    """The plan of a run: its cells, conversations and each model's calls, tokens, cost and
    time (see the module docstring for how each is estimated)."""

    cells: list[dict[str, Any]]
    conversations: int
    models: dict[str, ModelEstimate]
    shapes: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_cost: float | None = None  # the run's spending limit (--max-cost, the study's)

    def total(self, name: str) -> int:
        """The sum of a count over the models."""
        return sum(getattr(row, name) for row in self.models.values())

    @property
    def cost(self) -> float | None:
        """US dollars over every model (None when any model's price is unknown)."""
        costs = [row.cost for row in self.models.values()]
        return None if None in costs else sum(costs)  # type: ignore[arg-type]

    @property
    def cost_max(self) -> float | None:
        """The cost with every completion at its limit (None when a price is unknown)."""
        costs = [row.cost_max for row in self.models.values()]
        return None if None in costs else sum(costs)  # type: ignore[arg-type]

    @property
    def seconds(self) -> float | None:
        """The least time the rate limits allow (models run side by side: the slowest);
        None when no model has a limit."""
        bounded = [row.seconds for row in self.models.values() if row.seconds is not None]
        return max(bounded) if bounded else None

    def as_data(self) -> dict[str, Any]:
        """The plan as ``agentsim study plan --json`` prints it."""
        unbounded = [name for name, row in self.models.items() if row.seconds is None]
        return {
            "cells": self.cells, "conversations": self.conversations,
            "simulated_shapes": self.shapes,
            "model_calls": self.total("calls"), "model_calls_max": self.total("calls_max"),
            "tokens": {"prompt": self.total("prompt_tokens"),
                       "completion": self.total("completion_tokens"),
                       "completion_max": self.total("completion_tokens_max")},
            "cost": {"models": {n: _money(r.cost) for n, r in self.models.items()},
                     "total": _money(self.cost), "total_max": _money(self.cost_max)},
            "time": {"seconds_at_least": self.seconds, "not_bounded": unbounded},
            "max_cost": self.max_cost,
            "models": {name: row.as_data() for name, row in self.models.items()},
            "stand_ins": {**STAND_INS, "other protocols": DEFAULT_STAND_IN},
            "notes": self.notes, "warnings": self.warnings}


def estimate_run(scenarios: Sequence[tuple[Path, Any]], options: Any,
                 warnings: Sequence[str] = ()) -> PlanEstimate:
    """The plan of a run of ``scenarios`` under the runner's ``options`` (presets applied and
    roles checked as the runner does), estimated without calling any model."""
    from agentsim.models.prices import Prices
    from agentsim.runs.clients import build_client
    from agentsim.runs.planning import build_plan, check_roles, configured, preset_options

    scenarios = configured(scenarios, options)
    options = preset_options(options)
    plain = [s for _, s in scenarios]
    real = build_client(replace(options, cache=False))
    check_roles(options, plain, real.resolver)
    plan = build_plan(plain, options)
    shapes: dict[str, _Shape] = {}
    for job in plan.jobs:
        shapes.setdefault(shape_of(job), _Shape(job))
    run_sync(_simulate(shapes, plan, real))
    models, cells = _charge(plan.jobs, shapes, real, Prices(real.resolver))
    notes = [(f"{len(shapes)} conversation shape(s) simulated on the stand-in models; calls "
              "and tokens scaled to every model cell and replicate")]
    if any(job.protocol == "clinical" for job in plan.jobs):
        notes.append("consultations: calls typical for the stand-in doctor (2 questions, 1 "
                     "test, a diagnosis); model_calls_max uses every doctor turn")
    if any("judge" in job.models for job in plan.jobs):
        notes.append("calls of LLM judges (role judge) are made when the run is judged and "
                     "are not counted")
    failed = [s for s in shapes.values() if s.error]
    extra = [(f"{len(failed)} of {len(shapes)} simulated conversations failed on the "
              f"stand-in (first: {failed[0].error}); their calls count as far as they got")] \
        if failed else []
    from agentsim.models.context import context_problem

    extra += [problem for name, row in models.items()
              if (problem := context_problem(real.resolver, name, row.longest))]
    return PlanEstimate(cells, len(plan.jobs), models, len(shapes), notes,
                        [*warnings, *extra], options.max_cost)


def _charge(jobs: Sequence[ConversationJob], shapes: dict[str, _Shape], real: ModelClient,
            prices: Prices) -> tuple[dict[str, ModelEstimate], list[dict[str, Any]]]:
    """Each job's calls (its shape's) charged to the models its cell puts in their slots."""
    models: dict[str, ModelEstimate] = {}
    cells: dict[tuple[str, ...], dict[str, Any]] = {}
    tokens: dict[tuple[int, str], int] = {}
    for job in jobs:
        shape = shapes[shape_of(job)]
        label, setting, arm = cell_of(job.model_dump())
        cell = cells.setdefault((label, setting, arm), {
            "model": label, "setting": setting, "arm": arm, "conversations": 0,
            "model_calls": 0})
        cell["conversations"] += 1
        cell["model_calls"] += len(shape.calls)
        for call in shape.calls:
            name = call.model(job)
            row = _row(models, name, real, prices)
            key = (id(call), name)
            if key not in tokens:
                tokens[key] = _prompt_tokens(real, name, call)
            row.calls += 1
            row.calls_max += 1
            row.prompt_tokens += tokens[key]
            row.completion_tokens += -(-call.completion_chars // 4)
            row.completion_tokens_max += call.max_tokens
            row.limiter_tokens += call.chars // 4 + call.max_tokens
            row.longest = max(row.longest, tokens[key] + call.max_tokens)
        for call in shape.budget:  # calls the turn budget allows, like those made
            row = _row(models, call.model(job), real, prices)
            row.calls_max += 1
            row.completion_tokens_max += call.max_tokens
    return models, list(cells.values())


def _row(models: dict[str, ModelEstimate], name: str, real: ModelClient,
         prices: Prices) -> ModelEstimate:
    if name not in models:
        endpoint = real.resolver.resolve(name)
        models[name] = ModelEstimate(price=prices(name), rpm=endpoint.rpm, tpm=endpoint.tpm)
    return models[name]


def _prompt_tokens(real: ModelClient, name: str, call: _Call) -> int:
    """Prompt tokens of a call to ``name``: litellm's count for OpenAI-family names, else
    about 4 characters a token."""
    endpoint = real.resolver.resolve(name)
    if not endpoint.in_process and endpoint.model.partition("/")[0] in OPENAI_FAMILY:
        from agentsim.models.client import _backend  # litellm, only for such a model

        try:
            return _backend().count_tokens(endpoint.model, call.messages)
        except Exception:  # noqa: BLE001, S110 - a name its counter rejects: the rule of thumb
            pass
    return -(-call.chars // 4)


def estimate_plan(study: Any, run_time: dict[str, Any] | None = None) -> PlanEstimate:
    """The plan of a loaded :class:`~agentsim.studies.loader.Study` under ``run_time``
    options (models config, limits, ...), checked as ``study run`` checks it (InputError
    naming the file and field); no model is called and nothing is written."""
    from agentsim.studies.running import check_study

    scenarios, settings, warnings = check_study(study, run_time)
    return estimate_run(scenarios, study.run_options(settings), warnings)


def plan_study(path: str | Path, *, models: Any = None, replicates: int | None = None,
               sets: Any = None, **run_time: Any) -> PlanEstimate:
    """The plan of the study file at ``path`` (``agentsim study plan FILE``), with the same
    replacements ``run_study`` takes (``models``, ``replicates``, ``sets``)."""
    from agentsim.studies.running import open_study

    return estimate_plan(open_study(path, models, replicates, sets), run_time)
