"""What a run's model calls used and cost: the ``usage`` of ``results.json`` and the manifest,
and the spending limit ``--max-cost``.

Both count the ``model_call`` events of the log, priced by :mod:`agentsim.models.prices`
(tokens × the model's price per token; a call served from the cache costs nothing, a call of a
model without a known price costs "unknown", never a guess).

* :class:`UsageTally` is fed every conversation of the judging pass (its one read of the log,
  beside :class:`~agentsim.runs.parsing.ParseTally`), then the judges' own calls of the pass;
  judges' calls are listed apart (``judges``), as the run's calls that they are. It counts
  what the results describe: each conversation's last attempt (a failed one too) and this
  pass's judges — not an attempt a resume ran again, nor an earlier judging pass.
* :class:`Budget` is the spending limit of :func:`agentsim.runs.runner.execute`: it starts from
  the spend already in the log (every call of every attempt and judging pass: what was
  paid; a resume counts it) and watches the store's
  appends for new calls (:class:`SpendingStore`), so the spend is known the moment a call is
  logged, whichever executor ran it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, ClassVar

from agentsim.core.event_views import CallFacts, decode
from agentsim.core.log_stream import ConversationLog, line_type
from agentsim.core.reader import is_judge_call
from agentsim.models.prices import Prices

__all__ = ["Budget", "SpendingStore", "UsageTally", "check_budget", "logged_spend",
           "run_prices"]


def _row() -> dict[str, Any]:
    return {"calls": 0, "cached_calls": 0, "failed_calls": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "cost": 0.0}


class UsageTally:
    """Calls, cache hits, tokens and cost per model, conversations' and judges' apart."""

    reads = frozenset({"model_call"})
    views: ClassVar[dict[str, type]] = {"model_call": CallFacts}  # no prompt is read

    def __init__(self, prices: Prices) -> None:
        self.prices = prices
        self.models: dict[str, dict[str, Any]] = {}
        self.judges: dict[str, dict[str, Any]] = {}

    def add(self, conversation: ConversationLog) -> None:
        """Count one conversation's calls (a failed one's too: they were paid for)."""
        self.add_calls(conversation.of("model_call"))

    def add_calls(self, calls: Iterable[Any]) -> None:
        """Count ``model_call`` events (a judging pass's own, which no conversation holds)."""
        for call in calls:
            rows = self.judges if is_judge_call(call) else self.models
            row = rows.setdefault(call.model, _row())
            row["calls"] += 1
            row["cached_calls"] += bool(call.cached)
            row["failed_calls"] += call.error is not None
            row["prompt_tokens"] += call.prompt_tokens or 0
            row["completion_tokens"] += call.completion_tokens or 0
            cost = self.prices.cost(call.model, call.prompt_tokens, call.completion_tokens,
                                    bool(call.cached))
            row["cost"] = None if cost is None or row["cost"] is None else row["cost"] + cost

    def result(self) -> dict[str, Any]:
        """``{"models": {name: row}, "judges": {name: row}, "total": row}``; each row's
        ``cost`` in US dollars, None when a call's price is unknown (the total's too);
        ``unpriced`` lists the models without a price."""
        total = _row()
        unpriced: list[str] = []
        for rows in (self.models, self.judges):
            for name, row in rows.items():
                for key in ("calls", "cached_calls", "failed_calls", "prompt_tokens",
                            "completion_tokens"):
                    total[key] += row[key]
                if row["cost"] is None:
                    unpriced.append(name)
                    total["cost"] = None
                elif total["cost"] is not None:
                    total["cost"] += row["cost"]
                if row["cost"] is not None:
                    row["cost"] = round(row["cost"], 6)
        if total["cost"] is not None:
            total["cost"] = round(total["cost"], 6)
        return {"models": dict(sorted(self.models.items())),
                "judges": dict(sorted(self.judges.items())), "total": total,
                "unpriced": sorted(set(unpriced))}


def run_prices(manifest: dict[str, Any]) -> Prices:
    """The prices of a stored run's model names, routed as the run routed them (its models
    config's prices, its router's deployments)."""
    from agentsim.models.endpoints import EndpointResolver, ModelsConfig
    from agentsim.runs.options import RunOptions

    options = RunOptions.from_manifest(manifest)
    return Prices(EndpointResolver(ModelsConfig.model_validate(options.models_config or {}),
                                   options.router_list))


def check_budget(options: Any, resolver: Any) -> None:
    """Refuse a spending limit that could not hold: a model of the run without a known price
    would be counted as free (InputError naming ``--max-cost``, before anything is written)."""
    if options.max_cost is None:
        return
    prices = Prices(resolver)
    unpriced = [name for name in options.all_models() if prices(name) is None]
    if unpriced:
        from agentsim.errors import InputError

        raise InputError(f"no price is known for {', '.join(unpriced)}, so the spend could "
                         "not be counted; give input_cost_per_token and output_cost_per_token "
                         "in the models config (--models-config), or drop --max-cost",
                         source="--max-cost")


def logged_spend(store: Any, prices: Prices) -> float:
    """US dollars the log's model calls cost (every attempt, judges' calls included; calls
    without a known price count 0). One pass reading only ``model_call`` lines as views."""
    spent = 0.0
    for _, line in store._lines():
        if line_type(line) not in (None, "model_call"):
            continue
        call = decode(CallFacts, line)
        if call is not None:
            spent += prices.cost(call.model, call.prompt_tokens, call.completion_tokens,
                                 call.cached) or 0.0
    return spent


class Budget:
    """The spending limit of a run: ``spent`` so far (the log's, then each call appended) and
    whether it reached ``limit``."""

    def __init__(self, limit: float, prices: Prices, spent: float = 0.0) -> None:
        self.limit, self.prices, self.spent = limit, prices, spent
        self._lock = threading.Lock()  # appends come from worker threads too

    @classmethod
    def of_run(cls, store: Any, limit: float | None, resolver: Any) -> Budget | None:
        """The budget of a run (None without a limit), from what its log already spent."""
        if limit is None:
            return None
        prices = Prices(resolver)
        return cls(float(limit), prices, logged_spend(store, prices))

    def observe(self, event: Any) -> None:
        """Add the cost of a ``model_call`` event (others are ignored)."""
        if getattr(event, "type", None) != "model_call":
            return
        cost = self.prices.cost(event.model, event.prompt_tokens, event.completion_tokens,
                                event.cached) or 0.0
        with self._lock:
            self.spent += cost

    @property
    def reached(self) -> bool:
        """True once the spend is at or over the limit."""
        return self.spent >= self.limit


class SpendingStore:
    """A run store whose appended ``model_call`` events are counted by a :class:`Budget`
    (every other attribute is the store's)."""

    def __init__(self, store: Any, budget: Budget) -> None:
        self._store, self._budget = store, budget

    def append(self, event: Any) -> None:
        """Append ``event`` to the store, then count its cost."""
        self._store.append(event)
        self._budget.observe(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
